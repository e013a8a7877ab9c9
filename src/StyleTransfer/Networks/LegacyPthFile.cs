using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Networks;

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
        var storages = new Dictionary<string, Storage>(StringComparer.Ordinal);
        var pickle = new Pickle(reader, storages);
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

        foreach (object? key in keys)
        {
            if (key is not string k || !storages.TryGetValue(k, out Storage? s))
            {
                throw new InvalidDataException($"legacy format: storage '{key}' is listed but not used");
            }

            long count = reader.ReadInt64();
            if (count != s.Count || count < 0 || count * s.ElementSize > reader.BaseStream.Length - reader.BaseStream.Position)
            {
                throw new InvalidDataException($"legacy format: storage '{k}' holds {count} elements where {s.Count} were announced, or the file is truncated");
            }

            s.Data = reader.ReadBytes(checked((int)(count * s.ElementSize)));
        }

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

        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach ((object key, object? value) in dict)
            {
                if (key is string name && value is TensorRef t)
                {
                    result[name] = t.Materialize();
                }
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

    private sealed class Storage(ScalarType type, int elementSize, long count)
    {
        public ScalarType Type => type;

        public int ElementSize => elementSize;

        public long Count => count;

        public byte[]? Data { get; set; }
    }

    private sealed record TensorRef(Storage Storage, long Offset, long[] Size, long[] Stride)
    {
        public Tensor Materialize()
        {
            byte[] data = Storage.Data ?? throw new InvalidDataException("legacy format: a tensor's storage has no data");
            long extent = Size.Any(s => s == 0) ? 0 : Offset + Size.Zip(Stride, (n, st) => (n - 1) * st).Sum() + 1;
            if (Offset < 0 || extent > Storage.Count)
            {
                throw new InvalidDataException($"legacy format: a tensor of size [{string.Join(",", Size)}] reaches past its storage of {Storage.Count} elements");
            }

            using var scope = torch.NewDisposeScope();
            Tensor flat = Flat(data, Storage.Type);
            return flat.as_strided(Size, Stride, Offset).clone().MoveToOuterDisposeScope();
        }

        /// <summary>The storage as a 1-D tensor (the files are little-endian, as is every host this runs on).</summary>
        private static Tensor Flat(byte[] data, ScalarType type) => type switch
        {
            ScalarType.Float32 => torch.tensor(MemoryMarshal.Cast<byte, float>(data).ToArray()),
            ScalarType.Float64 => torch.tensor(MemoryMarshal.Cast<byte, double>(data).ToArray()),
            ScalarType.Float16 => torch.tensor(MemoryMarshal.Cast<byte, Half>(data).ToArray().Select(h => (float)h).ToArray()).to_type(ScalarType.Float16),
            ScalarType.BFloat16 => torch.tensor(MemoryMarshal.Cast<byte, ushort>(data).ToArray().Select(b => BitConverter.Int32BitsToSingle(b << 16)).ToArray()).to_type(ScalarType.BFloat16),
            ScalarType.Int64 => torch.tensor(MemoryMarshal.Cast<byte, long>(data).ToArray()),
            ScalarType.Int32 => torch.tensor(MemoryMarshal.Cast<byte, int>(data).ToArray()),
            ScalarType.Int16 => torch.tensor(MemoryMarshal.Cast<byte, short>(data).ToArray()),
            ScalarType.Int8 => torch.tensor(MemoryMarshal.Cast<byte, sbyte>(data).ToArray()),
            ScalarType.Bool => torch.tensor(data.Select(b => b != 0).ToArray()),
            _ => torch.tensor(data),
        };
    }

    private sealed record Global(string Module, string Name)
    {
        public string FullName => Module + "." + Name;
    }

    private sealed class Mark
    {
        public static readonly Mark Instance = new();
    }

    /// <summary>A pickle reader for protocols 0–2 with torch's persistent storages and tensor constructors.</summary>
    private sealed class Pickle(BinaryReader input, Dictionary<string, Storage> storages)
    {
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
                        stack.Add(Mark.Instance);
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
                        stack.Add(new Global(ReadLine(), ReadLine()));
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
                        throw new InvalidDataException($"legacy format: unsupported pickle opcode 0x{op:x2} at byte {input.BaseStream.Position - 1}");
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

        /// <summary>torch's persistent id for a storage: ('storage', type, key, location, numel, view_metadata).</summary>
        private Storage PersistentLoad(object? pid)
        {
            if (pid is not object?[] { Length: 6 } t || t[0] is not "storage" || t[1] is not Global type || t[2] is not string key)
            {
                throw new InvalidDataException("legacy format: a persistent id that is not a torch storage");
            }

            if (!StorageTypes.TryGetValue(type.Name, out (ScalarType Type, int Size) kind))
            {
                throw new InvalidDataException($"legacy format: unsupported storage type {type.FullName}");
            }

            if (t[5] is not null)
            {
                throw new InvalidDataException("legacy format: storage views are not supported");
            }

            if (!storages.TryGetValue(key, out Storage? s))
            {
                s = new Storage(kind.Type, kind.Size, Long(t[4]));
                storages[key] = s;
            }

            return s;
        }

        private static object Reduce(object? callable, object?[] args)
        {
            string name = (callable as Global)?.FullName ?? throw new InvalidDataException("REDUCE of something that is not a global");
            switch (name)
            {
                case "collections.OrderedDict" when args.Length == 0:
                    return new Dictionary<object, object?>();
                case "torch._utils._rebuild_tensor_v2" when args.Length >= 4:
                case "torch._utils._rebuild_tensor" when args.Length == 4:
                    if (args[0] is not Storage storage)
                    {
                        throw new InvalidDataException($"{name}: the first argument is not a storage");
                    }

                    long[] size = Longs(args[2]), stride = Longs(args[3]);
                    if (size.Length != stride.Length)
                    {
                        throw new InvalidDataException($"{name}: size and stride differ in length");
                    }

                    return new TensorRef(storage, Long(args[1]), size, stride);
                case "torch._utils._rebuild_parameter" when args.Length >= 1 && args[0] is TensorRef data:
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
            return o is Mark ? throw new InvalidDataException("pickle mark where a value was expected") : o;
        }

        private List<object?> PopToMark()
        {
            int mark = stack.FindLastIndex(o => o is Mark);
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
}
