using StyleTransfer.Losses;
using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// What the optimisation matches: the content image's feature maps and the style image's Gram
/// matrices, computed once without gradients. One set can serve many runs (grid tiles) as long as
/// it holds every layer they use.
/// </summary>
public sealed class Targets : IDisposable
{
    private Targets()
    {
    }

    public Dictionary<string, Tensor> Content { get; } = new(StringComparer.Ordinal);

    /// <summary>Per style layer: the Gram matrix A and the number of positions M_s it sums over.</summary>
    public Dictionary<string, (Tensor Gram, long Positions)> StyleGrams { get; } = new(StringComparer.Ordinal);

    /// <summary>The transformation the features went through before the Grams were taken.</summary>
    public FeatureTransformKind Transform { get; private init; }

    public double Temperature { get; private init; } = 1;

    /// <summary>
    /// Runs <paramref name="network"/> on the images (either may be null when its layer list is
    /// empty) and keeps the requested content features and style Grams, on the network's device.
    /// </summary>
    public static Targets Compute(
        IFeatureNetwork network,
        Tensor? content,
        IReadOnlyList<string> contentLayers,
        Tensor? style,
        IReadOnlyList<string> styleLayers,
        FeatureTransformKind transform = FeatureTransformKind.None,
        double temperature = 1)
    {
        var targets = new Targets { Transform = transform, Temperature = temperature };
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        if (contentLayers.Count > 0)
        {
            Tensor c = content ?? throw new ArgumentNullException(nameof(content), "content layers need a content image");
            foreach ((string k, Tensor v) in network.Extract(c.to(network.Device), contentLayers))
            {
                targets.Content[k] = FeatureTransform.Apply(v, transform, temperature).clone().MoveToOuterDisposeScope();
            }
        }

        if (styleLayers.Count > 0)
        {
            Tensor s = style ?? throw new ArgumentNullException(nameof(style), "style layers need a style image");
            foreach ((string k, Tensor v) in network.Extract(s.to(network.Device), styleLayers))
            {
                Tensor f = FeatureTransform.Apply(v, transform, temperature);
                targets.StyleGrams[k] = (Gram.Compute(f).MoveToOuterDisposeScope(), f.shape[^1] * f.shape[^2]);
            }
        }

        return targets;
    }

    public void Dispose()
    {
        foreach (Tensor t in Content.Values.Concat(StyleGrams.Values.Select(g => g.Gram)))
        {
            t.Dispose();
        }
    }
}
