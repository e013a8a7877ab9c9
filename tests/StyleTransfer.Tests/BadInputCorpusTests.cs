using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using StyleTransfer.Cli;
using StyleTransfer.Formats;
using StyleTransfer.Networks;
using Xunit.Abstractions;

namespace StyleTransfer.Tests;

/// <summary>
/// The bad-input corpus: truncated, bit-flipped and oversized images, weights (.pth, .safetensors),
/// ONNX models and checkpoints, all made here at test time from the fixtures, each run through the
/// CLI and expected to exit 2 with one line on stderr naming the file, and to leave an existing
/// output untouched.
/// </summary>
public sealed class BadInputCorpusTests : CliImagesTest
{
    private readonly string output;
    private readonly byte[] outputBytes;

    private readonly ITestOutputHelper log;

    public BadInputCorpusTests(ITestOutputHelper log)
    {
        this.log = log;
        output = dir.File("out.png");
        TestImages.Save(TestImages.Stripes(40, 40), output);
        outputBytes = File.ReadAllBytes(output);
    }

    public static TheoryData<string> Cases() =>
    [
        "png truncated", "png bit flips", "png bomb header", "png oversized header", "jpeg cut in half, EOI put back", "jpeg truncated", "jpeg bomb header",
        "pth truncated", "pth bit flips", "pth bit flips in data", "legacy pth truncated", "legacy pth bit flips", "pth zip bomb", "pth declared size mismatch", "pth 3 GB tensor", "pth negative shape",
        "safetensors truncated", "safetensors bit flips", "safetensors header too long", "safetensors overlapping tensors",
        "onnx truncated", "onnx bit flips", "checkpoint truncated", "checkpoint bit flips in data", "checkpoint negative shape",
        "checkpoint overflowing shape", "checkpoint null options", "checkpoint null lbfgs field",
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryBadFileExitsTwoWithOneLineAndLeavesTheOutput(string name)
    {
        string[] args = Make(name);
        var all = new List<string>(args) { "-o", output };
        (int code, _, string stderr) = CliRun.WithDefaults(all, ("--network", "vgg19"), ("--weights", TestPaths.NarrowPth), ("--size", "32"), ("-n|--iterations", "1"), ("--threads", "2"));
        string line = stderr.TrimEnd('\n', '\r');
        log.WriteLine($"{name}: {line}");
        Assert.True(code == CliApp.ExitBadInput, $"{name}: exit {code}: {stderr}");
        Assert.StartsWith("error: ", line);
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain("internal error", line);
        Assert.Equal(outputBytes, File.ReadAllBytes(output));
    }

    [Fact]
    public void AZipBombPthIsRefusedBeforeInflating()
    {
        string bomb = dir.File("bomb.pth");
        byte[] pickle = BadFiles.Pickle(Enumerable.Range(0, 4).Select(i => new BadFiles.PickledTensor($"features.{i}.weight", $"{i}", 16 << 20, [16 << 20], [1])));
        BadFiles.WriteSharedMemberZip(bomb, pickle, entries: 4, memberBytes: 64 << 20);
        Assert.True(new FileInfo(bomb).Length < 200_000);
        var e = Assert.Throws<StyleTransferException>(() => StateDictFile.Load(bomb));
        Assert.Matches($"^weights file '{System.Text.RegularExpressions.Regex.Escape(bomb)}' could not be read as a PyTorch .pth state dict \\(its zip entries claim \\d+ compressed bytes in a file of \\d+: entries overlap\\)$", e.Message);
    }

    [Fact]
    public void APthMemberLargerThanItsStorageIsRefusedBeforeInflating()
    {
        string path = dir.File("big-member.pth");
        byte[] pickle = BadFiles.Pickle([new BadFiles.PickledTensor("w", "0", 4, [4], [1])]);
        BadFiles.WritePth(path, pickle, [("0", new byte[32 << 20])], deflate: true);
        var e = Assert.Throws<StyleTransferException>(() => StateDictFile.Load(path));
        Assert.Equal($"weights file '{path}' could not be read as a PyTorch .pth state dict (member archive/data/0 declares 33554432 bytes, but its storage holds 4 elements of 4 bytes)", e.Message);
    }

    [Fact]
    public void APthDeclaringMoreThanTheCapIsRefusedBeforeInflating()
    {
        // Zero strides make a 3 GB tensor of a one-element storage: refused from the pickle alone.
        string path = dir.File("huge.pth");
        byte[] pickle = BadFiles.Pickle([new BadFiles.PickledTensor("w", "0", 1, [1 << 15, 1 << 15, 768], [0, 0, 0])]);
        BadFiles.WritePth(path, pickle, [("0", new byte[4])]);
        var e = Assert.Throws<StyleTransferException>(() => StateDictFile.Load(path));
        Assert.Equal($"weights file '{path}' could not be read as a PyTorch .pth state dict (its tensors declare 3298.5 GB, more than any supported network needs (at most 2.1 GB))", e.Message);
    }

    [Fact]
    public void TheTestPickleWriterMakesFilesTheReaderLoads()
    {
        // The control for the cases above: the same writer, honest sizes, loads.
        string path = dir.File("ok.pth");
        byte[] pickle = BadFiles.Pickle([new BadFiles.PickledTensor("a", "0", 6, [2, 3], [3, 1]), new BadFiles.PickledTensor("b", "0", 6, [3], [2], 1)]);
        BadFiles.WritePth(path, pickle, [("0", [.. new float[] { 1, 2, 3, 4, 5, 6 }.SelectMany(BitConverter.GetBytes)])], deflate: true);
        Dictionary<string, TorchSharp.torch.Tensor> d = StateDictFile.Load(path);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, d["a"].data<float>().ToArray());
        Assert.Equal(new float[] { 2, 4, 6 }, d["b"].data<float>().ToArray());
        foreach (TorchSharp.torch.Tensor t in d.Values)
        {
            t.Dispose();
        }
    }

    private string[] Make(string name)
    {
        string f(string n) => dir.File(n);
        string pth = TestPaths.NarrowPth, st = TestPaths.NarrowSafetensors;
        switch (name)
        {
            case "png truncated":
                return [BadFiles.Truncate(content, f("c.png"), 0.5), style];
            case "png bit flips":
                return [BadFiles.FlipBits(content, f("c.png"), 17, 18, 19), style]; // IHDR: its CRC no longer matches
            case "png bomb header":
                BadFiles.WritePngBomb(f("c.png"), 16000, 16000);
                return [f("c.png"), style];
            case "png oversized header":
                BadFiles.WritePngBomb(f("c.png"), 20000, 20000);
                return [f("c.png"), style];
            case "jpeg cut in half, EOI put back":
                return [CutJpeg(f("c.jpg"), putBackEoi: true), style];
            case "jpeg bomb header":
                return [JpegBomb(f("c.jpg")), style];
            case "jpeg truncated":
                return [CutJpeg(f("c.jpg"), putBackEoi: false), style];
            case "pth truncated":
                return [content, style, "--weights", BadFiles.Truncate(pth, f("w.pth"), 0.6)];
            case "pth bit flips":
                return [content, style, "--weights", BadFiles.FlipBits(pth, f("w.pth"), 100, 120, 140)]; // the pickle
            case "pth bit flips in data":
                return [content, style, "--weights", BadFiles.FlipBits(pth, f("w.pth"), 200_000)]; // a weight: the member's CRC-32
            case "legacy pth truncated":
                return [content, style, "--network", "resnet50", "--weights", BadFiles.Truncate(TestPaths.Fixture("resnet50_narrow_legacy.pth"), f("w.pth"), 0.5)];
            case "legacy pth bit flips":
                return [content, style, "--network", "resnet50", "--weights", BadFiles.FlipBits(TestPaths.Fixture("resnet50_narrow_legacy.pth"), f("w.pth"), 300, 301)]; // the pickle
            case "pth zip bomb":
                BadFiles.WriteSharedMemberZip(f("w.pth"), BadFiles.Pickle(Enumerable.Range(0, 3).Select(i => new BadFiles.PickledTensor($"features.{i}.weight", $"{i}", 4 << 20, [4 << 20], [1]))), 3, 16 << 20);
                return [content, style, "--weights", f("w.pth")];
            case "pth declared size mismatch":
                BadFiles.WritePth(f("w.pth"), BadFiles.Pickle([new BadFiles.PickledTensor("features.0.weight", "0", 16, [4, 4], [4, 1])]), [("0", new byte[1 << 20])], deflate: true);
                return [content, style, "--weights", f("w.pth")];
            case "pth 3 GB tensor":
                BadFiles.WritePth(f("w.pth"), BadFiles.Pickle([new BadFiles.PickledTensor("features.0.weight", "0", 1, [1 << 15, 1 << 15, 768], [0, 0, 0])]), [("0", new byte[4])]);
                return [content, style, "--weights", f("w.pth")];
            case "pth negative shape":
                BadFiles.WritePth(f("w.pth"), BadFiles.Pickle([new BadFiles.PickledTensor("features.0.weight", "0", 16, [-4, -4], [4, 1])]), [("0", new byte[64])]);
                return [content, style, "--weights", f("w.pth")];
            case "safetensors truncated":
                return [content, style, "--weights", BadFiles.Truncate(st, f("w.safetensors"), 0.6)];
            case "safetensors bit flips":
                return [content, style, "--weights", BadFiles.FlipBits(st, f("w.safetensors"), 8, 20, 40)]; // the JSON header
            case "safetensors header too long":
                return [content, style, "--weights", BadFiles.FlipBits(st, f("w.safetensors"), 5)]; // header length 2^44
            case "safetensors overlapping tensors":
                return [content, style, "--weights", Overlapping(f("w.safetensors"))];
            case "onnx truncated":
                return [content, style, "--network", "resnet18", "--weights", BadFiles.Truncate(BundledOnnx, f("w.onnx"), 0.5)];
            case "onnx bit flips":
                return [content, style, "--network", "resnet18", "--weights", BadFiles.FlipBits(BundledOnnx, f("w.onnx"), 0, 1, 2, 3)];
            default:
                return Checkpoint(name);
        }
    }

    private static string BundledOnnx => ResNet18.BundledCandidates(ResNet18.ModelFileName).First(File.Exists);

    private string[] Checkpoint(string name)
    {
        string ckpt = dir.File("run.ckpt");
        (int code, _, string stderr) = CliRun.WithDefaults([content, style, "-o", dir.File("run.png"), "--save-every", "1"], ("--network", "vgg19"), ("--weights", TestPaths.NarrowPth), ("--size", "32"), ("-n|--iterations", "2"), ("--threads", "2"));
        Assert.True(code == 0, stderr);
        string bad = dir.File("bad.ckpt");
        switch (name)
        {
            case "checkpoint truncated":
                BadFiles.Truncate(ckpt, bad, 0.7);
                break;
            case "checkpoint bit flips in data":
                BadFiles.FlipBits(ckpt, bad, -100, -2000);
                break;
            default:
                CheckpointFiles.Edit(ckpt, bad, name switch
                {
                    "checkpoint negative shape" => h => h["image"]!["shape"] = Shape(h, (hh, w) => (-hh, -w)), // the same element count
                    "checkpoint overflowing shape" => h => h["image"]!["shape"] = OverflowingShape(h), // its product wraps to the true element count
                    "checkpoint null options" => null,
                    "checkpoint null lbfgs field" => null,
                    _ => throw new ArgumentException(name),
                }, name switch
                {
                    "checkpoint null options" => m => m["options"]!["ContentLayers"] = null,
                    "checkpoint null lbfgs field" => m => m["lbfgs"]!["rho"] = null,
                    _ => null,
                });
                break;
        }

        return [content, style, "--resume", bad];
    }

    private static System.Text.Json.Nodes.JsonArray Shape(System.Text.Json.Nodes.JsonObject header, Func<long, long, (long H, long W)> change)
    {
        System.Text.Json.Nodes.JsonArray shape = header["image"]!["shape"]!.AsArray();
        (long h, long w) = change((long)shape[2]!, (long)shape[3]!);
        return new System.Text.Json.Nodes.JsonArray(1, 3, h, w);
    }

    /// <summary>[7, 7⁻¹ mod 2⁶⁴, 3·H, W]: every dimension positive, the product (mod 2⁶⁴) 3·H·W.</summary>
    private static System.Text.Json.Nodes.JsonArray OverflowingShape(System.Text.Json.Nodes.JsonObject header)
    {
        System.Text.Json.Nodes.JsonArray shape = header["image"]!["shape"]!.AsArray();
        return new System.Text.Json.Nodes.JsonArray(7, 0x6DB6DB6DB6DB6DB7, 3 * (long)shape[2]!, (long)shape[3]!);
    }

    /// <summary>A whole small JPEG whose frame header is changed to declare 16000×16000 pixels.</summary>
    private string JpegBomb(string path)
    {
        using (var img = TestImages.Scene(64, 48))
        {
            img.Save(path, new JpegEncoder { Quality = 90 });
        }

        byte[] d = File.ReadAllBytes(path);
        int sof = d.AsSpan().IndexOf(new byte[] { 0xFF, 0xC0 });
        d[sof + 5] = d[sof + 7] = 16000 >> 8;
        d[sof + 6] = d[sof + 8] = 16000 & 0xFF;
        File.WriteAllBytes(path, d);
        return path;
    }

    /// <summary>A JPEG cut in the middle of its entropy-coded data, with its end marker put back or not.</summary>
    private string CutJpeg(string path, bool putBackEoi)
    {
        using (var img = TestImages.Scene(200, 150))
        {
            img.Save(path, new JpegEncoder { Quality = 90 });
        }

        byte[] d = File.ReadAllBytes(path);
        int sos = d.AsSpan().IndexOf(new byte[] { 0xFF, 0xDA });
        byte[] cut = d[..(sos + ((d.Length - sos) / 2))];
        File.WriteAllBytes(path, putBackEoi ? [.. cut, 0xFF, 0xD9] : cut);
        return path;
    }

    /// <summary>The narrow safetensors with its second tensor's data_offsets pointing at the first's.</summary>
    private static string Overlapping(string path)
    {
        byte[] d = File.ReadAllBytes(TestPaths.NarrowSafetensors);
        long n = BitConverter.ToInt64(d, 0);
        var header = System.Text.Json.Nodes.JsonNode.Parse(d.AsSpan(8, (int)n))!.AsObject();
        var named = header.Where(p => p.Key != "__metadata__").OrderBy(p => (long)p.Value!["data_offsets"]![0]!).Take(2).ToList();
        header[named[1].Key]!["data_offsets"] = named[0].Value!["data_offsets"]!.DeepClone();
        header[named[1].Key]!["shape"] = named[0].Value!["shape"]!.DeepClone();
        byte[] json = System.Text.Encoding.UTF8.GetBytes(header.ToJsonString().PadRight((int)n));
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((long)json.Length), .. json, .. d.AsSpan(8 + (int)n).ToArray()]);
        return path;
    }
}

/// <summary>Edits a stylize checkpoint's safetensors header and its metadata JSON (keeping the checksum valid: the damage is structural).</summary>
internal static class CheckpointFiles
{
    public static void Edit(string source, string path, Action<System.Text.Json.Nodes.JsonObject>? header, Action<System.Text.Json.Nodes.JsonObject>? metadata)
    {
        byte[] d = File.ReadAllBytes(source);
        long n = BitConverter.ToInt64(d, 0);
        var h = System.Text.Json.Nodes.JsonNode.Parse(d.AsSpan(8, (int)n))!.AsObject();
        byte[] data = d[(8 + (int)n)..];
        if (metadata != null)
        {
            var m = System.Text.Json.Nodes.JsonNode.Parse((string)h["__metadata__"]!["stylize_checkpoint"]!)!.AsObject();
            metadata(m);
            string text = m.ToJsonString();
            h["__metadata__"]!["stylize_checkpoint"] = text;
            using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(text));
            sha.AppendData(data);
            h["__metadata__"]!["stylize_sha256"] = Convert.ToHexStringLower(sha.GetHashAndReset());
        }

        header?.Invoke(h);
        byte[] json = System.Text.Encoding.UTF8.GetBytes(h.ToJsonString());
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((long)json.Length), .. json, .. data]);
    }
}
