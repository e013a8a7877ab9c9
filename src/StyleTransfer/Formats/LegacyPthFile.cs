using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Formats;

/// <summary>
/// Reads state dicts that <c>torch.save</c> wrote before PyTorch 1.6 made the zip format the
/// default (the legacy format, which TorchSharp.PyBridge refuses): five pickles in a row (the magic
/// number, the protocol version, system information, the object itself with its storages as
/// persistent ids, the sorted storage keys), then each storage's element count (int64) and raw bytes
/// in key order. torchvision's older published files use it, e.g. <c>googlenet-1378be20.pth</c> (2019).
/// The pickle reader covers what state dicts contain: dicts and OrderedDicts of tensors, strings,
/// numbers, tuples and lists; any other object is refused.
/// </summary>
internal static class LegacyPthFile
{
    /// <summary>Pickle protocol 2 header, then LONG1 with the 10-byte magic number 0x1950a86a20f9469cfc6c.</summary>
    private static readonly byte[] Signature = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

    /// <summary>Whether the file starts like a legacy <c>torch.save</c> file.</summary>
    public static bool Matches(string path)
    {
        using FileStream f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[Signature.Length];
        return f.Read(head) == head.Length && head.SequenceEqual(Signature);
    }

    /// <summary>Every tensor of the state dict (unwrapping a lone "state_dict" or "model" entry), keyed by name.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        var storages = new Dictionary<string, PickledStorage>(StringComparer.Ordinal);
        var pickle = new TorchPickle(reader, storages);
        pickle.Load(); // magic number
        object? version = pickle.Load();
        if (version is not BigInteger v || v != 1001)
        {
            throw new InvalidDataException($"legacy format protocol version {version} is not 1001");
        }

        pickle.Load(); // system information
        object? root = pickle.Load();
        if (pickle.Load() is not List<object?> keys)
        {
            throw new InvalidDataException("legacy format: no storage key list after the object");
        }

        List<(string Name, PickledTensor Tensor)> tensors = TorchPickle.StateDict(root);
        TorchPickle.CheckSizes(tensors);
        foreach (object? key in keys)
        {
            if (key is not string k || !storages.TryGetValue(k, out PickledStorage? s))
            {
                throw new InvalidDataException($"legacy format: storage '{key}' is listed but not used");
            }

            // The storages follow one another in the file: each is read once, and never past its end.
            long count = reader.ReadInt64();
            if (count != s.Count || count < 0 || count > (reader.BaseStream.Length - reader.BaseStream.Position) / s.ElementSize)
            {
                throw new InvalidDataException($"legacy format: storage '{k}' holds {count} elements where {s.Count} were announced, or the file is truncated");
            }

            s.Data = reader.ReadBytes(checked((int)(count * s.ElementSize)));
        }

        return TorchPickle.Materialize(tensors);
    }
}

/// <summary>A storage named by a torch pickle's persistent id: its element type, size, and (once read) bytes.</summary>
internal sealed class PickledStorage(ScalarType type, int elementSize, long count)
{
    public ScalarType Type => type;

    public int ElementSize => elementSize;

    public long Count => count;

    public byte[]? Data { get; set; }
}

/// <summary>A tensor of a torch pickle: a view (offset, size, stride) of a storage, not yet materialised.</summary>
internal sealed record PickledTensor(PickledStorage Storage, long Offset, long[] Size, long[] Stride)
{
    /// <summary>Elements of the tensor (checked: shapes come from the file).</summary>
    public long Numel => Size.Aggregate(1L, (a, n) => checked(a * n));

    /// <summary>Checks that the view lies inside its storage, with arithmetic that cannot overflow.</summary>
    public void Check(string name)
    {
        if (Offset < 0 || Size.Any(n => n < 0) || Stride.Any(st => st < 0))
        {
            throw new InvalidDataException($"tensor '{name}' has a negative size, stride or offset");
        }

        long extent = Size.Any(n => n == 0) ? 0 : checked(Offset + Size.Zip(Stride, (n, st) => checked((n - 1) * st)).Sum() + 1);
        if (extent > Storage.Count)
        {
            throw new InvalidDataException($"tensor '{name}' of size [{string.Join(",", Size)}] reaches past its storage of {Storage.Count} elements");
        }
    }

    public Tensor Materialize()
    {
        byte[] data = Storage.Data ?? throw new InvalidDataException("a tensor's storage has no data");
        using var scope = torch.NewDisposeScope();
        Tensor flat = torch.empty(Storage.Count, Storage.Type);
        flat.bytes = data;
        return flat.as_strided(Size, Stride, Offset).clone().MoveToOuterDisposeScope();
    }
}

internal sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => Module + "." + Name;
}

internal sealed class PickleMark
{
    public static readonly PickleMark Instance = new();
}

/// <summary>
/// A pickle reader for protocols 0–2 with torch's persistent storages and tensor constructors, for
/// both .pth formats (the legacy one and the zip one); refuses any other object. Nothing it reads
/// allocates more than the bytes left in its input.
/// </summary>
internal sealed class TorchPickle(BinaryReader input, Dictionary<string, PickledStorage> storages)
{
    /// <summary>Most bytes of tensor data a state dict may hold: VGG-19, the largest network here, is 548 MB in float32.</summary>
    public const long MaxBytes = 2L << 30;

    private static readonly Dictionary<string, (ScalarType Type, int Size)> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = (ScalarType.Float32, 4),
        ["DoubleStorage"] = (ScalarType.Float64, 8),
        ["HalfStorage"] = (ScalarType.Float16, 2),
        ["BFloat16Storage"] = (ScalarType.BFloat16, 2),
        ["LongStorage"] = (ScalarType.Int64, 8),
        ["IntStorage"] = (ScalarType.Int32, 4),
        ["ShortStorage"] = (ScalarType.Int16, 2),
        ["CharStorage"] = (ScalarType.Int8, 1),
        ["ByteStorage"] = (ScalarType.Byte, 1),
        ["BoolStorage"] = (ScalarType.Bool, 1),
    };

    /// <summary>The tensors of a state dict (unwrapping a lone "state_dict" or "model" entry), in file order.</summary>
    public static List<(string Name, PickledTensor Tensor)> StateDict(object? root)
    {
        foreach (string wrapper in new[] { "state_dict", "model" })
        {
            if (root is Dictionary<object, object?> d && d.Count == 1 && d.TryGetValue(wrapper, out object? inner))
            {
                root = inner;
            }
        }

        if (root is not Dictionary<object, object?> dict)
        {
            throw new InvalidDataException($"the file holds a {root?.GetType().Name ?? "None"}, not a state dict");
        }

        return [.. dict.Where(e => e.Key is string && e.Value is PickledTensor).Select(e => ((string)e.Key, (PickledTensor)e.Value!))];
    }

    /// <summary>
    /// Before any storage is read: every view lies inside its storage, and the tensors and the
    /// storages they use each add up to at most <see cref="MaxBytes"/>.
    /// </summary>
    public static void CheckSizes(List<(string Name, PickledTensor Tensor)> tensors)
    {
        long tensorBytes = 0;
        foreach ((string name, PickledTensor t) in tensors)
        {
            t.Check(name);
            tensorBytes = checked(tensorBytes + checked(t.Numel * t.Storage.ElementSize));
        }

        long storageBytes = tensors.Select(t => t.Tensor.Storage).Distinct().Aggregate(0L, (sum, s) => checked(sum + checked(s.Count * s.ElementSize)));
        long most = Math.Max(tensorBytes, storageBytes);
        if (most > MaxBytes)
        {
            throw new InvalidDataException($"its tensors declare {most / 1e9:F1} GB, more than any supported network needs (at most {MaxBytes / 1e9:F1} GB)");
        }
    }

    /// <summary>The tensors as torch tensors (their storages read); disposes what it made if one fails.</summary>
    public static Dictionary<string, Tensor> Materialize(List<(string Name, PickledTensor Tensor)> tensors)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach ((string name, PickledTensor t) in tensors)
            {
                result[name] = t.Materialize();
            }
        }
        catch
        {
            foreach (Tensor t in result.Values)
            {
                t.Dispose();
            }

            throw;
        }

        return result;
    }

    private readonly Dictionary<long, object?> memo = [];
    private readonly List<object?> stack = [];

    public object? Load()
    {
        memo.Clear();
        stack.Clear();
        while (true)
        {
            byte op = input.ReadByte();
            switch (op)
            {
                case 0x80: // PROTO
                    input.ReadByte();
                    break;
                case (byte)'.': // STOP
                    return Pop();
                case (byte)'(': // MARK
                    stack.Add(PickleMark.Instance);
                    break;
                case (byte)'}': // EMPTY_DICT
                    stack.Add(new Dictionary<object, object?>());
                    break;
                case (byte)']': // EMPTY_LIST
                    stack.Add(new List<object?>());
                    break;
                case (byte)')': // EMPTY_TUPLE
                    stack.Add(Array.Empty<object?>());
                    break;
                case (byte)'t': // TUPLE
                    stack.Add(PopToMark().ToArray());
                    break;
                case 0x85: // TUPLE1
                case 0x86: // TUPLE2
                case 0x87: // TUPLE3
                    {
                        int n = op - 0x84;
                        object?[] items = [.. stack.GetRange(stack.Count - n, n)];
                        stack.RemoveRange(stack.Count - n, n);
                        stack.Add(items);
                        break;
                    }

                case (byte)'l': // LIST
                    stack.Add(PopToMark());
                    break;
                case (byte)'d': // DICT
                    {
                        var d = new Dictionary<object, object?>();
                        SetItems(d, PopToMark());
                        stack.Add(d);
                        break;
                    }

                case (byte)'q': // BINPUT
                    memo[input.ReadByte()] = Peek();
                    break;
                case (byte)'r': // LONG_BINPUT
                    memo[input.ReadUInt32()] = Peek();
                    break;
                case (byte)'h': // BINGET
                    stack.Add(Memo(input.ReadByte()));
                    break;
                case (byte)'j': // LONG_BINGET
                    stack.Add(Memo(input.ReadUInt32()));
                    break;
                case (byte)'J': // BININT
                    stack.Add(new BigInteger(input.ReadInt32()));
                    break;
                case (byte)'K': // BININT1
                    stack.Add(new BigInteger(input.ReadByte()));
                    break;
                case (byte)'M': // BININT2
                    stack.Add(new BigInteger(input.ReadUInt16()));
                    break;
                case 0x8a: // LONG1
                    stack.Add(new BigInteger(input.ReadBytes(input.ReadByte()), isUnsigned: false, isBigEndian: false));
                    break;
                case (byte)'G': // BINFLOAT
                    stack.Add(BinaryPrimitives.ReadDoubleBigEndian(input.ReadBytes(8)));
                    break;
                case (byte)'N': // NONE
                    stack.Add(null);
                    break;
                case 0x88: // NEWTRUE
                    stack.Add(true);
                    break;
                case 0x89: // NEWFALSE
                    stack.Add(false);
                    break;
                case (byte)'X': // BINUNICODE
                    stack.Add(Encoding.UTF8.GetString(ReadExactly(input.ReadInt32())));
                    break;
                case (byte)'U': // SHORT_BINSTRING
                    stack.Add(Encoding.Latin1.GetString(ReadExactly(input.ReadByte())));
                    break;
                case (byte)'T': // BINSTRING
                    stack.Add(Encoding.Latin1.GetString(ReadExactly(input.ReadInt32())));
                    break;
                case (byte)'c': // GLOBAL
                    stack.Add(new PickleGlobal(ReadLine(), ReadLine()));
                    break;
                case (byte)'Q': // BINPERSID
                    stack.Add(PersistentLoad(Pop()));
                    break;
                case (byte)'R': // REDUCE
                    {
                        object? args = Pop();
                        object? callable = Pop();
                        stack.Add(Reduce(callable, args as object?[] ?? throw new InvalidDataException("REDUCE without an argument tuple")));
                        break;
                    }

                case (byte)'b': // BUILD: the state (e.g. an OrderedDict's _metadata) is not needed
                    Pop();
                    break;
                case (byte)'s': // SETITEM
                    {
                        object? value = Pop();
                        object? key = Pop();
                        SetItems(Peek(), [key, value]);
                        break;
                    }

                case (byte)'u': // SETITEMS
                    {
                        List<object?> items = PopToMark();
                        SetItems(Peek(), items);
                        break;
                    }

                case (byte)'a': // APPEND
                    {
                        object? item = Pop();
                        AsList(Peek()).Add(item);
                        break;
                    }

                case (byte)'e': // APPENDS
                    {
                        List<object?> items = PopToMark();
                        AsList(Peek()).AddRange(items);
                        break;
                    }

                case (byte)'0': // POP
                    Pop();
                    break;
                case (byte)'1': // POP_MARK
                    PopToMark();
                    break;
                case (byte)'2': // DUP
                    stack.Add(Peek());
                    break;
                default:
                    throw new InvalidDataException($"unsupported pickle opcode 0x{op:x2} at byte {input.BaseStream.Position - 1}");
            }
        }
    }

    private static List<object?> AsList(object? o) => o as List<object?> ?? throw new InvalidDataException("APPEND to something that is not a list");

    private static void SetItems(object? target, List<object?> items)
    {
        if (target is not Dictionary<object, object?> d || items.Count % 2 != 0)
        {
            throw new InvalidDataException("SETITEMS on something that is not a dict");
        }

        for (int i = 0; i < items.Count; i += 2)
        {
            d[items[i] ?? "None"] = items[i + 1];
        }
    }

    private static long Long(object? o) => o is BigInteger b ? (long)b : throw new InvalidDataException($"expected an integer, found {o ?? "None"}");

    private static long[] Longs(object? o) => o is object?[] t ? [.. t.Select(Long)] : throw new InvalidDataException("expected a tuple of integers");

    /// <summary>
    /// torch's persistent id for a storage: ('storage', type, key, location, numel), and in the
    /// legacy format a sixth entry, view_metadata. Each key names one storage (read once).
    /// </summary>
    private PickledStorage PersistentLoad(object? pid)
    {
        if (pid is not object?[] { Length: 5 or 6 } t || t[0] is not "storage" || t[1] is not PickleGlobal type || t[2] is not string key)
        {
            throw new InvalidDataException("a persistent id that is not a torch storage");
        }

        if (!StorageTypes.TryGetValue(type.Name, out (ScalarType Type, int Size) kind))
        {
            throw new InvalidDataException($"unsupported storage type {type.FullName}");
        }

        if (t.Length == 6 && t[5] is not null)
        {
            throw new InvalidDataException("storage views are not supported");
        }

        long count = Long(t[4]);
        if (count < 0 || count > MaxBytes / kind.Size)
        {
            throw new InvalidDataException($"storage '{key}' declares {count} elements");
        }

        if (!storages.TryGetValue(key, out PickledStorage? s))
        {
            s = new PickledStorage(kind.Type, kind.Size, count);
            storages[key] = s;
        }
        else if (s.Type != kind.Type || s.Count != count)
        {
            throw new InvalidDataException($"storage '{key}' is declared twice, differently");
        }

        return s;
    }

    private static object Reduce(object? callable, object?[] args)
    {
        string name = (callable as PickleGlobal)?.FullName ?? throw new InvalidDataException("REDUCE of something that is not a global");
        switch (name)
        {
            case "collections.OrderedDict" when args.Length == 0:
                return new Dictionary<object, object?>();
            case "torch._utils._rebuild_tensor_v2" when args.Length >= 4:
            case "torch._utils._rebuild_tensor" when args.Length == 4:
                if (args[0] is not PickledStorage storage)
                {
                    throw new InvalidDataException($"{name}: the first argument is not a storage");
                }

                long[] size = Longs(args[2]), stride = Longs(args[3]);
                if (size.Length != stride.Length)
                {
                    throw new InvalidDataException($"{name}: size and stride differ in length");
                }

                return new PickledTensor(storage, Long(args[1]), size, stride);
            case "torch._utils._rebuild_parameter" when args.Length >= 1 && args[0] is PickledTensor data:
                return data;
            default:
                throw new InvalidDataException($"legacy format: unsupported object {name}");
        }
    }

    private object? Memo(long index) => memo.TryGetValue(index, out object? o) ? o : throw new InvalidDataException($"pickle memo {index} is not set");

    private object? Peek() => stack.Count > 0 ? stack[^1] : throw new InvalidDataException("pickle stack underflow");

    private object? Pop()
    {
        object? o = Peek();
        stack.RemoveAt(stack.Count - 1);
        return o is PickleMark ? throw new InvalidDataException("pickle mark where a value was expected") : o;
    }

    private List<object?> PopToMark()
    {
        int mark = stack.FindLastIndex(o => o is PickleMark);
        if (mark < 0)
        {
            throw new InvalidDataException("pickle has no mark");
        }

        List<object?> items = stack.GetRange(mark + 1, stack.Count - mark - 1);
        stack.RemoveRange(mark, stack.Count - mark);
        return items;
    }

    private byte[] ReadExactly(int count)
    {
        if (count < 0 || count > input.BaseStream.Length - input.BaseStream.Position)
        {
            throw new EndOfStreamException($"a string of {count} bytes reaches past the end of the pickle");
        }

        byte[] bytes = input.ReadBytes(count);
        return bytes.Length == count ? bytes : throw new EndOfStreamException();
    }

    private string ReadLine()
    {
        var sb = new StringBuilder();
        for (byte b = input.ReadByte(); b != (byte)'\n'; b = input.ReadByte())
        {
            sb.Append((char)b);
        }

        return sb.ToString();
    }
}
