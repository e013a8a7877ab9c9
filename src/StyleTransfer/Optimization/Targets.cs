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

    public Dictionary<string, Tensor> StyleGrams { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Runs <paramref name="network"/> on the images (either may be null when its layer list is
    /// empty) and keeps the requested content features and style Grams, on the network's device.
    /// </summary>
    public static Targets Compute(IFeatureNetwork network, Tensor? content, IReadOnlyList<string> contentLayers, Tensor? style, IReadOnlyList<string> styleLayers)
    {
        var targets = new Targets();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        if (contentLayers.Count > 0)
        {
            Tensor c = content ?? throw new ArgumentNullException(nameof(content), "content layers need a content image");
            foreach ((string k, Tensor v) in network.Extract(c.to(network.Device), contentLayers))
            {
                targets.Content[k] = v.clone().MoveToOuterDisposeScope();
            }
        }

        if (styleLayers.Count > 0)
        {
            Tensor s = style ?? throw new ArgumentNullException(nameof(style), "style layers need a style image");
            foreach ((string k, Tensor v) in network.Extract(s.to(network.Device), styleLayers))
            {
                targets.StyleGrams[k] = Gram.Compute(v).MoveToOuterDisposeScope();
            }
        }

        return targets;
    }

    public void Dispose()
    {
        foreach (Tensor t in Content.Values.Concat(StyleGrams.Values))
        {
            t.Dispose();
        }
    }
}
