using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using StyleTransfer.Formats;

namespace StyleTransfer.Tests;

/// <summary>
/// Builds hostile and damaged files at test time (nothing checked in): torch.save-style zip
/// .pth files from a small pickle writer, zips whose entries share data, and byte-level damage.
/// </summary>
internal static class BadFiles
{
    /// <summary>One tensor of a pickled state dict: its name, storage key, storage element count, shape and strides.</summary>
    public sealed record PickledTensor(string Name, string Key, long StorageNumel, long[] Shape, long[] Stride, long Offset = 0);

    /// <summary>A protocol-2 pickle of an OrderedDict-less state dict, as torch.save writes it (FloatStorage, zip persistent ids).</summary>
    public static byte[] Pickle(IEnumerable<PickledTensor> tensors)
    {
        var b = new MemoryStream();
        void Op(char c) => b.WriteByte((byte)c);
        void Raw(string s) => b.Write(Encoding.ASCII.GetBytes(s));
        void Str(string s)
        {
            Op('X');
            byte[] u = Encoding.UTF8.GetBytes(s);
            b.Write(BitConverter.GetBytes(u.Length));
            b.Write(u);
        }

        void Int(long v)
        {
            if (v is >= int.MinValue and <= int.MaxValue)
            {
                Op('J');
                b.Write(BitConverter.GetBytes((int)v));
            }
            else
            {
                b.WriteByte(0x8a);
                b.WriteByte(8);
                b.Write(BitConverter.GetBytes(v));
            }
        }

        void Tuple(long[] values)
        {
            Op('(');
            foreach (long v in values)
            {
                Int(v);
            }

            Op('t');
        }

        b.Write([0x80, 0x02]);
        Op('}');
        Op('(');
        foreach (PickledTensor t in tensors)
        {
            Str(t.Name);
            Raw("ctorch._utils\n_rebuild_tensor_v2\n");
            Op('(');
            Op('(');
            Str("storage");
            Raw("ctorch\nFloatStorage\n");
            Str(t.Key);
            Str("cpu");
            Int(t.StorageNumel);
            Op('t');
            Op('Q');
            Int(t.Offset);
            Tuple(t.Shape);
            Tuple(t.Stride);
            b.WriteByte(0x89);
            Raw("ccollections\nOrderedDict\n");
            Op(')');
            Op('R');
            Op('t');
            Op('R');
        }

        Op('u');
        Op('.');
        return b.ToArray();
    }

    /// <summary>A zip .pth as torch.save writes it: archive/data.pkl and archive/data/KEY (stored, or deflated when asked).</summary>
    public static void WritePth(string path, byte[] pickle, IEnumerable<(string Key, byte[] Data)> members, bool deflate = false)
    {
        using FileStream f = File.Create(path);
        using var zip = new ZipArchive(f, ZipArchiveMode.Create);
        Add(zip, "archive/data.pkl", pickle, CompressionLevel.NoCompression);
        foreach ((string key, byte[] data) in members)
        {
            Add(zip, "archive/data/" + key, data, deflate ? CompressionLevel.SmallestSize : CompressionLevel.NoCompression);
        }
    }

    /// <summary>
    /// A zip whose entries archive/data/0 … archive/data/(n−1) all point at one deflated member of
    /// <paramref name="memberBytes"/> zero bytes (the zip bomb of issue 18), with archive/data.pkl stored.
    /// </summary>
    public static void WriteSharedMemberZip(string path, byte[] pickle, int entries, int memberBytes)
    {
        byte[] zeros = new byte[memberBytes];
        var deflated = new MemoryStream();
        using (var d = new DeflateStream(deflated, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            d.Write(zeros);
        }

        var file = new MemoryStream();
        var central = new MemoryStream();
        int count = 0;
        void Local(string name, ushort method, byte[] stored, uint crc, uint size)
        {
            long offset = file.Position;
            byte[] n = Encoding.ASCII.GetBytes(name);
            Span<byte> h = stackalloc byte[30];
            BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
            BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 20);
            BinaryPrimitives.WriteUInt16LittleEndian(h[8..], method);
            BinaryPrimitives.WriteUInt32LittleEndian(h[14..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(h[18..], (uint)stored.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h[22..], size);
            BinaryPrimitives.WriteUInt16LittleEndian(h[26..], (ushort)n.Length);
            file.Write(h);
            file.Write(n);
            file.Write(stored);
            Central(name, method, (uint)stored.Length, crc, size, (uint)offset);
        }

        void Central(string name, ushort method, uint stored, uint crc, uint size, uint offset)
        {
            byte[] n = Encoding.ASCII.GetBytes(name);
            Span<byte> h = stackalloc byte[46];
            BinaryPrimitives.WriteUInt32LittleEndian(h, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 20);
            BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 20);
            BinaryPrimitives.WriteUInt16LittleEndian(h[10..], method);
            BinaryPrimitives.WriteUInt32LittleEndian(h[16..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(h[20..], stored);
            BinaryPrimitives.WriteUInt32LittleEndian(h[24..], size);
            BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)n.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h[42..], offset);
            central.Write(h);
            central.Write(n);
            count++;
        }

        Local("archive/data.pkl", 0, pickle, Crc32(pickle), (uint)pickle.Length);
        uint memberOffset = (uint)file.Position;
        Local("archive/data/0", 8, deflated.ToArray(), Crc32(zeros), (uint)memberBytes);
        for (int i = 1; i < entries; i++)
        {
            Central($"archive/data/{i}", 8, (uint)deflated.Length, Crc32(zeros), (uint)memberBytes, memberOffset);
        }

        long cdOffset = file.Position;
        file.Write(central.ToArray());
        Span<byte> end = stackalloc byte[22];
        BinaryPrimitives.WriteUInt32LittleEndian(end, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(end[8..], (ushort)count);
        BinaryPrimitives.WriteUInt16LittleEndian(end[10..], (ushort)count);
        BinaryPrimitives.WriteUInt32LittleEndian(end[12..], (uint)central.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(end[16..], (uint)cdOffset);
        file.Write(end);
        File.WriteAllBytes(path, file.ToArray());
    }

    /// <summary>A PNG header declaring <paramref name="width"/>×<paramref name="height"/> RGB with one tiny IDAT (a few zero bytes deflated) and IEND.</summary>
    public static void WritePngBomb(string path, int width, int height)
    {
        var f = new MemoryStream();
        f.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        byte[] ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = 2;
        Chunk(f, "IHDR", ihdr);
        var z = new MemoryStream();
        using (var d = new ZLibStream(z, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            d.Write(new byte[64 * 1024]);
        }

        Chunk(f, "IDAT", z.ToArray());
        Chunk(f, "IEND", []);
        File.WriteAllBytes(path, f.ToArray());
    }

    /// <summary>Flips one bit at each of <paramref name="offsets"/> (from the start, or from the end when negative).</summary>
    public static string FlipBits(string source, string path, params long[] offsets)
    {
        byte[] d = File.ReadAllBytes(source);
        foreach (long o in offsets)
        {
            long i = o < 0 ? d.Length + o : o;
            d[i] ^= 0x10;
        }

        File.WriteAllBytes(path, d);
        return path;
    }

    /// <summary>The first <paramref name="fraction"/> of the file.</summary>
    public static string Truncate(string source, string path, double fraction)
    {
        byte[] d = File.ReadAllBytes(source);
        File.WriteAllBytes(path, d[..(int)(d.Length * fraction)]);
        return path;
    }

    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            }
        }

        return ~c;
    }

    private static void Add(ZipArchive zip, string name, byte[] data, CompressionLevel level)
    {
        using Stream s = zip.CreateEntry(name, level).Open();
        s.Write(data);
    }

    private static void Chunk(Stream f, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        f.Write(len);
        byte[] typed = [.. Encoding.ASCII.GetBytes(type), .. data];
        f.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(len, Crc32(typed));
        f.Write(len);
    }
}
