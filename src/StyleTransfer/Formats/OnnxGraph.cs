using System.Runtime.InteropServices;
using System.Text;
using Google.Protobuf;
using StyleTransfer.Formats.Onnx;

namespace StyleTransfer.Formats;

/// <summary>
/// The parts of an ONNX model (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
/// ValueInfoProto) that a feed-forward image network needs, parsed by Google.Protobuf into the classes
/// generated from onnx_subset.proto (unknown fields are skipped) and copied into these views. Bounds:
/// a file over <see cref="MaxFileBytes"/> is refused before it is read; the parser reads no further
/// than the file's length and nests messages (and unknown groups) at most <see cref="RecursionLimit"/>
/// deep; after parsing, every stored tensor's data is checked against its shape. Anything malformed
/// throws <see cref="InvalidDataException"/> (<see cref="Load"/> turns that into a one-line error naming the file).
/// </summary>
internal sealed class OnnxModel
{
    /// <summary>The largest file read: protobuf messages stop at 2 GiB, and larger models keep their weights in external files.</summary>
    public const long MaxFileBytes = 1L << 30;

    /// <summary>How deep messages may nest (ONNX needs 7: model, graph, value info, type, tensor type, shape, dimension).</summary>
    public const int RecursionLimit = 32;

    private OnnxModel(long irVersion, string producer, IReadOnlyDictionary<string, long> opsets, OnnxGraph graph)
    {
        IrVersion = irVersion;
        Producer = producer;
        Opsets = opsets;
        Graph = graph;
    }

    public long IrVersion { get; }

    /// <summary>producer_name and producer_version, e.g. "CNTK 2.7".</summary>
    public string Producer { get; }

    /// <summary>Operator set version by domain ("" is the default ai.onnx domain).</summary>
    public IReadOnlyDictionary<string, long> Opsets { get; }

    public OnnxGraph Graph { get; }

    /// <summary>Reads an .onnx file; every failure is a <see cref="StyleTransferException"/> that names it.</summary>
    public static OnnxModel Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new StyleTransferException($"ONNX model '{path}' does not exist");
        }

        try
        {
            using FileStream file = File.OpenRead(path);
            if (file.Length > MaxFileBytes)
            {
                throw new StyleTransferException($"ONNX model '{path}' is {file.Length} bytes, more than the {MaxFileBytes} that stylize reads (models this large keep their weights in external files, which are not supported)");
            }

            return Parse(file, file.Length);
        }
        catch (Exception e) when (e is InvalidDataException or InvalidProtocolBufferException or DecoderFallbackException)
        {
            throw new StyleTransferException($"ONNX model '{path}' could not be parsed ({Reason(e)}); is it a complete .onnx file?", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StyleTransferException($"ONNX model '{path}' could not be read ({e.Message})", e);
        }
    }

    /// <summary>Parses the bytes of a ModelProto.</summary>
    public static OnnxModel Parse(byte[] bytes) => Parse(new MemoryStream(bytes, writable: false), bytes.Length);

    /// <summary>Parses a ModelProto of <paramref name="length"/> bytes, reading no further, and checks every stored tensor's data against its shape.</summary>
    private static OnnxModel Parse(Stream input, long length)
    {
        using var coded = CodedInputStream.CreateWithLimits(input, (int)Math.Min(length, int.MaxValue), RecursionLimit);
        ModelProto proto = ModelProto.Parser.WithDiscardUnknownFields(true).ParseFrom(coded);
        if (proto.Graph == null)
        {
            throw new InvalidDataException(proto.IrVersion == 0 ? "no ONNX ModelProto found" : "the model has no graph");
        }

        var opsets = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (OperatorSetIdProto opset in proto.OpsetImport)
        {
            opsets[opset.Domain == "ai.onnx" ? "" : opset.Domain] = opset.Version;
        }

        var graph = new OnnxGraph(proto.Graph);
        foreach (OnnxTensor t in graph.Initializers.Values.Concat(graph.Nodes.SelectMany(n => n.Attributes.Values).Select(a => a.T).OfType<OnnxTensor>()))
        {
            t.CheckSize();
        }

        return new OnnxModel(proto.IrVersion, $"{proto.ProducerName} {proto.ProducerVersion}".Trim(), opsets, graph);
    }

    /// <summary>The exception's message on one line; of Google.Protobuf's, the first sentence (the rest is advice to programmers).</summary>
    private static string Reason(Exception e)
    {
        string message = string.Join(" ", e.Message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries));
        return e is InvalidProtocolBufferException ? message.Split(".  ")[0].TrimEnd('.') : message;
    }
}

/// <summary>A GraphProto: nodes in topological order, initializers, inputs and outputs.</summary>
internal sealed class OnnxGraph
{
    internal OnnxGraph(GraphProto g)
    {
        Name = g.Name;
        Nodes = [.. g.Node.Select(n => new OnnxNode(n))];
        foreach (TensorProto t in g.Initializer)
        {
            Initializers[t.Name] = new OnnxTensor(t);
        }

        Inputs = [.. g.Input.Select(v => new OnnxValueInfo(v))];
        Outputs = [.. g.Output.Select(v => new OnnxValueInfo(v))];
    }

    public string Name { get; }

    public List<OnnxNode> Nodes { get; }

    public Dictionary<string, OnnxTensor> Initializers { get; } = new(StringComparer.Ordinal);

    /// <summary>Declared inputs; in older IR versions these include the initializers.</summary>
    public List<OnnxValueInfo> Inputs { get; }

    public List<OnnxValueInfo> Outputs { get; }

    /// <summary>Inputs that are not initializers: what a caller must feed.</summary>
    public IEnumerable<OnnxValueInfo> DataInputs => Inputs.Where(i => !Initializers.ContainsKey(i.Name));
}

/// <summary>A NodeProto: one operator application.</summary>
internal sealed class OnnxNode
{
    internal OnnxNode(NodeProto n)
    {
        Name = n.Name;
        OpType = n.OpType;
        Domain = n.Domain;
        Inputs = [.. n.Input];
        Outputs = [.. n.Output];
        foreach (AttributeProto a in n.Attribute)
        {
            Attributes[a.Name] = new OnnxAttribute(a);
        }
    }

    public string Name { get; }

    public string OpType { get; }

    public string Domain { get; }

    /// <summary>Input value names; an empty name marks an omitted optional input.</summary>
    public List<string> Inputs { get; }

    public List<string> Outputs { get; }

    public Dictionary<string, OnnxAttribute> Attributes { get; } = new(StringComparer.Ordinal);

    /// <summary>An integer attribute, or <paramref name="fallback"/> when absent.</summary>
    public long Int(string name, long fallback) => Attributes.TryGetValue(name, out OnnxAttribute? a) ? a.I : fallback;

    /// <summary>A float attribute, or <paramref name="fallback"/> when absent.</summary>
    public float Float(string name, float fallback) => Attributes.TryGetValue(name, out OnnxAttribute? a) ? a.F : fallback;

    /// <summary>A string attribute, or <paramref name="fallback"/> when absent.</summary>
    public string String(string name, string fallback) => Attributes.TryGetValue(name, out OnnxAttribute? a) ? a.S : fallback;

    /// <summary>An integer-list attribute, or null when absent.</summary>
    public long[]? Ints(string name) => Attributes.TryGetValue(name, out OnnxAttribute? a) ? [.. a.Ints] : null;

    public override string ToString() =>
        $"{OpType} '{Name}' ({string.Join(", ", Inputs)}) -> ({string.Join(", ", Outputs)})";
}

/// <summary>An AttributeProto; only the scalar, string, tensor and number-list kinds are kept.</summary>
internal sealed class OnnxAttribute
{
    internal OnnxAttribute(AttributeProto a)
    {
        Name = a.Name;
        F = a.F;
        I = a.I;
        S = a.S.ToStringUtf8();
        T = a.T == null ? null : new OnnxTensor(a.T);
        Floats = [.. a.Floats];
        Ints = [.. a.Ints];
    }

    public string Name { get; }

    public float F { get; }

    public long I { get; }

    public string S { get; }

    public OnnxTensor? T { get; }

    public List<float> Floats { get; }

    public List<long> Ints { get; }
}

/// <summary>A TensorProto with its data, stored inline (raw_data or the typed repeated fields).</summary>
internal sealed class OnnxTensor
{
    /// <summary>TensorProto.DataType values this reader converts to float.</summary>
    public const int Float = 1, Int32 = 6, Int64 = 7, Double = 11;

    private readonly TensorProto proto;

    internal OnnxTensor(TensorProto t)
    {
        proto = t;
        Dims = [.. t.Dims];
    }

    public string Name => proto.Name;

    public int DataType => proto.DataType;

    public List<long> Dims { get; }

    public long ElementCount => Dims.Aggregate(1L, (a, d) => d < 0 || (d > 0 && a > long.MaxValue / d)
        ? throw new InvalidDataException($"tensor '{Name}' has shape [{string.Join(",", Dims)}]")
        : a * d);

    private bool External => proto.ExternalData.Count > 0 || proto.DataLocation == 1;

    /// <summary>The elements as float32, row-major; checks that their count matches <see cref="Dims"/>.</summary>
    public float[] ToFloats()
    {
        if (External)
        {
            throw new InvalidDataException($"tensor '{Name}' keeps its data in an external file, which is not supported");
        }

        float[] result;
        if (!proto.RawData.IsEmpty)
        {
            if (!BitConverter.IsLittleEndian)
            {
                throw new InvalidDataException("raw tensor data is little-endian; this machine is not");
            }

            ReadOnlySpan<byte> raw = proto.RawData.Span;
            result = DataType switch
            {
                Float => MemoryMarshal.Cast<byte, float>(raw).ToArray(),
                Double => MemoryMarshal.Cast<byte, double>(raw).ToArray().Select(v => (float)v).ToArray(),
                Int64 => MemoryMarshal.Cast<byte, long>(raw).ToArray().Select(v => (float)v).ToArray(),
                Int32 => MemoryMarshal.Cast<byte, int>(raw).ToArray().Select(v => (float)v).ToArray(),
                _ => throw Unsupported(),
            };
        }
        else
        {
            result = DataType switch
            {
                Float => [.. proto.FloatData],
                Double => proto.DoubleData.Select(v => (float)v).ToArray(),
                Int64 => proto.Int64Data.Select(v => (float)v).ToArray(),
                Int32 => proto.Int32Data.Select(v => (float)v).ToArray(),
                _ => throw Unsupported(),
            };
        }

        if (result.LongLength != ElementCount)
        {
            throw new InvalidDataException($"tensor '{Name}' has {result.LongLength} elements, but its shape [{string.Join(",", Dims)}] needs {ElementCount}");
        }

        return result;
    }

    /// <summary>
    /// Checks, without converting, that the shape is valid and that data of a type this reader
    /// converts is exactly what the shape needs (external data and other types are refused when read).
    /// </summary>
    internal void CheckSize()
    {
        long count = ElementCount;
        int size = DataType switch { Float or Int32 => 4, Int64 or Double => 8, _ => 0 };
        if (External || size == 0)
        {
            return;
        }

        if (!proto.RawData.IsEmpty)
        {
            if (proto.RawData.Length % size != 0 || proto.RawData.Length / size != count)
            {
                throw new InvalidDataException($"tensor '{Name}' has {proto.RawData.Length} bytes of data, but its shape [{string.Join(",", Dims)}] needs {count} elements of {size} bytes");
            }

            return;
        }

        long have = DataType switch
        {
            Float => proto.FloatData.Count,
            Int32 => proto.Int32Data.Count,
            Int64 => proto.Int64Data.Count,
            _ => proto.DoubleData.Count,
        };
        if (have != count)
        {
            throw new InvalidDataException($"tensor '{Name}' has {have} elements, but its shape [{string.Join(",", Dims)}] needs {count}");
        }
    }

    private InvalidDataException Unsupported() => new($"tensor '{Name}' has data type {DataType}, which is not supported");
}

/// <summary>A ValueInfoProto: a name with, when given, an element type and a shape (null dims are symbolic).</summary>
internal sealed class OnnxValueInfo
{
    internal OnnxValueInfo(ValueInfoProto v)
    {
        Name = v.Name;
        ElemType = v.Type?.TensorType?.ElemType ?? 0;
        Shape = v.Type?.TensorType?.Shape is { } shape
            ? [.. shape.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : (long?)null)]
            : null;
    }

    public string Name { get; }

    public int ElemType { get; }

    /// <summary>Null when the shape is not given.</summary>
    public List<long?>? Shape { get; }

    public override string ToString() =>
        Shape == null ? Name : $"{Name} [{string.Join(",", Shape.Select(d => d?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"))}]";
}
