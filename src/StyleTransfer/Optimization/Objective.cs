using StyleTransfer.Losses;
using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// One named term of an objective's value: <see cref="Value"/> as the reports show it (content, style
/// and TV unweighted, though scaled by <see cref="StyleTransferOptions.PixelLossScale"/> when
/// size-invariant), and the <see cref="Weight"/> it enters the total with: the total is Σ weight·value
/// (to float32 rounding).
/// </summary>
internal sealed record LossPart(string Name, double Value, double Weight)
{
    /// <summary>α: the content term, Σ over the content layers.</summary>
    public const string Content = "content";

    /// <summary>β: the style term Σ_l w_l E_l.</summary>
    public const string Style = "style";

    /// <summary>Total variation of the image.</summary>
    public const string Tv = "tv";

    /// <summary>Total variation of the image's chroma (in the total; the reports show only <see cref="Tv"/>).</summary>
    public const string TvChroma = "tv-chroma";

    /// <summary>A pixel-space term a caller adds (<see cref="RunHooks.PixelLoss"/>: video's temporal loss), already weighted.</summary>
    public const string Pixel = "pixel";
}

/// <summary>An objective's value at one image: the total and its named parts.</summary>
internal sealed class ObjectiveValue
{
    public ObjectiveValue(double total, IReadOnlyList<LossPart> parts)
    {
        Total = total;
        Parts = parts;
    }

    /// <summary>No evaluation yet (what a report shows for an iteration that evaluated nothing).</summary>
    public static ObjectiveValue None { get; } = FromReport(0, 0, 0, 0);

    /// <summary>The loss the optimiser minimises.</summary>
    public double Total { get; }

    public IReadOnlyList<LossPart> Parts { get; }

    public double Content => this[LossPart.Content];

    public double Style => this[LossPart.Style];

    public double Tv => this[LossPart.Tv];

    /// <summary>The value of the part named <paramref name="name"/>; 0 when the objective has no such part.</summary>
    public double this[string name] => Parts.FirstOrDefault(p => p.Name == name)?.Value ?? 0;

    /// <summary>The parts a report (and a checkpoint's start losses) holds: total, content, style, tv (weights unknown: 1).</summary>
    public static ObjectiveValue FromReport(double total, double content, double style, double tv) =>
        new(total, [new(LossPart.Content, content, 1), new(LossPart.Style, style, 1), new(LossPart.Tv, tv, 1)]);
}

/// <summary>
/// What an optimiser minimises: a loss of the image and its gradient. Data flows one way: the
/// objective runs the image through the feature network and hands the features to the loss terms
/// (which know nothing of the network).
/// </summary>
internal interface IObjective : IDisposable
{
    /// <summary>
    /// The loss at <paramref name="image"/> ([1,3,H,W] on the network's device, requires grad): its
    /// gradient is added to <c>image.grad</c> (a backward pass), its value returned with its parts.
    /// </summary>
    ObjectiveValue Evaluate(Tensor image);
}

/// <summary>
/// Gatys et al.'s objective on the whole image: α·content + β·style + TV weight·TV (+ chroma TV, + a
/// caller's pixel-space term), against targets computed beforehand.
/// </summary>
internal sealed class Objective : IObjective
{
    private readonly IFeatureNetwork network;
    private readonly Targets targets;
    private readonly StyleTransferOptions options;
    private readonly StyleTerms styleTerms;
    private readonly Func<Tensor, Tensor>? pixelLoss;
    private readonly string[] contentLayers;
    private readonly string[] allTaps;
    private readonly double pixelScale;

    private Objective(IFeatureNetwork network, Targets targets, StyleTransferOptions options, StyleTerms styleTerms, string[] contentLayers, string[] allTaps, double pixelScale, Func<Tensor, Tensor>? pixelLoss)
    {
        (this.network, this.targets, this.options, this.styleTerms) = (network, targets, options, styleTerms);
        (this.contentLayers, this.allTaps, this.pixelScale, this.pixelLoss) = (contentLayers, allTaps, pixelScale, pixelLoss);
    }

    /// <summary>
    /// The objective for an image of <paramref name="size"/> against <paramref name="targets"/>
    /// (which may hold more layers than the options use). <paramref name="masks"/> as in
    /// <see cref="StyleTerms.Build"/>; <paramref name="pixelLoss"/>, when given, is added to the total.
    /// </summary>
    public static Objective Create(IFeatureNetwork network, Targets targets, StyleTransferOptions options, (int Height, int Width) size, IReadOnlyList<Tensor?>? masks = null, Func<Tensor, Tensor>? pixelLoss = null)
    {
        CheckTargets(targets, options);
        string[] contentLayers = [.. Stylizer.ActiveContentLayers(options)];
        string[] styleLayers = [.. Stylizer.ActiveStyleLayers(options)];
        StyleTerms terms = StyleTerms.Build(targets, styleLayers, options, size, masks, network.Device);
        return new Objective(network, targets, options, terms, contentLayers, [.. contentLayers.Union(styleLayers)], options.PixelLossScale(size.Height, size.Width), pixelLoss);
    }

    /// <summary>Refuses targets that lack a layer the options use, or were computed with another feature transform.</summary>
    internal static void CheckTargets(Targets targets, StyleTransferOptions options)
    {
        string[] contentLayers = [.. Stylizer.ActiveContentLayers(options)];
        string[] styleLayers = [.. Stylizer.ActiveStyleLayers(options)];
        foreach (string layer in contentLayers.Where(l => !targets.Content.ContainsKey(l)).Concat(styleLayers.Where(l => targets.Styles.Count == 0 || targets.Styles.Any(s => !s.ContainsKey(l)))))
        {
            throw new ArgumentException($"the targets hold no '{layer}'", nameof(targets));
        }

        if (styleLayers.Length > 0)
        {
            options.Validate(targets.Styles.Count);
        }

        if (targets.Transform != options.FeatureTransform || (options.FeatureTransform != FeatureTransformKind.None && targets.Temperature != options.SoftmaxTemperature))
        {
            throw new ArgumentException("the targets were computed with another feature transform", nameof(targets));
        }
    }

    /// <summary>The taps the objective reads: its content and style layers.</summary>
    internal IReadOnlyList<string> Taps => allTaps;

    public ObjectiveValue Evaluate(Tensor image)
    {
        using var scope = torch.NewDisposeScope();
        Dictionary<string, Tensor> feats = Transform(network.Extract(image, allTaps));
        Tensor lc = ContentTerm(feats);
        Tensor ls = StyleTerm(feats);
        (Tensor tv, Tensor? chroma) = PixelTerms(image);
        (Tensor loss, lc, Tensor ltv) = Combine(lc, ls, tv, chroma);
        Tensor? extra = pixelLoss?.Invoke(image);
        loss = extra is null ? loss : loss + extra;

        loss.backward();

        // One host sync per evaluation: the numbers are needed for the NaN check and the report.
        List<Tensor> values = [loss.reshape(1), lc.reshape(1), ls.reshape(1), ltv.reshape(1)];
        values.AddRange(new[] { chroma, extra }.OfType<Tensor>().Select(t => t.detach().reshape(1)));
        using Tensor parts = torch.cat(values).to(ScalarType.Float64).to(torch.CPU);
        double[] v = parts.data<double>().ToArray();
        List<LossPart> named = [new(LossPart.Content, v[1], options.ContentWeight), new(LossPart.Style, v[2], options.StyleWeight), new(LossPart.Tv, v[3], options.TvWeight)];
        int next = 4;
        if (chroma is not null)
        {
            named.Add(new(LossPart.TvChroma, v[next++] * pixelScale, options.TvChromaWeight));
        }

        if (extra is not null)
        {
            named.Add(new(LossPart.Pixel, v[next], 1));
        }

        return new ObjectiveValue(v[0], named);
    }

    public void Dispose() => styleTerms.Dispose();

    /// <summary>The feature transform applied to every tap of <paramref name="feats"/> (in the dictionary itself, which is returned).</summary>
    internal Dictionary<string, Tensor> Transform(Dictionary<string, Tensor> feats)
    {
        foreach (string tap in allTaps)
        {
            feats[tap] = FeatureTransform.Apply(feats[tap], options.FeatureTransform, options.SoftmaxTemperature);
        }

        return feats;
    }

    /// <summary>Σ over the content layers of the content loss of transformed features, unweighted and unscaled.</summary>
    internal Tensor ContentTerm(Dictionary<string, Tensor> feats)
    {
        Tensor lc = torch.zeros(1, device: network.Device);
        foreach (string layer in contentLayers)
        {
            lc = lc + ContentLoss.Compute(feats[layer], targets.Content[layer]);
        }

        return lc;
    }

    /// <summary>The style term of transformed features, unweighted.</summary>
    internal Tensor StyleTerm(Dictionary<string, Tensor> feats) => styleTerms.Loss(feats, network.Device);

    /// <summary>The image's TV (zero when its weight is 0) and chroma TV (null when its weight is 0), unweighted and unscaled.</summary>
    internal (Tensor Tv, Tensor? Chroma) PixelTerms(Tensor image) => (
        options.TvWeight > 0 ? TotalVariation.Compute(image) : torch.zeros(1, device: network.Device),
        options.TvChromaWeight > 0 ? TotalVariation.ComputeChroma(image) : null);

    /// <summary>
    /// α·content + β·style + TV weight·TV + chroma weight·chroma TV, content and TV scaled per pixel
    /// (<see cref="StyleTransferOptions.PixelLossScale"/>); the content and TV come back scaled, as the reports show them.
    /// </summary>
    internal (Tensor Loss, Tensor Content, Tensor Tv) Combine(Tensor lc, Tensor ls, Tensor ltv, Tensor? chroma)
    {
        if (pixelScale != 1)
        {
            (lc, ltv) = (lc * pixelScale, ltv * pixelScale);
        }

        Tensor loss = (lc * options.ContentWeight) + (ls * options.StyleWeight) + (ltv * options.TvWeight);
        if (chroma is not null)
        {
            // In the total; the reports show the plain TV only.
            loss = loss + (chroma * (options.TvChromaWeight * pixelScale));
        }

        return (loss, lc, ltv);
    }
}

/// <summary>
/// <see cref="TiledObjective"/> (the loss accumulated over tiles, for images larger than memory) as
/// an <see cref="IObjective"/>, a thin adapter that leaves it as it is: its content, style and TV
/// parts (its total also holds the chroma TV, not reported apart), plus the caller's pixel-space
/// term on the whole image, whose gradient adds to the tiles'.
/// </summary>
internal sealed class TiledObjectiveAdapter(TiledObjective tiled, StyleTransferOptions options, Func<Tensor, Tensor>? pixelLoss) : IObjective
{
    public ObjectiveValue Evaluate(Tensor image)
    {
        (double total, double c, double s, double tv) = tiled.Evaluate(image);
        List<LossPart> parts = [new(LossPart.Content, c, options.ContentWeight), new(LossPart.Style, s, options.StyleWeight), new(LossPart.Tv, tv, options.TvWeight)];
        if (pixelLoss is not null)
        {
            using var scope = torch.NewDisposeScope();
            Tensor extra = pixelLoss(image);
            extra.backward();
            double e = extra.ToDouble();
            total += e;
            parts.Add(new(LossPart.Pixel, e, 1));
        }

        return new ObjectiveValue(total, parts);
    }

    public void Dispose() => tiled.Dispose();
}
