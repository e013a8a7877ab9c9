using System.Globalization;
using StyleTransfer.Imaging;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// The style layers a small style image keeps under <see cref="SmallStyleMode.Native"/>: a layer
/// whose receptive field covers more than <see cref="MaxCover"/> of the style image's long edge, as
/// the network sees it at the reference size (<see cref="StyleTransferOptions.StyleAnchor"/>, or the
/// output), matches whole objects of the painting (a face, an eye) and pastes them into the
/// photograph; shallower layers match its strokes and textures (docs/quality.md, "Small style images").
/// The other half of the mode, never enlarging the image beyond its own pixels, is
/// <see cref="StyleTransferOptions.StyleEdge"/>.
/// </summary>
internal static class SmallStyles
{
    /// <summary>The largest share of the style image's long edge a kept layer's receptive field may cover.</summary>
    public const double MaxCover = 1.0 / 3;

    /// <summary>The receptive field of <paramref name="tap"/> in input pixels (a centred window: 2 × its radius + 1).</summary>
    public static int ReceptiveField(string network, string tap) =>
        (2 * (TileGeometry.Taps(network) ?? throw new StyleTransferException($"the receptive fields of {network}'s layers are not known"))[tap].Radius) + 1;

    /// <summary>
    /// The style layers left out for a style image whose long edge is <paramref name="styleEdge"/> px
    /// in a run whose output's long edge is <paramref name="outputEdge"/> px: none unless
    /// <see cref="SmallStyleMode.Native"/>; never every layer (the one with the smallest receptive field stays).
    /// </summary>
    public static IReadOnlyList<string> Dropped(StyleTransferOptions options, string network, int styleEdge, int outputEdge)
    {
        if (options.SmallStyle != SmallStyleMode.Native || options.StyleLayers.Count == 0)
        {
            return [];
        }

        double reference = options.StyleAnchor > 0 ? options.StyleAnchor : outputEdge;
        double limit = styleEdge * reference / outputEdge * MaxCover;
        List<string> dropped = [.. options.StyleLayers.Where(l => ReceptiveField(network, l) > limit)];
        if (dropped.Count == options.StyleLayers.Count)
        {
            dropped.Remove(options.StyleLayers.MinBy(l => ReceptiveField(network, l))!);
        }

        return dropped;
    }

    /// <summary>
    /// <paramref name="options"/> without the style layers the smallest of <paramref name="styles"/>
    /// ([1,3,h,w] as the run uses them) leaves out, for an output whose long edge is
    /// <paramref name="outputEdge"/>. Explicit layer weights keep their sum; equal ones stay equal.
    /// </summary>
    public static StyleTransferOptions Fit(StyleTransferOptions options, string network, IReadOnlyList<Tensor> styles, int outputEdge)
    {
        if (styles.Count == 0)
        {
            return options;
        }

        int smallest = styles.Min(s => (int)Math.Max(s.shape[^1], s.shape[^2]));
        IReadOnlyList<string> dropped = Dropped(options, network, smallest, outputEdge);
        if (dropped.Count == 0)
        {
            return options;
        }

        IReadOnlyList<double> weights = options.EffectiveStyleLayerWeights;
        List<int> kept = [.. Enumerable.Range(0, options.StyleLayers.Count).Where(i => !dropped.Contains(options.StyleLayers[i]))];
        double scale = weights.Sum() / kept.Sum(i => weights[i]);
        return options with
        {
            StyleLayers = [.. kept.Select(i => options.StyleLayers[i])],
            StyleLayerWeights = options.StyleLayerWeights is null ? null : [.. kept.Select(i => weights[i] * scale)],
        };
    }

    /// <summary>
    /// What <see cref="SmallStyleMode.Native"/> does to style images of these sizes (width, height as
    /// stored), for a start-up line, or null when it changes nothing for them: which is used at its
    /// own size instead of enlarged, which layers are left out and why.
    /// </summary>
    public static string? Describe(StyleTransferOptions options, IReadOnlyList<(int Width, int Height)> sizes)
    {
        if (options.SmallStyle != SmallStyleMode.Native || sizes.Count == 0)
        {
            return null;
        }

        var inv = CultureInfo.InvariantCulture;
        int enlarged = options.EnlargedStyleEdge;
        string at = options.StyleAnchor > 0 ? $"at the {options.StyleAnchor.ToString(inv)} px style anchor" : "at the output size";
        List<string> notes = [];
        for (int i = 0; i < sizes.Count; i++)
        {
            int edge = options.StyleEdge(sizes[i].Width, sizes[i].Height);
            if (edge < enlarged)
            {
                notes.Add($"{(sizes.Count == 1 ? "the style image" : $"style image {(i + 1).ToString(inv)}")} is used at {edge.ToString(inv)} px, its own size {at}, not enlarged to {enlarged.ToString(inv)} px");
            }
        }

        IReadOnlyList<string> dropped = Dropped(options, options.Network, sizes.Min(s => options.StyleEdge(s.Width, s.Height)), options.Size);
        if (dropped.Count > 0)
        {
            string fields = string.Join(", ", dropped.Select(l => ReceptiveField(options.Network, l).ToString(inv)));
            string plural = dropped.Count == 1 ? "" : "s";
            notes.Add($"without style layer{plural} {string.Join(", ", dropped)} (receptive field{plural} {fields} px: more than a third of {(sizes.Count == 1 ? "it" : "the smallest")})");
        }

        return notes.Count == 0 ? null : string.Join("; ", notes);
    }
}
