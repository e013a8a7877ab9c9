using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace StyleTransfer.Imaging;

/// <summary>
/// ImageSharp 2.1 upsamples the subsampled chroma of a 4:2:0 or 4:2:2 JPEG by repeating each sample
/// over its 2×2 (or 2×1) block, as libjpeg does only with "fancy upsampling" off; libjpeg, and so
/// PIL, ImageMagick and the classic Lua and Python tools, interpolate it by default. The blocks are
/// colour steps at every second pixel, which the optimiser's content target and the style's
/// finest Gram statistics take for detail. <see cref="Interpolate"/> recovers each chroma sample
/// from the decoded pixels (their block's mean of Cb and Cr, in the JFIF colour space), then
/// upsamples it as libjpeg's h2v2/h2v1 fancy upsampling does (triangle filter: weights 3/4 and 1/4
/// towards the nearer and the farther sample, edges repeated) and puts it back with each pixel's own
/// luma. Decoded as libjpeg decodes by default to within rounding (a test measures it).
/// </summary>
internal static class JpegChroma
{
    /// <summary>How many bytes of a JPEG's header are read to find its frame header, at most.</summary>
    private const int MaxHeaderBytes = 4 << 20;

    /// <summary>
    /// The luma sampling factors (h, v) of a three-component YCbCr JPEG whose chroma is subsampled
    /// 2×2 (4:2:0) or 2×1 (4:2:2) against full-resolution luma, else null (grey, 4:4:4, CMYK, RGB
    /// JPEGs, other layouts, and anything unreadable, which the decoder reports itself).
    /// </summary>
    public static (int H, int V)? Subsampling(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 12, FileOptions.SequentialScan);
            return Subsampling(file);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    internal static (int H, int V)? Subsampling(Stream s)
    {
        if (s.ReadByte() != 0xFF || s.ReadByte() != 0xD8)
        {
            return null;
        }

        bool adobeRgb = false;
        long read = 2;
        while (read < MaxHeaderBytes)
        {
            int b = s.ReadByte();
            read++;
            if (b != 0xFF)
            {
                return null;
            }

            int marker;
            do
            {
                marker = s.ReadByte();
                read++;
            }
            while (marker == 0xFF);

            if (marker < 0 || marker == 0xD9 || marker == 0xDA)
            {
                return null;
            }

            if (marker is >= 0xD0 and <= 0xD7 or 0x01)
            {
                continue;
            }

            int hi = s.ReadByte(), lo = s.ReadByte();
            if (hi < 0 || lo < 0)
            {
                return null;
            }

            int length = (hi << 8) | lo;
            if (length < 2)
            {
                return null;
            }

            byte[] seg = new byte[length - 2];
            if (s.ReadAtLeast(seg, seg.Length, throwOnEndOfStream: false) != seg.Length)
            {
                return null;
            }

            read += length;
            if (marker == 0xEE && seg.Length >= 12 && seg[0] == 'A' && seg[1] == 'd' && seg[2] == 'o' && seg[3] == 'b' && seg[4] == 'e')
            {
                adobeRgb = seg[11] == 0; // transform 0: the components are R, G, B (or CMYK), not YCbCr
            }

            // Huffman baseline, extended, progressive; arithmetic-coded ones (0xC9, 0xCA) too: the upsampling is the same.
            if (marker is 0xC0 or 0xC1 or 0xC2 or 0xC9 or 0xCA)
            {
                if (seg.Length < 6 || seg[5] != 3 || seg.Length < 6 + 9 || adobeRgb)
                {
                    return null;
                }

                if (seg[6] == 'R' && seg[9] == 'G' && seg[12] == 'B')
                {
                    return null;
                }

                int yh = seg[7] >> 4, yv = seg[7] & 15;
                bool chromaOnes = seg[10] == 0x11 && seg[13] == 0x11;
                return chromaOnes && yh == 2 && yv is 1 or 2 ? (yh, yv) : null;
            }
        }

        return null;
    }

    /// <summary>
    /// Re-interpolates the chroma of <paramref name="image"/>, decoded blockwise from a JPEG with
    /// luma sampling factors <paramref name="h"/> × <paramref name="v"/> (2×2 or 2×1), in place.
    /// </summary>
    public static void Interpolate(Image<Rgb24> image, int h, int v)
    {
        int w = image.Width, ht = image.Height;
        int cw = (w + h - 1) / h, ch = (ht + v - 1) / v;
        var cb = new float[cw * ch];
        var cr = new float[cw * ch];
        var luma = new float[w * ht];
        var count = new int[cw * ch];
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < ht; y++)
            {
                Span<Rgb24> row = rows.GetRowSpan(y);
                int cy = y / v;
                for (int x = 0; x < w; x++)
                {
                    Rgb24 p = row[x];
                    float r = p.R, g = p.G, b = p.B;
                    luma[(y * w) + x] = (0.299f * r) + (0.587f * g) + (0.114f * b);
                    int i = (cy * cw) + (x / h);
                    cb[i] += (-0.168736f * r) - (0.331264f * g) + (0.5f * b);
                    cr[i] += (0.5f * r) - (0.418688f * g) - (0.081312f * b);
                    count[i]++;
                }
            }
        });

        for (int i = 0; i < cb.Length; i++)
        {
            cb[i] /= count[i];
            cr[i] /= count[i];
        }

        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < ht; y++)
            {
                // Vertically (h2v2): the nearer chroma row weighs 3, the farther 1; the edge row repeats.
                int cy = y / v;
                int cyFar = v == 1 ? cy : Math.Clamp((y % 2 == 0) ? cy - 1 : cy + 1, 0, ch - 1);
                float wNear = v == 1 ? 1f : 0.75f, wFar = 1f - wNear;
                Span<Rgb24> row = rows.GetRowSpan(y);
                for (int x = 0; x < w; x++)
                {
                    int cx = x / h;
                    int cxFar = Math.Clamp((x % 2 == 0) ? cx - 1 : cx + 1, 0, cw - 1);
                    float b = Sample(cb, cw, cx, cxFar, cy, cyFar, wNear, wFar);
                    float r = Sample(cr, cw, cx, cxFar, cy, cyFar, wNear, wFar);
                    float l = luma[(y * w) + x];
                    row[x] = new Rgb24(
                        ToByte(l + (1.402f * r)),
                        ToByte(l - (0.344136f * b) - (0.714136f * r)),
                        ToByte(l + (1.772f * b)));
                }
            }
        });
    }

    private static float Sample(float[] c, int cw, int cx, int cxFar, int cy, int cyFar, float wNear, float wFar)
    {
        float near = (wNear * c[(cy * cw) + cx]) + (wFar * c[(cyFar * cw) + cx]);
        float far = (wNear * c[(cy * cw) + cxFar]) + (wFar * c[(cyFar * cw) + cxFar]);
        return (0.75f * near) + (0.25f * far);
    }

    private static byte ToByte(float value) => (byte)Math.Clamp((int)MathF.Round(value), 0, 255);
}
