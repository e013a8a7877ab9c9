using StyleTransfer.Losses;
using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// The loss and its pixel gradient evaluated over overlapping tiles, so that the network's working
/// memory depends on the tile size, not the image size, while every statistic stays the whole
/// image's: the Gram matrices, the softmax normalisers of <see cref="FeatureTransformKind.Softmax"/>
/// and the content features.
/// </summary>
/// <remarks>
/// <para>The loss is a function L(s) of statistics that are sums (or placements) over positions:
/// per layer the Gram Σ e eᵀ, the softmax normaliser S = Σ e (e = exp(F/T − shift)) and, at content
/// layers, the feature map itself. Pass 1 runs the network on each tile without gradients and
/// accumulates s over the tiles' interiors; L(s) is then computed, and differentiated, on these small
/// tensors; pass 2 runs each tile again with gradients and back-propagates Σ ⟨∂L/∂s, s_tile⟩, which
/// by the chain rule gives exactly the tile's share of the whole image's pixel gradient.</para>
/// <para>Each tile is cropped with a halo: where the halo covers the deepest tap's receptive radius
/// (<see cref="TileGeometry"/>), its interior features equal the untiled ones, so loss and gradient
/// equal the untiled ones up to float rounding. Tile borders fall on multiples of the deepest tap's
/// stride, so the tiles' feature grids are the whole image's. Total variation is computed on the
/// whole image (it needs no network and little memory).</para>
/// <para>Supported: Gram style losses (paper or relative), blends, the softmax transform, anti-aliased
/// input, size-invariant weights, both TV terms. Not supported (refused by <see cref="Unsupported"/>):
/// W2 and masks.</para>
/// </remarks>
internal sealed class TiledObjective : IDisposable
{
    private readonly IFeatureNetwork network;
    private readonly StyleTransferOptions options;
    private readonly Targets targets;
    private readonly (int Height, int Width) size;
    private readonly List<Tile> tiles;
    private readonly string[] contentLayers, styleLayers, taps;
    private readonly double[] styleLayerWeights;
    private readonly IReadOnlyDictionary<string, (int Stride, int Radius)> geometry;
    private readonly Dictionary<string, (Tensor Gram, long Positions)> grams = new(StringComparer.Ordinal);
    private readonly string[] anchoredLayers;
    private readonly StyleTerms? anchoredTerms;

    /// <summary>
    /// The objective over tiles of <paramref name="tile"/> px with <paramref name="halo"/> px around
    /// each. <paramref name="network"/> may be an <see cref="AnchoredTaps"/> wrapper, with the
    /// anchored style layers in <paramref name="options"/> (as <see cref="Stylizer.Anchor"/> makes
    /// them): those terms are evaluated untiled, on the whole image scaled down inside the graph.
    /// </summary>
    public TiledObjective(IFeatureNetwork network, StyleTransferOptions options, Targets targets, (int Height, int Width) size, int tile, int halo)
    {
        this.network = network;
        this.options = options;
        this.targets = targets;
        this.size = size;
        contentLayers = [.. Stylizer.ActiveContentLayers(options)];
        string[] allStyle = [.. Stylizer.ActiveStyleLayers(options)];
        IReadOnlyList<double> weights = options.EffectiveStyleLayerWeights;
        styleLayers = [.. allStyle.Where(l => !IsAnchored(l))];
        styleLayerWeights = [.. allStyle.Select((l, i) => (l, i)).Where(p => !IsAnchored(p.l)).Select(p => weights[p.i])];
        anchoredLayers = [.. allStyle.Where(IsAnchored)];
        if (anchoredLayers.Length > 0)
        {
            if (network is not AnchoredTaps)
            {
                throw new ArgumentException("anchored style layers need an AnchoredTaps network", nameof(network));
            }

            double[] anchoredWeights = [.. allStyle.Select((l, i) => (l, i)).Where(p => IsAnchored(p.l)).Select(p => weights[p.i])];
            anchoredTerms = StyleTerms.Build(targets, anchoredLayers, options with { StyleLayers = anchoredLayers, StyleLayerWeights = anchoredWeights }, size, null, network.Device);
        }

        taps = [.. contentLayers.Union(styleLayers)];
        geometry = TileGeometry.Taps(network.Name) ?? throw new StyleTransferException(Unsupported(options, false) ?? "tiling unsupported");
        (int align, _) = TileGeometry.For(network.Name, taps, options.AntiAlias);
        tiles = TileGeometry.Plan(size.Height, size.Width, tile, align, halo);
        if (styleLayers.Length > 0)
        {
            IReadOnlyList<double> blend = options.EffectiveStyleBlend(targets.Styles.Count);
            List<(int, double)> parts = [.. blend.Select((b, i) => (i, b)).Where(p => p.b > 0)];
            foreach (string layer in styleLayers)
            {
                grams[layer] = targets.BlendGram(layer, parts);
            }
        }
    }

    /// <summary>Whether <paramref name="layer"/> is a style anchor's tap (<see cref="AnchoredTaps"/>).</summary>
    public static bool IsAnchored(string layer) => layer.EndsWith(AnchoredTaps.Suffix, StringComparison.Ordinal);

    /// <summary>The tiles of the output (for reports and tests).</summary>
    public IReadOnlyList<Tile> Tiles => tiles;

    /// <summary>Why these options cannot be evaluated in tiles, or null when they can.</summary>
    public static string? Unsupported(StyleTransferOptions options, bool masks)
    {
        if (TileGeometry.Taps(options.Network) is null)
        {
            return $"tiled evaluation supports {string.Join(" and ", TileGeometry.Networks)}, not {options.Network}";
        }

        if (Stylizer.ActiveContentLayers(options).Union(Stylizer.ActiveStyleLayers(options)).FirstOrDefault(t => !TileGeometry.Taps(options.Network)!.ContainsKey(t)) is { } unknown)
        {
            return $"tiled evaluation does not know the receptive field of {options.Network}'s tap '{unknown}'";
        }

        if (options.StyleLoss == StyleLossKind.W2 && options.StyleWeight > 0)
        {
            return "tiled evaluation does not support --style-loss w2 (its Gaussian fits are not accumulated over tiles yet)";
        }

        return masks ? "tiled evaluation does not support --mask (guided Grams are not accumulated over tiles yet)" : null;
    }

    /// <summary>
    /// Targets computed in tiles (the same values as <see cref="Targets.Compute(IFeatureNetwork, Tensor?, IReadOnlyList{string}, IReadOnlyList{Tensor}, IReadOnlyList{string}, FeatureTransformKind, double)"/>
    /// up to float rounding, where the halo covers the receptive field).
    /// </summary>
    public static Targets ComputeTargets(IFeatureNetwork network, StyleTransferOptions options, int tile, int halo, Tensor? content, IReadOnlyList<string> contentLayers, IReadOnlyList<Tensor> styles, IReadOnlyList<string> styleLayers)
    {
        var geometry = TileGeometry.Taps(network.Name) ?? throw new StyleTransferException(Unsupported(options, false) ?? "tiling unsupported");
        string[] anchored = [.. styleLayers.Where(IsAnchored)];
        styleLayers = [.. styleLayers.Where(l => !IsAnchored(l))];
        (int align, _) = TileGeometry.For(network.Name, contentLayers.Union(styleLayers), options.AntiAlias);
        bool softmax = options.FeatureTransform == FeatureTransformKind.Softmax;
        double temperature = options.SoftmaxTemperature;
        var contentTargets = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var styleStats = new List<Dictionary<string, StyleStats>>();
        try
        {
            using var noGrad = torch.no_grad();
            if (contentLayers.Count > 0)
            {
                Tensor c = content ?? throw new ArgumentNullException(nameof(content), "content layers need a content image");
                Dictionary<string, LayerSum> sums = Accumulate(network, geometry, c, tile, align, halo, contentLayers.ToDictionary(l => l, _ => (false, true, false)), softmax, temperature);
                try
                {
                    foreach ((string layer, LayerSum s) in sums)
                    {
                        using Tensor buffer = s.Assemble();
                        contentTargets[layer] = softmax ? buffer * (float)s.Scale() : buffer.clone();
                    }
                }
                finally
                {
                    DisposeAll(sums.Values);
                }
            }

            foreach (Tensor style in styleLayers.Count > 0 ? styles : [])
            {
                Dictionary<string, LayerSum> sums = Accumulate(network, geometry, style, tile, align, halo, styleLayers.ToDictionary(l => l, _ => (true, false, true)), softmax, temperature);
                try
                {
                    var stats = new Dictionary<string, StyleStats>(StringComparer.Ordinal);
                    foreach ((string layer, LayerSum s) in sums)
                    {
                        using var scope = torch.NewDisposeScope();
                        double k = softmax ? s.Scale() : 1;
                        Tensor g64 = s.G! * (k * k);
                        Tensor mean = s.Sum! * (k / s.Positions);
                        Tensor cov = (g64 / s.Positions) - mean.unsqueeze(1).mm(mean.unsqueeze(0));
                        stats[layer] = new StyleStats(g64.to(ScalarType.Float32).MoveToOuterDisposeScope(), s.Positions, mean.MoveToOuterDisposeScope(), cov.MoveToOuterDisposeScope());
                    }

                    styleStats.Add(stats);
                }
                finally
                {
                    DisposeAll(sums.Values);
                }
            }

            if (anchored.Length > 0)
            {
                // The anchor's taps see the style image scaled down (inside the wrapper): small enough to take whole.
                if (styleStats.Count == 0)
                {
                    styleStats.AddRange(styles.Select(_ => new Dictionary<string, StyleStats>(StringComparer.Ordinal)));
                }

                using Targets small = Targets.Compute(network, null, [], styles, anchored, options.FeatureTransform, temperature);
                for (int i = 0; i < styles.Count; i++)
                {
                    foreach ((string layer, StyleStats st) in small.Styles[i])
                    {
                        styleStats[i][layer] = new StyleStats(st.Gram.clone(), st.Positions, st.Mean.clone(), st.Covariance.clone());
                    }
                }
            }

            return Targets.FromParts(contentTargets, styleStats, options.FeatureTransform, temperature);
        }
        catch
        {
            foreach (Tensor t in contentTargets.Values.Concat(styleStats.SelectMany(s => s.Values.SelectMany(v => new[] { v.Gram, v.Mean, v.Covariance }))))
            {
                t.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// The loss at <paramref name="x"/> ([1,3,H,W], requires grad): its gradient is added to x.grad
    /// (as a backward pass would), the parts returned as the untiled closure reports them.
    /// </summary>
    public (double Total, double Content, double Style, double Tv) Evaluate(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        Device device = x.device;
        bool softmax = options.FeatureTransform == FeatureTransformKind.Softmax;
        double temperature = options.SoftmaxTemperature;
        double pixelScale = options.PixelLossScale(size.Height, size.Width);
        var spec = new Dictionary<string, (bool Gram, bool Buffer, bool Mean)>(StringComparer.Ordinal);
        foreach (string tap in taps)
        {
            spec[tap] = (styleLayers.Contains(tap), contentLayers.Contains(tap), false);
        }

        // Pass 1: the whole image's statistics, tile by tile, without gradients.
        Dictionary<string, LayerSum> sums;
        using (torch.no_grad())
        {
            sums = Accumulate(network, geometry, x.detach(), tiles, (size.Height, size.Width), spec, softmax, temperature);
        }

        try
        {
            // The loss as a function of the statistics, and its gradient with respect to them.
            var sLeaf = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var gLeaf = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var bLeaf = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            Tensor Scale(string layer)
            {
                LayerSum s = sums[layer];
                if (!sLeaf.TryGetValue(layer, out Tensor? leaf))
                {
                    leaf = s.S!.detach().clone().requires_grad_(true);
                    sLeaf[layer] = leaf;
                }

                return leaf.reciprocal() * (double)(s.Channels * s.Positions);
            }

            Tensor lc = torch.zeros(1, ScalarType.Float64, device: device);
            foreach (string layer in contentLayers)
            {
                Tensor buffer = sums[layer].Assemble().requires_grad_(true);
                bLeaf[layer] = buffer;
                Tensor t = softmax ? buffer * Scale(layer).to(ScalarType.Float32) : buffer;
                lc = lc + ContentLoss.Compute(t, targets.Content[layer]);
            }

            Tensor ls = torch.zeros(1, ScalarType.Float64, device: device);
            for (int i = 0; i < styleLayers.Length; i++)
            {
                string layer = styleLayers[i];
                LayerSum s = sums[layer];
                Tensor g = s.G!.detach().clone().requires_grad_(true);
                gLeaf[layer] = g;
                if (softmax)
                {
                    Tensor k = Scale(layer);
                    g = g * k.square();
                }

                (Tensor gram, long targetPositions) = grams[layer];
                double m = s.Positions, n = s.Channels;
                Tensor a = gram.to(ScalarType.Float64) * (m / targetPositions);
                Tensor diff = (g - a).square().sum();
                Tensor el = options.StyleNormalization == StyleNormalization.Relative
                    ? diff / a.square().sum().clamp_min(1e-30)
                    : diff / (4.0 * n * n * m * m);
                ls = ls + (el * styleLayerWeights[i]);
            }

            Tensor objective = (lc * (options.ContentWeight * pixelScale)) + (ls * options.StyleWeight);
            objective.backward();

            // Pass 2: each tile again, with gradients, back-propagating ⟨∂L/∂s, s_tile⟩.
            var gS = sLeaf.ToDictionary(kv => kv.Key, kv => kv.Value.grad is { } gr ? gr.ToDouble() : 0.0, StringComparer.Ordinal);
            var gG = gLeaf.ToDictionary(kv => kv.Key, kv => kv.Value.grad, StringComparer.Ordinal);
            var gB = bLeaf.ToDictionary(kv => kv.Key, kv => kv.Value.grad, StringComparer.Ordinal);
            Tensor pixelGrad = torch.zeros_like(x, requires_grad: false);
            foreach (Tile tile in tiles)
            {
                using var tileScope = torch.NewDisposeScope();
                Tensor crop = x.detach().narrow(2, tile.CropY0, tile.CropY1 - tile.CropY0).narrow(3, tile.CropX0, tile.CropX1 - tile.CropX0).clone().requires_grad_(true);
                Dictionary<string, Tensor> feats;
                using (TileWindow.Enter(new TileWindow(size.Height, size.Width, tile.CropY0, tile.CropX0)))
                {
                    feats = network.Extract(crop, taps);
                }

                Tensor surrogate = torch.zeros(1, ScalarType.Float64, device: device);
                bool any = false;
                foreach (string tap in taps)
                {
                    int stride = geometry[tap].Stride;
                    Tensor map = feats[tap];
                    (long fy, long fh, long fx, long fw) = tile.FeatureInterior(stride, map.shape[2], map.shape[3], size.Height, size.Width);
                    if (fh == 0 || fw == 0)
                    {
                        continue;
                    }

                    Tensor f = map.narrow(2, fy, fh).narrow(3, fx, fw).to(ScalarType.Float32);
                    Tensor e = softmax ? ((f / temperature) - sums[tap].Shift).exp() : f;
                    if (softmax && gS.TryGetValue(tap, out double ds) && ds != 0)
                    {
                        surrogate = surrogate + (e.sum(ScalarType.Float64) * ds);
                        any = true;
                    }

                    if (gG.TryGetValue(tap, out Tensor? dg) && dg is not null)
                    {
                        surrogate = surrogate + (Gram.Compute(e).to(ScalarType.Float64) * dg).sum();
                        any = true;
                    }

                    if (gB.TryGetValue(tap, out Tensor? db) && db is not null)
                    {
                        Tensor chunk = db.narrow(2, tile.Y0 / stride, fh).narrow(3, tile.X0 / stride, fw);
                        surrogate = surrogate + (e * chunk).sum(ScalarType.Float64);
                        any = true;
                    }
                }

                if (any)
                {
                    surrogate.backward();
                    pixelGrad.narrow(2, tile.CropY0, tile.CropY1 - tile.CropY0).narrow(3, tile.CropX0, tile.CropX1 - tile.CropX0).add_(crop.grad!);
                }
            }

            // Total variation on the whole image, and the tiles' gradient into x.grad.
            Tensor ltv = options.TvWeight > 0 ? TotalVariation.Compute(x) * pixelScale : torch.zeros(1, device: device);
            Tensor chroma = options.TvChromaWeight > 0 ? TotalVariation.ComputeChroma(x) * (options.TvChromaWeight * pixelScale) : torch.zeros(1, device: device);
            Tensor final = (x * pixelGrad).sum() + (ltv * options.TvWeight) + chroma;
            if (anchoredTerms is not null)
            {
                // The style anchor: the whole image scaled down inside the graph (AnchoredTaps), untiled.
                Dictionary<string, Tensor> small = network.Extract(x, anchoredLayers);
                foreach (string tap in anchoredLayers)
                {
                    small[tap] = FeatureTransform.Apply(small[tap], options.FeatureTransform, temperature);
                }

                Tensor la = anchoredTerms.Loss(small, device);
                final = final + (la * options.StyleWeight);
                ls = ls + la.to(ScalarType.Float64);
            }

            final.backward();

            using Tensor parts = torch.cat([(lc * pixelScale).reshape(1), ls.reshape(1), ltv.to(ScalarType.Float64).reshape(1), chroma.to(ScalarType.Float64).reshape(1)]).detach().to(torch.CPU);
            double[] v = parts.data<double>().ToArray();
            double total = (options.ContentWeight * v[0]) + (options.StyleWeight * v[1]) + (options.TvWeight * v[2]) + v[3];
            return (total, v[0], v[1], v[2]);
        }
        finally
        {
            DisposeAll(sums.Values);
        }
    }

    public void Dispose()
    {
        anchoredTerms?.Dispose();
        foreach ((Tensor gram, _) in grams.Values)
        {
            gram.Dispose();
        }

        grams.Clear();
    }

    private static void DisposeAll(IEnumerable<LayerSum> sums)
    {
        foreach (LayerSum s in sums)
        {
            s.Dispose();
        }
    }

    private static Dictionary<string, LayerSum> Accumulate(
        IFeatureNetwork network,
        IReadOnlyDictionary<string, (int Stride, int Radius)> geometry,
        Tensor image,
        int tile,
        int align,
        int halo,
        Dictionary<string, (bool Gram, bool Buffer, bool Mean)> spec,
        bool softmax,
        double temperature)
    {
        (int h, int w) = ((int)image.shape[2], (int)image.shape[3]);
        return Accumulate(network, geometry, image, TileGeometry.Plan(h, w, tile, align, halo), (h, w), spec, softmax, temperature);
    }

    /// <summary>Pass 1: the statistics of <paramref name="image"/> over the tiles' interiors (call without gradients).</summary>
    private static Dictionary<string, LayerSum> Accumulate(
        IFeatureNetwork network,
        IReadOnlyDictionary<string, (int Stride, int Radius)> geometry,
        Tensor image,
        List<Tile> tiles,
        (int Height, int Width) size,
        Dictionary<string, (bool Gram, bool Buffer, bool Mean)> spec,
        bool softmax,
        double temperature)
    {
        var sums = spec.ToDictionary(kv => kv.Key, kv => new LayerSum(kv.Value.Gram, kv.Value.Buffer, kv.Value.Mean, softmax), StringComparer.Ordinal);
        try
        {
            string[] taps = [.. spec.Keys];
            foreach (Tile tile in tiles)
            {
                using var scope = torch.NewDisposeScope();
                Tensor crop = image.narrow(2, tile.CropY0, tile.CropY1 - tile.CropY0).narrow(3, tile.CropX0, tile.CropX1 - tile.CropX0).to(network.Device);
                Dictionary<string, Tensor> feats;
                using (TileWindow.Enter(new TileWindow(size.Height, size.Width, tile.CropY0, tile.CropX0)))
                {
                    feats = network.Extract(crop, taps);
                }

                foreach (string tap in taps)
                {
                    Tensor map = feats[tap];
                    (long fy, long fh, long fx, long fw) = tile.FeatureInterior(geometry[tap].Stride, map.shape[2], map.shape[3], size.Height, size.Width);
                    sums[tap].Add(map.narrow(2, fy, fh).narrow(3, fx, fw).to(ScalarType.Float32), tile, temperature);
                }
            }

            return sums;
        }
        catch
        {
            DisposeAll(sums.Values);
            throw;
        }
    }

    /// <summary>One layer's statistics over the tiles so far (float64, outside any dispose scope).</summary>
    private sealed class LayerSum(bool gram, bool buffer, bool mean, bool softmax) : IDisposable
    {
        private readonly List<(int Row, int Col, Tensor Chunk, double Shift)> chunks = [];

        /// <summary>The softmax shift all statistics are taken at: the largest F/T seen.</summary>
        public double Shift { get; private set; } = softmax ? double.NegativeInfinity : 0;

        /// <summary>Σ e (softmax only).</summary>
        public Tensor? S { get; private set; }

        /// <summary>Σ e eᵀ.</summary>
        public Tensor? G { get; private set; }

        /// <summary>Σ e per channel.</summary>
        public Tensor? Sum { get; private set; }

        public long Positions { get; private set; }

        public long Channels { get; private set; }

        /// <summary>count / S: the factor that turns e into the transformed features (softmax).</summary>
        public double Scale() => Channels * Positions / S!.ToDouble();

        public void Add(Tensor f, Tile tile, double temperature)
        {
            Channels = f.shape[1];
            if (f.numel() == 0)
            {
                return;
            }

            Positions += f.shape[2] * f.shape[3];
            Tensor e = f;
            double factor = 1, m = 0;
            if (softmax)
            {
                Tensor z = f / temperature;
                m = z.max().ToDouble();
                e = (z - m).exp_();
                if (m > Shift)
                {
                    if (S is not null)
                    {
                        double r = Math.Exp(Shift - m);
                        S.mul_(r);
                        G?.mul_(r * r);
                        Sum?.mul_(r);
                    }

                    Shift = m;
                }

                factor = Math.Exp(m - Shift);
                Tensor s = e.sum(ScalarType.Float64) * factor;
                S = Accumulate(S, s);
            }

            if (gram)
            {
                G = Accumulate(G, Losses.Gram.Compute(e).to(ScalarType.Float64) * (factor * factor));
            }

            if (mean)
            {
                Sum = Accumulate(Sum, e.sum([0L, 2L, 3L], type: ScalarType.Float64) * factor);
            }

            if (buffer)
            {
                chunks.Add((tile.Row, tile.Col, e.clone().DetachFromDisposeScope(), m));
            }
        }

        /// <summary>The interiors placed into the whole feature map (at the final shift).</summary>
        public Tensor Assemble()
        {
            using var scope = torch.NewDisposeScope();
            var rows = new List<Tensor>();
            foreach (var row in chunks.GroupBy(c => c.Row).OrderBy(g => g.Key))
            {
                List<Tensor> parts = [];
                foreach (var c in row.OrderBy(c => c.Col))
                {
                    parts.Add(softmax && c.Shift != Shift ? c.Chunk * (float)Math.Exp(c.Shift - Shift) : c.Chunk);
                }

                rows.Add(torch.cat(parts, 3));
            }

            return torch.cat(rows, 2).MoveToOuterDisposeScope();
        }

        public void Dispose()
        {
            S?.Dispose();
            G?.Dispose();
            Sum?.Dispose();
            chunks.ForEach(c => c.Chunk.Dispose());
            chunks.Clear();
        }

        private static Tensor Accumulate(Tensor? sum, Tensor add)
        {
            if (sum is null)
            {
                return add.clone().DetachFromDisposeScope();
            }

            sum.add_(add);
            return sum;
        }
    }
}
