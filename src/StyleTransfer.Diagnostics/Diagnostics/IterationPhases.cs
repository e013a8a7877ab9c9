using System.Diagnostics;
using System.Globalization;
using StyleTransfer.Losses;
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
/// Times the phases of <see cref="Objective.Evaluate"/> apart (TorchSharp has no profiler). The loss
/// terms are the objective's own (<see cref="FeatureTransform"/>, <see cref="ContentLoss"/>,
/// <see cref="StyleTerms"/>, <see cref="TotalVariation"/>), computed on detached copies of the
/// features so that their backward and the network's can be timed one after the other; the gradient
/// reaching the image is the same. Runs on the CPU, where every call returns when its work is done.
/// </summary>
internal static class IterationPhases
{
    /// <summary>Profiles <paramref name="network"/>'s default recipe at <paramref name="size"/> px: <paramref name="repeats"/> timed evaluations after one warm-up.</summary>
    public static IterationPhasesResult Run(string network, int size, Precision precision, int repeats, string? weightsPath = null)
    {
        TorchRuntime.EnsureLoaded();
        StyleTransferOptions options = NetworkFactory.DefaultOptions(network) with
        {
            Size = size,
            Scales = 1,
            Precision = precision,
            WeightsPath = network == "vgg19" ? null : weightsPath,
        };
        options.Validate();
        using var scope = torch.NewDisposeScope();
        using IFeatureNetwork net = network == "vgg19"
            ? MixedPrecisionNetwork.Wrap(RandomVgg(), precision)
            : NetworkFactory.Create(options, torch.CPU);
        using var gen = new Generator(2);
        Tensor content = torch.rand(new long[] { 1, 3, size, size }, generator: gen);
        Tensor style = torch.rand(new long[] { 1, 3, size, size }, generator: gen);
        string[] contentLayers = [.. Stylizer.ActiveContentLayers(options)];
        string[] styleLayers = [.. Stylizer.ActiveStyleLayers(options)];
        string[] taps = [.. contentLayers.Union(styleLayers)];
        using Targets targets = Targets.Compute(net, content, contentLayers, [style], styleLayers, options.FeatureTransform, options.SoftmaxTemperature);
        using StyleTerms terms = StyleTerms.Build(targets, styleLayers, options, (size, size), null, torch.CPU);
        Tensor image = content.clone().requires_grad_(true);

        var samples = new List<double[]>();
        for (int i = 0; i <= repeats; i++)
        {
            double[] ms = Evaluate(net, image, options, targets, terms, contentLayers, taps);
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

    private static double[] Evaluate(IFeatureNetwork net, Tensor image, StyleTransferOptions options, Targets targets, StyleTerms terms, string[] contentLayers, string[] taps)
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
        Dictionary<string, Tensor> feats = net.Extract(image, taps);
        ms[0] = Lap();

        var leaves = taps.ToDictionary(t => t, t => feats[t].detach().requires_grad_(true));
        var transformed = taps.ToDictionary(t => t, t => FeatureTransform.Apply(leaves[t], options.FeatureTransform, options.SoftmaxTemperature));
        ms[1] = Lap();

        Tensor lc = torch.zeros(1);
        foreach (string layer in contentLayers)
        {
            lc = lc + ContentLoss.Compute(transformed[layer], targets.Content[layer]);
        }

        ms[2] = Lap();
        Tensor ls = terms.Loss(transformed, torch.CPU);
        ms[3] = Lap();
        double scale = options.PixelLossScale((int)image.shape[2], (int)image.shape[3]);
        Tensor loss = (lc * (options.ContentWeight * scale)) + (ls * options.StyleWeight);
        if (options.TvWeight > 0)
        {
            loss = loss + (TotalVariation.Compute(image) * (options.TvWeight * scale));
        }

        if (options.TvChromaWeight > 0)
        {
            loss = loss + (TotalVariation.ComputeChroma(image) * (options.TvChromaWeight * scale));
        }

        ms[4] = Lap();
        loss.backward();
        ms[5] = Lap();
        torch.autograd.backward([.. taps.Select(t => feats[t])], [.. taps.Select(t => leaves[t].grad!)]);
        ms[6] = Lap();
        return ms;
    }

    private static Vgg19 RandomVgg()
    {
        Vgg19 vgg = Vgg19.CreateRandom(PoolingMode.Avg, seed: 1);
        vgg.MoveTo(torch.CPU);
        return vgg;
    }
}
