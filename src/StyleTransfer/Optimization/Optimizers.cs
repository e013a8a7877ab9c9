using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// An optimiser over the pixels of one image: each <see cref="Step"/> is one iteration, which may
/// evaluate the objective several times (a line search).
/// </summary>
internal interface IOptimizer : IDisposable
{
    /// <summary>Objective evaluations so far, counting those of a resumed state.</summary>
    int Evaluations { get; }

    /// <summary>One iteration; returns the losses reported for it.</summary>
    ObjectiveValue Step(IObjective objective);

    /// <summary>
    /// What a checkpoint needs to continue exactly: L-BFGS's state (yours to dispose) and the losses
    /// of the point it stands at; (null, null) for an optimiser that continues from the image alone.
    /// </summary>
    (LbfgsState? State, double[]? StartLosses) ExportState();
}

/// <summary>The optimisers of <see cref="OptimizerKind"/>.</summary>
internal static class Optimizers
{
    /// <summary>
    /// The optimiser the options name over <paramref name="image"/>; for L-BFGS with
    /// <paramref name="historySize"/> curvature pairs, continuing from <paramref name="resume"/> (and
    /// the losses <paramref name="startLosses"/> at its current point) when given.
    /// </summary>
    public static IOptimizer Create(Parameter image, StyleTransferOptions options, int historySize, int expectedIterations, LbfgsState? resume = null, double[]? startLosses = null) =>
        options.Optimizer == OptimizerKind.Lbfgs
            ? new LbfgsOptimizer(image, new Lbfgs(image, options.EffectiveLearningRate, historySize: historySize, strongWolfe: options.LineSearch, expectedIterations: expectedIterations), resume, startLosses)
            : new AdamOptimizer(image, options.EffectiveLearningRate);
}

/// <summary>
/// Counts an optimiser's evaluations of the objective and keeps the last 64 values, so that an
/// iteration can report the losses of the point it started from (evaluated, with a line search,
/// during the previous iteration).
/// </summary>
internal sealed class EvaluationLog(Tensor image)
{
    private readonly (int Ordinal, ObjectiveValue? Value)[] recent = new (int, ObjectiveValue?)[64];

    /// <summary>Evaluations so far (the ordinal of the last one, 1-based).</summary>
    public int Count { get; set; }

    /// <summary>The last evaluation's value (null before any).</summary>
    public ObjectiveValue? Last { get; set; }

    /// <summary>Evaluates <paramref name="objective"/> at the image (its gradient cleared first) and returns the total.</summary>
    public double Evaluate(IObjective objective)
    {
        Count++;
        using var scope = torch.NewDisposeScope();
        image.grad?.zero_();
        ObjectiveValue value = objective.Evaluate(image);
        Remember(Count, value);
        Last = value;
        return value.Total;
    }

    /// <summary>Records <paramref name="value"/> as evaluation <paramref name="ordinal"/> (a resumed state's current point).</summary>
    public void Remember(int ordinal, ObjectiveValue value) => recent[ordinal % recent.Length] = (ordinal, value);

    /// <summary>The value of evaluation <paramref name="ordinal"/>, when still kept.</summary>
    public ObjectiveValue? Find(int ordinal) => recent[ordinal % recent.Length] is { Value: { } v } e && e.Ordinal == ordinal ? v : null;
}

/// <summary><see cref="Lbfgs"/> as an <see cref="IOptimizer"/>: reports the losses of the point each iteration started from.</summary>
internal sealed class LbfgsOptimizer : IOptimizer
{
    private readonly Lbfgs lbfgs;
    private readonly EvaluationLog log;

    public LbfgsOptimizer(Tensor image, Lbfgs lbfgs, LbfgsState? resume, double[]? startLosses)
    {
        this.lbfgs = lbfgs;
        log = new EvaluationLog(image);
        if (resume is not null)
        {
            lbfgs.ImportState(resume);
            log.Count = resume.Evaluations;
            if (resume.CurrentOrdinal is { } o && startLosses is [double t0, double c0, double s0, double tv0])
            {
                log.Remember(o, ObjectiveValue.FromReport(t0, c0, s0, tv0));
            }
        }
    }

    public int Evaluations => log.Count;

    public ObjectiveValue Step(IObjective objective)
    {
        log.Last = null;
        lbfgs.Step(() => log.Evaluate(objective));
        return log.Find(lbfgs.StartEvaluation) ?? log.Last ?? ObjectiveValue.None;
    }

    public (LbfgsState? State, double[]? StartLosses) ExportState()
    {
        LbfgsState state = lbfgs.ExportState();
        double[]? start = state.CurrentOrdinal is { } o && log.Find(o) is { } v ? [v.Total, v.Content, v.Style, v.Tv] : null;
        return (state, start);
    }

    public void Dispose() => lbfgs.Dispose();
}

/// <summary>torch.optim.Adam as an <see cref="IOptimizer"/>: one evaluation and one step per iteration, reporting that evaluation.</summary>
internal sealed class AdamOptimizer(Parameter image, double learningRate) : IOptimizer
{
    private readonly torch.optim.Optimizer adam = torch.optim.Adam([image], lr: learningRate);
    private readonly EvaluationLog log = new(image);

    public int Evaluations => log.Count;

    public ObjectiveValue Step(IObjective objective)
    {
        log.Evaluate(objective);
        adam.step();
        return log.Last!;
    }

    public (LbfgsState? State, double[]? StartLosses) ExportState() => (null, null);

    public void Dispose() => adam.Dispose();
}
