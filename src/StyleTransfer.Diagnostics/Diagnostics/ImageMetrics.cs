using StyleTransfer.Imaging;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Diagnostics;

/// <summary>An image's noise measures, at the size they were taken (see <see cref="ImageMetrics"/>).</summary>
/// <param name="Width">Width measured, in pixels.</param>
/// <param name="Height">Height measured, in pixels.</param>
/// <param name="Checkerboard">Checkerboard energy, 0–255 scale (at most 127.5).</param>
/// <param name="Speckle">Colour speckle, CIE a*/b* units.</param>
internal sealed record ImageMetricsResult(int Width, int Height, double Checkerboard, double Speckle);

/// <summary>
/// Two measures of pixel-level noise in a stylised image (issue 20), computed in float64 on the
/// 0–255 scale:
/// <list type="bullet">
/// <item><b>checkerboard energy</b>: the mean over positions and R, G, B of |I ∗ K|, K the 4×4
/// kernel K[i,j] = (−1)^(i+j) / 16, 'valid' convolution (positions where the kernel lies wholly
/// inside the image, (H−3)×(W−3) of them). A period-2 lattice is what it picks up: a linear ramp
/// gives exactly 0, a 1-px black/white checkerboard its maximum, 255 · 8/16 = 127.5.</item>
/// <item><b>colour speckle</b>: the mean over pixels of |c − blur(c)| for c the CIE a* and b*
/// channels (sRGB, D65; a*, b* in their own units, as ImageMagick's 8-bit Lab stores them offset by
/// 128), averaged over a* and b*; blur is a Gaussian of σ = 1 px, 7 taps (radius 3) normalised to
/// sum 1, separable, replicating the edge pixels outside the image.</item>
/// </list>
/// Files are measured after <see cref="ImageIO.LoadTensor"/> scales them to the long edge asked
/// for (Lanczos-3, as for stylising; no resampling when the long edge already matches).
/// </summary>
internal static class ImageMetrics
{
    /// <summary>Long edge, in pixels, the metrics are taken at unless told otherwise.</summary>
    public const int DefaultSize = 512;

    /// <summary>Gaussian σ of the speckle's blur, in pixels.</summary>
    public const double BlurSigma = 1.0;

    /// <summary>Taps either side of the centre in the speckle's blur.</summary>
    public const int BlurRadius = 3;

    // sRGB (IEC 61966-2-1) linear RGB to XYZ; the white point is the matrix's own white (its row
    // sums, D65), so every grey has a* = b* = 0 exactly.
    private static readonly double[,] RgbToXyz =
    {
        { 0.4124564, 0.3575761, 0.1804375 },
        { 0.2126729, 0.7151522, 0.0721750 },
        { 0.0193339, 0.1191920, 0.9503041 },
    };

    /// <summary>Loads <paramref name="path"/> at long edge <paramref name="size"/> and measures it.</summary>
    public static ImageMetricsResult MeasureFile(string path, int size = DefaultSize)
    {
        using Tensor image = ImageIO.LoadTensor(path, "image", size);
        return Measure(image);
    }

    /// <summary>Both metrics of a [1,3,H,W] RGB image in [0,1] (any float type and device), at its own size.</summary>
    public static ImageMetricsResult Measure(Tensor image) =>
        new((int)image.shape[3], (int)image.shape[2], CheckerboardEnergy(image), ColourSpeckle(image));

    /// <summary>Checkerboard energy of a [1,3,H,W] RGB image in [0,1]; H and W at least 4.</summary>
    public static double CheckerboardEnergy(Tensor image)
    {
        CheckShape(image, 4);
        using var scope = torch.NewDisposeScope();
        Tensor x = image.detach().to(ScalarType.Float64).mul(255);
        var k = new double[16];
        for (int i = 0; i < 4; i++)
        {
            for (int j = 0; j < 4; j++)
            {
                k[(i * 4) + j] = ((i + j) % 2 == 0 ? 1.0 : -1.0) / 16;
            }
        }

        Tensor kernel = torch.tensor(k, new long[] { 1, 1, 4, 4 }, ScalarType.Float64, image.device).expand(3, 1, 4, 4).contiguous();
        Tensor response = F.conv2d(x, kernel, groups: 3);
        return response.abs().mean().ToDouble();
    }

    /// <summary>Colour speckle of a [1,3,H,W] RGB image in [0,1].</summary>
    public static double ColourSpeckle(Tensor image)
    {
        CheckShape(image, 1);
        using var scope = torch.NewDisposeScope();
        Tensor lab = ToLab(image);
        Tensor ab = lab.narrow(1, 1, 2);
        Tensor blurred = GaussianBlur(ab, BlurSigma, BlurRadius);
        return (ab - blurred).abs().mean().ToDouble();
    }

    /// <summary>CIE L*a*b* (D65) of a [1,3,H,W] sRGB image in [0,1], float64 [1,3,H,W].</summary>
    public static Tensor ToLab(Tensor image)
    {
        CheckShape(image, 1);
        using var scope = torch.NewDisposeScope();
        Tensor c = image.detach().to(ScalarType.Float64).clamp(0, 1);
        Tensor linear = torch.where(c.le(0.04045), c / 12.92, c.add(0.055).div(1.055).pow(2.4));
        Tensor r = linear.narrow(1, 0, 1), g = linear.narrow(1, 1, 1), b = linear.narrow(1, 2, 1);
        var f = new Tensor[3];
        for (int row = 0; row < 3; row++)
        {
            double white = RgbToXyz[row, 0] + RgbToXyz[row, 1] + RgbToXyz[row, 2];
            Tensor t = ((r * RgbToXyz[row, 0]) + (g * RgbToXyz[row, 1]) + (b * RgbToXyz[row, 2])) / white;
            const double delta = 6.0 / 29;
            f[row] = torch.where(t.gt(delta * delta * delta), t.pow(1.0 / 3), (t / (3 * delta * delta)) + (4.0 / 29));
        }

        Tensor l = (f[1] * 116) - 16;
        Tensor a = (f[0] - f[1]) * 500;
        Tensor bb = (f[1] - f[2]) * 200;
        return torch.cat([l, a, bb], 1).MoveToOuterDisposeScope();
    }

    /// <summary>Separable Gaussian blur of [N,C,H,W] (float64): 2·radius+1 taps normalised to 1, edges replicated.</summary>
    internal static Tensor GaussianBlur(Tensor x, double sigma, int radius)
    {
        using var scope = torch.NewDisposeScope();
        var taps = new double[(2 * radius) + 1];
        for (int i = -radius; i <= radius; i++)
        {
            taps[i + radius] = Math.Exp(-(i * i) / (2 * sigma * sigma));
        }

        double sum = taps.Sum();
        long channels = x.shape[1];
        Tensor t = torch.tensor(taps.Select(v => v / sum).ToArray(), ScalarType.Float64, x.device);
        Tensor horizontal = t.reshape(1, 1, 1, taps.Length).expand(channels, 1, 1, taps.Length).contiguous();
        Tensor vertical = t.reshape(1, 1, taps.Length, 1).expand(channels, 1, taps.Length, 1).contiguous();
        Tensor padded = F.pad(x.to(ScalarType.Float64), [radius, radius, radius, radius], PaddingModes.Replicate);
        Tensor y = F.conv2d(F.conv2d(padded, horizontal, groups: channels), vertical, groups: channels);
        return y.MoveToOuterDisposeScope();
    }

    private static void CheckShape(Tensor image, int minSide)
    {
        if (image.dim() != 4 || image.shape[0] != 1 || image.shape[1] != 3 || image.shape[2] < minSide || image.shape[3] < minSide)
        {
            throw new ArgumentException($"expected a [1,3,H,W] RGB image with H, W >= {minSide}, got [{string.Join(",", image.shape)}]", nameof(image));
        }
    }
}
