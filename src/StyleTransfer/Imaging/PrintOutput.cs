using System.Buffers.Binary;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Imaging;

/// <summary>
/// Print-quality output of a stylisation: 8- or 16-bit PNG, 8- or 16-bit TIFF (written here,
/// uncompressed: ImageSharp 2.1's TIFF encoder stops at 8 bits and writes no ICC profile) and JPEG,
/// carrying the content image's ICC profile and EXIF metadata (all formats;
/// orientation normalised to 1, since the pixels were turned upright on reading; the pixel
/// dimensions updated).
/// </summary>
internal static class PrintOutput
{
    /// <summary>EXIF tag 274, Orientation: 1 = upright.</summary>
    public const ushort Upright = 1;

    /// <summary>Whether <paramref name="path"/> names a TIFF file.</summary>
    public static bool IsTiff(string path) => Path.GetExtension(path).ToLowerInvariant() is ".tif" or ".tiff";

    /// <summary>Like <see cref="ImageIO.CheckOutputPath"/>, also accepting .tif/.tiff, and refusing 16 bits for JPEG.</summary>
    public static void CheckOutputPath(string path, int bitDepth, string what = "output")
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (IsTiff(path))
        {
            AtomicFile.CheckPath(path, what);
        }
        else if (ext is ".png" or ".jpg" or ".jpeg")
        {
            ImageIO.CheckOutputPath(path, what);
        }
        else
        {
            throw new StyleTransferException($"{what} '{path}' must end in .png, .jpg, .jpeg, .tif or .tiff");
        }

        if (bitDepth == 16 && ext is ".jpg" or ".jpeg")
        {
            throw new StyleTransferException($"--bit-depth 16 needs a .png, .tif or .tiff output, not '{path}' (JPEG has 8 bits)");
        }
    }

    /// <summary>
    /// Writes <paramref name="image"/> ([1,3,H,W], [0,1]) at <paramref name="bitDepth"/> bits per
    /// channel, atomically (or with <paramref name="batch"/>), with the metadata of <paramref name="metadataFrom"/> when given.
    /// </summary>
    public static void Save(Tensor image, string path, int bitDepth = 8, string? metadataFrom = null, FileBatch? batch = null)
    {
        ImageMetadata? source = metadataFrom is null ? null : ReadMetadata(metadataFrom);
        int w = (int)image.shape[^1], h = (int)image.shape[^2];
        Action<Stream> write;
        Image? img = null;
        try
        {
            if (IsTiff(path))
            {
                byte[] data = Tiff(image, bitDepth, source?.IccProfile?.ToByteArray(), source is null ? null : ExifBlock(source, w, h));
                write = s => s.Write(data);
            }
            else
            {
                img = bitDepth == 16 ? ToImage48(image) : ImageIO.ToImage(image);
                if (source is not null)
                {
                    CopyMetadata(source, img.Metadata, w, h);
                }

                bool png = Path.GetExtension(path).ToLowerInvariant() == ".png";
                IImageEncoder encoder = png
                    ? new PngEncoder { BitDepth = bitDepth == 16 ? PngBitDepth.Bit16 : PngBitDepth.Bit8, ColorType = PngColorType.Rgb }
                    : new SixLabors.ImageSharp.Formats.Jpeg.JpegEncoder { Quality = 95 };
                Image captured = img;
                byte[]? icc = png ? source?.IccProfile?.ToByteArray() : null;
                write = icc is null
                    ? s => captured.Save(s, encoder)
                    : s =>
                    {
                        // ImageSharp 2.1 writes no iCCP chunk: put one in after IHDR.
                        using var ms = new MemoryStream();
                        captured.Save(ms, encoder);
                        s.Write(WithIccp(ms.ToArray(), icc));
                    };
            }

            if (batch is null)
            {
                AtomicFile.Write(path, write);
            }
            else
            {
                batch.Add(path, write);
            }
        }
        finally
        {
            img?.Dispose();
        }
    }

    /// <summary>The metadata of an image file (header only).</summary>
    public static ImageMetadata? ReadMetadata(string path)
    {
        try
        {
            return Image.Identify(path)?.Metadata;
        }
        catch (Exception e) when (e is ImageFormatException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The ICC profile and EXIF of <paramref name="from"/> into <paramref name="to"/>: orientation upright, pixel dimensions the output's, no thumbnail.</summary>
    public static void CopyMetadata(ImageMetadata from, ImageMetadata to, int width, int height)
    {
        if (from.IccProfile is { } icc)
        {
            to.IccProfile = new SixLabors.ImageSharp.Metadata.Profiles.Icc.IccProfile(icc.ToByteArray());
        }

        if (from.ExifProfile is { } exif)
        {
            ExifProfile copy = exif.DeepClone();
            copy.SetValue(ExifTag.Orientation, Upright);
            if (copy.GetValue(ExifTag.PixelXDimension) is not null)
            {
                copy.SetValue(ExifTag.PixelXDimension, (Number)(uint)width);
                copy.SetValue(ExifTag.PixelYDimension, (Number)(uint)height);
            }

            to.ExifProfile = copy;
        }

        to.HorizontalResolution = from.HorizontalResolution;
        to.VerticalResolution = from.VerticalResolution;
        to.ResolutionUnits = from.ResolutionUnits;
    }

    /// <summary>
    /// The EXIF of <paramref name="source"/> as <see cref="CopyMetadata"/> carries it (orientation
    /// upright, pixel dimensions the output's), serialised as a little-endian TIFF structure (header,
    /// IFD0 with its Exif and GPS sub-IFDs, offsets from its first byte); null when there is none.
    /// </summary>
    public static byte[]? ExifBlock(ImageMetadata source, int width, int height)
    {
        if (source.ExifProfile is null)
        {
            return null;
        }

        var copy = new ImageMetadata();
        CopyMetadata(source, copy, width, height);
        byte[]? bytes = copy.ExifProfile?.ToByteArray();
        if (bytes is not null && bytes.AsSpan().StartsWith("Exif\0\0"u8))
        {
            bytes = bytes[6..];
        }

        return bytes is { Length: >= 14 } && bytes.AsSpan().StartsWith("II*\0"u8) ? bytes : null;
    }

    /// <summary>A [1,3,H,W] tensor in [0,1] as 16-bit RGB.</summary>
    public static Image<Rgb48> ToImage48(Tensor image)
    {
        ushort[] v = Samples16(image, out int w, out int h);
        var pixels = new Rgb48[w * h];
        for (int i = 0; i < pixels.Length; i++)
        {
            pixels[i] = new Rgb48(v[3 * i], v[(3 * i) + 1], v[(3 * i) + 2]);
        }

        return Image.LoadPixelData<Rgb48>(pixels, w, h);
    }

    /// <summary>
    /// A PNG with an iCCP chunk (profile name "ICC profile", zlib-compressed) inserted after IHDR.
    /// </summary>
    public static byte[] WithIccp(byte[] png, byte[] icc)
    {
        using var body = new MemoryStream();
        body.Write("iCCP"u8);
        body.Write("ICC profile\0\0"u8);
        using (var z = new System.IO.Compression.ZLibStream(body, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
        {
            z.Write(icc);
        }

        byte[] chunk = body.ToArray();
        int ihdrEnd = 8 + 8 + 13 + 4;
        var result = new byte[png.Length + chunk.Length + 8];
        png.AsSpan(0, ihdrEnd).CopyTo(result);
        BinaryPrimitives.WriteUInt32BigEndian(result.AsSpan(ihdrEnd), (uint)(chunk.Length - 4));
        chunk.CopyTo(result, ihdrEnd + 4);
        BinaryPrimitives.WriteUInt32BigEndian(result.AsSpan(ihdrEnd + 4 + chunk.Length), Formats.ZipPthFile.Crc32(chunk));
        png.AsSpan(ihdrEnd).CopyTo(result.AsSpan(ihdrEnd + 8 + chunk.Length));
        return result;
    }

    /// <summary>
    /// A baseline TIFF: little-endian, one uncompressed strip of interleaved 8- or 16-bit RGB, 72 dpi,
    /// the ICC profile (tag 34675) when given, and the EXIF when given (<see cref="ExifBlock"/>).
    /// (ImageSharp 2.1 writes neither 16-bit TIFF nor ICC profiles in TIFF.)
    /// </summary>
    /// <remarks>
    /// With EXIF, the file starts with the EXIF block itself (a TIFF header and IFDs whose offsets
    /// count from the file's first byte), so its Exif and GPS sub-IFDs and long values stay where
    /// they point; the image's IFD0 follows it, holding the block's IFD0 entries (the sub-IFD
    /// pointers, Make, Orientation, ...) merged with the image's own, and the header points to it.
    /// The block's resolution tags win over the 72 dpi default; its structural tags (size, strips,
    /// thumbnail, YCbCr) are the image's.
    /// </remarks>
    public static byte[] Tiff(Tensor image, int bitDepth, byte[]? icc, byte[]? exif = null)
    {
        ushort[] v = Samples16(image, out int w, out int h);
        if (bitDepth == 8)
        {
            for (int i = 0; i < v.Length; i++)
            {
                v[i] = (ushort)Math.Round(v[i] / 257.0);
            }
        }

        int sampleBytes = bitDepth / 8;
        List<(ushort Tag, ushort Type, uint Count, uint Value)> carried = exif is null ? [] : ExifEntries(exif);
        uint start = (uint)(exif?.Length ?? 8);
        start += start % 2;
        var tags = new List<(ushort Tag, ushort Type, uint Count, uint Value)>();
        var own = new HashSet<ushort> { 256, 257, 258, 259, 262, 273, 277, 278, 279, 282, 283, 296 };
        if (icc is not null)
        {
            own.Add(34675);
        }

        bool carriedResolution = carried.Any(t => t.Tag is 282 or 283);
        List<(ushort Tag, ushort Type, uint Count, uint Value)> kept = [.. carried.Where(t => !own.Contains(t.Tag) || (carriedResolution && t.Tag is 282 or 283 or 296))];
        own.ExceptWith(kept.Select(t => t.Tag));
        int entries = own.Count + kept.Count;
        uint ifd = start, ifdSize = (uint)(2 + (entries * 12) + 4);
        uint bits = ifd + ifdSize, res = bits + 6, iccAt = res + 16, data = iccAt + (uint)(icc?.Length ?? 0);
        data += data % 2;
        uint bytes = (uint)(v.Length * sampleBytes);
        tags.Add((256, 4, 1, (uint)w));
        tags.Add((257, 4, 1, (uint)h));
        tags.Add((258, 3, 3, bits));
        tags.Add((259, 3, 1, 1));
        tags.Add((262, 3, 1, 2));
        tags.Add((273, 4, 1, data));
        tags.Add((277, 3, 1, 3));
        tags.Add((278, 4, 1, (uint)h));
        tags.Add((279, 4, 1, bytes));
        tags.Add((282, 5, 1, res));
        tags.Add((283, 5, 1, res + 8));
        tags.Add((296, 3, 1, 2));
        if (icc is not null)
        {
            tags.Add((34675, 7, (uint)icc.Length, iccAt));
        }

        tags = [.. tags.Where(t => own.Contains(t.Tag))];
        var buffer = new byte[data + bytes];
        Span<byte> b = buffer;
        if (exif is not null)
        {
            exif.CopyTo(b);
        }

        "II"u8.CopyTo(b);
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], 42);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], ifd);
        BinaryPrimitives.WriteUInt16LittleEndian(b[(int)ifd..], (ushort)entries);
        int at = (int)ifd + 2;
        foreach (((ushort tag, ushort type, uint count, uint value), bool raw) in tags.Select(t => (t, false)).Concat(kept.Select(t => (t, true))).OrderBy(t => t.t.Tag))
        {
            BinaryPrimitives.WriteUInt16LittleEndian(b[at..], tag);
            BinaryPrimitives.WriteUInt16LittleEndian(b[(at + 2)..], type);
            BinaryPrimitives.WriteUInt32LittleEndian(b[(at + 4)..], count);
            if (type == 3 && count == 1 && !raw)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(b[(at + 8)..], (ushort)value);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(b[(at + 8)..], value);
            }

            at += 12;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(b[at..], 0);
        for (int i = 0; i < 3; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(b[((int)bits + (2 * i))..], (ushort)bitDepth);
        }

        foreach (uint off in new[] { res, res + 8 })
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b[(int)off..], 72);
            BinaryPrimitives.WriteUInt32LittleEndian(b[((int)off + 4)..], 1);
        }

        icc?.CopyTo(b[(int)iccAt..]);
        Span<byte> pixels = b[(int)data..];
        for (int i = 0; i < v.Length; i++)
        {
            if (sampleBytes == 1)
            {
                pixels[i] = (byte)v[i];
            }
            else
            {
                BinaryPrimitives.WriteUInt16LittleEndian(pixels[(2 * i)..], v[i]);
            }
        }

        return buffer;
    }

    /// <summary>
    /// The entries of an EXIF block's IFD0 (little-endian TIFF structure), each with its value field
    /// as the raw 4 bytes; the thumbnail's and the strips' tags, which describe other pixels, left out.
    /// </summary>
    private static List<(ushort Tag, ushort Type, uint Count, uint Value)> ExifEntries(byte[] exif)
    {
        var result = new List<(ushort, ushort, uint, uint)>();
        ReadOnlySpan<byte> e = exif;
        uint ifd = BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
        if (ifd < 8 || ifd + 2 > e.Length)
        {
            return result;
        }

        int n = BinaryPrimitives.ReadUInt16LittleEndian(e[(int)ifd..]);
        for (int i = 0; i < n && ifd + 2 + (12 * (i + 1)) <= e.Length; i++)
        {
            ReadOnlySpan<byte> entry = e[((int)ifd + 2 + (12 * i))..];
            ushort tag = BinaryPrimitives.ReadUInt16LittleEndian(entry);
            if (tag is 273 or 279 or 513 or 514 or (>= 322 and <= 325) or (>= 529 and <= 532) or 338 or 339 or 317)
            {
                continue;
            }

            result.Add((tag, BinaryPrimitives.ReadUInt16LittleEndian(entry[2..]), BinaryPrimitives.ReadUInt32LittleEndian(entry[4..]), BinaryPrimitives.ReadUInt32LittleEndian(entry[8..])));
        }

        return result;
    }

    /// <summary>Interleaved RGB samples, 0–65535 (clamped, rounded).</summary>
    private static ushort[] Samples16(Tensor image, out int width, out int height)
    {
        using var scope = torch.NewDisposeScope();
        Tensor t = image.dim() == 4 ? image[0] : image;
        if (t.dim() != 3 || t.shape[0] != 3)
        {
            throw new ArgumentException($"expected a [1,3,H,W] or [3,H,W] tensor, got [{string.Join(",", image.shape)}]");
        }

        (height, width) = ((int)t.shape[1], (int)t.shape[2]);
        int[] ints = t.detach().to(torch.CPU).to_type(ScalarType.Float32).clamp(0, 1).mul(65535).round()
            .to_type(ScalarType.Int32).permute(1, 2, 0).contiguous().data<int>().ToArray();
        return [.. ints.Select(i => (ushort)i)];
    }
}
