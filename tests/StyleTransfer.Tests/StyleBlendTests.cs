using StyleTransfer.Losses;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>Several style images: blend weights and masks (guided Grams), on the narrow fixture VGG-19 and small images.</summary>
public sealed class StyleBlendTests : IDisposable
{
    private static readonly StyleTransferOptions Base = new StyleTransferOptions { Size = 48, Seed = 5, Threads = 2, ContentWeight = 0, Iterations = 30, StyleNormalization = StyleNormalization.Relative }.Validate();
    private readonly Vgg19 net;
    private readonly Tensor content, stripes, redStripes;

    public StyleBlendTests()
    {
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
        net = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        content = TestImages.SceneTensor(48, 32);
        stripes = TestImages.StripesTensor(40, 40);
        redStripes = RedStripes(36, 36);
    }

    public void Dispose()
    {
        net.Dispose();
        content.Dispose();
        stripes.Dispose();
        redStripes.Dispose();
    }

    [Fact]
    public void BlendedGramIsTheWeightedSumOfGramsPerPosition()
    {
        using var scope = torch.NewDisposeScope();
        using Targets t = Targets.Compute(net, null, [], [stripes, redStripes], ["relu1_1", "relu3_1"]);
        StyleStats a = t.Styles[0]["relu3_1"], b = t.Styles[1]["relu3_1"];
        Assert.Equal(100, a.Positions); // 40 px / 4
        Assert.Equal(81, b.Positions); // 36 px / 4
        (Tensor blended, long positions) = t.BlendGram("relu3_1", [(0, 0.25), (1, 0.75)]);
        Assert.Equal(100, positions);
        Tensor expected = (a.Gram * 0.25) + (b.Gram * (0.75 * 100 / 81));
        Assert.True((blended - expected).abs().max().ToDouble() < 1e-6 * expected.abs().max().ToDouble());

        // One style at weight 1 is that style's Gram exactly: single-style runs are unchanged.
        (Tensor only, long m) = t.BlendGram("relu1_1", [(1, 1.0)]);
        Assert.Equal(0, (only - t.Styles[1]["relu1_1"].Gram).abs().max().ToDouble());
        Assert.Equal(t.Styles[1]["relu1_1"].Positions, m);
    }

    [Fact]
    public void RaisingAStylesBlendWeightBringsTheResultCloserToIt()
    {
        double[] toStripes = new double[3], toRed = new double[3];
        double[] weights = [0.1, 0.5, 0.9];
        for (int i = 0; i < weights.Length; i++)
        {
            StyleTransferOptions o = Base with { StyleBlend = [weights[i], 1 - weights[i]] };
            using StylizeResult r = Stylizer.Run(content, [stripes, redStripes], net, o, null);
            toStripes[i] = Stylizer.MeasureStyleLoss(net, r.Image, stripes, o);
            toRed[i] = Stylizer.MeasureStyleLoss(net, r.Image, redStripes, o);
        }

        string numbers = $"to stripes {string.Join(", ", toStripes.Select(v => v.ToString("E3")))}; to red stripes {string.Join(", ", toRed.Select(v => v.ToString("E3")))}";
        Assert.True(toStripes[0] > toStripes[1] && toStripes[1] > toStripes[2], numbers);
        Assert.True(toRed[0] < toRed[1] && toRed[1] < toRed[2], numbers);

        // Not marginal: from weight 0.1 to 0.9 the distance to the stripes falls about fourfold
        // (0.27 -> 0.066), that to the red stripes, harder to reach in 30 iterations, by a third (0.23 -> 0.15).
        Assert.True(toStripes[2] < toStripes[0] * 0.5 && toRed[0] < toRed[2] * 0.8, numbers);
    }

    [Fact]
    public void AZeroBlendWeightDropsThatStyleExactly()
    {
        StyleTransferOptions o = Base with { Iterations = 3 };
        using StylizeResult single = Stylizer.Run(content, stripes, net, o);
        using StylizeResult blended = Stylizer.Run(content, [stripes, redStripes], net, o with { StyleBlend = [1, 0] }, null);
        using StylizeResult other = Stylizer.Run(content, [stripes, redStripes], net, o with { StyleBlend = [0.9, 0.1] }, null);
        Assert.Equal(0, (single.Image - blended.Image).abs().max().ToDouble());
        Assert.Equal(single.History[^1].Total, blended.History[^1].Total);
        Assert.True((single.Image - other.Image).abs().max().ToDouble() > 1e-3);
    }

    [Fact]
    public void MasksConfineEachStyleToItsRegion()
    {
        // Run A: stripes left, red stripes right; run B: swapped. Whatever the content favours, each
        // style's measured loss is lower in the region its mask gave it.
        using Tensor left = HalfMask(left: true), right = HalfMask(left: false);
        double[,] loss = new double[2, 4];
        for (int run = 0; run < 2; run++)
        {
            Tensor stripesMask = run == 0 ? left : right, redStripesMask = run == 0 ? right : left;
            using StylizeResult r = Stylizer.Run(content, [stripes, redStripes], net, Base, [stripesMask, redStripesMask]);
            loss[run, 0] = Stylizer.MeasureStyleLoss(net, r.Image, stripes, Base, stripesMask);
            loss[run, 1] = Stylizer.MeasureStyleLoss(net, r.Image, stripes, Base, redStripesMask);
            loss[run, 2] = Stylizer.MeasureStyleLoss(net, r.Image, redStripes, Base, redStripesMask);
            loss[run, 3] = Stylizer.MeasureStyleLoss(net, r.Image, redStripes, Base, stripesMask);
        }

        for (int run = 0; run < 2; run++)
        {
            string numbers = $"run {run}: stripes in its region {loss[run, 0]:E3}, outside {loss[run, 1]:E3}; red stripes in its region {loss[run, 2]:E3}, outside {loss[run, 3]:E3}";
            Assert.True(loss[run, 0] < loss[run, 1] * 0.8, numbers);
            Assert.True(loss[run, 2] < loss[run, 3] * 0.8, numbers);
        }
    }

    [Fact]
    public void AWhiteMaskGivesTheUnmaskedLoss()
    {
        using Tensor white = torch.ones(20, 30);
        double plain = Stylizer.MeasureStyleLoss(net, content, stripes, Base);
        double masked = Stylizer.MeasureStyleLoss(net, content, stripes, Base, white);
        Assert.Equal(plain, masked, plain * 1e-5);

        using StylizeResult a = Stylizer.Run(content, [stripes], net, Base with { Iterations = 1 }, null);
        using StylizeResult b = Stylizer.Run(content, [stripes], net, Base with { Iterations = 1 }, [white]);
        Assert.Equal(a.History[0].Style, b.History[0].Style, a.History[0].Style * 1e-5);

        // A half mask measures the half: a different number.
        using Tensor half = HalfMask(left: true);
        Assert.NotEqual(plain, Stylizer.MeasureStyleLoss(net, content, stripes, Base, half), plain * 1e-2);
    }

    [Theory]
    [InlineData(StyleLossKind.Gram)]
    [InlineData(StyleLossKind.W2)]
    public void LiveTensorCountStaysFlatWithMasksAndBlends(StyleLossKind loss)
    {
        // Three styles, one masked, two blended over the rest; 4 L-BFGS pairs are full by iteration 6.
        var counts = new Dictionary<int, long>();
        var progress = new Recorder(r =>
        {
            if (r.Iteration is 8 or 20)
            {
                counts[r.Iteration] = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            }
        });
        using Tensor left = HalfMask(left: true);
        StyleTransferOptions o = Base with { Iterations = 20, LbfgsHistory = 4, StyleLoss = loss, StyleBlend = [1, 2, 1] };
        using StylizeResult r = Stylizer.Run(content, [stripes, redStripes, content], net, o, [left, null, null], progress);
        Assert.Equal(counts[8], counts[20]);
        Assert.True(r.History[^1].Style < r.History[0].Style / 2, $"{r.History[0].Style:E3} -> {r.History[^1].Style:E3}");
    }

    [Fact]
    public void AnAllBlackMaskIsRefused()
    {
        using Tensor black = torch.zeros(1, 1, 32, 48);
        var e = Assert.Throws<StyleTransferException>(() => Stylizer.Run(content, [stripes, redStripes], net, Base, [null, black]).Dispose());
        Assert.Equal("the mask for style image 2 is all black: it places that style nowhere", e.Message);
    }

    [Fact]
    public void MasksCoveringEverythingLeaveNoPlaceForAnUnmaskedStyle()
    {
        using Tensor white = torch.ones(1, 1, 32, 48);
        var e = Assert.Throws<StyleTransferException>(() => Stylizer.Run(content, [stripes, redStripes], net, Base, [white, null]).Dispose());
        Assert.Equal("the masks cover the whole output and leave no place for style image 2 (give it a mask too)", e.Message);
    }

    [Fact]
    public void BlendWeightsAreCheckedAgainstTheStyleCount()
    {
        var e = Assert.Throws<StyleTransferException>(() => Stylizer.Run(content, [stripes, redStripes], net, Base with { StyleBlend = [1, 2, 3] }, null).Dispose());
        Assert.Equal("--style-blend has 3 value(s) but there are 2 style images", Cli.OptionFlags.Message(e));
        Assert.Equal([0.25, 0.75], (Base with { StyleBlend = [1, 3] }).EffectiveStyleBlend(2));
        Assert.Equal([0.5, 0.5], Base.EffectiveStyleBlend(2));
    }

    /// <summary>Red and white anti-diagonal stripes, 3 px wide: a second texture, unlike the first stripes.</summary>
    private static Tensor RedStripes(int width, int height)
    {
        using var scope = torch.NewDisposeScope();
        Tensor y = torch.arange(height).reshape(height, 1), x = torch.arange(width).reshape(1, width);
        Tensor on = ((x - y + height) / 3 % 2).to(ScalarType.Float32);
        Tensor red = torch.stack([on * 0.0 + 0.9, on * 0.9 + 0.05, on * 0.9 + 0.05]);
        return red.unsqueeze(0).MoveToOuterDisposeScope();
    }

    private static Tensor HalfMask(bool left)
    {
        Tensor m = torch.zeros(1, 1, 32, 48);
        m[.., .., .., left ? TensorIndex.Slice(0, 24) : TensorIndex.Slice(24, 48)] = torch.tensor(1f);
        return m;
    }

    private sealed class Recorder(Action<IterationReport> action) : IProgress<IterationReport>
    {
        public void Report(IterationReport value) => action(value);
    }
}
