using StyleTransfer.Diagnostics;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>The noise measures of issue 20 on synthetic images whose values are known in closed form.</summary>
public sealed class ImageMetricsTests
{
    [Fact]
    public void AOnePixelBlackAndWhiteCheckerboardHasTheLargestEnergyAndNoSpeckle()
    {
        // Each 4x4 window holds eight 255s under -1 (or +1) and eight 0s: |±8 · 255| / 16 = 127.5.
        using Tensor image = Image(48, 40, (x, y, _) => (x + y) % 2);
        ImageMetricsResult m = ImageMetrics.Measure(image);
        Assert.Equal((48, 40), (m.Width, m.Height));
        Assert.Equal(127.5, m.Checkerboard, 9);
        Assert.Equal(0, m.Speckle, 9);
    }

    [Fact]
    public void AFlatColourHasNeither()
    {
        using Tensor image = Image(33, 20, (_, _, c) => new[] { 0.8, 0.3, 0.1 }[c]);
        Assert.Equal(0, ImageMetrics.CheckerboardEnergy(image), 9);
        Assert.Equal(0, ImageMetrics.ColourSpeckle(image), 9);
    }

    [Fact]
    public void ALinearRampHasNoCheckerboardAndASmoothColourGradientAlmostNoSpeckle()
    {
        using Tensor ramp = Image(64, 48, (x, y, c) => (0.2 + (0.01 * x) + (0.004 * y)) * (c + 1) / 3);
        Assert.Equal(0, ImageMetrics.CheckerboardEnergy(ramp), 9);

        // Red to blue over 64 px: a* and b* change by 1-2.4 units per pixel, and what the blur
        // removes is a twentieth of a unit.
        using Tensor gradient = Image(64, 48, (x, y, c) => c switch { 0 => 1 - (x / 63.0), 1 => 0.3 + (y / 200.0), _ => x / 63.0 });
        Assert.Equal(0, ImageMetrics.CheckerboardEnergy(gradient), 9);
        double speckle = ImageMetrics.ColourSpeckle(gradient);
        Assert.InRange(speckle, 0, 0.1); // 0.051: half from the 3-px borders, half from the curvature of a*, b*
    }

    [Fact]
    public void RandomColourNoiseHasLargeSpeckleAndTheExpectedCheckerboardEnergy()
    {
        using var gen = new Generator(7);
        using Tensor noise = torch.rand([1, 3, 128, 128], generator: gen, dtype: ScalarType.Float64);
        ImageMetricsResult m = ImageMetrics.Measure(noise);

        // Independent uniform pixels: a sum of 16 of them with ±1 has σ = 16^½ · 255/12^½, and
        // E|·|/16 = 14.73 (about σ/16 · (2/π)^½ = 14.69; 14.73 by Monte Carlo on 2M sums).
        Assert.Equal(14.73, m.Checkerboard, 0.5);

        // Every pixel's a*, b* independent of its neighbours': tens of units (the same noise in
        // numpy gives about 33), against 1-5 for stylised photographs.
        Assert.InRange(m.Speckle, 25, 40);
    }

    [Fact]
    public void LabOfTheSrgbPrimariesMatchesTheStandardValues()
    {
        // CIE L*a*b* (D65) of sRGB red, green, blue and mid grey (128).
        using Tensor image = torch.tensor(new double[] { 1, 0, 0, 128 / 255.0, 0, 1, 0, 128 / 255.0, 0, 0, 1, 128 / 255.0 }, new long[] { 1, 3, 1, 4 });
        using Tensor lab = ImageMetrics.ToLab(image);
        double[] v = lab.data<double>().ToArray();
        double[] expected = [53.24, 87.73, 32.30, 53.59, 80.09, -86.18, 79.19, 0, 67.20, 83.18, -107.86, 0];
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], v[i], 0.02);
        }
    }

    [Fact]
    public void TheSpeckleBlurIsAGaussianOfSigmaOneOverSevenTapsWithReplicatedEdges()
    {
        using Tensor impulse = torch.zeros([1, 1, 9, 9], ScalarType.Float64);
        impulse[0, 0, 4, 4] = torch.tensor(1.0, ScalarType.Float64);
        using Tensor blurred = ImageMetrics.GaussianBlur(impulse, 1, 3);
        double norm = Enumerable.Range(-3, 7).Sum(i => Math.Exp(-i * i / 2.0));
        Assert.Equal(1 / (norm * norm), blurred[0, 0, 4, 4].ToDouble(), 12);
        Assert.Equal(Math.Exp(-0.5) / (norm * norm), blurred[0, 0, 4, 5].ToDouble(), 12);
        Assert.Equal(Math.Exp(-4.5 - 4.5) / (norm * norm), blurred[0, 0, 1, 1].ToDouble(), 12);
        Assert.Equal(0, blurred[0, 0, 0, 0].ToDouble(), 12);

        // An edge pixel sees copies of itself beyond the border: a step at the border stays a step.
        using Tensor step = torch.ones([1, 1, 5, 5], ScalarType.Float64);
        using Tensor same = ImageMetrics.GaussianBlur(step, 1, 3);
        Assert.Equal(1, same.min().ToDouble(), 12);
    }

    [Fact]
    public void TheStyleLossIsTheOneARunReportsAtItsFirstIterationFromTheImage()
    {
        using var dir = new TempDir();
        string image = TestImages.Save(TestImages.Scene(60, 40), dir.File("image.png"));
        string style = TestImages.Save(TestImages.Stripes(48, 48), dir.File("style.png"));
        StyleTransferOptions options = (NetworkFactory.DefaultOptions("vgg19") with { WeightsPath = TestPaths.NarrowPth, Size = 40, Threads = 2 }).Validate();
        using var meter = new StyleLossMeter(style, options);
        Assert.Equal((40, 40), meter.StyleSize);
        using Tensor loaded = Imaging.ImageIO.LoadTensor(image, "image", 40);
        double measured = meter.Measure(loaded);

        using StylizeResult run = Stylizer.StylizeFiles(image, style, dir.File("out.png"), options with { Iterations = 1, Init = InitMode.Content, Seed = 1 });
        Assert.Equal(run.History[0].Style, measured, run.History[0].Style * 1e-6);
        Assert.True(measured > 0);
    }

    /// <summary>A [1,3,H,W] float64 image with values value(x, y, channel) in [0,1].</summary>
    private static Tensor Image(int width, int height, Func<int, int, int, double> value)
    {
        var data = new double[3 * width * height];
        for (int c = 0; c < 3; c++)
        {
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    data[(((c * height) + y) * width) + x] = value(x, y, c);
                }
            }
        }

        return torch.tensor(data, new long[] { 1, 3, height, width });
    }
}
