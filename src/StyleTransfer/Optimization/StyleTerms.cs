using StyleTransfer.Losses;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Optimization;

/// <summary>
/// The style part of the loss for one run: the regions of the output (one, unmasked, unless masks
/// are given), each with its blended target per style layer, and Σ_l w_l Σ_r a_r E_l,r over them.
/// </summary>
/// <remarks>
/// Without masks there is one region, the whole output, whose target blends every style image by
/// its --style-blend share (blended Grams, as jcjohnson/neural-style; for W2 the Gaussian fit of
/// the blended feature distribution). With masks (Gatys et al., CVPR 2017) each masked style image
/// has its own region and target, compared through guided Grams; the style images without a mask
/// share, blended, what the masks leave (1 − Σ masks), or nothing when every style has a mask.
/// Each region's term weighs its area a_r = Σ m² / M at that layer, so a white mask gives exactly
/// the unmasked loss.
/// </remarks>
internal sealed class StyleTerms : IDisposable
{
    /// <summary>Below this a mask value counts as black (half a grey level).</summary>
    internal const double Black = 0.5 / 255;

    private readonly List<Region> regions = [];
    private readonly string[] layers;
    private readonly IReadOnlyList<double> layerWeights;
    private readonly StyleTransferOptions options;
    private readonly bool areaWeighted;

    private StyleTerms(string[] layers, StyleTransferOptions options, bool areaWeighted)
    {
        this.layers = layers;
        this.options = options;
        this.areaWeighted = areaWeighted;
        layerWeights = options.EffectiveStyleLayerWeights;
    }

    /// <summary>Builds the regions and their targets. <paramref name="masks"/>: null, or one entry per style image (null: no mask), any size, greyscale or RGB.</summary>
    public static StyleTerms Build(
        Targets targets,
        string[] layers,
        StyleTransferOptions options,
        (int Height, int Width) size,
        IReadOnlyList<Tensor?>? masks,
        Device device,
        bool areaWeighted = true)
    {
        var terms = new StyleTerms(layers, options, areaWeighted);
        if (layers.Length == 0)
        {
            return terms;
        }

        try
        {
            int n = targets.Styles.Count;
            if (masks != null && masks.Count != n)
            {
                throw new ArgumentException($"{masks.Count} mask entries for {n} style images", nameof(masks));
            }

            IReadOnlyList<double> blend = options.EffectiveStyleBlend(n);
            using var noGrad = torch.no_grad();
            Tensor? covered = null;
            var unmasked = new List<(int Style, double Weight)>();
            for (int i = 0; i < n; i++)
            {
                if (masks?[i] is { } mask)
                {
                    Tensor m = Resample(mask, size, device);
                    if (MaxOf(m) < Black)
                    {
                        m.Dispose();
                        throw new StyleTransferException($"the mask for style image {i + 1} is all black: it places that style nowhere");
                    }

                    terms.regions.Add(terms.NewRegion(targets, m, [(i, 1.0)]));
                    using Tensor? old = covered;
                    covered = covered is null ? m.clone() : covered + m;
                }
                else if (blend[i] > 0)
                {
                    unmasked.Add((i, blend[i]));
                }
            }

            if (unmasked.Count > 0)
            {
                double sum = unmasked.Sum(p => p.Weight);
                List<(int Style, double Weight)> parts = [.. unmasked.Select(p => (p.Style, p.Weight / sum))];
                Tensor? rest = null;
                if (covered is not null)
                {
                    rest = (1 - covered).clamp(0, 1);
                    covered.Dispose();
                    if (MaxOf(rest) < Black)
                    {
                        rest.Dispose();
                        throw new StyleTransferException($"the masks cover the whole output and leave no place for style image {parts[0].Style + 1} (give it a mask too)");
                    }
                }

                terms.regions.Add(terms.NewRegion(targets, rest, parts));
            }
            else
            {
                covered?.Dispose();
            }
        }
        catch
        {
            terms.Dispose();
            throw;
        }

        return terms;
    }

    /// <summary>Σ_l w_l Σ_r a_r E_l,r for the (transformed) features of the generated image, float64 [1].</summary>
    public Tensor Loss(Dictionary<string, Tensor> features, Device device)
    {
        Tensor ls = torch.zeros(1, device: device);
        for (int l = 0; l < layers.Length; l++)
        {
            string layer = layers[l];
            Tensor f = features[layer];
            foreach (Region r in regions)
            {
                (Tensor? mask, double? positions, double area) = r.AtLayer(layer, f);
                if (positions is <= 0)
                {
                    continue;
                }

                Tensor el;
                if (options.StyleLoss == StyleLossKind.W2)
                {
                    el = Wasserstein.Layer(f, r.Gaussians[layer], options.StyleNormalization, mask);
                }
                else
                {
                    (Tensor gram, long targetPositions) = r.Grams[layer];
                    using Tensor? masked = mask is null ? null : f * mask;
                    el = options.StyleNormalization == StyleNormalization.Relative
                        ? StyleLoss.RelativeLayer(masked ?? f, gram, targetPositions, positions)
                        : StyleLoss.Layer(masked ?? f, gram, targetPositions, positions);
                }

                ls = ls + (el * (layerWeights[l] * (areaWeighted ? area : 1.0)));
            }
        }

        return ls;
    }

    public void Dispose()
    {
        regions.ForEach(r => r.Dispose());
        regions.Clear();
    }

    /// <summary>A mask as [1,1,H,W] in [0,1] at <paramref name="size"/>: RGB is averaged to grey, then resampled (area-averaged when shrinking, bilinear otherwise).</summary>
    internal static Tensor Resample(Tensor mask, (int Height, int Width) size, Device device)
    {
        using var scope = torch.NewDisposeScope();
        Tensor m = mask.to(device).to(ScalarType.Float32);
        m = m.dim() switch
        {
            2 => m.reshape(1, 1, m.shape[0], m.shape[1]),
            3 => m.mean([0L], keepdim: true).unsqueeze(0),
            4 => m.mean([1L], keepdim: true),
            _ => throw new ArgumentException($"a mask must be [H,W], [C,H,W] or [1,C,H,W], not [{string.Join(",", mask.shape)}]", nameof(mask)),
        };
        m = ResampleTo(m, size.Height, size.Width);
        return m.clamp(0, 1).MoveToOuterDisposeScope();
    }

    private static double MaxOf(Tensor t)
    {
        using Tensor max = t.max();
        return max.ToDouble();
    }

    private static Tensor ResampleTo(Tensor m, long height, long width)
    {
        if (m.shape[2] == height && m.shape[3] == width)
        {
            return m.clone();
        }

        return m.shape[2] >= height && m.shape[3] >= width
            ? F.interpolate(m, size: [height, width], mode: InterpolationMode.Area)
            : F.interpolate(m, size: [height, width], mode: InterpolationMode.Bilinear, align_corners: false);
    }

    private Region NewRegion(Targets targets, Tensor? mask, List<(int Style, double Weight)> parts)
    {
        var region = new Region(mask);
        try
        {
            foreach (string layer in layers)
            {
                if (options.StyleLoss == StyleLossKind.W2)
                {
                    region.Gaussians[layer] = targets.BlendGaussian(layer, parts);
                }
                else
                {
                    region.Grams[layer] = targets.BlendGram(layer, parts);
                }
            }
        }
        catch
        {
            region.Dispose();
            throw;
        }

        return region;
    }

    private sealed class Region(Tensor? mask) : IDisposable
    {
        private readonly Dictionary<string, (Tensor Mask, double Positions, double Area)> atLayer = new(StringComparer.Ordinal);

        public Dictionary<string, (Tensor Gram, long Positions)> Grams { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, GaussianTarget> Gaussians { get; } = new(StringComparer.Ordinal);

        /// <summary>The mask at a layer's resolution (made once, on first use), its Σ m² and its area fraction; no mask: (null, null, 1).</summary>
        public (Tensor? Mask, double? Positions, double Area) AtLayer(string layer, Tensor features)
        {
            if (mask is null)
            {
                return (null, null, 1.0);
            }

            if (!atLayer.TryGetValue(layer, out var entry))
            {
                using var noGrad = torch.no_grad();
                Tensor m = ResampleTo(mask, features.shape[^2], features.shape[^1]).DetachFromDisposeScope();
                double positions = m.square().sum(ScalarType.Float64).ToDouble();
                entry = (m, positions, positions / (features.shape[^2] * features.shape[^1]));
                atLayer[layer] = entry;
            }

            return entry;
        }

        public void Dispose()
        {
            mask?.Dispose();
            foreach (var e in atLayer.Values)
            {
                e.Mask.Dispose();
            }

            foreach (var g in Grams.Values)
            {
                g.Gram.Dispose();
            }

            foreach (GaussianTarget g in Gaussians.Values)
            {
                g.Dispose();
            }
        }
    }
}
