using System.Buffers.Binary;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Formats;

/// <summary>Reads a PyTorch state dict from a .pth (zip pickle) or .safetensors file.</summary>
internal static class StateDictFile
{
    /// <summary>Loads every tensor of the file as float32 on the CPU, keyed by its state-dict name.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new StyleTransferException($"weights file '{path}' does not exist");
        }

        bool safetensors = LooksLikeSafetensors(path);
        Dictionary<string, Tensor> raw;
        try
        {
            raw = safetensors ? LoadSafetensors(path)
                : LegacyPthFile.Matches(path) ? LegacyPthFile.Load(path) // torch.save before PyTorch 1.6
                : ZipPthFile.Matches(path) ? ZipPthFile.Load(path)
                : throw new InvalidDataException("neither torch.save's zip format nor its legacy format");
        }
        catch (StyleTransferException)
        {
            throw;
        }
        catch (Exception e)
        {
            string kind = safetensors ? "a .safetensors file" : "a PyTorch .pth state dict";
            string first = e.Message.Split('\n')[0].Trim();
            throw new StyleTransferException($"weights file '{path}' could not be read as {kind} ({first})", e);
        }

        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach ((string key, Tensor t) in raw)
        {
            result[key] = t.dtype == ScalarType.Float32 ? t : ConvertAndDispose(t);
        }

        return result;
    }

    /// <summary>Loads the file, builds something from its tensors (which must copy what it keeps), and frees them.</summary>
    public static T Build<T>(string path, Func<IReadOnlyDictionary<string, Tensor>, T> build)
    {
        Dictionary<string, Tensor> dict = Load(path);
        try
        {
            return build(dict);
        }
        finally
        {
            foreach (Tensor t in dict.Values)
            {
                t.Dispose();
            }
        }
    }

    /// <summary>safetensors files start with a little-endian header length and then '{'.</summary>
    private static bool LooksLikeSafetensors(string path)
    {
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        using FileStream f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[9];
        return f.Read(head) == 9 && head[8] == (byte)'{';
    }

    private static Tensor ConvertAndDispose(Tensor t)
    {
        if (!t.is_floating_point())
        {
            return t;
        }

        Tensor f = t.to_type(ScalarType.Float32);
        t.Dispose();
        return f;
    }

    private static readonly Dictionary<string, (ScalarType Type, int Size)> SafetensorsTypes = new(StringComparer.Ordinal)
    {
        ["F64"] = (ScalarType.Float64, 8),
        ["F32"] = (ScalarType.Float32, 4),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>
    /// A .safetensors file: u64 header length, a JSON header (name → dtype, shape, data_offsets),
    /// the data. Every tensor's bytes must be its shape × element size, inside the file and not
    /// shared with another tensor, so the tensors never hold more than the file; checked before
    /// anything is allocated.
    /// </summary>
    private static Dictionary<string, Tensor> LoadSafetensors(string path)
    {
        using FileStream f = File.OpenRead(path);
        Span<byte> length = stackalloc byte[8];
        f.ReadExactly(length);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(length);
        if (headerLength < 2 || headerLength > (ulong)(f.Length - 8) || headerLength > 100_000_000)
        {
            throw new InvalidDataException($"its header length {headerLength} does not fit the file");
        }

        byte[] json = new byte[headerLength];
        f.ReadExactly(json);
        long dataStart = 8 + (long)headerLength, dataLength = f.Length - dataStart;
        JsonObject header = JsonNode.Parse(json)?.AsObject() ?? throw new InvalidDataException("empty header");
        var layout = new List<(string Name, ScalarType Type, long[] Shape, long Begin, long End)>();
        foreach ((string name, JsonNode? node) in header)
        {
            if (name == "__metadata__")
            {
                continue;
            }

            string dtype = (string?)node?["dtype"] ?? "none";
            if (!SafetensorsTypes.TryGetValue(dtype, out (ScalarType Type, int Size) kind))
            {
                throw new InvalidDataException($"tensor '{name}' has unsupported dtype {dtype}");
            }

            long[] shape = [.. (node!["shape"]?.AsArray() ?? throw new InvalidDataException($"tensor '{name}' has no shape")).Select(v => (long)v!)];
            JsonArray offsets = node["data_offsets"]?.AsArray() ?? throw new InvalidDataException($"tensor '{name}' has no data_offsets");
            long bytes = kind.Size;
            foreach (long d in shape)
            {
                bytes = d < 0 || d > dataLength ? throw new InvalidDataException($"tensor '{name}' has shape [{string.Join(",", shape)}]") : checked(bytes * d);
            }

            long begin = offsets.Count == 2 ? (long)offsets[0]! : -1, end = offsets.Count == 2 ? (long)offsets[1]! : -1;
            if (begin < 0 || end > dataLength || end - begin != bytes)
            {
                throw new InvalidDataException($"tensor '{name}' of shape [{string.Join(",", shape)}] has data_offsets [{begin},{end}], outside the file's {dataLength} data bytes or of the wrong length");
            }

            layout.Add((name, kind.Type, shape, begin, end));
        }

        layout.Sort((x, y) => x.Begin.CompareTo(y.Begin));
        for (int i = 1; i < layout.Count; i++)
        {
            if (layout[i].Begin < layout[i - 1].End)
            {
                throw new InvalidDataException($"tensors '{layout[i - 1].Name}' and '{layout[i].Name}' share data");
            }
        }

        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach ((string name, ScalarType type, long[] shape, long begin, long end) in layout)
            {
                byte[] data = new byte[end - begin];
                f.Position = dataStart + begin;
                f.ReadExactly(data);
                Tensor t = torch.empty(shape, type);
                t.bytes = data;
                result[name] = t;
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
}
