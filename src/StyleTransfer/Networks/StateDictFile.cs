using System.Collections;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>Reads a PyTorch state dict from a .pth (zip pickle) or .safetensors file.</summary>
public static class StateDictFile
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
            raw = safetensors ? Safetensors.LoadStateDict(path)
                : LegacyPthFile.Matches(path) ? LegacyPthFile.Load(path) // torch.save before PyTorch 1.6
                : FromPickle(PyTorchUnpickler.UnpickleStateDict(path));
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

    private static Dictionary<string, Tensor> FromPickle(Hashtable table)
    {
        // Some checkpoints wrap the state dict: {"state_dict": {...}} or {"model": {...}}.
        foreach (string wrapper in new[] { "state_dict", "model" })
        {
            if (table.Count == 1 && table[wrapper] is Hashtable inner)
            {
                table = inner;
            }
        }

        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in table)
        {
            if (e.Key is string key && e.Value is Tensor t)
            {
                result[key] = t;
            }
        }

        return result;
    }
}
