using System.CommandLine;
using System.Globalization;
using StyleTransfer.Losses;
using StyleTransfer.Networks;

namespace StyleTransfer.Cli;

/// <summary>
/// The algorithm options every image-making command shares. <see cref="Build"/> starts from the
/// chosen network's defaults and overrides only what the user typed, so one record comes out,
/// validated once.
/// </summary>
internal sealed class OptionSet
{
    public readonly Option<int> Size = new("--size") { Description = "Long edge of the output in pixels" + LibraryDefaults.Of(o => o.Size) };
    public readonly Option<int> Iterations = new("--iterations", "-n") { Description = "Optimiser iterations, at the last scale" + LibraryDefaults.Of(o => o.Iterations) };
    public readonly Option<double> ContentWeight = new("--content-weight") { Description = "α, the content weight" + LibraryDefaults.Of(o => o.ContentWeight) };
    public readonly Option<double> StyleWeight = new("--style-weight") { Description = "β, the style weight" + LibraryDefaults.Of(o => o.StyleWeight) };
    public readonly Option<double?> Ratio = new("--ratio") { Description = "α/β: sets α to ratio × β (the paper's default is 1e-3)" };
    public readonly Option<double> TvWeight = new("--tv-weight") { Description = "Total-variation weight, 0: off, as in the paper" + LibraryDefaults.Of(o => o.TvWeight) };
    public readonly Option<double> TvChromaWeight = new("--tv-chroma-weight") { Description = "Total-variation weight on the colour differences only: smooths colour speckle, not strokes" + LibraryDefaults.Of(o => o.TvChromaWeight) };
    public readonly Option<string> ContentLayers = new("--content-layers") { Description = "Comma-separated content layers" + LibraryDefaults.Of(o => o.ContentLayers) };
    public readonly Option<string> StyleLayers = new("--style-layers") { Description = "Comma-separated style layers" + LibraryDefaults.Of(o => o.StyleLayers) };
    public readonly Option<string?> StyleLayerWeights = new("--style-layer-weights") { Description = "Comma-separated w_l, one per style layer (default: equal, 1/L)" };
    public readonly Option<InitMode> Init = Binding.EnumOption<InitMode>("--init", "Starting image: noise (the paper), content or style" + LibraryDefaults.Of(o => o.Init));
    public readonly Option<OptimizerKind> Optimizer = Binding.EnumOption<OptimizerKind>("--optimizer", "Optimiser" + LibraryDefaults.Of(o => o.Optimizer));
    public readonly Option<bool> LineSearch = new("--line-search") { Description = "L-BFGS with a strong-Wolfe line search" + LibraryDefaults.Of(o => o.LineSearch) };
    public readonly Option<int> LbfgsHistory = new("--lbfgs-history") { Description = "L-BFGS memory: pairs kept, each two image-sized tensors" + LibraryDefaults.Of(o => o.LbfgsHistory) };
    public readonly Option<double?> LearningRate = new("--learning-rate", "--lr") { Description = $"Step size [default: {LearningRateDefault(OptimizerKind.Lbfgs)} for L-BFGS, {LearningRateDefault(OptimizerKind.Adam)} for Adam]" };
    public readonly Option<PoolingMode> Pooling = Binding.EnumOption<PoolingMode>("--pooling", "Pooling between VGG blocks (avg: as in the paper)" + LibraryDefaults.Of(o => o.Pooling));
    public readonly Option<string?> Network = new("--network") { Description = $"Feature network: {string.Join(", ", NetworkFactory.Names)} (default: vgg19 when its weights are found, else resnet18)" };
    public readonly Option<string?> Weights = new("--weights") { Description = "Weights file: .pth/.safetensors (vgg19, alexnet, googlenet, resnet50) or .onnx (resnet18); default: the PyTorch hub cache / the bundled model" };
    public readonly Option<bool> NormalizeWeights = new("--normalize-weights") { Description = "Rescale VGG filters to mean activation 1, as in the paper" + LibraryDefaults.Of(o => o.NormalizeWeights) };
    public readonly Option<FeatureTransformKind> FeatureTransform = Binding.EnumOption<FeatureTransformKind>("--feature-transform", "Transform features before the losses: none or softmax (SWAG)" + LibraryDefaults.Of(o => o.FeatureTransform));
    public readonly Option<double> SoftmaxTemperature = new("--softmax-temperature") { Description = "Temperature of --feature-transform softmax" + LibraryDefaults.Of(o => o.SoftmaxTemperature) };
    public readonly Option<StyleNormalization> StyleNormalization = Binding.EnumOption<StyleNormalization>("--style-normalization", "Style term per layer: paper (÷4N²M²) or relative (÷ΣA²)" + LibraryDefaults.Of(o => o.StyleNormalization));
    public readonly Option<long?> Seed = new("--seed") { Description = "Random seed (same seed, same output)" };
    public readonly Option<int> SaveEvery = new("--save-every") { Description = "Also write OUT-NNNN.ext every N iterations (0: never)" + LibraryDefaults.Of(o => o.SaveEvery) };
    public readonly Option<string> Device = new("--device") { Description = "cpu, cuda or cuda:N" + LibraryDefaults.Of(o => o.Device) };
    public readonly Option<int?> Threads = new("--threads") { Description = "CPU threads (default: one per core)" };
    public readonly Option<double> InitNoise = new("--init-noise") { Description = "With --init content or style: the share of noise mixed into the starting image, from 0 (the image) to 1 (noise); more gives larger strokes and more of the painting's colours" + LibraryDefaults.Of(o => o.InitNoise) };
    public readonly Option<double> StyleScale = new("--style-scale") { Description = "Style image size relative to the output size" + LibraryDefaults.Of(o => o.StyleScale) };
    public readonly Option<Precision> Precision = Binding.EnumOption<Precision>("--precision", "Network arithmetic: fp32, bf16 or fp16 (fp16: CUDA only); Grams, losses and the optimiser stay fp32/fp64" + LibraryDefaults.Of(o => o.Precision));
    public readonly Option<StyleLossKind> StyleLoss = Binding.EnumOption<StyleLossKind>("--style-loss", "Style statistic: gram (the paper) or w2 (Wasserstein-2 between Gaussian fits of the features)" + LibraryDefaults.Of(o => o.StyleLoss));
    public readonly Option<bool> ContentLuminance = new("--content-luminance") { Description = "The content loss sees the luminance only (grey photograph, grey result): the structure is kept, the colours are left to the style, so the painting's palette replaces the photograph's; a second network pass up to the content layers (true/false)" + LibraryDefaults.Of(o => o.ContentLuminance) };
    public readonly Option<bool> AntiAlias = new("--anti-alias") { Description = "Low-pass the image before the network (luminance 3×3, chroma 5×5 binomial): the optimiser cannot paint a 2-pixel lattice or pixel-sized colour speckle (true/false)" + LibraryDefaults.Of(o => o.AntiAlias) };
    public readonly Option<bool> SizeInvariant = new("--size-invariant") { Description = "Content and TV losses per pixel (scaled to 512×512) instead of summed, so α/β means the same at every size and scale (true/false)" + LibraryDefaults.Of(o => o.SizeInvariant) };
    public readonly Option<int> ScaleStart = new("--scale-start") { Description = "Long edge of the first scale of --scales auto, in pixels" + LibraryDefaults.Of(o => o.ScaleStart) };
    public readonly Option<FirstConvPadding> Padding = Binding.EnumOption<FirstConvPadding>("--padding", "Padding of the network's first convolution: zero or replicate" + LibraryDefaults.Of(o => o.Padding));

    // Pipeline options: only the stylize command itself takes them (AddPipelineTo).
    public readonly Option<ColorPreservationMode> PreserveColor = Binding.EnumOption<ColorPreservationMode>("--preserve-color", "Keep the content's colours: none, luminance (transfer on luminance, content chroma) or histogram (style recoloured to the content's colour mean and covariance)" + LibraryDefaults.Of(o => o.PreserveColor));
    public readonly Option<double> PaletteTransfer = new("--palette-transfer") { Description = "Recolour the photograph towards the painting's colour mean and covariance before stylising, from 0 (its own colours) to 1 (the painting's palette); the structure stays, no extra cost; not with --preserve-color" + LibraryDefaults.Of(o => o.PaletteTransfer) };
    public readonly Option<SmallStyleMode> SmallStyle = Binding.EnumOption<SmallStyleMode>("--small-style", "A style image smaller than --style-scale × the output: enlarge (stretched, every style layer) or native (at its own pixels at the --style-anchor size, without the style layers that would see it whole)" + LibraryDefaults.Of(o => o.SmallStyle));
    public readonly Option<int> StyleAnchor = new("--style-anchor") { Description = "Outputs larger than this many pixels keep the look of this size: half the style loss is taken on the image scaled down to it; 0: off" + LibraryDefaults.Of(o => o.StyleAnchor) };
    public readonly Option<int> IterationTaper = new("--iteration-taper") { Description = "Coarse to fine: scales longer than this many pixels get fewer iterations, their share × (this / long edge)², at least " + StyleTransferOptions.MinTaperedIterations + " (the look is set at the small scales; the large ones add detail); 0: off" + LibraryDefaults.Of(o => o.IterationTaper) };
    public readonly Option<string> Scales = new("--scales") { Description = "Coarse to fine: auto (from about --scale-start px, ×√2 per scale, up to --size) or a number of scales; 1: single scale, as in the paper" + LibraryDefaults.Of(o => o.Scales == StyleTransferOptions.AutoScales ? "auto" : LibraryDefaults.Text(o.Scales)) };

    // High resolution (docs/high-resolution.md): pipeline options too.
    public readonly Option<string?> MaxMemory = new("--max-memory") { Description = "Memory the run may take, e.g. 8G (K/M/G suffixes); picks the tile size and the L-BFGS history so the run fits (default: 80% of this machine's memory; with --device cuda, 80% of the GPU's free memory)" };
    public readonly Option<string?> Tile = new("--tile") { Description = "Tiled evaluation with whole-image style statistics: auto (chosen by --max-memory; default), off, or the tile size in pixels" };
    public readonly Option<int?> TileHalo = new("--tile-halo") { Description = "Pixels around each tile (default: the network's receptive radius, which makes tiles exact)" };
    public readonly Option<int> BitDepth = new Option<int>("--bit-depth") { Description = "Bits per channel of the output: 8 or 16 (PNG and TIFF)" + LibraryDefaults.Of(o => o.BitDepth) }.AcceptOnlyFromAmong("8", "16");

    public IEnumerable<Option> All =>
    [
        Size, Iterations, ContentWeight, StyleWeight, Ratio, TvWeight, TvChromaWeight, ContentLayers, ContentLuminance, StyleLayers, StyleLayerWeights, Init, InitNoise,
        Optimizer, LineSearch, LbfgsHistory, LearningRate, Pooling, Network, Weights, NormalizeWeights, FeatureTransform,
        SoftmaxTemperature, StyleNormalization, Seed, SaveEvery, Device, Threads, StyleScale, Precision, StyleLoss, Padding, AntiAlias, SizeInvariant, ScaleStart, StyleAnchor, IterationTaper,
    ];

    /// <summary>Adds the options that only the full stylize pipeline honours (colour preservation, scales).</summary>
    public void AddPipelineTo(Command command)
    {
        command.Add(PreserveColor);
        command.Add(PaletteTransfer);
        command.Add(SmallStyle);
        command.Add(MaxMemory);
        command.Add(Tile);
        command.Add(TileHalo);
        command.Add(BitDepth);
        command.Add(Scales);
    }

    /// <summary>Adds the options to <paramref name="command"/>, less those in <paramref name="except"/> (which the command replaces or fixes).</summary>
    public void AddTo(Command command, params Option[] except)
    {
        foreach (Option option in All.Except(except))
        {
            command.Add(option);
        }
    }

    /// <summary>The network's defaults, overridden by what was typed; validated. <paramref name="size"/> stands in for --size where a command parses its own.</summary>
    /// <remarks><paramref name="start"/> (a checkpoint's options) replaces the network's defaults: then only what was typed changes.</remarks>
    public StyleTransferOptions Build(ParseResult p, int? size = null, StyleTransferOptions? start = null)
    {
        string? weights = p.GetValue(Weights);
        string network = p.GetValue(Network) ?? start?.Network ?? NetworkFactory.ChooseDefault(weights);
        if (!NetworkFactory.Names.Contains(network))
        {
            throw new StyleTransferException($"unknown network '{network}' (known: {string.Join(", ", NetworkFactory.Names)})");
        }

        StyleTransferOptions o = start is null
            ? NetworkFactory.DefaultOptions(network) with { WeightsPath = weights }
            : start with { Network = network, WeightsPath = weights ?? start.WeightsPath };

        // Each option that was typed replaces the default (or the checkpoint's value); the rest stay.
        o = size is int s ? o with { Size = s } : Given(p, Size) ? o with { Size = p.GetValue(Size) } : o;
        o = Given(p, Device) ? o with { Device = p.GetValue(Device)! } : o;
        o = Given(p, Threads) ? o with { Threads = p.GetValue(Threads) } : o;
        o = Given(p, Seed) ? o with { Seed = p.GetValue(Seed) } : o;
        o = Given(p, LearningRate) ? o with { LearningRate = p.GetValue(LearningRate) } : o;
        o = Given(p, NormalizeWeights) ? o with { NormalizeWeights = p.GetValue(NormalizeWeights) } : o;
        o = Given(p, Iterations) ? o with { Iterations = p.GetValue(Iterations) } : o;
        o = Given(p, StyleWeight) ? o with { StyleWeight = p.GetValue(StyleWeight) } : o;
        o = Given(p, ContentWeight) ? o with { ContentWeight = p.GetValue(ContentWeight) } : o;
        if (p.GetValue(Ratio) is { } ratio)
        {
            if (Given(p, ContentWeight))
            {
                throw new StyleTransferException("--ratio and --content-weight cannot be given together");
            }

            if (!double.IsFinite(ratio) || ratio <= 0)
            {
                throw new StyleTransferException($"--ratio must be a number above 0, not {ratio.ToString(CultureInfo.InvariantCulture)}");
            }

            o = o with { ContentWeight = ratio * o.StyleWeight };
        }

        o = Given(p, TvChromaWeight) ? o with { TvChromaWeight = p.GetValue(TvChromaWeight) } : o;
        o = Given(p, TvWeight) ? o with { TvWeight = p.GetValue(TvWeight) } : o;
        o = Given(p, ContentLayers) ? o with { ContentLayers = SplitList(p.GetValue(ContentLayers)) } : o;
        o = Given(p, StyleLayers) ? o with { StyleLayers = SplitList(p.GetValue(StyleLayers)) } : o;
        o = p.GetValue(StyleLayerWeights) is { } w ? o with { StyleLayerWeights = ParseNumbers(w, "--style-layer-weights") } : o;
        o = Given(p, Init) ? o with { Init = p.GetValue(Init) } : o;
        o = Given(p, InitNoise) ? o with { InitNoise = p.GetValue(InitNoise) } : o;
        o = Given(p, ContentLuminance) ? o with { ContentLuminance = p.GetValue(ContentLuminance) } : o;
        o = Given(p, Optimizer) ? o with { Optimizer = p.GetValue(Optimizer) } : o;
        o = Given(p, LineSearch) ? o with { LineSearch = p.GetValue(LineSearch) } : o;
        o = Given(p, LbfgsHistory) ? o with { LbfgsHistory = p.GetValue(LbfgsHistory) } : o;
        o = Given(p, Pooling) ? o with { Pooling = p.GetValue(Pooling) } : o;
        o = Given(p, FeatureTransform) ? o with { FeatureTransform = p.GetValue(FeatureTransform) } : o;
        o = Given(p, SoftmaxTemperature) ? o with { SoftmaxTemperature = p.GetValue(SoftmaxTemperature) } : o;
        o = Given(p, StyleNormalization) ? o with { StyleNormalization = p.GetValue(StyleNormalization) } : o;
        o = Given(p, SaveEvery) ? o with { SaveEvery = p.GetValue(SaveEvery) } : o;
        o = Given(p, StyleScale) ? o with { StyleScale = p.GetValue(StyleScale) } : o;
        o = Given(p, StyleLoss) ? o with { StyleLoss = p.GetValue(StyleLoss) } : o;
        o = Given(p, StyleAnchor) ? o with { StyleAnchor = p.GetValue(StyleAnchor) } : o;
        o = Given(p, SmallStyle) ? o with { SmallStyle = p.GetValue(SmallStyle) } : o;
        o = Given(p, IterationTaper) ? o with { IterationTaper = p.GetValue(IterationTaper) } : o;
        o = Given(p, ScaleStart) ? o with { ScaleStart = p.GetValue(ScaleStart) } : o;
        o = Given(p, SizeInvariant) ? o with { SizeInvariant = p.GetValue(SizeInvariant) } : o;
        o = Given(p, AntiAlias) ? o with { AntiAlias = p.GetValue(AntiAlias) } : o;
        o = Given(p, Padding) ? o with { Padding = p.GetValue(Padding) } : o;
        o = HighResolution(p, o);
        o = Given(p, PreserveColor) ? o with { PreserveColor = p.GetValue(PreserveColor) } : o;
        o = Given(p, PaletteTransfer) ? o with { PaletteTransfer = p.GetValue(PaletteTransfer) } : o;
        o = Given(p, Scales) ? o with { Scales = ParseScales(p.GetValue(Scales)) } : o;
        o = Given(p, Precision) ? o with { Precision = p.GetValue(Precision) } : o;
        return o.Validate();
    }

    /// <summary>--scales: "auto" or a whole number of 1 or more.</summary>
    internal static int ParseScales(string? value)
    {
        string v = (value ?? "").Trim();
        if (v.Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            return StyleTransferOptions.AutoScales;
        }

        if (int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n >= 1)
        {
            return n;
        }

        throw new StyleTransferException($"--scales must be auto or a whole number of 1 or more, not '{v}'");
    }

    /// <summary>The library's step size for <paramref name="optimizer"/> when none is given.</summary>
    private static string LearningRateDefault(OptimizerKind optimizer) => LibraryDefaults.Text(new StyleTransferOptions { Optimizer = optimizer }.EffectiveLearningRate);

    /// <summary>--max-memory, --tile, --tile-halo, --bit-depth (when the command has them).</summary>
    private StyleTransferOptions HighResolution(ParseResult p, StyleTransferOptions o)
    {
        if (Given(p, MaxMemory))
        {
            o = o with { MaxMemory = Optimization.MemoryBudget.Parse(p.GetValue(MaxMemory) ?? "") };
        }

        if (Given(p, Tile))
        {
            string t = (p.GetValue(Tile) ?? "").Trim().ToLowerInvariant();
            o = o with
            {
                Tile = t switch
                {
                    "auto" => null,
                    "off" or "0" => 0,
                    _ when int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n > 0 => n,
                    _ => throw new StyleTransferException($"--tile: '{t}' is not auto, off or a size in pixels"),
                },
            };
        }

        o = Given(p, TileHalo) ? o with { TileHalo = p.GetValue(TileHalo) } : o;
        return Given(p, BitDepth) ? o with { BitDepth = p.GetValue(BitDepth) } : o;
    }

    private static bool Given(ParseResult p, Option option) => p.GetResult(option) is { Implicit: false };

    private static List<string> SplitList(string? value) =>
        (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();

    internal static List<double> ParseNumbers(string value, string flag)
    {
        var list = new List<double>();
        foreach (string item in value.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out double d))
            {
                throw new StyleTransferException($"{flag}: '{item}' is not a number");
            }

            list.Add(d);
        }

        return list;
    }
}

/// <summary>
/// The stylize command's options for several style images: --style-blend (shares of the blended
/// target) and --mask STYLE=FILE (regions of the output), where STYLE is a style image's number
/// (1 for the first STYLE argument) or its file name, with or without the extension.
/// </summary>
internal sealed class StyleInputOptions
{
    public readonly Option<string?> Blend = new("--style-blend") { Description = "Comma-separated shares of the style images in the blended style target, normalised to sum 1 (default: equal)" };
    public readonly Option<string[]> Masks = new("--mask") { Description = "STYLE=FILE: a greyscale image, white where style image STYLE (its number from 1, or its file name) applies; repeat per style. Styles without a mask share what the masks leave" };

    public readonly Option<MaskFit> MaskFit = Binding.EnumOption<MaskFit>("--mask-fit", "A --mask of another aspect ratio than CONTENT: exact (refused) or stretch (stretched to the output)" + LibraryDefaults.Of(o => o.MaskFit));

    public void AddTo(Command command)
    {
        command.Add(Blend);
        command.Add(Masks);
        command.Add(MaskFit);
    }

    /// <summary>The options with the blend and masks for <paramref name="styles"/>; validated.</summary>
    public StyleTransferOptions Apply(ParseResult p, StyleTransferOptions o, IReadOnlyList<string> styles)
    {
        if (p.GetValue(Blend) is { } blend)
        {
            o = o with { StyleBlend = OptionSet.ParseNumbers(blend, "--style-blend") };
        }

        string[] specs = p.GetValue(Masks) ?? [];
        if (specs.Length > 0)
        {
            o = o with { StyleMasks = [.. specs.Select(s => ParseMask(s, styles))] };
        }

        if (p.GetResult(MaskFit) is { Implicit: false })
        {
            o = o with { MaskFit = p.GetValue(MaskFit) };
        }

        return o.Validate(styles.Count);
    }

    private static StyleMask ParseMask(string spec, IReadOnlyList<string> styles)
    {
        int eq = spec.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == spec.Length - 1)
        {
            throw new StyleTransferException($"--mask must be STYLE=FILE (STYLE: a style image's number from 1, or its file name), not '{spec}'");
        }

        string key = spec[..eq].Trim();
        string path = spec[(eq + 1)..];
        if (int.TryParse(key, NumberStyles.Integer, CultureInfo.InvariantCulture, out int number))
        {
            return new StyleMask(number - 1, path);
        }

        int[] matches = [.. Enumerable.Range(0, styles.Count).Where(i =>
            key == styles[i] || key == Path.GetFileName(styles[i]) || key == Path.GetFileNameWithoutExtension(styles[i]))];
        return matches.Length switch
        {
            1 => new StyleMask(matches[0], path),
            0 => throw new StyleTransferException(
                $"--mask: '{key}' is neither the number nor the file name of a style image ({string.Join(", ", styles.Select((s, i) => $"{i + 1}: {Path.GetFileName(s)}"))})"),
            _ => throw new StyleTransferException($"--mask: '{key}' names more than one style image; give its number instead"),
        };
    }
}
