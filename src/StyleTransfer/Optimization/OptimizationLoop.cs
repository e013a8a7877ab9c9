using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// One optimisation at one size: a loop over <see cref="IOptimizer.Step"/> that hands each
/// iteration's report to its observers (divergence check, progress, memory trim, snapshots,
/// checkpoints), in their order. Where the run stands is what the observers read.
/// </summary>
internal sealed class OptimizationLoop
{
    private readonly Stopwatch clock;
    private readonly int evaluationsBefore;

    public OptimizationLoop(Stage stage, StyleTransferOptions options, Parameter image, IOptimizer optimizer)
    {
        (Stage, Options, Image, Optimizer) = (stage, options, image, optimizer);
        History = new List<IterationReport>(stage.Iterations);
        evaluationsBefore = stage.EvaluationsBefore - optimizer.Evaluations;
        clock = Stopwatch.StartNew();
    }

    public Stage Stage { get; }

    /// <summary>The options of this optimisation (a stage's may add the style anchor's layers to the run's).</summary>
    public StyleTransferOptions Options { get; }

    /// <summary>The image being optimised, on the network's device.</summary>
    public Parameter Image { get; }

    public IOptimizer Optimizer { get; }

    /// <summary>The reports of this optimisation's iterations so far (filled by <see cref="ProgressReporter"/>).</summary>
    public List<IterationReport> History { get; }

    /// <summary>Evaluations over the whole run, earlier scales and runs included.</summary>
    public int Evaluations => evaluationsBefore + Optimizer.Evaluations;

    /// <summary>Time since the optimisation started, earlier scales and runs included (targets excluded).</summary>
    public TimeSpan Elapsed => clock.Elapsed + TimeSpan.FromSeconds(Stage.SecondsBefore);

    /// <summary>Runs the stage's remaining iterations; true when stopped through <paramref name="cancellation"/>.</summary>
    public bool Run(IObjective objective, IReadOnlyList<IIterationObserver> observers, CancellationToken cancellation)
    {
        for (int i = Stage.StartIteration + 1; i <= Stage.Iterations; i++)
        {
            if (cancellation.IsCancellationRequested)
            {
                foreach (IIterationObserver observer in observers)
                {
                    observer.Cancelled(this, i - 1);
                }

                return true;
            }

            ObjectiveValue value;
            using (torch.NewDisposeScope())
            {
                value = Optimizer.Step(objective);
            }

            var report = new IterationReport(Stage.IterationsBefore + i, Stage.TotalIterations, value.Total, value.Content, value.Style, value.Tv, Elapsed, Evaluations, Stage.Scale + 1, Stage.Scales);
            foreach (IIterationObserver observer in observers)
            {
                observer.Iterated(this, i, report);
            }
        }

        return false;
    }
}

/// <summary>Something that watches an optimisation's iterations (and may stop it by throwing).</summary>
internal interface IIterationObserver
{
    /// <summary>After iteration <paramref name="iteration"/> (1-based, of this scale), with its report.</summary>
    void Iterated(OptimizationLoop loop, int iteration, IterationReport report);

    /// <summary>The run was cancelled after iteration <paramref name="iteration"/> of this scale (0: none ran at this scale).</summary>
    void Cancelled(OptimizationLoop loop, int iteration)
    {
    }
}

/// <summary>Stops the run with <see cref="FailureKind.Diverged"/> when the loss is no longer finite.</summary>
internal sealed class DivergenceCheck : IIterationObserver
{
    public void Iterated(OptimizationLoop loop, int iteration, IterationReport report)
    {
        if (!double.IsFinite(report.Total))
        {
            throw StyleTransferException.Named(
                $"the loss became {report.Total} at iteration {report.Iteration}; no image was written (try a smaller {Opt.StyleWeight} or {Opt.LearningRate}, or {Opt.Optimizer.Is("adam")})",
                FailureKind.Diverged);
        }
    }
}

/// <summary>Records each report in the loop's history and passes it to <paramref name="progress"/>.</summary>
internal sealed class ProgressReporter(IProgress<IterationReport>? progress) : IIterationObserver
{
    public void Iterated(OptimizationLoop loop, int iteration, IterationReport report)
    {
        loop.History.Add(report);
        progress?.Report(report);
    }
}

/// <summary>
/// On the CPU, collects garbage and returns freed heap memory to the OS after the first and every
/// 10th iteration (STYLIZE_MALLOC_TRIM=0 turns it off, for measurements).
/// </summary>
internal sealed class MemoryTrim : IIterationObserver
{
    private static readonly bool Enabled = Environment.GetEnvironmentVariable("STYLIZE_MALLOC_TRIM") != "0";

    public void Iterated(OptimizationLoop loop, int iteration, IterationReport report)
    {
        if (loop.Image.device.type == DeviceType.CPU && (iteration == loop.Stage.StartIteration + 1 || report.Iteration % 10 == 0) && Enabled)
        {
            TorchRuntime.ReleaseFreedMemory();
        }
    }
}

/// <summary>Hands the image (clamped, on the CPU) to <paramref name="snapshot"/> every --save-every iterations, except the last.</summary>
internal sealed class SnapshotWriter(Action<int, Tensor> snapshot) : IIterationObserver
{
    public void Iterated(OptimizationLoop loop, int iteration, IterationReport report)
    {
        if (IsSavePoint(loop, report))
        {
            using Tensor snap = loop.Image.detach().clamp(0, 1).to(torch.CPU);
            snapshot(report.Iteration, snap);
        }
    }

    /// <summary>Every --save-every iterations, except the run's last (the output itself).</summary>
    internal static bool IsSavePoint(OptimizationLoop loop, IterationReport report) =>
        loop.Options.SaveEvery > 0 && report.Iteration % loop.Options.SaveEvery == 0 && report.Iteration < loop.Stage.TotalIterations;
}

/// <summary>
/// Writes a resumable <see cref="Checkpoint"/> through the stage's callback every --save-every
/// iterations, and when the run is cancelled after some iteration ran: enough to continue exactly
/// (L-BFGS) or from the image (Adam).
/// </summary>
internal sealed class CheckpointWriter(Action<Checkpoint> write, long seed) : IIterationObserver
{
    public void Iterated(OptimizationLoop loop, int iteration, IterationReport report)
    {
        if (SnapshotWriter.IsSavePoint(loop, report))
        {
            Write(loop, iteration);
        }
    }

    public void Cancelled(OptimizationLoop loop, int iteration)
    {
        if (loop.History.Count > 0 || loop.Stage.RanBefore)
        {
            // Nothing optimised in this run: an old checkpoint is worth more than a copy of the start.
            Write(loop, iteration);
        }
    }

    private void Write(OptimizationLoop loop, int iteration)
    {
        using Tensor img = loop.Image.detach().to(torch.CPU).clone();
        (LbfgsState? state, double[]? startLosses) = loop.Optimizer.ExportState();
        using (state)
        {
            var ck = new Checkpoint
            {
                Scale = loop.Stage.Scale,
                ScaleIteration = iteration,
                Iteration = loop.Stage.IterationsBefore + iteration,
                Seed = seed,
                Seconds = loop.Elapsed.TotalSeconds,
                Evaluations = loop.Evaluations,
                Options = loop.Stage.SavedOptions ?? loop.Options,
                Image = img,
                Lbfgs = state,
                StartLosses = startLosses,
            };
            write(ck);
        }
    }
}
