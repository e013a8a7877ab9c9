using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>
/// Issue 5's pipeline: colour preservation, coarse-to-fine scales, first-conv padding and
/// checkpoint/resume, on the narrow fixture networks and small images.
/// </summary>
public sealed class PipelineTests(ITestOutputHelper output)
{
    private static readonly StyleTransferOptions Base = new StyleTransferOptions { Size = 64, Iterations = 10, Seed = 7, Threads = 2, Init = InitMode.Content }.Validate();

    [Fact]
    public void YiqRoundTripsAndItsLuminanceIsRec601()
    {
        TorchRuntime.EnsureLoaded();
        using Tensor rgb = TestImages.SceneTensor(32, 24);
        using Tensor yiq = ColorPreservation.ToYiq(rgb);
        using Tensor back = ColorPreservation.FromYiq(yiq);
        Assert.True(MaxAbs(back, rgb) < 1e-6, $"round trip off by {MaxAbs(back, rgb):E2}");

        // A grey pixel has no chroma, and Y = 0.299 R + 0.587 G + 0.114 B.
        using Tensor grey = torch.full(1, 3, 2, 2, 0.5f);
        using Tensor g = ColorPreservation.ToYiq(grey);
        Assert.Equal(0.5, g[0, 0, 0, 0].ToDouble(), 6);
        Assert.Equal(0, g[0, 1, 0, 0].ToDouble(), 6);
        Assert.Equal(0, g[0, 2, 0, 0].ToDouble(), 6);
    }

    [Fact]
    public void HistogramMatchingGivesTheStyleTheContentsColourMeanAndCovariance()
    {
        TorchRuntime.EnsureLoaded();
        using Tensor content = TestImages.SceneTensor(40, 30);
        using Tensor style = ColourfulNoise(36, 36);
        using Tensor matched = ColorPreservation.MatchColorHistogram(style, content);
        (Tensor mc, Tensor cc) = ColorPreservation.Statistics(content);
        (Tensor mm, Tensor cm) = ColorPreservation.Statistics(matched);
        (Tensor ms, Tensor cs) = ColorPreservation.Statistics(style);
        using (mc)
        using (cc)
        using (mm)
        using (cm)
        using (ms)
        using (cs)
        {
            double dMean = MaxAbs(mm, mc), dCov = MaxAbs(cm, cc), before = MaxAbs(cs, cc);
            output.WriteLine($"mean off by {dMean:E2}, covariance off by {dCov:E2} (before: {before:E2}, largest entry {cc.abs().max().ToDouble():E2})");
            Assert.True(before > 1e-2, "the test images already share their colour covariance");
            Assert.True(dMean < 1e-6, $"mean off by {dMean:E2}");
            Assert.True(dCov < 1e-6, $"covariance off by {dCov:E2}");
        }

        // The transform is affine per pixel: the style's structure (its luminance pattern) survives.
        Assert.Equal(style.shape, matched.shape);
    }

    [Fact]
    public void LuminanceModeKeepsTheContentsChroma()
    {
        using Tensor content = TestImages.SceneTensor(64, 43);
        using StylizeResult result = RunVgg(Base with { PreserveColor = ColorPreservationMode.Luminance });

        // As it would be written: 8 bits per channel.
        using Tensor quantised = (result.Image * 255).round() / 255;
        using Tensor yiqOut = ColorPreservation.ToYiq(quantised);
        using Tensor yiqContent = ColorPreservation.ToYiq(content);

        // Pixels whose recombined colour fell outside the RGB cube were clamped, which moves chroma:
        // compare where it did not. There the error is 0, not just below 1/255: YIQ's inverse adds a
        // luminance change equally to R, G and B, so an 8-bit content pixel moves by the same whole
        // number of levels in every channel, and I and Q (rows summing to 0) do not change.
        using Tensor unclamped = ColorPreservation.FromYiq(torch.cat([yiqOut.narrow(1, 0, 1), yiqContent.narrow(1, 1, 2)], 1));
        using Tensor inGamut = ((unclamped >= -0.5 / 255) & (unclamped <= 1 + (0.5 / 255))).all(1);
        using Tensor chromaError = (yiqOut.narrow(1, 1, 2) - yiqContent.narrow(1, 1, 2)).abs().amax([1]);
        double fraction = inGamut.to(ScalarType.Float32).mean().ToDouble();
        double worst = chromaError.masked_select(inGamut).max().ToDouble();
        double lumaChange = (yiqOut.narrow(1, 0, 1) - yiqContent.narrow(1, 0, 1)).abs().mean().ToDouble();
        double all = chromaError.max().ToDouble();
        output.WriteLine($"in gamut {fraction:P1}; largest I/Q error there {worst * 255:F4}/255, {all * 255:F2}/255 over all pixels; mean luminance change {lumaChange * 255:F1}/255");
        Assert.True(fraction > 0.9, $"only {fraction:P1} of the pixels in gamut");
        Assert.True(worst <= 1.0 / 255, $"I/Q off by {worst * 255:F3}/255");
        Assert.True(lumaChange > 2.0 / 255, "the luminance did not change: no transfer happened");
    }

    [Fact]
    public void HistogramModeRunsAndChangesTheResult()
    {
        using StylizeResult plain = RunVgg(Base with { Iterations = 4 });
        using StylizeResult matched = RunVgg(Base with { Iterations = 4, PreserveColor = ColorPreservationMode.Histogram });
        Assert.Equal(plain.Image.shape, matched.Image.shape);
        Assert.True(MaxAbs(plain.Image, matched.Image) > 0.01);
    }

    [Fact]
    public void PaletteTransferGivesThePhotographThePaintingsColourMeanAndCovariance()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        Tensor content = ColourfulNoise(36, 36);

        // Two paintings of the same size in a narrower range, so that nothing is clamped; blended
        // half and half, their mixture's statistics are those of their pixels taken together.
        Tensor first = (TestImages.SceneTensor(30, 20) * 0.5) + 0.2;
        Tensor second = (ColourfulNoise(30, 20).flip(1) * 0.3) + 0.4;
        Tensor full = ColorPreservation.TowardsPalette(content, [(first, 0.5), (second, 0.5)], 1);
        Assert.True(full.min().ToDouble() > 0 && full.max().ToDouble() < 1, "the test recolouring was clamped");
        (Tensor mOut, Tensor cOut) = ColorPreservation.Statistics(full);
        (Tensor mBoth, Tensor cBoth) = ColorPreservation.Statistics(torch.cat([first, second], 3));
        (Tensor mIn, Tensor cIn) = ColorPreservation.Statistics(content);
        Assert.True(MaxAbs(cIn, cBoth) > 1e-2, "the test images already share their colour covariance");
        Assert.True(MaxAbs(mOut, mBoth) < 1e-6, $"mean off by {MaxAbs(mOut, mBoth):E2}");
        Assert.True(MaxAbs(cOut, cBoth) < 1e-6, $"covariance off by {MaxAbs(cOut, cBoth):E2}");

        // 0 leaves the photograph as it is; 0.5 is halfway, pixel by pixel.
        Assert.Equal(0, MaxAbs(ColorPreservation.TowardsPalette(content, [(first, 1)], 0), content));
        Tensor half = ColorPreservation.TowardsPalette(content, [(first, 0.5), (second, 0.5)], 0.5);
        Assert.True(MaxAbs(half, (content + full) / 2) < 1e-6);
    }

    [Fact]
    public void ColourStatisticsInRunsEqualTheWholeImagesInFloat64()
    {
        // 1100 × 1000 pixels: a whole run of 2^20 and a partial one.
        TorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(11);
        Tensor image = torch.rand(new long[] { 1, 3, 1000, 1100 }, generator: gen);
        image[0, 1] = (image[0, 0] * 0.7) + (image[0, 1] * 0.3);
        Assert.True(image.shape[2] * image.shape[3] > ColorPreservation.StatisticsChunk);
        (Tensor mean, Tensor cov) = ColorPreservation.Statistics(image);
        Tensor x = image.to(ScalarType.Float64).reshape(3, -1);
        Tensor mu = x.mean([1], keepdim: true);
        Tensor d = x - mu;
        Assert.True(MaxAbs(mean, mu) < 1e-12, $"mean off by {MaxAbs(mean, mu):E2}");
        Assert.True(MaxAbs(cov, d.mm(d.t()) / x.shape[1]) < 1e-12);
    }

    [Fact]
    public void PaletteTransferDoesNotBlowUpTheChromaNoiseOfAGreyPhotograph()
    {
        // A grey photograph has no colour variance to stretch: JPEG-like noise of ±1/255 in its
        // chroma must not be amplified into colour. The floor allows at most √(λ_max / 1e-3).
        TorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(3);
        Tensor grey = TestImages.SceneTensor(40, 30).mean([1], keepdim: true).expand(1, 3, 30, 40).contiguous();
        Tensor noisy = (grey + ((torch.randint(-1, 2, [1, 3, 30, 40], generator: gen).to(ScalarType.Float32)) / 255)).clamp(0, 1);
        Tensor painting = ColourfulNoise(36, 36);
        double cleanToNoisy = MaxAbs(
            ColorPreservation.TowardsPalette(grey, [(painting, 1)], 1),
            ColorPreservation.TowardsPalette(noisy, [(painting, 1)], 1));
        (Tensor _, Tensor cov) = ColorPreservation.Statistics(painting);
        double gain = Math.Sqrt(torch.linalg.eigvalsh(cov).max().ToDouble() / ColorPreservation.PaletteFloor);
        output.WriteLine($"1/255 of noise became {cleanToNoisy * 255:F2}/255 (gain bound {gain:F1})");
        Assert.True(cleanToNoisy <= (2 * gain / 255) + 1e-6, $"noise amplified to {cleanToNoisy * 255:F1}/255");
        Assert.True(cleanToNoisy < 0.1, $"noise amplified to {cleanToNoisy * 255:F1}/255");
    }

    [Fact]
    public void PaletteTransferRunsChangesTheResultAndStandsAsideForColourPreservation()
    {
        using StylizeResult plain = RunVgg(Base with { Iterations = 4 });
        using StylizeResult palette = RunVgg(Base with { Iterations = 4, PaletteTransfer = 1 });
        Assert.True(MaxAbs(plain.Image, palette.Image) > 0.01);

        // With --preserve-color the photograph's colours are kept, so the palette transfer is not applied.
        using StylizeResult preserved = RunVgg(Base with { Iterations = 4, PreserveColor = ColorPreservationMode.Histogram });
        using StylizeResult both = RunVgg(Base with { Iterations = 4, PreserveColor = ColorPreservationMode.Histogram, PaletteTransfer = 1 });
        Assert.Equal(0, MaxAbs(preserved.Image, both.Image));
        Assert.Equal(0.0, new StyleTransferOptions().PaletteTransfer);

        // ResNet-18's default since the eighth session: the painting's palette; an explicit value stays set.
        Assert.Equal(1.0, new StyleTransferOptions { Network = "resnet18" }.PaletteTransfer);
        Assert.Equal(0.0, (new StyleTransferOptions { PaletteTransfer = 0 } with { Network = "resnet18" }).PaletteTransfer);
        foreach (string network in new[] { "vgg19", "alexnet", "googlenet", "resnet50" })
        {
            Assert.Equal(0.0, NetworkFactory.DefaultOptions(network).PaletteTransfer);
        }
    }

    [Theory]
    [InlineData(384, StyleTransferOptions.AutoScales, new[] { 136, 192, 272, 384 })]
    [InlineData(512, StyleTransferOptions.AutoScales, new[] { 128, 181, 256, 362, 512 })]
    [InlineData(150, StyleTransferOptions.AutoScales, new[] { 150 })]
    [InlineData(256, 3, new[] { 128, 181, 256 })]
    [InlineData(256, 1, new[] { 256 })]
    public void ScalesGrowBySqrtTwoUpToTheSize(int size, int scales, int[] expected) =>
        Assert.Equal(expected, (Base with { Size = size, Scales = scales }).ScaleSizes);

    [Fact]
    public void TooManyScalesAreRefused()
    {
        var e = Assert.Throws<StyleTransferException>(() => (Base with { Size = 64, Scales = 4 }).Validate());
        Assert.Equal("--scales 4 starts at 23 px, below 32; at most 3 scale(s) fit --size 64", Cli.OptionFlags.Message(e));
    }

    [Fact]
    public void MultiScaleEndsAtTheRequestedSizeWithALossNearSingleScale()
    {
        using StylizeResult single = RunVgg(Base with { Iterations = 12 });
        using StylizeResult multi = RunVgg(Base with { Iterations = 12, Scales = 2 });
        Assert.Equal(new long[] { 1, 3, 43, 64 }, multi.Image.shape);

        // 45 px then 64 px: 6 iterations, then 12.
        Assert.Equal(18, multi.History.Count);
        Assert.Equal([1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], multi.History.Select(r => r.Scale));
        Assert.Equal(Enumerable.Range(1, 18), multi.History.Select(r => r.Iteration));
        double s = single.History[^1].Total, m = multi.History[^1].Total;
        output.WriteLine($"final loss at 64 px: single scale {s:E4}, two scales {m:E4} ({m / s:F3}x); first loss at 64 px: single {single.History[0].Total:E4}, multi {multi.History[6].Total:E4}");

        Assert.True(m < s * 1.25, $"two scales end at {m:E4}, single at {s:E4}");
    }

    [Fact]
    public void ZeroPaddingIsTheUnchangedNetworkAndReplicateChangesOnlyTheBorder()
    {
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
        using Tensor image = TestImages.SceneTensor(64, 48);
        (string model, string preprocess) = ResNet18.ResolvePaths(null);
        var cases = new (Func<IFeatureNetwork> Load, string Tap, int Kernel, int Stride, int Pad)[]
        {
            (() => Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg), "conv1_1", 3, 1, 1),
            (() => ResNet18.Load(model, preprocess), "conv1", 7, 2, 3),
            (() => TorchvisionNetworkTests.Load("alexnet", TorchvisionNetworkTests.NarrowWeights("alexnet")), "conv1", 11, 4, 2),
            (() => TorchvisionNetworkTests.Load("googlenet", TorchvisionNetworkTests.NarrowWeights("googlenet")), "conv1", 7, 2, 3),
            (() => TorchvisionNetworkTests.Load("resnet50", TorchvisionNetworkTests.NarrowWeights("resnet50")), "conv1", 7, 2, 3),
        };
        foreach ((Func<IFeatureNetwork> load, string tap, int k, int stride, int pad) in cases)
        {
            using IFeatureNetwork net = load();
            using var scope = torch.NewDisposeScope();
            Tensor plain = net.Extract(image, [tap])[tap];
            net.Padding = FirstConvPadding.Zero;
            Tensor zero = net.Extract(image, [tap])[tap];
            net.Padding = FirstConvPadding.Replicate;
            Tensor replicate = net.Extract(image, [tap])[tap];
            Assert.Equal(0, MaxAbs(plain, zero));
            Assert.Equal(zero.shape, replicate.shape);

            // Output positions whose window lies inside the image never see the padding.
            (long r0, long r1) = Interior(image.shape[2], k, stride, pad, zero.shape[2]);
            (long c0, long c1) = Interior(image.shape[3], k, stride, pad, zero.shape[3]);
            Tensor inside = (zero - replicate).narrow(2, r0, r1 - r0).narrow(3, c0, c1 - c0).abs().max();
            Tensor border = (zero - replicate).abs().max();
            double scale = zero.abs().max().ToDouble();
            output.WriteLine($"{net.Name} {tap}: interior {r1 - r0}x{c1 - c0} of {zero.shape[2]}x{zero.shape[3]} differs by {inside.ToDouble():E2}, border by {border.ToDouble():E3} (largest |activation| {scale:E3})");
            Assert.True(inside.ToDouble() <= 1e-6 * Math.Max(1, scale), $"{net.Name}: interior differs by {inside.ToDouble():E2}");
            Assert.True(border.ToDouble() > 1e-3 * scale, $"{net.Name}: replicate padding changed nothing at the border");
        }
    }

    [Fact]
    public void FactoryAppliesThePaddingOption()
    {
        TorchRuntime.EnsureLoaded();
        using IFeatureNetwork net = NetworkFactory.Create(NetworkFactory.DefaultOptions("resnet18") with { Padding = FirstConvPadding.Replicate }, torch.CPU);
        Assert.Equal(FirstConvPadding.Replicate, net.Padding);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AResumedRunContinuesTheLossCurveOfAnUninterruptedOne(bool lineSearch)
    {
        using var dir = new TempDir();
        StyleTransferOptions options = Base with { Iterations = 12, SaveEvery = 6, LineSearch = lineSearch };
        string path = dir.File("run.ckpt");
        using StylizeResult whole = RunVgg(options, checkpoint: ck => ck.Save(path));
        using Checkpoint loaded = Checkpoint.Load(path);
        Assert.Equal(6, loaded.Iteration);
        Assert.Equal(7, loaded.Seed);
        Assert.Equal(options.StyleWeight, loaded.Options.StyleWeight);
        Assert.Equal(5, loaded.Lbfgs!.Ys.Count); // one curvature pair per iteration after the first

        using StylizeResult resumed = RunVgg(options with { SaveEvery = 0 }, resume: loaded);
        Assert.Equal(Enumerable.Range(7, 6), resumed.History.Select(r => r.Iteration));
        double worst = 0;
        for (int i = 0; i < 6; i++)
        {
            double a = whole.History[6 + i].Total, b = resumed.History[i].Total;
            worst = Math.Max(worst, Math.Abs(a - b) / Math.Abs(a));
        }

        double pixels = MaxAbs(whole.Image, resumed.Image);
        output.WriteLine($"line search {lineSearch}: losses of iterations 7-12 differ by {worst:E2} (relative), images by {pixels:E2}; evaluations {whole.History[^1].Evaluations} vs {resumed.History[^1].Evaluations}");
        Assert.True(worst <= 1e-6, $"resumed losses differ by {worst:E2}");
        Assert.True(pixels <= 1e-5, $"images differ by {pixels:E2}");
        Assert.Equal(whole.History[^1].Evaluations, resumed.History[^1].Evaluations);
    }

    [Fact]
    public void AResumeInsideTheFirstScaleFinishesLikeTheUninterruptedRun()
    {
        using var dir = new TempDir();
        StyleTransferOptions options = Base with { Iterations = 6, Scales = 2, SaveEvery = 2, LineSearch = true };
        string path = dir.File("run.ckpt");
        using StylizeResult whole = RunVgg(options, checkpoint: ck =>
        {
            if (ck.Iteration == 2)
            {
                ck.Save(path);
            }
        });
        using Checkpoint loaded = Checkpoint.Load(path);
        Assert.Equal((0, 2), (loaded.Scale, loaded.ScaleIteration));
        using StylizeResult resumed = RunVgg(options with { SaveEvery = 0 }, resume: loaded);
        Assert.Equal(Enumerable.Range(3, 7), resumed.History.Select(r => r.Iteration));
        double pixels = MaxAbs(whole.Image, resumed.Image);
        output.WriteLine($"two scales, resumed at iteration 2 of 9: final loss {whole.History[^1].Total:E6} vs {resumed.History[^1].Total:E6}, images differ by {pixels:E2}");
        Assert.True(pixels <= 1e-5);
    }

    [Fact]
    public void CancellationWritesACheckpoint()
    {
        using var cts = new CancellationTokenSource();
        var written = new List<int>();
        using StylizeResult r = RunVgg(
            Base with { SaveEvery = 100 },
            progress: new Recorder(rep =>
            {
                if (rep.Iteration == 3)
                {
                    cts.Cancel();
                }
            }),
            checkpoint: ck => written.Add(ck.Iteration),
            cancellation: cts.Token);
        Assert.True(r.Cancelled);
        Assert.Equal([3], written);
    }

    [Fact]
    public void ACheckpointOfOtherOptionsOrImagesIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("run.ckpt");
        using (RunVgg(Base with { Iterations = 2, SaveEvery = 1 }, checkpoint: ck =>
        {
            (ck.ContentSha256, ck.StyleSha256) = ("aa", "bb");
            ck.Save(path);
        }))
        {
        }

        using Checkpoint loaded = Checkpoint.Load(path);
        var e = Assert.Throws<StyleTransferException>(() => loaded.CheckCompatible(loaded.Options with { StyleWeight = 5 }, "aa", "bb", "run.ckpt"));
        Assert.Equal("--resume: checkpoint 'run.ckpt' was made with --style-weight 1000, not 5 (only -n, --save-every, --line-search, --lbfgs-history, --learning-rate, --precision, --device and --threads may change)", Cli.OptionFlags.Message(e));
        e = Assert.Throws<StyleTransferException>(() => loaded.CheckCompatible(loaded.Options, "cc", "bb", "run.ckpt"));
        Assert.Equal("--resume: checkpoint 'run.ckpt' was made from another content image (SHA-256 differs)", Cli.OptionFlags.Message(e));
        loaded.CheckCompatible(loaded.Options with { Iterations = 50, LineSearch = true, Threads = 1 }, "aa", "bb", "run.ckpt");
    }

    private static (long Begin, long End) Interior(long n, int k, int stride, int pad, long outputs)
    {
        long begin = (pad + stride - 1) / stride;
        long end = begin;
        while (end < outputs && (end * stride) - pad + k - 1 <= n - 1)
        {
            end++;
        }

        return (begin, end);
    }

    private static Tensor ColourfulNoise(int w, int h)
    {
        using var gen = new Generator(5);
        using var scope = torch.NewDisposeScope();
        Tensor basis = torch.rand(new long[] { 1, 3, h, w }, generator: gen);

        // Correlated channels, so that the covariance is full and far from the content's.
        Tensor mixed = torch.stack([basis[0, 0], (basis[0, 0] * 0.5) + (basis[0, 1] * 0.5), basis[0, 2] * 0.3]).unsqueeze(0);
        return mixed.MoveToOuterDisposeScope();
    }

    private static double MaxAbs(Tensor a, Tensor b)
    {
        using Tensor d = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return d.ToDouble();
    }

    [Fact]
    public void TwoBlendedStylesWithAMaskRunThroughColourPreservationAndTwoScales()
    {
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
        using Vgg19 net = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        using Tensor content = TestImages.SceneTensor(64, 43), stripes = TestImages.StripesTensor(48, 48);
        using Tensor rotated = stripes.transpose(2, 3).contiguous();
        using Tensor left = torch.zeros(1, 1, 43, 64);
        left[.., .., .., ..32] = 1;
        StyleTransferOptions o = Base with { Iterations = 12, Scales = 2, PreserveColor = ColorPreservationMode.Histogram };
        using StylizeResult r = Stylizer.Run(content, [stripes, rotated], net, o, [left, null]);
        Assert.Equal(new long[] { 1, 3, 43, 64 }, r.Image.shape);
        Assert.Equal(18, r.History.Count);
        Assert.Equal([1, 2], r.History.Select(h => h.Scale).Distinct().Order().ToArray());
        Assert.True(r.History[^1].Total < r.History[12].Total, $"the last scale's loss did not fall: {r.History[12].Total:E3} -> {r.History[^1].Total:E3}");
    }

    private static StylizeResult RunVgg(StyleTransferOptions options, IProgress<IterationReport>? progress = null, Action<Checkpoint>? checkpoint = null, Checkpoint? resume = null, CancellationToken cancellation = default)
    {
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
        using Vgg19 net = Vgg19.Load(TestPaths.NarrowPth, options.Pooling);
        using Tensor content = TestImages.SceneTensor(64, 43), style = TestImages.StripesTensor(48, 48);
        return Stylizer.Run(content, style, net, options, progress, cancellation, checkpoint: checkpoint, resume: resume);
    }

    private sealed class Recorder(Action<IterationReport> action) : IProgress<IterationReport>
    {
        public void Report(IterationReport value) => action(value);
    }
}
