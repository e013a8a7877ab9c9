using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Imaging;

/// <summary>
/// Reads images into [1,3,H,W] float tensors (RGB in [0,1]) and writes tensors back as PNG or
/// JPEG, atomically. The only place in the library that knows about image files.
/// </summary>
public static class ImageIO
{
    /// <summary>Smallest width or height accepted for an input image.</summary>
    public const int MinSide = 16;

    /// <summary>Largest input accepted, in pixels, before decoding (a 16k x 16k image).</summary>
    public const long MaxInputPixels = 16384L * 16384L;

    /// <summary>Bytes per pixel that decoding an image may take at its peak (the decoded RGB and the decoder's planes), for the memory guard.</summary>
    public const long DecodeBytesPerPixel = 16;

    /// <summary>
    /// Reads only the header: checks that the file is a whole image of a supported format within
    /// the size limits and returns its stored width and height, without decoding the pixels.
    /// </summary>
    public static (int Width, int Height) Probe(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new StyleTransferException(Directory.Exists(path)
                ? $"{what} '{path}' is a folder, not an image file"
                : $"{what} '{path}' does not exist");
        }

        return Guard(path, what, () =>
        {
            IImageInfo? info = Image.Identify(path, out IImageFormat? format);
            if (info == null || format == null)
            {
                throw new StyleTransferException($"{what} '{path}' is not an image in a supported format (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP)");
            }

            if (IsTruncated(path, format))
            {
                throw new StyleTransferException($"{what} '{path}' is truncated (its {format.Name} end marker is missing)");
            }

            if ((long)info.Width * info.Height > MaxInputPixels)
            {
                throw new StyleTransferException($"{what} '{path}' is too large to load ({info.Width}x{info.Height}; at most {MaxInputPixels / 1_000_000} megapixels)");
            }

            if (info.Width < MinSide || info.Height < MinSide)
            {
                throw new StyleTransferException($"{what} '{path}' is too small ({info.Width}x{info.Height}; both sides must be at least {MinSide} px)");
            }

            if (format.Name == "PNG" && PngDataTooShort(path, info.Width, info.Height) is { } bomb)
            {
                throw new StyleTransferException($"{what} '{path}' is corrupt or truncated ({bomb})");
            }

            if (format.Name == "JPEG" && JpegScan.Check(path) is { } problem)
            {
                throw new StyleTransferException($"{what} '{path}' is corrupt or truncated ({problem})");
            }

            return (info.Width, info.Height);
        });
    }

    /// <summary>Loads an image file, honouring its EXIF orientation. <paramref name="what"/> names it in errors ("content image").</summary>
    public static Image<Rgb24> Load(string path, string what)
    {
        Probe(path, what);
        return Guard(path, what, () =>
        {
            Image<Rgb24> image = Image.Load<Rgb24>(path);
            if (JpegChroma.Subsampling(path) is { } sampling)
            {
                // Before orienting: the chroma grid is the stored image's.
                JpegChroma.Interpolate(image, sampling.H, sampling.V);
            }

            image.Mutate(x => x.AutoOrient());
            return image;
        });
    }

    private static T Guard<T>(string path, string what, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (UnknownImageFormatException)
        {
            throw new StyleTransferException($"{what} '{path}' is not an image in a supported format (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP)");
        }
        catch (InvalidImageContentException e)
        {
            throw new StyleTransferException($"{what} '{path}' is corrupt or truncated ({FirstLine(e.Message)})");
        }
        catch (ImageFormatException e)
        {
            throw new StyleTransferException($"{what} '{path}' could not be decoded ({FirstLine(e.Message)})");
        }
        catch (UnauthorizedAccessException)
        {
            throw new StyleTransferException($"{what} '{path}' cannot be read (permission denied)");
        }
        catch (IOException e)
        {
            throw new StyleTransferException($"{what} '{path}' cannot be read ({FirstLine(e.Message)})");
        }
    }

    /// <summary>Loads an image file and scales it so its long edge is <paramref name="longEdge"/> pixels.</summary>
    public static Tensor LoadTensor(string path, string what, int longEdge)
    {
        using Image<Rgb24> image = Load(path, what);
        (int w, int h) = ScaledSize(image.Width, image.Height, longEdge);
        if (w != image.Width || h != image.Height)
        {
            image.Mutate(x => x.Resize(w, h, KnownResamplers.Lanczos3));
        }

        return ToTensor(image);
    }

    /// <summary>The size with the same aspect ratio whose long edge is <paramref name="longEdge"/> (each side at least 1).</summary>
    public static (int Width, int Height) ScaledSize(int width, int height, int longEdge)
    {
        double scale = (double)longEdge / Math.Max(width, height);
        return (Math.Max(1, (int)Math.Round(width * scale)), Math.Max(1, (int)Math.Round(height * scale)));
    }

    /// <summary>RGB24 pixels to a [1,3,H,W] float32 tensor in [0,1] on the CPU.</summary>
    public static Tensor ToTensor(Image<Rgb24> image)
    {
        int w = image.Width, h = image.Height;
        var pixels = new Rgb24[w * h];
        image.CopyPixelDataTo(pixels);
        var planar = new float[3 * w * h];
        int plane = w * h;
        for (int i = 0; i < plane; i++)
        {
            planar[i] = pixels[i].R / 255f;
            planar[plane + i] = pixels[i].G / 255f;
            planar[(2 * plane) + i] = pixels[i].B / 255f;
        }

        return torch.tensor(planar, new long[] { 1, 3, h, w });
    }

    /// <summary>A [1,3,H,W] or [3,H,W] tensor (RGB, [0,1], any device) to an image; values are clamped and rounded.</summary>
    public static Image<Rgb24> ToImage(Tensor image)
    {
        using var scope = torch.NewDisposeScope();
        Tensor t = image.dim() == 4 ? image[0] : image;
        if (t.dim() != 3 || t.shape[0] != 3)
        {
            throw new ArgumentException($"expected a [1,3,H,W] or [3,H,W] tensor, got [{string.Join(",", image.shape)}]");
        }

        int h = (int)t.shape[1], w = (int)t.shape[2];
        byte[] bytes = t.detach().to(torch.CPU).to_type(ScalarType.Float32)
            .clamp(0, 1).mul(255).round().to_type(ScalarType.Byte)
            .permute(1, 2, 0).contiguous().data<byte>().ToArray();
        return Image.LoadPixelData<Rgb24>(bytes, w, h);
    }

    /// <summary>Checks that <paramref name="path"/> names a PNG or JPEG in a folder that exists.</summary>
    public static void CheckOutputPath(string path, string what = "output")
    {
        _ = EncoderFor(path, what);
        AtomicFile.CheckPath(path, what);
    }

    /// <summary>Writes a [1,3,H,W] or [3,H,W] tensor (RGB in [0,1]) as PNG or JPEG (by extension) through a temporary file and a rename.</summary>
    public static void Save(Tensor image, string path) => Save(image, path, null);

    /// <summary>Writes the image as PNG or JPEG (by extension) through a temporary file and a rename (so a file appears under its name only when whole, and a link planted there is replaced, not followed).</summary>
    public static void Save(Image<Rgb24> image, string path) => Save(image, path, null);

    /// <summary>Writes the image as PNG or JPEG (by extension) through a temporary file and a rename; with <paramref name="batch"/>, together with the batch's other files.</summary>
    internal static void Save(Tensor image, string path, FileBatch? batch)
    {
        using Image<Rgb24> img = ToImage(image);
        Save(img, path, batch);
    }

    /// <summary>Writes the image as PNG or JPEG (by extension) through a temporary file and a rename; with <paramref name="batch"/>, together with the batch's other files.</summary>
    internal static void Save(Image<Rgb24> image, string path, FileBatch? batch)
    {
        IImageEncoder encoder = EncoderFor(path, "output");
        if (batch is null)
        {
            AtomicFile.Write(path, stream => image.Save(stream, encoder));
        }
        else
        {
            batch.Add(path, stream => image.Save(stream, encoder));
        }
    }

    /// <summary>
    /// ImageSharp decodes a cut-off JPEG or PNG without complaint, filling the rest with grey; a
    /// style transfer of half a picture is not what anyone wants, so check the end markers.
    /// </summary>
    private static bool IsTruncated(string path, IImageFormat format)
    {
        using FileStream f = File.OpenRead(path);
        int tailLength = (int)Math.Min(f.Length, 4096);
        var tail = new byte[tailLength];
        f.Seek(-tailLength, SeekOrigin.End);
        f.ReadExactly(tail);
        ReadOnlySpan<byte> t = tail.AsSpan().TrimEnd((byte)0).TrimEnd("\r\n "u8);
        return format.Name switch
        {
            "JPEG" => t.LastIndexOf((ReadOnlySpan<byte>)[0xFF, 0xD9]) < 0,
            "PNG" => t.LastIndexOf("IEND"u8) < 0,
            _ => false,
        };
    }

    /// <summary>
    /// Deflate compresses at most 1032:1, so a PNG whose IDAT chunks hold fewer than 1/1032 of its
    /// declared scanlines' bytes cannot be whole (a decompression bomb's header on a few bytes of
    /// data): refused before decoding. Reads the chunk headers only.
    /// </summary>
    private static string? PngDataTooShort(string path, int width, int height)
    {
        using FileStream f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[8];
        Span<byte> ihdr = stackalloc byte[13];
        f.Position = 8;
        long idat = 0;
        int bitsPerPixel = 0;
        while (f.Position + 8 <= f.Length)
        {
            f.ReadExactly(head);
            long length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(head);
            if (head[4..].SequenceEqual("IHDR"u8) && length >= 13)
            {
                f.ReadExactly(ihdr);
                int channels = ihdr[9] switch { 2 => 3, 4 => 2, 6 => 4, _ => 1 };
                bitsPerPixel = ihdr[8] * channels;
                f.Position += length - 13 + 4;
                continue;
            }

            if (head[4..].SequenceEqual("IDAT"u8))
            {
                idat += length;
            }

            f.Position += length + 4;
        }

        long raw = height * (1 + ((((long)width * bitsPerPixel) + 7) / 8));
        return (idat * 1032) + 4096 < raw ? $"its {idat} bytes of image data cannot hold {width}x{height} pixels" : null;
    }

    private static IImageEncoder EncoderFor(string path, string what)
    {
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".png" => new PngEncoder(),
            ".jpg" or ".jpeg" => new JpegEncoder { Quality = 95 },
            _ => throw new StyleTransferException($"{what} '{path}' must end in .png, .jpg or .jpeg"),
        };
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();
}
