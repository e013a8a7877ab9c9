using StyleTransfer.Losses;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>The parts of the default recipe that keep outputs clean and the same at every size: anti-aliased input, size-invariant losses, the scale ladder.</summary>
public sealed class QualityRecipeTests
{
    public QualityRecipeTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void TheBinomialFilterMapsATwoPixelCheckerboardToFlatGrey()
    {
        using var scope = torch.NewDisposeScope();
        Tensor board = (torch.arange(16).reshape(16, 1) + torch.arange(16).reshape(1, 16)).remainder(2).to(ScalarType.Float32).expand(1, 3, 16, 16).contiguous();
        Tensor blurred = AntiAliasedInput.Blur(board, 3);
        Assert.Equal(board.shape, blurred.shape);

        // Interior: every output is (4·v + 4·(1−v)·… ) / 16 = 0.5 exactly; the border repeats edge pixels.
        Tensor interior = blurred[.., .., 1..^1, 1..^1];
        Assert.Equal(0.5, interior.min().ToDouble(), 6);
        Assert.Equal(0.5, interior.max().ToDouble(), 6);

        // A smooth ramp passes unchanged in the interior (the filter sums to 1 and is symmetric).
        Tensor ramp = torch.linspace(0, 1, 16).reshape(1, 1, 1, 16).expand(1, 3, 16, 16).contiguous();
        Tensor rampOut = AntiAliasedInput.Blur(ramp, 3);
        Assert.True((rampOut - ramp)[.., .., .., 1..^1].abs().max().ToDouble() < 1e-6);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void TheBlurIsTheBinomialKernelWithEdgesRepeated(int taps)
    {
        // The shifted weighted sums against the filter written out: replicate padding, then a
        // depthwise convolution with the [1,1,taps,taps] binomial kernel; values and gradients.
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(11);
        Tensor image = torch.rand(new long[] { 1, 2, 13, 17 }, generator: gen);
        Tensor weights = torch.rand(new long[] { 1, 2, 13, 17 }, generator: gen);
        long pad = taps / 2;
        Tensor kernel = AntiAliasedInput.Binomial(taps).expand(2, 1, taps, taps);
        Tensor viaConv = image.clone().requires_grad_(true);
        Tensor expected = nn.functional.conv2d(nn.functional.pad(viaConv, [pad, pad, pad, pad], PaddingModes.Replicate), kernel, groups: 2);
        Tensor viaBlur = image.clone().requires_grad_(true);
        Tensor blurred = AntiAliasedInput.Blur(viaBlur, taps);
        Assert.Equal(expected.shape, blurred.shape);
        Assert.True((blurred - expected).abs().max().ToDouble() < 1e-6);
        (expected * weights).sum().backward();
        (blurred * weights).sum().backward();
        Assert.True((viaBlur.grad! - viaConv.grad!).abs().max().ToDouble() < 1e-6);
        Assert.Equal(taps == 3 ? 1.0 / 16 : 1.0 / 256, AntiAliasedInput.Binomial(taps)[0, 0, 0, 0].ToDouble(), 9);
    }

    [Fact]
    public void TheFilterKeepsFlatColoursAndRemovesAColourCheckerboardOfConstantLuminance()
    {
        using var scope = torch.NewDisposeScope();
        Tensor flat = torch.tensor(new float[] { 0.8f, 0.3f, 0.1f }).reshape(1, 3, 1, 1).expand(1, 3, 12, 12).contiguous();
        Assert.True((AntiAliasedInput.Filter(flat) - flat).abs().max().ToDouble() < 1e-6);

        // Two colours of equal BT.601 luminance (0.5) in a 1-pixel checkerboard: pure chroma at the Nyquist frequency.
        Tensor board = (torch.arange(12).reshape(12, 1) + torch.arange(12).reshape(1, 12)).remainder(2).to(ScalarType.Float32);
        Tensor magenta = torch.tensor(new float[] { 0.9f, 0.5f - (0.4f * 0.299f / 0.587f), 0.5f }).reshape(3, 1, 1);
        Tensor luma = (0.299f * magenta[0]) + (0.587f * magenta[1]) + (0.114f * magenta[2]);
        Assert.Equal(0.5, luma.ToDouble(), 5);
        Tensor green = (2 * 0.5f) - magenta;
        Tensor image = ((board * magenta) + ((1 - board) * green)).unsqueeze(0);
        Tensor filtered = AntiAliasedInput.Filter(image)[.., .., 2..^2, 2..^2];
        Assert.True((filtered - 0.5f).abs().max().ToDouble() < 1e-5, "the colour checkerboard survived the filter");
    }

    [Fact]
    public void InitNoiseMixesTheSeedsNoiseStartIntoTheContentStart()
    {
        using var scope = torch.NewDisposeScope();
        Tensor content = TestImages.SceneTensor(32, 24);
        Tensor noise = Stylizer.InitialImage(InitMode.Noise, (24, 32), content, null, 7);
        Assert.Equal(0.0, (Stylizer.InitialImage(InitMode.Content, (24, 32), content, null, 7) - content).abs().max().ToDouble());
        Tensor mixed = Stylizer.InitialImage(InitMode.Content, (24, 32), content, null, 7, 0.25);
        Assert.True((mixed - ((0.75f * content) + (0.25f * noise))).abs().max().ToDouble() < 1e-6);
        Assert.True((mixed - content).abs().max().ToDouble() > 0.05, "no noise was mixed in");

        // A noise start is the seed's noise whatever the share, and equals a content start mixed with all noise:
        // ResNet-18's default, a noise start (docs/quality.md), is exactly what --init content --init-noise 1 gave.
        Assert.Equal(0.0, (Stylizer.InitialImage(InitMode.Noise, (24, 32), content, null, 7, 0.25) - noise).abs().max().ToDouble());
        Assert.Equal(0.0, (Stylizer.InitialImage(InitMode.Content, (24, 32), content, null, 7, 1) - noise).abs().max().ToDouble());
        Assert.Equal(0.0, new StyleTransferOptions { Network = "resnet18" }.InitNoise);
        Assert.Equal(0.0, new StyleTransferOptions { Network = "vgg19" }.InitNoise);
        Assert.Equal(0.5, new StyleTransferOptions { Network = "resnet18", Init = InitMode.Content, InitNoise = 0.5 }.InitNoise);
    }

    [Fact]
    public void ResNet18StartsFromNoiseWithAContentWeightThatHoldsThePhotograph()
    {
        // The sixth session's default was a half-photograph start with α = 1; the seventh's is the paper's noise
        // start with α = 16 (docs/quality.md, "A noise start"). VGG-19 keeps the paper's α = 1.
        var resnet = new StyleTransferOptions { Network = "resnet18" };
        Assert.Equal(InitMode.Noise, resnet.Init);
        Assert.Equal(16.0, resnet.ContentWeight);
        Assert.Equal(1e8, resnet.StyleWeight);
        Assert.Equal(InitMode.Noise, new StyleTransferOptions().Init);
        Assert.Equal(1.0, new StyleTransferOptions().ContentWeight);
        Assert.Equal(2.0, (resnet with { ContentWeight = 2 }).ContentWeight);
        Assert.Equal(16.0, (new StyleTransferOptions() with { Network = "resnet18" }).ContentWeight);

        // --init-noise with a noise start would do nothing: it is refused, with the way out.
        var bad = Assert.Throws<StyleTransferException>(() => (resnet with { InitNoise = 0.5 }).Validate());
        Assert.Equal("InitNoise mixes noise into a photograph or painting start, and Init = noise starts from noise already: add Init = content or leave InitNoise out", bad.Message);
        (resnet with { InitNoise = 0 }).Validate();
        (resnet with { Init = InitMode.Content, InitNoise = 0.5 }).Validate();
    }

    [Fact]
    public void TheWrappedNetworkCannotSeeACheckerboardAddedToTheImage()
    {
        using var scope = torch.NewDisposeScope();
        using var net = new AntiAliasedInput(Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg));
        Tensor image = TestImages.SceneTensor(32, 32);
        Tensor board = (torch.arange(32).reshape(32, 1) + torch.arange(32).reshape(1, 32)).remainder(2).to(ScalarType.Float32) - 0.5f;
        Tensor noisy = image + (0.2f * board.expand(1, 3, 32, 32));
        Tensor a = net.Extract(image, ["relu1_1"])["relu1_1"];
        Tensor b = net.Extract(noisy, ["relu1_1"])["relu1_1"];

        // relu1_1 is a 3×3 convolution of the filtered image (5×5 on chroma): away from a 3-pixel border it is unchanged.
        double inner = (a - b)[.., .., 3..^3, 3..^3].abs().max().ToDouble();
        Assert.True(inner < 1e-5, $"interior features moved by {inner:E2}");

        // Without the filter the same checkerboard moves them a lot.
        using Vgg19 plain = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        double seen = (plain.Extract(image, ["relu1_1"])["relu1_1"] - plain.Extract(noisy, ["relu1_1"])["relu1_1"]).abs().max().ToDouble();
        Assert.True(seen > 1e-2, $"plain network moved by only {seen:E2}");
    }

    [Theory]
    [InlineData(64, 43)]
    [InlineData(32, 22)]
    public void SizeInvariantLossesArePerPixelScaledToA512By512Image(int width, int height)
    {
        StyleTransferOptions o = StylizerTests.Base with { Iterations = 1, Init = InitMode.Noise };
        Assert.Equal(1.0, o.PixelLossScale(height, width));
        Assert.Equal(512.0 * 512 / (height * width), (o with { SizeInvariant = true }).PixelLossScale(height, width), 12);

        using StylizeResult sum = StylizerTests.Run(o with { TvWeight = 1 }, width: width, height: height);
        using StylizeResult perPixel = StylizerTests.Run(o with { TvWeight = 1, SizeInvariant = true }, width: width, height: height);
        double factor = 512.0 * 512 / (height * width);
        IterationReport s = sum.History[0], p = perPixel.History[0];
        Assert.Equal(s.Content * factor, p.Content, s.Content * factor * 1e-5);
        Assert.Equal(s.Tv * factor, p.Tv, s.Tv * factor * 1e-4);
        Assert.Equal(s.Style, p.Style, s.Style * 1e-6);
    }

    [Fact]
    public void ChromaTotalVariationIsZeroForAnyGreyImageAndCountsColourEdges()
    {
        using var scope = torch.NewDisposeScope();
        Tensor grey = torch.rand(1, 1, 16, 16, generator: new Generator(5)).expand(1, 3, 16, 16).contiguous();
        Assert.True(TotalVariation.Compute(grey).ToDouble() > 1, "the grey test image has no edges");
        Assert.True(TotalVariation.ComputeChroma(grey).ToDouble() < 1e-9);

        // One vertical edge between two colours of equal luminance: B−Y changes by ΔB, R−Y by ΔR, 16 rows.
        Tensor left = torch.tensor(new float[] { 0.9f, 0.5f - (0.4f * 0.299f / 0.587f), 0.5f }).reshape(1, 3, 1, 1);
        Tensor right = 1 - left;
        Tensor image = torch.cat([left.expand(1, 3, 16, 8), right.expand(1, 3, 16, 8)], 3);
        double dr = 1 - (2 * 0.9), db = 0;
        Assert.Equal(16 * ((dr * dr) + (db * db)), TotalVariation.ComputeChroma(image).ToDouble(), 4);
    }

    [Fact]
    public void TheChromaTermEntersTheTotalWithItsWeightAndThePixelScale()
    {
        StyleTransferOptions o = StylizerTests.Base with { Iterations = 1, Init = InitMode.Content, SizeInvariant = true };
        using StylizeResult off = StylizerTests.Run(o);
        using StylizeResult on = StylizerTests.Run(o with { TvChromaWeight = 3 });
        using Tensor content = TestImages.SceneTensor(64, 43);
        double expected = 3 * o.PixelLossScale(43, 64) * TotalVariation.ComputeChroma(content).ToDouble();
        Assert.True(expected > 0);
        Assert.Equal(off.History[0].Total + expected, on.History[0].Total, expected * 1e-4);
        Assert.Equal(off.History[0].Tv, on.History[0].Tv);
    }

    [Theory]
    [InlineData(512, 256, new[] { 256, 362, 512 })]
    [InlineData(1024, 256, new[] { 256, 362, 512, 724, 1024 })]
    [InlineData(300, 256, new[] { 300 })]
    [InlineData(512, 128, new[] { 128, 181, 256, 362, 512 })]
    public void AutoScalesStartAtTheScaleStart(int size, int start, int[] expected)
    {
        var o = new StyleTransferOptions { Size = size, Scales = StyleTransferOptions.AutoScales, ScaleStart = start };
        Assert.Equal(expected, o.Validate().ScaleSizes);
    }

    [Theory]
    [InlineData(512, new[] { 75, 75, 150 })]
    [InlineData(1024, new[] { 75, 75, 75, 75, 150 })]
    [InlineData(2048, new[] { 75, 75, 75, 75, 75, 38, 38 })]
    [InlineData(3840, new[] { 75, 75, 75, 75, 43, 21, 20, 20 })]
    public void ScalesAboveTheTaperGetIterationsInProportionToTheirPixels(int size, int[] expected)
    {
        StyleTransferOptions o = NetworkFactory.DefaultOptions("resnet18") with { Size = size };
        Assert.Equal(1024, o.IterationTaper);
        int count = o.Validate().ScaleSizes.Count;
        Assert.Equal(expected, Enumerable.Range(0, count).Select(k => o.IterationsAtScale(k, count)));
        Assert.Equal(expected.Sum(), o.TotalIterations);

        // Off: every smaller scale gets half of the last scale's share, as before.
        StyleTransferOptions off = o with { IterationTaper = 0 };
        Assert.Equal(Enumerable.Range(0, count).Select(k => k == count - 1 ? 150 : 75), Enumerable.Range(0, count).Select(k => off.IterationsAtScale(k, count)));
    }

    [Fact]
    public void ASingleScaleIsNeverTapered()
    {
        StyleTransferOptions o = NetworkFactory.DefaultOptions("resnet18") with { Size = 3840, Scales = 1 };
        Assert.Equal(150, o.IterationsAtScale(0, 1));
        Assert.Equal(0, NetworkFactory.DefaultOptions("vgg19").IterationTaper);
    }

    [Fact]
    public void ATaperBelowTheSmallestScaleIsRefused()
    {
        var e = Assert.Throws<StyleTransferException>(() => new StyleTransferOptions { IterationTaper = 16 }.Validate());
        Assert.Equal("--iteration-taper must be 0 (off) or at least 32 px, not 16", Cli.OptionFlags.Message(e));
    }

    [Fact]
    public void AScaleStartBelowTheSmallestScaleIsRefused()
    {
        var e = Assert.Throws<StyleTransferException>(() => new StyleTransferOptions { ScaleStart = 16 }.Validate());
        Assert.Equal("--scale-start must be at least 32 px, not 16", Cli.OptionFlags.Message(e));
    }

    [Fact]
    public void AnchoredTapsAreTheLayersOfTheImageScaledToTheAnchor()
    {
        using var scope = torch.NewDisposeScope();
        using Vgg19 plain = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        using var anchored = new AnchoredTaps(plain, 0.5);
        Assert.Contains("relu2_1@anchor", anchored.TapNames);
        Tensor image = TestImages.SceneTensor(64, 48);
        Dictionary<string, Tensor> f = anchored.Extract(image, ["relu2_1", "relu2_1@anchor"]);

        Tensor small = torch.nn.functional.avg_pool2d(image, 2);
        Tensor expected = plain.Extract(small, ["relu2_1"])["relu2_1"];
        Assert.Equal(new long[] { 1, plain.Extract(image, ["relu2_1"])["relu2_1"].shape[1], 12, 16 }, f["relu2_1@anchor"].shape);
        Assert.True((f["relu2_1@anchor"] - expected).abs().max().ToDouble() < 1e-6);
        Assert.True((f["relu2_1"] - plain.Extract(image, ["relu2_1"])["relu2_1"]).abs().max().ToDouble() < 1e-6);

        // Not owned: the wrapped network still works after the wrapper is disposed.
        anchored.Dispose();
        Assert.Equal(expected.shape, plain.Extract(small, ["relu2_1"])["relu2_1"].shape);
    }

    [Theory]
    [InlineData(512, false)]
    [InlineData(516, false)]
    [InlineData(724, true)]
    [InlineData(1024, true)]
    public void TheStyleAnchorSplitsTheStyleWeightAboveTheAnchorOnly(int longEdge, bool anchored)
    {
        using Vgg19 net = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        var o = new StyleTransferOptions { StyleLayers = ["relu1_1", "relu2_1"], StyleLayerWeights = [0.25, 0.75], StyleAnchor = 512 };
        (IFeatureNetwork n, StyleTransferOptions a) = Stylizer.Anchor(net, o, longEdge);
        if (!anchored)
        {
            Assert.Same(net, n);
            Assert.Same(o, a);
            return;
        }

        using var wrapper = Assert.IsType<AnchoredTaps>(n);
        Assert.Equal(512.0 / longEdge, wrapper.Factor, 12);
        Assert.Equal(["relu1_1", "relu2_1", "relu1_1@anchor", "relu2_1@anchor"], a.StyleLayers);
        Assert.Equal([0.125, 0.375, 0.125, 0.375], a.EffectiveStyleLayerWeights);
        Assert.Same(net, Stylizer.Anchor(net, o with { StyleAnchor = 0 }, longEdge).Network);
    }

    [Fact]
    public void AStyleAnchorBelowTheSmallestScaleIsRefused()
    {
        var e = Assert.Throws<StyleTransferException>(() => new StyleTransferOptions { StyleAnchor = 20 }.Validate());
        Assert.Equal("--style-anchor must be 0 (off) or at least 32 px, not 20", Cli.OptionFlags.Message(e));
    }
}
