using System.Diagnostics;
using System.Globalization;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Diagnostics;

/// <summary>
/// Where one evaluation of the objective goes, median milliseconds per phase: the network's forward
/// pass to its taps, the feature transform (SWAG softmax), the content and style terms, the TV terms,
/// the backward pass through the loss terms alone (to the features) and through the network (to the
/// image). The sum is one evaluation; a bench iteration (line search off) is one evaluation plus the
/// L-BFGS step and the loop's bookkeeping.
/// </summary>
internal sealed record IterationPhasesResult(string Network, int Size, Precision Precision, double ForwardMs, double TransformMs, double ContentMs, double StyleMs, double TvMs, double LossBackwardMs, double NetworkBackwardMs)
{
    /// <summary>The phases together: one evaluation.</summary>
    public double EvaluateMs => ForwardMs + TransformMs + ContentMs + StyleMs + TvMs + LossBackwardMs + NetworkBackwardMs;

    /// <inheritdoc/>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"phases {Network} {Size} forward_ms={ForwardMs:F1} transform_ms={TransformMs:F1} content_ms={ContentMs:F1} style_ms={StyleMs:F1} tv_ms={TvMs:F1} loss_backward_ms={LossBackwardMs:F1} network_backward_ms={NetworkBackwardMs:F1} evaluate_ms={EvaluateMs:F1} precision={Precision.ToString().ToLowerInvariant()}");
}

/// <summary>
/// Times the phases of <see cref="Objective.Evaluate"/> apart (TorchSharp has no profiler), with the
/// objective's own pieces (<see cref="Objective.Transform"/>, <see cref="Objective.ContentTerm"/>,
/// <see cref="Objective.StyleTerm"/>, <see cref="Objective.PixelTerms"/>, <see cref="Objective.Combine"/>)
/// on detached copies of the features, so that their backward and the network's can be timed one
/// after the other; the gradient reaching the image is the same. Runs on the CPU, where every call
/// returns when its work is done.
/// </summary>
internal static class IterationPhases
{
    /// <summary>Profiles <paramref name="network"/>'s default recipe at <paramref name="size"/> px: <paramref name="repeats"/> timed evaluations after one warm-up.</summary>
    public static IterationPhasesResult Run(string network, int size, Precision precision, int repeats, string? weightsPath = null)
    {
        StyleTransferOptions options = Benchmark.OptionsFor(network, size, repeats, precision: precision, weightsPath: weightsPath);
        TorchRuntime.EnsureLoaded();
        options.Validate();
        using var scope = torch.NewDisposeScope();
        using IFeatureNetwork net = Benchmark.CreateNetwork(options, torch.CPU);
        using var gen = new Generator(2);
        Tensor content = torch.rand(new long[] { 1, 3, size, size }, generator: gen);
        Tensor style = torch.rand(new long[] { 1, 3, size, size }, generator: gen);
        using Targets targets = Targets.Compute(net, content, Stylizer.ActiveContentLayers(options), [style], Stylizer.ActiveStyleLayers(options), options.FeatureTransform, options.SoftmaxTemperature);
        using Objective objective = Objective.Create(net, targets, options, (size, size));
        Tensor image = content.clone().requires_grad_(true);

        var samples = new List<double[]>();
        for (int i = 0; i <= repeats; i++)
        {
            double[] ms = Evaluate(net, objective, image);
            if (i > 0)
            {
                samples.Add(ms);
            }
        }

        double Median(int k)
        {
            List<double> v = [.. samples.Select(s => s[k]).Order()];
            return v[v.Count / 2];
        }

        return new IterationPhasesResult(network, size, precision, Median(0), Median(1), Median(2), Median(3), Median(4), Median(5), Median(6));
    }

    /// <summary>
    /// One evaluation with the objective's own terms, timed apart: they see detached copies of the
    /// features, so that the backward through them and through the network run one after the other.
    /// </summary>
    private static double[] Evaluate(IFeatureNetwork net, Objective objective, Tensor image)
    {
        using var scope = torch.NewDisposeScope();
        var ms = new double[7];
        var clock = Stopwatch.StartNew();
        double Lap()
        {
            double t = clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            return t;
        }

        image.grad?.zero_();
        IReadOnlyList<string> taps = objective.Taps;
        Dictionary<string, Tensor> feats = net.Extract(image, taps);
        ms[0] = Lap();

        var leaves = taps.ToDictionary(t => t, t => feats[t].detach().requires_grad_(true));
        Dictionary<string, Tensor> transformed = objective.Transform(new Dictionary<string, Tensor>(leaves));
        ms[1] = Lap();
        Tensor lc = objective.ContentTerm(transformed);
        ms[2] = Lap();
        Tensor ls = objective.StyleTerm(transformed);
        ms[3] = Lap();
        (Tensor tv, Tensor? chroma) = objective.PixelTerms(image);
        Tensor loss = objective.Combine(lc, ls, tv, chroma).Loss;
        ms[4] = Lap();
        loss.backward();
        ms[5] = Lap();
        torch.autograd.backward([.. taps.Select(t => feats[t])], [.. taps.Select(t => leaves[t].grad!)]);
        ms[6] = Lap();
        return ms;
    }
}
