using System.IO.Compression;
using static TorchSharp.torch;

namespace StyleTransfer.Formats;

/// <summary>
/// Reads state dicts in <c>torch.save</c>'s zip format (PyTorch 1.6 and later): <c>NAME/data.pkl</c>,
/// a pickle whose tensors name their storages by key, and one member <c>NAME/data/KEY</c> per
/// storage. A small file must not make a large allocation, so before anything is inflated: the
/// members' compressed sizes must fit in the file side by side (no two entries share data), each
/// storage's declared (uncompressed) size must equal its element count × element size from the
/// pickle, and the tensors must stay within <see cref="TorchPickle.MaxBytes"/>; then each member
/// used is inflated once, with a hard cap at its declared size, and checked against its CRC-32.
/// </summary>
internal static class ZipPthFile
{
    /// <summary>Largest data.pkl accepted (torchvision's are a few kB: names, shapes and strides).</summary>
    private const long MaxPickleBytes = 64L << 20;

    /// <summary>Whether the file starts with a zip local file header.</summary>
    public static bool Matches(string path)
    {
        using FileStream f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        return f.Read(head) == 4 && head.SequenceEqual("PK\x03\x04"u8);
    }

    public static Dictionary<string, Tensor> Load(string path)
    {
        using FileStream file = File.OpenRead(path);
        using var archive = new ZipArchive(file, ZipArchiveMode.Read);
        long compressed = 0;
        foreach (ZipArchiveEntry e in archive.Entries)
        {
            compressed = checked(compressed + e.CompressedLength);
        }

        if (compressed > file.Length)
        {
            throw new InvalidDataException($"its zip entries claim {compressed} compressed bytes in a file of {file.Length}: entries overlap");
        }

        ZipArchiveEntry[] pickles = [.. archive.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) || e.FullName == "data.pkl")];
        if (pickles.Length != 1)
        {
            throw new InvalidDataException(pickles.Length == 0 ? "no data.pkl in the archive" : "more than one data.pkl in the archive");
        }

        string prefix = pickles[0].FullName[..^"data.pkl".Length];
        var storages = new Dictionary<string, PickledStorage>(StringComparer.Ordinal);
        using var pickleBytes = new MemoryStream(Inflate(pickles[0], MaxPickleBytes));
        using var reader = new BinaryReader(pickleBytes);
        object? root = new TorchPickle(reader, storages).Load();
        List<(string Name, PickledTensor Tensor)> tensors = TorchPickle.StateDict(root);
        TorchPickle.CheckSizes(tensors);

        // Declared sizes first, for every storage used, before any of them is inflated.
        var members = new List<(PickledStorage Storage, ZipArchiveEntry Entry)>();
        foreach ((string key, PickledStorage s) in storages)
        {
            if (!tensors.Any(t => t.Tensor.Storage == s))
            {
                continue;
            }

            ZipArchiveEntry entry = archive.GetEntry(prefix + "data/" + key)
                ?? throw new InvalidDataException($"storage '{key}' has no member {prefix}data/{key}");
            long bytes = s.Count * s.ElementSize;
            if (entry.Length != bytes)
            {
                throw new InvalidDataException($"member {entry.FullName} declares {entry.Length} bytes, but its storage holds {s.Count} elements of {s.ElementSize} bytes");
            }

            members.Add((s, entry));
        }

        foreach ((PickledStorage s, ZipArchiveEntry entry) in members)
        {
            s.Data = Inflate(entry, entry.Length);
        }

        return TorchPickle.Materialize(tensors);
    }

    /// <summary>The member's bytes: exactly its declared size, refused if it inflates to more (or less), never past <paramref name="limit"/>.</summary>
    private static byte[] Inflate(ZipArchiveEntry entry, long limit)
    {
        if (entry.Length < 0 || entry.Length > limit || entry.Length > Array.MaxLength)
        {
            throw new InvalidDataException($"member {entry.FullName} declares {entry.Length} bytes");
        }

        byte[] data = new byte[entry.Length];
        using Stream s = entry.Open();
        int read = 0;
        for (int n; read < data.Length && (n = s.Read(data, read, data.Length - read)) > 0;)
        {
            read += n;
        }

        if (read < data.Length)
        {
            throw new InvalidDataException($"member {entry.FullName} holds {read} bytes where {entry.Length} were declared");
        }

        Span<byte> one = stackalloc byte[1];
        if (s.Read(one) > 0)
        {
            throw new InvalidDataException($"member {entry.FullName} inflates to more than its declared {entry.Length} bytes");
        }

        if (Crc32(data) != entry.Crc32)
        {
            throw new InvalidDataException($"member {entry.FullName} does not match its CRC-32: the file is damaged");
        }

        return data;
    }

    private static readonly uint[] CrcTable = [.. Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++)
        {
            c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }

        return c;
    })];

    /// <summary>The zip format's CRC-32 (which System.IO.Compression does not check when reading).</summary>
    internal static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        }

        return ~c;
    }
}
