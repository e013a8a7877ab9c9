using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace StyleTransfer.Formats;

/// <summary>
/// The parts of an ONNX model (onnx.proto3: ModelProto, GraphProto, NodeProto, AttributeProto,
/// TensorProto, ValueInfoProto) that a feed-forward image network needs, read by a small protobuf
/// decoder of our own. Unknown fields are skipped, as protobuf requires; anything malformed throws
/// <see cref="InvalidDataException"/> (<see cref="Load"/> turns that into a one-line error naming the file).
/// </summary>
internal sealed class OnnxModel
{
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

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StyleTransferException($"ONNX model '{path}' could not be read ({e.Message})", e);
        }

        try
        {
            return Parse(bytes);
        }
        catch (InvalidDataException e)
        {
            throw new StyleTransferException($"ONNX model '{path}' could not be parsed ({e.Message}); is it a complete .onnx file?", e);
        }
    }

    /// <summary>Parses the bytes of a ModelProto.</summary>
    public static OnnxModel Parse(byte[] bytes)
    {
        var r = new ProtoReader(bytes, 0, bytes.Length);
        long ir = 0;
        string producerName = "", producerVersion = "";
        var opsets = new Dictionary<string, long>(StringComparer.Ordinal);
        OnnxGraph? graph = null;
        while (r.Next(out int field, out WireType wire))
        {
            switch (field)
            {
                case 1 when wire == WireType.Varint:
                    ir = (long)r.ReadVarint();
                    break;
                case 2 when wire == WireType.Len:
                    producerName = r.ReadString();
                    break;
                case 3 when wire == WireType.Len:
                    producerVersion = r.ReadString();
                    break;
                case 7 when wire == WireType.Len:
                    // A repeated occurrence of an embedded message merges into the first one.
                    graph = OnnxGraph.Parse(r.ReadMessage(), graph);
                    break;
                case 8 when wire == WireType.Len:
                    (string domain, long version) = ReadOpset(r.ReadMessage());
                    opsets[domain] = version;
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        if (graph == null)
        {
            throw new InvalidDataException(ir == 0 ? "no ONNX ModelProto found" : "the model has no graph");
        }

        return new OnnxModel(ir, $"{producerName} {producerVersion}".Trim(), opsets, graph);
    }

    private static (string Domain, long Version) ReadOpset(ProtoReader r)
    {
        string domain = "";
        long version = 0;
        while (r.Next(out int field, out WireType wire))
        {
            switch (field)
            {
                case 1 when wire == WireType.Len:
                    domain = r.ReadString();
                    break;
                case 2 when wire == WireType.Varint:
                    version = (long)r.ReadVarint();
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        return (domain == "ai.onnx" ? "" : domain, version);
    }
}

/// <summary>A GraphProto: nodes in topological order, initializers, inputs and outputs.</summary>
internal sealed class OnnxGraph
{
    private OnnxGraph()
    {
    }

    public string Name { get; private set; } = "";

    public List<OnnxNode> Nodes { get; } = [];

    public Dictionary<string, OnnxTensor> Initializers { get; } = new(StringComparer.Ordinal);

    /// <summary>Declared inputs; in older IR versions these include the initializers.</summary>
    public List<OnnxValueInfo> Inputs { get; } = [];

    public List<OnnxValueInfo> Outputs { get; } = [];

    /// <summary>Inputs that are not initializers: what a caller must feed.</summary>
    public IEnumerable<OnnxValueInfo> DataInputs => Inputs.Where(i => !Initializers.ContainsKey(i.Name));

    internal static OnnxGraph Parse(ProtoReader r, OnnxGraph? into)
    {
        OnnxGraph g = into ?? new OnnxGraph();
        while (r.Next(out int field, out WireType wire))
        {
            switch (field)
            {
                case 1 when wire == WireType.Len:
                    g.Nodes.Add(OnnxNode.Parse(r.ReadMessage()));
                    break;
                case 2 when wire == WireType.Len:
                    g.Name = r.ReadString();
                    break;
                case 5 when wire == WireType.Len:
                    OnnxTensor t = OnnxTensor.Parse(r.ReadMessage());
                    g.Initializers[t.Name] = t;
                    break;
                case 11 when wire == WireType.Len:
                    g.Inputs.Add(OnnxValueInfo.Parse(r.ReadMessage()));
                    break;
                case 12 when wire == WireType.Len:
                    g.Outputs.Add(OnnxValueInfo.Parse(r.ReadMessage()));
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        return g;
    }
}

/// <summary>A NodeProto: one operator application.</summary>
internal sealed class OnnxNode
{
    private OnnxNode()
    {
    }

    public string Name { get; private set; } = "";

    public string OpType { get; private set; } = "";

    public string Domain { get; private set; } = "";

    /// <summary>Input value names; an empty name marks an omitted optional input.</summary>
    public List<string> Inputs { get; } = [];

    public List<string> Outputs { get; } = [];

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

    internal static OnnxNode Parse(ProtoReader r)
    {
        var n = new OnnxNode();
        while (r.Next(out int field, out WireType wire))
        {
            switch (field)
            {
                case 1 when wire == WireType.Len:
                    n.Inputs.Add(r.ReadString());
                    break;
                case 2 when wire == WireType.Len:
                    n.Outputs.Add(r.ReadString());
                    break;
                case 3 when wire == WireType.Len:
                    n.Name = r.ReadString();
                    break;
                case 4 when wire == WireType.Len:
                    n.OpType = r.ReadString();
                    break;
                case 5 when wire == WireType.Len:
                    OnnxAttribute a = OnnxAttribute.Parse(r.ReadMessage());
                    n.Attributes[a.Name] = a;
                    break;
                case 7 when wire == WireType.Len:
                    n.Domain = r.ReadString();
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        return n;
    }
}

/// <summary>An AttributeProto; only the scalar, string, tensor and number-list kinds are kept.</summary>
internal sealed class OnnxAttribute
{
    private OnnxAttribute()
    {
    }

    public string Name { get; private set; } = "";

    public float F { get; private set; }

    public long I { get; private set; }

    public string S { get; private set; } = "";

    public OnnxTensor? T { get; private set; }

    public List<float> Floats { get; } = [];

    public List<long> Ints { get; } = [];

    internal static OnnxAttribute Parse(ProtoReader r)
    {
        var a = new OnnxAttribute();
        while (r.Next(out int field, out WireType wire))
        {
            switch (field)
            {
                case 1 when wire == WireType.Len:
                    a.Name = r.ReadString();
                    break;
                case 2 when wire == WireType.Fixed32:
                    a.F = r.ReadFloat();
                    break;
                case 3 when wire == WireType.Varint:
                    a.I = (long)r.ReadVarint();
                    break;
                case 4 when wire == WireType.Len:
                    a.S = r.ReadString();
                    break;
                case 5 when wire == WireType.Len:
                    a.T = OnnxTensor.Parse(r.ReadMessage());
                    break;
                case 7:
                    r.ReadFloats(wire, a.Floats);
                    break;
                case 8:
                    r.ReadInt64s(wire, a.Ints);
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        return a;
    }
}

/// <summary>A TensorProto with its data, stored inline (raw_data or the typed repeated fields).</summary>
internal sealed class OnnxTensor
{
    /// <summary>TensorProto.DataType values this reader converts to float.</summary>
    public const int Float = 1, Int32 = 6, Int64 = 7, Double = 11;

    private readonly List<float> floatData = [];
    private readonly List<double> doubleData = [];
    private readonly List<long> intData = [];
    private byte[]? raw;
    private bool external;

    private OnnxTensor()
    {
    }

    public string Name { get; private set; } = "";

    public int DataType { get; private set; }

    public List<long> Dims { get; } = [];

    public long ElementCount => Dims.Aggregate(1L, (a, d) => d < 0 || (d > 0 && a > long.MaxValue / d)
        ? throw new InvalidDataException($"tensor '{Name}' has shape [{string.Join(",", Dims)}]")
        : a * d);

    /// <summary>The elements as float32, row-major; checks that their count matches <see cref="Dims"/>.</summary>
    public float[] ToFloats()
    {
        if (external)
        {
            throw new InvalidDataException($"tensor '{Name}' keeps its data in an external file, which is not supported");
        }

        float[] result;
        if (raw != null)
        {
            if (!BitConverter.IsLittleEndian)
            {
                throw new InvalidDataException("raw tensor data is little-endian; this machine is not");
            }

            result = DataType switch
            {
                Float => MemoryMarshal.Cast<byte, float>(raw).ToArray(),
                Double => MemoryMarshal.Cast<byte, double>(raw).ToArray().Select(v => (float)v).ToArray(),
                Int64 => MemoryMarshal.Cast<byte, long>(raw).ToArray().Select(v => (float)v).ToArray(),
                Int32 => MemoryMarshal.Cast<byte, int>(raw).ToArray().Select(v => (float)v).ToArray(),
                _ => throw new InvalidDataException($"tensor '{Name}' has data type {DataType}, which is not supported"),
            };
        }
        else
        {
            result = DataType switch
            {
                Float => [.. floatData],
                Double => doubleData.Select(v => (float)v).ToArray(),
                Int64 or Int32 => intData.Select(v => (float)v).ToArray(),
                _ => throw new InvalidDataException($"tensor '{Name}' has data type {DataType}, which is not supported"),
            };
        }

        if (result.LongLength != ElementCount)
        {
            throw new InvalidDataException($"tensor '{Name}' has {result.LongLength} elements, but its shape [{string.Join(",", Dims)}] needs {ElementCount}");
        }

        return result;
    }

    internal static OnnxTensor Parse(ProtoReader r)
    {
        var t = new OnnxTensor();
        while (r.Next(out int field, out WireType wire))
        {
            switch (field)
            {
                case 1:
                    r.ReadInt64s(wire, t.Dims);
                    break;
                case 2 when wire == WireType.Varint:
                    t.DataType = (int)r.ReadVarint();
                    break;
                case 4:
                    r.ReadFloats(wire, t.floatData);
                    break;
                case 5 or 7:
                    // int32_data (also holds small integer types) and int64_data.
                    r.ReadInt64s(wire, t.intData);
                    break;
                case 8 when wire == WireType.Len:
                    t.Name = r.ReadString();
                    break;
                case 9 when wire == WireType.Len:
                    t.raw = r.ReadBytes();
                    break;
                case 10:
                    r.ReadDoubles(wire, t.doubleData);
                    break;
                case 13:
                    t.external = true;
                    r.Skip(wire);
                    break;
                case 14 when wire == WireType.Varint:
                    t.external |= r.ReadVarint() == 1;
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        return t;
    }
}

/// <summary>A ValueInfoProto: a name with, when given, an element type and a shape (null dims are symbolic).</summary>
internal sealed class OnnxValueInfo
{
    private OnnxValueInfo()
    {
    }

    public string Name { get; private set; } = "";

    public int ElemType { get; private set; }

    /// <summary>Null when the shape is not given.</summary>
    public List<long?>? Shape { get; private set; }

    public override string ToString() =>
        Shape == null ? Name : $"{Name} [{string.Join(",", Shape.Select(d => d?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"))}]";

    internal static OnnxValueInfo Parse(ProtoReader r)
    {
        var v = new OnnxValueInfo();
        while (r.Next(out int field, out WireType wire))
        {
            switch (field)
            {
                case 1 when wire == WireType.Len:
                    v.Name = r.ReadString();
                    break;
                case 2 when wire == WireType.Len:
                    v.ReadType(r.ReadMessage());
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        return v;
    }

    private void ReadType(ProtoReader r)
    {
        while (r.Next(out int field, out WireType wire))
        {
            if (field == 1 && wire == WireType.Len)
            {
                // TypeProto.tensor_type: elem_type = 1, shape = 2.
                ProtoReader tensor = r.ReadMessage();
                while (tensor.Next(out int tf, out WireType tw))
                {
                    if (tf == 1 && tw == WireType.Varint)
                    {
                        ElemType = (int)tensor.ReadVarint();
                    }
                    else if (tf == 2 && tw == WireType.Len)
                    {
                        Shape = ReadShape(tensor.ReadMessage());
                    }
                    else
                    {
                        tensor.Skip(tw);
                    }
                }
            }
            else
            {
                r.Skip(wire);
            }
        }
    }

    private static List<long?> ReadShape(ProtoReader r)
    {
        var dims = new List<long?>();
        while (r.Next(out int field, out WireType wire))
        {
            if (field == 1 && wire == WireType.Len)
            {
                ProtoReader dim = r.ReadMessage();
                long? value = null;
                while (dim.Next(out int df, out WireType dw))
                {
                    if (df == 1 && dw == WireType.Varint)
                    {
                        value = (long)dim.ReadVarint();
                    }
                    else
                    {
                        dim.Skip(dw);
                    }
                }

                dims.Add(value);
            }
            else
            {
                r.Skip(wire);
            }
        }

        return dims;
    }
}

/// <summary>Protobuf wire types.</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    Len = 2,
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
}

/// <summary>A bounds-checked protobuf reader over a slice of a byte array.</summary>
internal sealed class ProtoReader
{
    private readonly byte[] buffer;
    private readonly int end;
    private int pos;

    public ProtoReader(byte[] buffer, int start, int end)
    {
        this.buffer = buffer;
        pos = start;
        this.end = end;
    }

    /// <summary>Reads the next field's key; false at the end of the message.</summary>
    public bool Next(out int field, out WireType wire)
    {
        if (pos >= end)
        {
            field = 0;
            wire = 0;
            return false;
        }

        ulong key = ReadVarint();
        field = (int)(key >> 3);
        wire = (WireType)(key & 7);
        if (field <= 0 || key >> 3 > int.MaxValue)
        {
            throw new InvalidDataException($"bad protobuf field number at byte {pos}");
        }

        return true;
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= end)
            {
                throw Truncated();
            }

            byte b = buffer[pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new InvalidDataException($"bad protobuf varint at byte {pos}");
    }

    public float ReadFloat() => BinaryPrimitives.ReadSingleLittleEndian(Take(4));

    public double ReadDouble() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8));

    public string ReadString() => Encoding.UTF8.GetString(TakeLengthDelimited());

    public byte[] ReadBytes() => TakeLengthDelimited().ToArray();

    /// <summary>A reader over the embedded message that follows.</summary>
    public ProtoReader ReadMessage()
    {
        int length = ReadLength();
        var sub = new ProtoReader(buffer, pos, pos + length);
        pos += length;
        return sub;
    }

    /// <summary>A repeated int64/int32 field, packed or not.</summary>
    public void ReadInt64s(WireType wire, List<long> into)
    {
        if (wire == WireType.Varint)
        {
            into.Add((long)ReadVarint());
        }
        else if (wire == WireType.Len)
        {
            ProtoReader packed = ReadMessage();
            while (packed.pos < packed.end)
            {
                into.Add((long)packed.ReadVarint());
            }
        }
        else
        {
            throw new InvalidDataException($"bad wire type {wire} for an integer field");
        }
    }

    /// <summary>A repeated float field, packed or not.</summary>
    public void ReadFloats(WireType wire, List<float> into)
    {
        if (wire == WireType.Fixed32)
        {
            into.Add(ReadFloat());
        }
        else if (wire == WireType.Len)
        {
            ReadOnlySpan<byte> data = TakeLengthDelimited();
            if (data.Length % 4 != 0)
            {
                throw new InvalidDataException("packed float field has a length that is not a multiple of 4");
            }

            for (int i = 0; i < data.Length; i += 4)
            {
                into.Add(BinaryPrimitives.ReadSingleLittleEndian(data[i..]));
            }
        }
        else
        {
            throw new InvalidDataException($"bad wire type {wire} for a float field");
        }
    }

    /// <summary>A repeated double field, packed or not.</summary>
    public void ReadDoubles(WireType wire, List<double> into)
    {
        if (wire == WireType.Fixed64)
        {
            into.Add(ReadDouble());
        }
        else if (wire == WireType.Len)
        {
            ReadOnlySpan<byte> data = TakeLengthDelimited();
            if (data.Length % 8 != 0)
            {
                throw new InvalidDataException("packed double field has a length that is not a multiple of 8");
            }

            for (int i = 0; i < data.Length; i += 8)
            {
                into.Add(BinaryPrimitives.ReadDoubleLittleEndian(data[i..]));
            }
        }
        else
        {
            throw new InvalidDataException($"bad wire type {wire} for a double field");
        }
    }

    /// <summary>Skips the value of a field of an unknown number.</summary>
    public void Skip(WireType wire)
    {
        switch (wire)
        {
            case WireType.Varint:
                ReadVarint();
                break;
            case WireType.Fixed64:
                Take(8);
                break;
            case WireType.Len:
                TakeLengthDelimited();
                break;
            case WireType.Fixed32:
                Take(4);
                break;
            default:
                throw new InvalidDataException($"unsupported protobuf wire type {(int)wire} at byte {pos}");
        }
    }

    private int ReadLength()
    {
        ulong length = ReadVarint();
        if (length > (ulong)(end - pos))
        {
            throw Truncated();
        }

        return (int)length;
    }

    private ReadOnlySpan<byte> TakeLengthDelimited() => Take(ReadLength());

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > end - pos)
        {
            throw Truncated();
        }

        var span = new ReadOnlySpan<byte>(buffer, pos, count);
        pos += count;
        return span;
    }

    private InvalidDataException Truncated() =>
        new($"protobuf data ends early at byte {pos} (a field runs past the end of its message)");
}
