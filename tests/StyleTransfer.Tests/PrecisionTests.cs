using StyleTransfer.Cli;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>
/// --precision: the network in bf16, Grams, losses and the optimiser in float32/float64. Measured
/// on the narrow fixture VGG-19 (CPU; fp16 needs CUDA and is checked by scripts/gpu-check.sh).
/// </summary>
public sealed class PrecisionTests
{
    public PrecisionTests()
    {
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
    }

    [Fact]
    public void Bf16TapsStayWithinTwoPercentOfFp32AndComeBackAsFloat32()
    {
        using var scope = torch.NewDisposeScope();
        string[] taps = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"];
        using Vgg19 fp32 = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        using IFeatureNetwork bf16 = MixedPrecisionNetwork.Wrap(Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg), Precision.Bf16);
        Tensor image = TestImages.SceneTensor(64, 48);
        using var noGrad = torch.no_grad();
        Dictionary<string, Tensor> a = fp32.Extract(image, taps), b = bf16.Extract(image, taps);
        foreach (string tap in taps)
        {
            Assert.Equal(ScalarType.Float32, b[tap].dtype);
            double err = TensorCompare.MaxRelativeError(a[tap], b[tap]);
            Assert.True(err < 0.02, $"{tap}: bf16 differs from fp32 by {err:E2} of the largest value");
            Assert.True(err > 0, $"{tap}: bf16 gave exactly fp32's numbers; the weights were not converted");
        }
    }

    [Fact]
    public void ResNet18InBf16KeepsItsInputStageInFloat32()
    {
        // The stem convolution sees the pixels themselves; in bf16 it would see them rounded to 8
        // significant bits. It runs in float32 and only its output is rounded once to bf16, so the
        // conv1 tap is within bf16's rounding (2^-9 of each value, 2^-8 allowed) of the fp32
        // network's, while the layers after it differ by more.
        TorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        StyleTransferOptions options = NetworkFactory.DefaultOptions("resnet18");
        using IFeatureNetwork fp32 = NetworkFactory.Create(options.Validate(), torch.CPU);
        using IFeatureNetwork bf16 = NetworkFactory.Create((options with { Precision = Precision.Bf16 }).Validate(), torch.CPU);
        Tensor image = TestImages.SceneTensor(64, 48);
        using var noGrad = torch.no_grad();
        string[] taps = ["conv1", "layer1_1"];
        Dictionary<string, Tensor> a = fp32.Extract(image, taps), b = bf16.Extract(image, taps);
        double stem = ((a["conv1"] - b["conv1"]).abs() / a["conv1"].abs().clamp_min(1e-3)).max().ToDouble();
        double later = TensorCompare.MaxRelativeError(a["layer1_1"], b["layer1_1"]);
        Assert.True(stem < Math.Pow(2, -8), $"conv1: {stem:E2} relative, more than one bf16 rounding");
        Assert.True(later > 1e-3, $"layer1_1: {later:E2}, as if the whole network ran in float32");
    }

    [Fact]
    public void ChannelsLastGivesTheSameTapsAndGradientAsTheDefaultLayout()
    {
        using var scope = torch.NewDisposeScope();
        string[] taps = ["relu1_1", "relu3_1", "relu4_2", "relu5_1"];
        using Vgg19 plain = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        using IFeatureNetwork nhwc = MixedPrecisionNetwork.Wrap(Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg), Precision.Fp32, channelsLast: true);
        Assert.IsType<MixedPrecisionNetwork>(nhwc);
        Tensor image = TestImages.SceneTensor(64, 48);
        var grads = new List<Tensor>();
        var feats = new List<Dictionary<string, Tensor>>();
        foreach (IFeatureNetwork net in new IFeatureNetwork[] { plain, nhwc })
        {
            Tensor x = image.clone().requires_grad_(true);
            Dictionary<string, Tensor> f = net.Extract(x, taps);
            taps.Select(t => f[t].square().mean()).Aggregate((a, b) => a + b).backward();
            feats.Add(f);
            grads.Add(x.grad!);
        }

        foreach (string tap in taps)
        {
            Assert.True(TensorLayout.IsChannelsLast(feats[1][tap]), $"{tap} comes back channels-last, for the Gram to read without a copy");
            double err = TensorCompare.MaxRelativeError(feats[0][tap], feats[1][tap]);
            Assert.True(err < 1e-5, $"{tap}: channels-last differs by {err:E2}");
        }

        double gradErr = TensorCompare.MaxRelativeError(grads[0], grads[1]);
        Assert.True(gradErr < 1e-5, $"gradient: channels-last differs by {gradErr:E2}");
        Assert.Same(plain, MixedPrecisionNetwork.Wrap(plain, Precision.Fp32, channelsLast: false));
    }

    [Fact]
    public void Bf16StylisationLowersTheLossLikeFp32AndTheGradientReachesFloat32Pixels()
    {
        StyleTransferOptions options = new StyleTransferOptions { Size = 64, Iterations = 20, Seed = 7, Threads = 2 }.Validate();
        using Vgg19 fp32 = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        using IFeatureNetwork bf16 = MixedPrecisionNetwork.Wrap(Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg), Precision.Bf16);
        using Tensor content = TestImages.SceneTensor(64, 43), style = TestImages.StripesTensor(48, 48);
        using StylizeResult a = Stylizer.Run(content, style, fp32, options);
        using StylizeResult b = Stylizer.Run(content, style, bf16, options);
        Assert.Equal(ScalarType.Float32, b.Image.dtype);
        double startA = a.History[0].Total, endA = a.History[^1].Total, endB = b.History[^1].Total;
        Assert.True(endB < b.History[0].Total / 10, $"bf16: {b.History[0].Total:E3} -> {endB:E3}, less than a tenfold cut");
        Assert.True(Math.Abs(endB - endA) / endA < 0.25, $"bf16 ends at {endB:E3}, fp32 at {endA:E3} (from {startA:E3})");
    }

    [Fact]
    public void Fp16OnTheCpuIsRefusedWithOneLine()
    {
        var e = Assert.Throws<StyleTransferException>(() => new StyleTransferOptions { Precision = Precision.Fp16 }.Validate());
        Assert.Equal("--precision fp16 needs --device cuda (libtorch has no fast fp16 convolutions on the CPU); use --precision bf16", Cli.OptionFlags.Message(e));
        new StyleTransferOptions { Precision = Precision.Fp16, Device = "cuda" }.Validate();
    }

    [Fact]
    public void TheCliRefusesAnUnknownPrecision()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["a.png", "b.png", "-o", "out.png", "--precision", "fp8"], stdout, stderr);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.StartsWith("error: Argument 'fp8' not recognized. Must be one of:", stderr.ToString());
    }
}

/// <summary>Memory of the default recipe (ResNet-18, SWAG softmax, relative style terms, line search) on the bundled network.</summary>
public sealed class DefaultRecipeMemoryTests
{
    [Theory]
    [InlineData(Precision.Fp32)]
    [InlineData(Precision.Bf16)]
    public void LiveTensorCountStaysFlatOnceTheLbfgsHistoryIsFull(Precision precision)
    {
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
        StyleTransferOptions options = NetworkFactory.DefaultOptions("resnet18") with { Size = 48, Iterations = 25, LbfgsHistory = 4, Seed = 3, Precision = precision };
        using IFeatureNetwork net = NetworkFactory.Create(options.Validate(), torch.CPU);
        using Tensor content = TestImages.SceneTensor(48, 32), style = TestImages.StripesTensor(40, 40);
        var counts = new Dictionary<int, long>();
        var progress = new Progress(r =>
        {
            if (r.Iteration is 8 or 25)
            {
                counts[r.Iteration] = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            }
        });
        using StylizeResult result = Stylizer.Run(content, style, net, options, progress);
        Assert.Equal(counts[8], counts[25]);
    }

    private sealed class Progress(Action<IterationReport> action) : IProgress<IterationReport>
    {
        public void Report(IterationReport value) => action(value);
    }
}
