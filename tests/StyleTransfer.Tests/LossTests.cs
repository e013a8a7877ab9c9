using StyleTransfer.Formats;
using StyleTransfer.Losses;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>The loss pieces beyond the paper's formulas (those are in ParityTests), and the per-network defaults.</summary>
public sealed class LossTests
{
    public LossTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void TheGramOfAChannelsLastMapEqualsTheNchwOneAndSoDoesItsGradient()
    {
        using var scope = torch.NewDisposeScope();
        Tensor nchw = torch.randn(new long[] { 1, 16, 9, 7 }, dtype: ScalarType.Float64, generator: new Generator(4));
        Tensor nhwc = TensorLayout.ToChannelsLast(nchw);
        Assert.True(TensorLayout.IsChannelsLast(nhwc));
        Assert.False(TensorLayout.IsChannelsLast(nchw));
        var grads = new List<Tensor>();
        var grams = new List<Tensor>();
        foreach (Tensor map in new[] { nchw, nhwc })
        {
            Tensor leaf = map.detach().requires_grad_(true);
            Tensor g = Gram.Compute(leaf);
            g.mul(g).sum().backward();
            grams.Add(g.detach());
            grads.Add(leaf.grad!);
        }

        Assert.True(TensorCompare.MaxRelativeError(grams[0], grams[1]) < 1e-12);
        Assert.True(TensorCompare.MaxRelativeError(grads[0], grads[1]) < 1e-12);
        Assert.True(TensorLayout.IsChannelsLast(grads[1]), "the gradient comes back channels-last: no layout change on the way back");
    }

    [Fact]
    public void TheGramsWrittenOutBackwardIsAutogradsThroughTheProduct()
    {
        // One product (Ĝ + Ĝᵀ) F against autograd's chain through F Fᵀ, with an upstream gradient
        // that is not symmetric, for every kind of map the losses see.
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(8);
        Tensor wide = torch.randn(new long[] { 1, 6, 9, 11 }, dtype: ScalarType.Float64, generator: gen);
        Tensor upstream = torch.randn(new long[] { 6, 6 }, dtype: ScalarType.Float64, generator: gen);
        var maps = new (string Name, Tensor Map)[]
        {
            ("NCHW", wide),
            ("channels-last", TensorLayout.ToChannelsLast(wide)),
            ("cropped", wide.narrow(3, 2, 7)),
            ("[N,H,W]", wide[0]),
        };
        foreach ((string name, Tensor map) in maps)
        {
            Tensor viaGram = map.detach().requires_grad_(true);
            Tensor g = Gram.Compute(viaGram);
            (g * upstream).sum().backward();

            Tensor viaAutograd = map.detach().requires_grad_(true);
            Tensor f = viaAutograd.reshape(6, -1);
            Tensor expected = f.mm(f.t());
            (expected * upstream).sum().backward();

            Assert.True(TensorCompare.MaxRelativeError(expected.detach(), g.detach()) < 1e-12, name);
            Assert.Equal(viaAutograd.grad!.shape, viaGram.grad!.shape);
            Assert.True(TensorCompare.MaxRelativeError(viaAutograd.grad!, viaGram.grad!) < 1e-12, name);
        }
    }

    [Fact]
    public void AStyleImageOfAnotherSizeIsComparedPerPosition()
    {
        using var scope = torch.NewDisposeScope();
        Tensor f = torch.rand(new long[] { 1, 4, 5, 6 }, generator: new Generator(1));

        // The same texture tiled 2x2 has 4x the positions and 4x the Gram: per position it is identical.
        Tensor tiled = f.repeat(1, 1, 2, 2);
        Tensor a = Gram.Compute(tiled);
        Assert.True(StyleLoss.Layer(f, a, 4 * 30).ToDouble() < 1e-12);
        Assert.True(StyleLoss.RelativeLayer(f, a, 4 * 30).ToDouble() < 1e-12);

        // Without the rescaling (claiming M_s = M) the paper's formula sees a 4x Gram: (4G - G)² summed.
        Tensor g = Gram.Compute(f);
        double expected = (g * 3).square().sum().ToDouble() / (4.0 * 16 * 30 * 30);
        Assert.Equal(expected, StyleLoss.Layer(f, a, 30).ToDouble(), expected * 1e-5);
    }

    [Fact]
    public void RelativeStyleTermIsTheGramErrorOverTheTargetEnergy()
    {
        using var scope = torch.NewDisposeScope();
        Tensor f = torch.rand(new long[] { 1, 3, 4, 4 }, generator: new Generator(2));
        Tensor target = torch.rand(new long[] { 3, 3 }, generator: new Generator(3));
        Tensor g = Gram.Compute(f);
        double expected = (g - target).square().sum().ToDouble() / target.square().sum().ToDouble();
        Assert.Equal(expected, StyleLoss.RelativeLayer(f, target, 16).ToDouble(), expected * 1e-5);
    }

    [Fact]
    public void SoftmaxTransformIsASoftmaxOverTheWholeMapScaledByItsSize()
    {
        using var scope = torch.NewDisposeScope();
        Tensor f = torch.randn(new long[] { 1, 2, 3, 4 }, generator: new Generator(4)) * 5;
        Tensor s = FeatureTransform.Apply(f, FeatureTransformKind.Softmax, 2.0);
        Assert.Equal(f.shape, s.shape);
        Assert.Equal(24.0, s.sum().ToDouble(), 4);

        // Ratios follow exp((a - b) / T).
        double ratio = (s[0, 0, 0, 0] / s[0, 1, 2, 3]).ToDouble();
        double expected = Math.Exp((f[0, 0, 0, 0] - f[0, 1, 2, 3]).ToDouble() / 2.0);
        Assert.Equal(expected, ratio, expected * 1e-4);
        Assert.Same(f, FeatureTransform.Apply(f, FeatureTransformKind.None, 2.0));
    }

    [Fact]
    public void SoftmaxTransformMatchesAFloat64SoftmaxOnAMillionEntriesValuesAndGradient()
    {
        using var scope = torch.NewDisposeScope();
        Tensor f = (torch.randn(new long[] { 1, 64, 128, 128 }, generator: new Generator(5)) * 20).relu_().requires_grad_(true);
        Tensor w = torch.rand(new long[] { 1, 64, 128, 128 }, generator: new Generator(6));
        Tensor s = FeatureTransform.Apply(f, FeatureTransformKind.Softmax, 10.0);
        (s * w).sum().backward();
        Tensor g = f.grad!.clone();
        f.grad!.zero_();

        Tensor f64 = f.to(ScalarType.Float64);
        Tensor reference = (f64.reshape(1, -1) / 10.0).softmax(1).mul(f.numel()).reshape(f.shape);
        (reference * w.to(ScalarType.Float64)).sum().backward();
        double valueErr = TensorCompare.MaxRelativeError(reference, s);
        double gradErr = TensorCompare.MaxRelativeError(f.grad!, g);
        Assert.True(valueErr < 1e-6, $"values differ from the float64 softmax by {valueErr:E2}");
        Assert.True(gradErr < 1e-5, $"gradients differ from the float64 softmax's by {gradErr:E2}");
    }

    [Fact]
    public void TheNetworkIsChosenByTheWeightsFileOrWhatIsInstalled()
    {
        Assert.Equal("resnet18", NetworkFactory.ChooseDefault("model.onnx"));
        Assert.Equal("vgg19", NetworkFactory.ChooseDefault("vgg.pth"));
        Assert.Equal("vgg19", NetworkFactory.ChooseDefault("vgg.safetensors"));
        string expected = WeightLocator.Find(null, Vgg19.WeightsFileName) != null ? "vgg19" : "resnet18";
        Assert.Equal(expected, NetworkFactory.ChooseDefault(null));
    }

    [Fact]
    public void Vgg19DefaultsAreThePapers()
    {
        StyleTransferOptions o = NetworkFactory.DefaultOptions("vgg19");
        Assert.Equal(["relu4_2"], o.ContentLayers);
        Assert.Equal(["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], o.StyleLayers);
        Assert.Equal(1e-3, o.ContentWeight / o.StyleWeight, 12);
        Assert.Equal(InitMode.Noise, o.Init);
        Assert.Equal(PoolingMode.Avg, o.Pooling);
        Assert.Equal(FeatureTransformKind.None, o.FeatureTransform);
        Assert.Equal(StyleNormalization.Paper, o.StyleNormalization);
        Assert.All(o.EffectiveStyleLayerWeights, w => Assert.Equal(0.2, w, 12));
        Assert.Equal(100, o.LbfgsHistory); // torch.optim.LBFGS's and neural-style's
    }

    [Fact]
    public void TheLbfgsHistoryIsPerNetworkUnlessGiven()
    {
        Assert.Equal(25, NetworkFactory.DefaultOptions("resnet18").LbfgsHistory);
        Assert.All(["vgg19", "alexnet", "googlenet", "resnet50"], n => Assert.Equal(100, NetworkFactory.DefaultOptions(n).LbfgsHistory));
        Assert.Equal(100, (NetworkFactory.DefaultOptions("resnet18") with { LbfgsHistory = 100 }).LbfgsHistory);
        Assert.Equal(100, (new StyleTransferOptions { LbfgsHistory = 25 } with { LbfgsHistory = 100, Network = "resnet18" }).LbfgsHistory);
        Assert.Equal(100, (new StyleTransferOptions { Network = "resnet18" } with { Network = "vgg19" }).LbfgsHistory);
    }

    [Fact]
    public void ResNet18DefaultsNameRealTapsAndStylise()
    {
        StyleTransferOptions o = NetworkFactory.DefaultOptions("resnet18") with { Size = 64, Iterations = 8, Seed = 1, Threads = 2 };
        o.Validate();
        using IFeatureNetwork net = NetworkFactory.Create(o, torch.CPU);
        Assert.All(o.ContentLayers.Concat(o.StyleLayers), l => Assert.Contains(l, net.TapNames));
        Assert.All(NetworkFactory.Profile("resnet18").ContentLadder.Concat(NetworkFactory.Profile("resnet18").StyleLadder), l => Assert.Contains(l, net.TapNames));
        using Tensor content = TestImages.SceneTensor(64, 48), style = TestImages.StripesTensor(64, 64);
        using StylizeResult r = Stylizer.Run(content, style, net, o);
        // From the content image the style term can only fall; 8 iterations at 64 px cut it by about 12 %.
        Assert.True(r.History[^1].Style < r.History[0].Style * 0.95, $"style {r.History[0].Style:E3} -> {r.History[^1].Style:E3}");
        Assert.True(r.History[^1].Total < r.History[0].Total * 0.95, $"total {r.History[0].Total:E3} -> {r.History[^1].Total:E3}");
    }
}
