using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>The optimisation loop on the narrow fixture VGG-19 and small images.</summary>
public sealed class StylizerTests
{
    internal static readonly StyleTransferOptions Base = new StyleTransferOptions { Size = 64, Iterations = 20, Seed = 7, Threads = 2 }.Validate();

    public StylizerTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void TwentyLbfgsIterationsCutTheLossTenfold()
    {
        StylizeResult result = Run(Base);
        double first = result.History[0].Total, last = result.History[^1].Total;
        Assert.Equal(20, result.History.Count);
        Assert.True(last < first / 10, $"loss {first:E3} -> {last:E3}: less than a tenfold cut");
        Assert.True(result.History[^1].Content < result.History[0].Content);
        Assert.True(result.History[^1].Style < result.History[0].Style);
        result.Dispose();
    }

    [Fact]
    public void StrongWolfeLineSearchNeverIncreasesTheLoss()
    {
        StylizeResult result = Run(Base with { LineSearch = true, Iterations = 10 });
        for (int i = 1; i < result.History.Count; i++)
        {
            Assert.True(result.History[i].Total <= result.History[i - 1].Total, $"iteration {i + 1}: {result.History[i].Total:E4} > {result.History[i - 1].Total:E4}");
        }

        Assert.True(result.History[^1].Total < result.History[0].Total / 5);
        result.Dispose();
    }

    [Fact]
    public void AdamLowersTheLoss()
    {
        StylizeResult result = Run(Base with { Optimizer = OptimizerKind.Adam, Iterations = 20 });
        Assert.True(result.History[^1].Total < result.History[0].Total / 2, $"{result.History[0].Total:E3} -> {result.History[^1].Total:E3}");
        result.Dispose();
    }

    [Fact]
    public void TheSameSeedGivesTheSameImageAndAnotherSeedDoesNot()
    {
        using StylizeResult a = Run(Base with { Iterations = 5 });
        using StylizeResult b = Run(Base with { Iterations = 5 });
        using StylizeResult c = Run(Base with { Iterations = 5, Seed = 8 });
        Assert.True(Same(a.Image, b.Image), "same seed, different images");
        Assert.False(Same(a.Image, c.Image), "different seeds, same image");
        Assert.Equal(7, a.Seed);
    }

    [Theory]
    [InlineData(InitMode.Content)]
    [InlineData(InitMode.Style)]
    public void OtherInitialisationsStartFromTheirImage(InitMode init)
    {
        using Tensor content = TestImages.SceneTensor(48, 32), style = TestImages.StripesTensor(40, 40);
        using Tensor start = Stylizer.InitialImage(init, (32, 48), content, style, seed: 1);
        Assert.Equal(content.shape, start.shape);
        if (init == InitMode.Content)
        {
            Assert.True(Same(start, content));
        }
        else
        {
            // The stripes' two colours survive bilinear resizing on average.
            Assert.InRange(start.mean().ToDouble(), 0.3, 0.6);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LiveTensorCountStaysFlatOnceTheLbfgsHistoryIsFull(bool lineSearch)
    {
        // With 4 pairs kept the history is full by iteration 6; from then on nothing may accumulate.
        var counts = new Dictionary<int, long>();
        var progress = new Recorder(r =>
        {
            if (r.Iteration is 8 or 25)
            {
                counts[r.Iteration] = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            }
        });
        using StylizeResult result = Run(Base with { Iterations = 25, LineSearch = lineSearch, LbfgsHistory = 4 }, progress);
        Assert.Equal(counts[8], counts[25]);
    }

    [Fact]
    public void SnapshotsAreTakenEveryNIterations()
    {
        var taken = new List<int>();
        using StylizeResult result = Run(Base with { Iterations = 7, SaveEvery = 3 }, snapshot: (i, img) =>
        {
            Assert.Equal(new long[] { 1, 3, 43, 64 }, img.shape);
            taken.Add(i);
        });
        Assert.Equal([3, 6], taken);
    }

    [Fact]
    public void ALossThatOverflowsStopsTheRunWithAClearError()
    {
        var e = Assert.Throws<StyleTransferException>(() => Run(Base with { ContentWeight = 1e300, Iterations = 3 }));
        Assert.Equal(FailureKind.Diverged, e.Kind);
        Assert.StartsWith("the loss became ", e.Message);
        Assert.Contains("at iteration 1; no image was written", e.Message);
    }

    [Fact]
    public void CancellationStopsEarlyAndReturnsTheImageSoFar()
    {
        using var cts = new CancellationTokenSource();
        var progress = new Recorder(r =>
        {
            if (r.Iteration == 3)
            {
                cts.Cancel();
            }
        });
        using StylizeResult result = Run(Base, progress, cancellation: cts.Token);
        Assert.True(result.Cancelled);
        Assert.Equal(3, result.History.Count);
    }

    [Fact]
    public void UnknownLayerNamesAreRejectedWithTheKnownOnes()
    {
        var e = Assert.Throws<StyleTransferException>(() => Run(Base with { StyleLayers = ["relu1_1", "conv9_1"] }));
        Assert.StartsWith("--style-layers: unknown layer 'conv9_1' for vgg19 (known: conv1_1, relu1_1, conv1_2,", Cli.OptionFlags.Message(e));
    }

    private static bool Same(Tensor a, Tensor b)
    {
        using Tensor d = (a - b).abs().max();
        return d.ToDouble() == 0;
    }

    internal static StylizeResult Run(StyleTransferOptions options, IProgress<IterationReport>? progress = null, Action<int, Tensor>? snapshot = null, CancellationToken cancellation = default, int width = 64, int height = 43)
    {
        TorchRuntime.SetThreads(2);
        using Vgg19 net = Vgg19.Load(TestPaths.NarrowPth, options.Pooling);
        using Tensor content = TestImages.SceneTensor(width, height), style = TestImages.StripesTensor(48, 48);
        return Stylizer.Run(content, style, net, options, progress, cancellation, snapshot);
    }

    private sealed class Recorder(Action<IterationReport> action) : IProgress<IterationReport>
    {
        public void Report(IterationReport value) => action(value);
    }
}
