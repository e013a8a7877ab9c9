using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>The objective, the optimisers behind <see cref="IOptimizer"/> and the loop's observers.</summary>
public sealed class ObjectiveTests
{
    /// <summary>A fixed 32-px case with every whole-image term: content, style, TV and chroma TV, size-invariant.</summary>
    private static readonly StyleTransferOptions Case = StylizerTests.Base with { Size = 32, Iterations = 4, Seed = 3, TvWeight = 0.5, TvChromaWeight = 2, SizeInvariant = true };

    public ObjectiveTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void PartsSumToTheTotalAndEqualTheFiguresOfTheLoopBeforeTheObjective()
    {
        TorchRuntime.SetThreads(2);
        using Vgg19 net = Vgg19.Load(TestPaths.NarrowPth, Case.Pooling);
        using Tensor content = TestImages.SceneTensor(32, 24), style = TestImages.StripesTensor(24, 24);
        using Targets targets = Targets.Compute(net, content, Stylizer.ActiveContentLayers(Case), [style], Stylizer.ActiveStyleLayers(Case), Case.FeatureTransform, Case.SoftmaxTemperature);
        using Objective objective = Objective.Create(net, targets, Case, (24, 32));
        using Parameter x = new(Stylizer.InitialImage(Case.Init, (24, 32), content, style, 3), requires_grad: true);

        ObjectiveValue v = objective.Evaluate(x);

        Assert.Equal([LossPart.Content, LossPart.Style, LossPart.Tv, LossPart.TvChroma], v.Parts.Select(p => p.Name));
        Assert.Equal([Case.ContentWeight, Case.StyleWeight, 0.5, 2], v.Parts.Select(p => p.Weight));

        // The figures the optimisation loop reported for this start before it was split into objective and optimiser.
        Assert.Equal(474760.375, v.Total, 474760.375 * 1e-6);
        Assert.Equal(83.90715026855469, v.Content, 83.9 * 1e-6);
        Assert.Equal(0.030617257580161095, v.Style, 0.0306 * 1e-5);
        Assert.Equal(251529.046875, v.Tv, 251529 * 1e-6);
        Assert.Equal(v.Total, v.Parts.Sum(p => p.Weight * p.Value), v.Total * 1e-6);
        Assert.True(v[LossPart.TvChroma] > 0);
        Assert.Equal(0, v[LossPart.Pixel]);
        using Tensor g = x.grad!.abs().sum();
        Assert.True(g.ToDouble() > 0, "no gradient");
    }

    [Fact]
    public void APixelTermIsAPartOfItsOwn()
    {
        TorchRuntime.SetThreads(2);
        StyleTransferOptions o = Case with { TvChromaWeight = 0 };
        using Vgg19 net = Vgg19.Load(TestPaths.NarrowPth, o.Pooling);
        using Tensor content = TestImages.SceneTensor(32, 24), style = TestImages.StripesTensor(24, 24);
        using Targets targets = Targets.Compute(net, content, Stylizer.ActiveContentLayers(o), [style], Stylizer.ActiveStyleLayers(o), o.FeatureTransform, o.SoftmaxTemperature);
        using Objective plain = Objective.Create(net, targets, o, (24, 32));
        using Objective withPixel = Objective.Create(net, targets, o, (24, 32), pixelLoss: img => (img - 0.5).square().sum() * 0.01);
        using Parameter x = new(Stylizer.InitialImage(InitMode.Noise, (24, 32), content, style, 3), requires_grad: true);
        using Tensor expected = (x.detach() - 0.5).square().sum() * 0.01;

        ObjectiveValue a = plain.Evaluate(x);
        x.grad!.zero_();
        ObjectiveValue b = withPixel.Evaluate(x);

        Assert.Equal([LossPart.Content, LossPart.Style, LossPart.Tv, LossPart.Pixel], b.Parts.Select(p => p.Name));
        Assert.Equal(expected.ToDouble(), b[LossPart.Pixel]);
        Assert.Equal((a.Content, a.Style, a.Tv), (b.Content, b.Style, b.Tv));
        Assert.Equal(a.Total + b[LossPart.Pixel], b.Total, b.Total * 1e-6);
        Assert.Equal(b.Total, b.Parts.Sum(p => p.Weight * p.Value), b.Total * 1e-6);
    }

    [Fact]
    public void TheLoopReportsTheFiguresItReportedBeforeTheSplit()
    {
        // L-BFGS reports the losses of the point each iteration started from; Adam those of its one evaluation.
        (double Total, double Content, double Style, double Tv)[] lbfgs =
        [
            (474760.375, 83.90715026855469, 0.030617257580161095, 251529.046875),
            (472509.375, 83.5630111694336, 0.030683301389217377, 250604.96875),
            (35663.62109375, 34.28007888793945, 0.059586986899375916, 46900.13671875),
            (20803.626953125, 39.391544342041016, 0.06298957765102386, 30626.2890625),
        ];
        (double Total, double Content, double Style, double Tv)[] adam =
        [
            (474760.375, 83.90715026855469, 0.030617257580161095, 251529.046875),
            (409801, 72.8388900756836, 0.03295452892780304, 223855.125),
            (351887.15625, 63.10765075683594, 0.03555941581726074, 198734.71875),
            (300698.75, 55.838924407958984, 0.038283251225948334, 176135.78125),
        ];
        foreach ((OptimizerKind kind, var expected) in new[] { (OptimizerKind.Lbfgs, lbfgs), (OptimizerKind.Adam, adam) })
        {
            using StylizeResult r = Run(Case with { Optimizer = kind });
            Assert.Equal(expected.Length, r.History.Count);
            for (int i = 0; i < expected.Length; i++)
            {
                IterationReport h = r.History[i];
                Assert.Equal(i + 1, h.Evaluations);
                Assert.Equal(expected[i].Total, h.Total, Math.Abs(expected[i].Total) * 1e-5);
                Assert.Equal(expected[i].Content, h.Content, Math.Abs(expected[i].Content) * 1e-5);
                Assert.Equal(expected[i].Style, h.Style, Math.Abs(expected[i].Style) * 1e-5);
                Assert.Equal(expected[i].Tv, h.Tv, Math.Abs(expected[i].Tv) * 1e-5);
            }
        }
    }

    [Fact]
    public void OptimizersStepOnAQuadraticAsTheirRulesSay()
    {
        // f(x) = Σ (x − 0.25)² over 12 pixels at 0.75: f = 3, gradient 1 everywhere.
        using var quadratic = new Quadratic();
        using Parameter x = new(torch.full([1, 3, 2, 2], 0.75), requires_grad: true);
        using IOptimizer lbfgs = Optimizers.Create(x, new StyleTransferOptions { Optimizer = OptimizerKind.Lbfgs, LineSearch = false }, 10, 2);
        Assert.Equal(3, lbfgs.Step(quadratic).Total, 1e-6);

        // First L-BFGS step: along −g by min(1, 1/‖g‖₁) = 1/12.
        Assert.Equal(0.75 - (1 / 12.0), x.detach().mean().ToDouble(), 1e-6);
        Assert.Equal(12 * Math.Pow(0.5 - (1 / 12.0), 2), lbfgs.Step(quadratic).Total, 1e-5);
        Assert.Equal(2, lbfgs.Evaluations);
        (LbfgsState? state, double[]? start) = lbfgs.ExportState();
        using (state)
        {
            Assert.Equal(2, state!.Iteration);
            Assert.Null(start); // Without a line search no evaluation is waiting at the current point.
        }

        using Parameter y = new(torch.full([1, 3, 2, 2], 0.75), requires_grad: true);
        using IOptimizer adam = Optimizers.Create(y, new StyleTransferOptions { Optimizer = OptimizerKind.Adam, LearningRate = 0.1 }, 10, 2);
        Assert.Equal(3, adam.Step(quadratic).Total, 1e-6);

        // Adam's first step moves every pixel by the learning rate against the gradient's sign.
        Assert.Equal(0.65, y.detach().mean().ToDouble(), 1e-6);
        Assert.Equal(12 * 0.4 * 0.4, adam.Step(quadratic).Total, 1e-5);
        (LbfgsState? none, double[]? noLosses) = adam.ExportState();
        Assert.Null(none);
        Assert.Null(noLosses);
    }

    [Fact]
    public void ANonFiniteLossStopsTheLoopAsDivergedBeforeAnythingIsReportedOrSaved()
    {
        using var quadratic = new Quadratic(scale: double.NaN);
        using Parameter x = new(torch.full([1, 3, 2, 2], 0.75), requires_grad: true);
        using IOptimizer optimizer = Optimizers.Create(x, new StyleTransferOptions(), 10, 5);
        var reports = new List<IterationReport>();
        var checkpoints = new List<int>();
        var loop = new OptimizationLoop(NewStage(5, ck => checkpoints.Add(ck.ScaleIteration)), new StyleTransferOptions { SaveEvery = 1 }, x, optimizer);
        IIterationObserver[] observers = [new DivergenceCheck(), new ProgressReporter(new Recorder(reports.Add)), new CheckpointWriter(ck => checkpoints.Add(ck.ScaleIteration), 1)];

        StyleTransferException e = Assert.Throws<StyleTransferException>(() => loop.Run(quadratic, observers, default));

        Assert.Equal(FailureKind.Diverged, e.Kind);
        Assert.Equal("the loss became NaN at iteration 1; no image was written (try a smaller StyleWeight or LearningRate, or Optimizer = adam)", e.Message);
        Assert.Empty(reports);
        Assert.Empty(loop.History);
        Assert.Empty(checkpoints);
    }

    [Fact]
    public void CheckpointsAreWrittenEverySaveEveryIterationsAndWhenCancelled()
    {
        using var quadratic = new Quadratic(uneven: true);
        using Parameter x = new(torch.full([1, 3, 2, 2], 0.75), requires_grad: true);
        using IOptimizer optimizer = Optimizers.Create(x, new StyleTransferOptions { LineSearch = true }, 10, 5);
        using var stop = new CancellationTokenSource();
        var saved = new List<(int Iteration, int Evaluations, int Losses)>();
        var snapshots = new List<int>();
        var loop = new OptimizationLoop(NewStage(5, null), new StyleTransferOptions { SaveEvery = 2 }, x, optimizer);
        IIterationObserver[] observers =
        [
            new ProgressReporter(new Recorder(r => { if (r.Iteration == 3) { stop.Cancel(); } })),
            new SnapshotWriter((i, _) => snapshots.Add(i)),
            new CheckpointWriter(ck => saved.Add((ck.ScaleIteration, ck.Evaluations, ck.StartLosses?.Length ?? 0)), 1),
        ];

        Assert.True(loop.Run(quadratic, observers, stop.Token));

        Assert.Equal(3, loop.History.Count);
        Assert.Equal([2], snapshots);
        Assert.Equal([2, 3], saved.Select(s => s.Iteration));
        Assert.Equal(loop.History.Select(h => h.Evaluations).Skip(1), saved.Select(s => s.Evaluations));

        // With a line search the point an iteration ends at was evaluated: its losses go with the checkpoint.
        Assert.All(saved, s => Assert.Equal(4, s.Losses));
    }

    private static StylizeResult Run(StyleTransferOptions options)
    {
        TorchRuntime.SetThreads(2);
        using Vgg19 net = Vgg19.Load(TestPaths.NarrowPth, options.Pooling);
        using Tensor content = TestImages.SceneTensor(32, 24), style = TestImages.StripesTensor(24, 24);
        return Stylizer.Run(content, style, net, options);
    }

    private static Stage NewStage(int iterations, Action<Checkpoint>? checkpoint) =>
        new(0, 1, iterations, 0, 0, iterations, 0, 0, null, null, null, checkpoint, 1);

    /// <summary>f(x) = scale · Σ w_i (x_i − 0.25)² (w_i = 1, or 1 … n when <paramref name="uneven"/>), reported as its content part.</summary>
    private sealed class Quadratic(double scale = 1, bool uneven = false) : IObjective
    {
        public ObjectiveValue Evaluate(Tensor image)
        {
            using var scope = torch.NewDisposeScope();
            Tensor w = uneven ? torch.arange(1, image.numel() + 1, dtype: image.dtype).reshape(image.shape) : torch.ones_like(image);
            Tensor loss = (w * (image - 0.25).square()).sum() * scale;
            loss.backward();
            double v = loss.ToDouble();
            return new ObjectiveValue(v, [new(LossPart.Content, v, 1)]);
        }

        public void Dispose()
        {
        }
    }

    private sealed class Recorder(Action<IterationReport> action) : IProgress<IterationReport>
    {
        public void Report(IterationReport value) => action(value);
    }
}
