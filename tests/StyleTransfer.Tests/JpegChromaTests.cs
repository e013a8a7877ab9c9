using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using StyleTransfer.Imaging;

namespace StyleTransfer.Tests;

/// <summary>
/// 4:2:0 and 4:2:2 JPEG chroma is interpolated on load as libjpeg does by default (ImageSharp 2.1
/// repeats each chroma sample over its block).
/// </summary>
public sealed class JpegChromaTests
{
    // Two colours of equal luma (Y = 0.299R + 0.587G + 0.114B ≈ 120), so only chroma changes at the edge.
    private static readonly Rgb24 Left = new(200, 90, 80);
    private static readonly Rgb24 Right = new(60, 140, 200);

    private static string Write(TempDir dir, string name, JpegColorType color, int edgeX)
    {
        using var img = new Image<Rgb24>(64, 32);
        img.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                Span<Rgb24> row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    row[x] = x < edgeX ? Left : Right;
                }
            }
        });
        string path = dir.File(name);
        img.Save(path, new JpegEncoder { Quality = 100, ColorType = color });
        return path;
    }

    private static double Cb(Rgb24 p) => (-0.168736 * p.R) - (0.331264 * p.G) + (0.5 * p.B);

    [Fact]
    public void A420JpegIsFound()
    {
        using var dir = new TempDir();
        Assert.Equal((2, 2), JpegChroma.Subsampling(Write(dir, "a.jpg", JpegColorType.YCbCrRatio420, 32)));
    }

    [Theory]
    [InlineData(0x21, 0x11, 0x11, "2,1")] // 4:2:2
    [InlineData(0x22, 0x11, 0x11, "2,2")] // 4:2:0
    [InlineData(0x11, 0x11, 0x11, null)] // 4:4:4
    [InlineData(0x12, 0x11, 0x11, null)] // 4:4:0: not handled
    [InlineData(0x22, 0x21, 0x11, null)] // unusual chroma factors: not handled
    public void FrameHeadersAreRead(int y, int cb, int cr, string? expected)
    {
        // SOI, an APP0 segment to skip, then SOF0: precision 8, 16×16, three components.
        byte[] header = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46,
            0xFF, 0xC0, 0x00, 0x11, 8, 0, 16, 0, 16, 3, 1, (byte)y, 0, 2, (byte)cb, 1, 3, (byte)cr, 1];
        (int H, int V)? found = JpegChroma.Subsampling(new MemoryStream(header));
        Assert.Equal(expected, found is { } f ? $"{f.H},{f.V}" : null);
    }

    [Fact]
    public void A422ChromaEdgeIsInterpolatedHorizontally()
    {
        // Blockwise 2×1 chroma as a decoder repeats it: samples 0..7 left, 8..15 right (pixels 16|17 = samples 8|8).
        using var img = new Image<Rgb24>(32, 4);
        img.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                Span<Rgb24> row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    row[x] = x < 16 ? Left : Right;
                }
            }
        });
        JpegChroma.Interpolate(img, 2, 1);
        double left = Cb(Left), right = Cb(Right);
        Assert.InRange(Cb(img[15, 2]), (0.75 * left) + (0.25 * right) - 1.5, (0.75 * left) + (0.25 * right) + 1.5);
        Assert.InRange(Cb(img[16, 2]), (0.25 * left) + (0.75 * right) - 1.5, (0.25 * left) + (0.75 * right) + 1.5);
        Assert.InRange(Cb(img[13, 0]), left - 1.5, left + 1.5);
        Assert.InRange(Cb(img[18, 3]), right - 1.5, right + 1.5);
    }

    [Fact]
    public void FullChromaGreyPngAndBrokenFilesAreLeftAlone()
    {
        using var dir = new TempDir();
        Assert.Null(JpegChroma.Subsampling(Write(dir, "full.jpg", JpegColorType.YCbCrRatio444, 32)));
        Assert.Null(JpegChroma.Subsampling(Write(dir, "grey.jpg", JpegColorType.Luminance, 32)));
        using (var img = new Image<Rgb24>(8, 8))
        {
            img.Save(dir.File("a.png"), new PngEncoder());
        }

        Assert.Null(JpegChroma.Subsampling(dir.File("a.png")));
        File.WriteAllBytes(dir.File("cut.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0x40, 0x00, 1, 2]); // a segment longer than the file
        Assert.Null(JpegChroma.Subsampling(dir.File("cut.jpg")));
        Assert.Null(JpegChroma.Subsampling(dir.File("missing.jpg")));
    }

    [Fact]
    public void A420ChromaEdgeIsInterpolatedAsLibjpegDoes()
    {
        using var dir = new TempDir();

        // The edge between two chroma samples (columns 31|32 = samples 15|16): blockwise decoding
        // gives pixel 31 the left colour and 32 the right one; libjpeg's triangle filter gives
        // 3/4 of the nearer sample and 1/4 of the farther, on both sides.
        string path = Write(dir, "edge.jpg", JpegColorType.YCbCrRatio420, 32);
        using Image<Rgb24> raw = Image.Load<Rgb24>(path);
        using Image<Rgb24> loaded = ImageIO.Load(path, "image");
        double left = Cb(Left), right = Cb(Right);
        double rawAt31 = Cb(raw[31, 16]), at31 = Cb(loaded[31, 16]), at32 = Cb(loaded[32, 16]);

        Assert.InRange(rawAt31, left - 3, left + 3); // ImageSharp alone: a step
        Assert.InRange(at31, (0.75 * left) + (0.25 * right) - 3, (0.75 * left) + (0.25 * right) + 3);
        Assert.InRange(at32, (0.25 * left) + (0.75 * right) - 3, (0.25 * left) + (0.75 * right) + 3);

        // Away from the edge the colours are untouched, and luma is kept everywhere.
        Assert.InRange(Cb(loaded[8, 16]), left - 2, left + 2);
        Assert.InRange(Cb(loaded[56, 16]), right - 2, right + 2);
        for (int x = 0; x < 64; x++)
        {
            Rgb24 a = raw[x, 16], b = loaded[x, 16];
            double ya = (0.299 * a.R) + (0.587 * a.G) + (0.114 * a.B), yb = (0.299 * b.R) + (0.587 * b.G) + (0.114 * b.B);
            Assert.InRange(yb - ya, -1.5, 1.5);
        }
    }

    [Fact]
    public void AnEdgeInsideAChromaBlockIsLeftBlockwiseByTheEncoderAndSmoothed()
    {
        using var dir = new TempDir();

        // An edge at an odd column falls inside a chroma sample: the encoder averages it; the
        // interpolated decode then spreads it over the neighbouring pixels (no 2-pixel step left).
        string path = Write(dir, "odd.jpg", JpegColorType.YCbCrRatio420, 33);
        using Image<Rgb24> loaded = ImageIO.Load(path, "image");
        double step3031 = Math.Abs(Cb(loaded[31, 16]) - Cb(loaded[30, 16]));
        double step3233 = Math.Abs(Cb(loaded[33, 16]) - Cb(loaded[32, 16]));
        double total = Math.Abs(Cb(Right) - Cb(Left));
        Assert.InRange(step3031, total * 0.05, total * 0.4);
        Assert.InRange(step3233, total * 0.05, total * 0.4);
    }
}
