using StyleTransfer.Losses;
using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>One style image's statistics at one layer: its Gram matrix A over M_s positions, and its Gaussian fit (float64).</summary>
internal sealed record StyleStats(Tensor Gram, long Positions, Tensor Mean, Tensor Covariance);

/// <summary>
/// What the optimisation matches: the content image's feature maps and each style image's Gram
/// matrices and Gaussian fits, computed once without gradients. One set can serve many runs
/// (grid tiles, several blends of the same styles) as long as it holds every layer they use.
/// </summary>
internal sealed class Targets : IDisposable
{
    private readonly List<Dictionary<string, StyleStats>> styles = [];

    private Targets()
    {
    }

    public Dictionary<string, Tensor> Content { get; } = new(StringComparer.Ordinal);

    /// <summary>Per style image (in order), per style layer: its statistics.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, StyleStats>> Styles => styles;

    /// <summary>The first style image's Gram matrix A and positions M_s per style layer.</summary>
    public IReadOnlyDictionary<string, (Tensor Gram, long Positions)> StyleGrams =>
        styles.Count == 0
            ? new Dictionary<string, (Tensor, long)>()
            : styles[0].ToDictionary(kv => kv.Key, kv => (kv.Value.Gram, kv.Value.Positions), StringComparer.Ordinal);

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
        double temperature = 1) =>
        Compute(network, content, contentLayers, style is null ? [] : [style], styleLayers, transform, temperature);

    /// <summary>
    /// The same for several style images: each one's statistics are kept apart, to be blended per
    /// run (<see cref="BlendGram"/>, <see cref="BlendGaussian"/>).
    /// </summary>
    public static Targets Compute(
        IFeatureNetwork network,
        Tensor? content,
        IReadOnlyList<string> contentLayers,
        IReadOnlyList<Tensor> styles,
        IReadOnlyList<string> styleLayers,
        FeatureTransformKind transform = FeatureTransformKind.None,
        double temperature = 1)
    {
        var targets = new Targets { Transform = transform, Temperature = temperature };
        try
        {
            using var noGrad = torch.no_grad();
            if (contentLayers.Count > 0)
            {
                using var scope = torch.NewDisposeScope();
                Tensor c = content ?? throw new ArgumentNullException(nameof(content), "content layers need a content image");
                foreach ((string k, Tensor v) in network.Extract(c.to(network.Device), contentLayers))
                {
                    targets.Content[k] = FeatureTransform.Apply(v, transform, temperature).clone().MoveToOuterDisposeScope();
                }
            }

            if (styleLayers.Count > 0 && styles.Count == 0)
            {
                throw new ArgumentNullException(nameof(styles), "style layers need a style image");
            }

            foreach (Tensor s in styleLayers.Count > 0 ? styles : [])
            {
                using var scope = torch.NewDisposeScope();
                var stats = new Dictionary<string, StyleStats>(StringComparer.Ordinal);
                foreach ((string k, Tensor v) in network.Extract(s.to(network.Device), styleLayers))
                {
                    Tensor f = FeatureTransform.Apply(v, transform, temperature);
                    (Tensor mean, Tensor cov) = GaussianFit.Of(f);
                    stats[k] = new StyleStats(Gram.Compute(f).MoveToOuterDisposeScope(), f.shape[^1] * f.shape[^2], mean.MoveToOuterDisposeScope(), cov.MoveToOuterDisposeScope());
                }

                targets.styles.Add(stats);
            }
        }
        catch
        {
            targets.Dispose();
            throw;
        }

        return targets;
    }

    /// <summary>Targets assembled elsewhere (tiled evaluation); takes ownership of the tensors.</summary>
    internal static Targets FromParts(Dictionary<string, Tensor> content, List<Dictionary<string, StyleStats>> styles, FeatureTransformKind transform, double temperature)
    {
        var targets = new Targets { Transform = transform, Temperature = temperature };
        foreach ((string k, Tensor v) in content)
        {
            targets.Content[k] = v;
        }

        targets.styles.AddRange(styles);
        return targets;
    }

    /// <summary>
    /// The blend-weighted Gram target at <paramref name="layer"/> (jcjohnson/neural-style): Σ b_i A_i
    /// with each A_i taken per position (scaled to the first part's M_s, which is returned). The
    /// weights are used as given (normalise them first). One part of weight 1 gives its own A exactly.
    /// </summary>
    public (Tensor Gram, long Positions) BlendGram(string layer, IReadOnlyList<(int Style, double Weight)> parts)
    {
        CheckParts(parts);
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        long reference = styles[parts[0].Style][layer].Positions;
        Tensor sum = styles[parts[0].Style][layer].Gram * parts[0].Weight;
        foreach ((int style, double weight) in parts.Skip(1))
        {
            StyleStats s = styles[style][layer];
            sum = sum + (s.Gram * (weight * reference / s.Positions));
        }

        return (sum.MoveToOuterDisposeScope(), reference);
    }

    /// <summary>
    /// The blend-weighted Gaussian target at <paramref name="layer"/>: the Gaussian fit of the
    /// mixture of the styles' feature distributions, μ = Σ b_i μ_i and Σ = Σ b_i (Σ_i + μ_i μ_iᵀ) − μ μᵀ
    /// (the same second moment a blended Gram holds per position).
    /// </summary>
    public GaussianTarget BlendGaussian(string layer, IReadOnlyList<(int Style, double Weight)> parts, double? epsilon = null)
    {
        CheckParts(parts);
        using var noGrad = torch.no_grad();
        if (parts.Count == 1)
        {
            StyleStats only = styles[parts[0].Style][layer];
            return GaussianTarget.Create(only.Mean, only.Covariance, epsilon);
        }

        (Tensor mean, Tensor cov) = GaussianFit.Mixture(parts.Select(p => (styles[p.Style][layer].Mean, styles[p.Style][layer].Covariance, p.Weight)));
        using (mean.DetachFromDisposeScope())
        using (cov.DetachFromDisposeScope())
        {
            return GaussianTarget.Create(mean, cov, epsilon);
        }
    }

    public void Dispose()
    {
        foreach (Tensor t in Content.Values.Concat(styles.SelectMany(s => s.Values.SelectMany(v => new[] { v.Gram, v.Mean, v.Covariance }))))
        {
            t.Dispose();
        }

        Content.Clear();
        styles.Clear();
    }

    private void CheckParts(IReadOnlyList<(int Style, double Weight)> parts)
    {
        if (parts.Count == 0 || parts.Any(p => p.Style < 0 || p.Style >= styles.Count))
        {
            throw new ArgumentException($"blend parts must name some of the {styles.Count} style images", nameof(parts));
        }
    }
}
