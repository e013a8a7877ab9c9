using System.Text;
using StyleTransfer.Cli;
using StyleTransfer.Formats;

namespace StyleTransfer.Tests;

/// <summary>
/// Hostile ONNX files, written byte by byte here, given to the CLI as --weights: each is refused
/// with exit 2 and the one line "ONNX model '…' could not be parsed (…); is it a complete .onnx
/// file?", after reading no more than the file holds and before any tensor is built.
/// </summary>
public sealed class OnnxFormatTests : CliImagesTest
{
    public static TheoryData<string, string> Cases() => new()
    {
        // The shape needs 4 MB, the data is 16 bytes.
        { "dims exceed raw_data", "tensor 'w' has 16 bytes of data, but its shape [1000,1000] needs 1000000 elements of 4 bytes" },
        { "dims exceed float_data", "tensor 'w' has 3 elements, but its shape [2,2] needs 4" },
        { "negative dim", "tensor 'w' has shape [-4]" },
        { "overflowing dims", "tensor 'w' has shape [4294967296,4294967296]" },
        { "bad dims in an attribute tensor", "tensor 'c' has 16 bytes of data, but its shape [1000,1000] needs 1000000 elements of 4 bytes" },
        { "no graph", "the model has no graph" },

        // Google.Protobuf's first sentence: the graph's 2 GB are not there (its first missing byte reads as tag 0); nor are the tensor's; the recursion limit.
        { "huge declared length", "Protocol message contained an invalid tag (zero)" },
        { "huge declared length in a tensor", "While parsing a protocol message, the input ended unexpectedly in the middle of a field" },
        { "groups nested 1000 deep", "Protocol message had too many levels of nesting" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void AHostileOnnxIsRefusedWithOneLine(string name, string reason)
    {
        string path = dir.File("hostile.onnx");
        File.WriteAllBytes(path, Make(name));
        string output = dir.File("out.png");
        (int code, string stdout, string stderr) = CliRun.WithDefaults([content, style, "--network", "resnet18", "--weights", path, "-o", output], ("--size", "32"), ("-n|--iterations", "1"), ("--threads", "1"));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal($"error: ONNX model '{path}' could not be parsed ({reason}); is it a complete .onnx file?" + Environment.NewLine, stderr);

        Assert.False(File.Exists(output), stdout);
    }

    [Fact]
    public void AFileOverTheCapIsRefusedBeforeItIsRead()
    {
        string path = dir.File("huge.onnx");
        using (FileStream f = File.Create(path))
        {
            f.SetLength(OnnxModel.MaxFileBytes + 1); // sparse: nothing written
        }

        var e = Assert.Throws<StyleTransferException>(() => OnnxModel.Load(path));
        Assert.Equal($"ONNX model '{path}' is 1073741825 bytes, more than the 1073741824 that stylize reads (models this large keep their weights in external files, which are not supported)", e.Message);
    }

    [Fact]
    public void AWellFormedSmallModelIsReadAsWritten()
    {
        OnnxModel m = OnnxModel.Parse(Model(Node(), Tensor("w", [2, 2], floats: [1, 2, 3, 4]), Input("x", [1, 3, null, null])));
        Assert.Equal(7, m.IrVersion);
        Assert.Equal(9, m.Opsets[""]);
        OnnxNode n = Assert.Single(m.Graph.Nodes);
        Assert.Equal("Conv 'n' (x, w) -> (y)", n.ToString());
        Assert.Equal([3L, 3], n.Ints("kernel_shape")!);
        Assert.Equal([1f, 2, 3, 4], m.Graph.Initializers["w"].ToFloats());
        Assert.Equal("x [1,3,?,?]", Assert.Single(m.Graph.DataInputs).ToString());
    }

    private static byte[] Make(string name) => name switch
    {
        "dims exceed raw_data" => Model(Tensor("w", [1000, 1000], raw: new byte[16])),
        "dims exceed float_data" => Model(Tensor("w", [2, 2], floats: [1, 2, 3])),
        "negative dim" => Model(Tensor("w", [-4], floats: [1])),
        "overflowing dims" => Model(Tensor("w", [1L << 32, 1L << 32], floats: [1])),
        "bad dims in an attribute tensor" => Model(Len(1, Str(2, "c"), Str(4, "Constant"), Len(5, Str(1, "value"), Len(5, TensorBody("c", [1000, 1000], new byte[16], null))))),
        "no graph" => [.. VarintField(1, 7)],
        "huge declared length" => [.. VarintField(1, 7), .. Tag(7, 2), .. Varint(0x7FFF_FFF0), .. new byte[10]],
        "huge declared length in a tensor" => Model([.. Tag(5, 2), .. Varint(40), .. Tag(9, 2), .. Varint(0x7FFF_0000), .. new byte[34]]),
        _ => [.. VarintField(1, 7), .. Enumerable.Repeat(Tag(99, 3), 1000).SelectMany(t => t), .. Enumerable.Repeat(Tag(99, 4), 1000).SelectMany(t => t)],
    };

    private static byte[] Model(params byte[][] graph) => [.. VarintField(1, 7), .. Len(7, graph), .. Len(8, VarintField(2, 9))];

    private static byte[] Node() => Len(1, Str(1, "x"), Str(1, "w"), Str(2, "y"), Str(3, "n"), Str(4, "Conv"), Len(5, Str(1, "kernel_shape"), VarintField(8, 3), VarintField(8, 3)));

    private static byte[] Tensor(string name, long[] dims, byte[]? raw = null, float[]? floats = null) => Len(5, TensorBody(name, dims, raw, floats));

    private static byte[] TensorBody(string name, long[] dims, byte[]? raw, float[]? floats) =>
    [
        .. dims.SelectMany(d => VarintField(1, d)),
        .. VarintField(2, 1),
        .. Str(8, name),
        .. raw == null ? [] : Len(9, raw),
        .. floats == null ? [] : Len(4, [.. floats.SelectMany(BitConverter.GetBytes)]),
    ];

    private static byte[] Input(string name, long?[] shape) =>
        Len(11, Str(1, name), Len(2, Len(1, VarintField(1, 1), Len(2, [.. shape.Select(d => d is { } v ? Len(1, VarintField(1, v)) : Len(1, Str(2, "N")))]))));

    private static byte[] Str(int field, string s) => Len(field, Encoding.UTF8.GetBytes(s));

    private static byte[] Len(int field, params byte[][] parts)
    {
        byte[] body = [.. parts.SelectMany(p => p)];
        return [.. Tag(field, 2), .. Varint((ulong)body.Length), .. body];
    }

    private static byte[] VarintField(int field, long value) => [.. Tag(field, 0), .. Varint((ulong)value)];

    private static byte[] Tag(int field, int wire) => Varint((ulong)((field << 3) | wire));

    private static byte[] Varint(ulong v)
    {
        var bytes = new List<byte>();
        while (v >= 0x80)
        {
            bytes.Add((byte)(v | 0x80));
            v >>= 7;
        }

        bytes.Add((byte)v);
        return [.. bytes];
    }
}
