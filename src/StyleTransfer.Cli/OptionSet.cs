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
    public readonly Option<int> Size = new("--size") { Description = "Long edge of the output in pixels", DefaultValueFactory = _ => 512 };
    public readonly Option<int> Iterations = new("--iterations", "-n") { Description = $"Optimiser iterations, at the last scale ({ByNetwork(o => o.Iterations.ToString(CultureInfo.InvariantCulture))})" };
    public readonly Option<double> ContentWeight = new("--content-weight") { Description = "α, the content weight (default 1)" };
    public readonly Option<double> StyleWeight = new("--style-weight") { Description = $"β, the style weight ({ByNetwork(o => Num(o.StyleWeight))})" };
    public readonly Option<double?> Ratio = new("--ratio") { Description = "α/β: sets α to ratio × β (the paper's default is 1e-3)" };
    public readonly Option<double> TvWeight = new("--tv-weight") { Description = $"Total-variation weight, 0: off, as in the paper ({ByNetwork(o => Num(o.TvWeight))})" };
    public readonly Option<double> TvChromaWeight = new("--tv-chroma-weight") { Description = $"Total-variation weight on the colour differences only: smooths colour speckle, not strokes ({ByNetwork(o => Num(o.TvChromaWeight))})" };
    public readonly Option<string> ContentLayers = new("--content-layers") { Description = $"Comma-separated content layers (default: the network's; {string.Join(",", NetworkFactory.DefaultOptions("vgg19").ContentLayers)} for vgg19)" };
    public readonly Option<string> StyleLayers = new("--style-layers") { Description = $"Comma-separated style layers (default: the network's; {NetworkFactory.DefaultOptions("vgg19").StyleLayers[0]}…{NetworkFactory.DefaultOptions("vgg19").StyleLayers[^1]} for vgg19)" };
    public readonly Option<string?> StyleLayerWeights = new("--style-layer-weights") { Description = "Comma-separated w_l, one per style layer (default: equal, 1/L)" };
    public readonly Option<string> Init = new Option<string>("--init") { Description = "Starting image: noise (the paper), content or style (default: the network's)" }.AcceptOnlyFromAmong("noise", "content", "style");
    public readonly Option<string> Optimizer = new Option<string>("--optimizer") { Description = "Optimiser (default lbfgs)" }.AcceptOnlyFromAmong("lbfgs", "adam");
    public readonly Option<bool> LineSearch = new("--line-search") { Description = "L-BFGS with a strong-Wolfe line search (default: the network's)" };
    public readonly Option<int> LbfgsHistory = new("--lbfgs-history") { Description = "L-BFGS memory: pairs kept, each two image-sized tensors (default 100)" };
    public readonly Option<double?> LearningRate = new("--learning-rate", "--lr") { Description = "Step size (default 1 for L-BFGS, 0.02 for Adam)" };
    public readonly Option<string> Pooling = new Option<string>("--pooling") { Description = "Pooling between VGG blocks (default avg, as in the paper)" }.AcceptOnlyFromAmong("avg", "max");
    public readonly Option<string?> Network = new("--network") { Description = $"Feature network: {string.Join(", ", NetworkFactory.Names)} (default: vgg19 when its weights are found, else resnet18)" };
    public readonly Option<string?> Weights = new("--weights") { Description = "Weights file: .pth/.safetensors (vgg19, alexnet, googlenet, resnet50) or .onnx (resnet18); default: the PyTorch hub cache / the bundled model" };
    public readonly Option<bool> NormalizeWeights = new("--normalize-weights") { Description = "Rescale VGG filters to mean activation 1, as in the paper" };
    public readonly Option<string> FeatureTransform = new Option<string>("--feature-transform") { Description = "Transform features before the losses: none or softmax (SWAG) (default: the network's)" }.AcceptOnlyFromAmong("none", "softmax");
    public readonly Option<double> SoftmaxTemperature = new("--softmax-temperature") { Description = "Temperature of --feature-transform softmax (default 1)" };
    public readonly Option<string> StyleNormalization = new Option<string>("--style-normalization") { Description = "Style term per layer: paper (÷4N²M²) or relative (÷ΣA²) (default: the network's)" }.AcceptOnlyFromAmong("paper", "relative");
    public readonly Option<long?> Seed = new("--seed") { Description = "Random seed (same seed, same output)" };
    public readonly Option<int> SaveEvery = new("--save-every") { Description = "Also write OUT-NNNN.ext every N iterations" };
    public readonly Option<string> Device = new("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
    public readonly Option<int?> Threads = new("--threads") { Description = "CPU threads (default: one per core)" };
    public readonly Option<double> StyleScale = new("--style-scale") { Description = $"Style image size relative to the output size ({ByNetwork(o => Num(o.StyleScale))})" };
    public readonly Option<string> Precision = new Option<string>("--precision") { Description = "Network arithmetic: fp32, bf16 or fp16 (fp16: CUDA only); Grams, losses and the optimiser stay fp32/fp64", DefaultValueFactory = _ => "fp32" }.AcceptOnlyFromAmong("fp32", "bf16", "fp16");
    public readonly Option<string> StyleLoss = new Option<string>("--style-loss") { Description = "Style statistic: gram (the paper) or w2 (Wasserstein-2 between Gaussian fits of the features) (default gram)" }.AcceptOnlyFromAmong("gram", "w2");
    public readonly Option<bool> AntiAlias = new("--anti-alias") { Description = $"Low-pass the image before the network (luminance 3×3, chroma 5×5 binomial): the optimiser cannot paint a 2-pixel lattice or pixel-sized colour speckle (true/false; {ByNetwork(o => o.AntiAlias ? "true" : "false")})" };
    public readonly Option<bool> SizeInvariant = new("--size-invariant") { Description = $"Content and TV losses per pixel (scaled to 512×512) instead of summed, so α/β means the same at every size and scale (true/false; {ByNetwork(o => o.SizeInvariant ? "true" : "false")})" };
    public readonly Option<int> ScaleStart = new("--scale-start") { Description = $"Long edge of the first scale of --scales auto, in pixels ({ByNetwork(o => o.ScaleStart.ToString(CultureInfo.InvariantCulture))})" };
    public readonly Option<string> Padding = new Option<string>("--padding") { Description = "Padding of the network's first convolution: zero (default) or replicate" }.AcceptOnlyFromAmong("zero", "replicate");

    // Pipeline options: only the stylize command itself takes them (AddPipelineTo).
    public readonly Option<string> PreserveColor = new Option<string>("--preserve-color") { Description = "Keep the content's colours: none (default), luminance (transfer on luminance, content chroma) or histogram (style recoloured to the content's colour mean and covariance)" }.AcceptOnlyFromAmong("none", "luminance", "histogram");
    public readonly Option<int> StyleAnchor = new("--style-anchor") { Description = $"Outputs larger than this many pixels keep the look of this size: half the style loss is taken on the image scaled down to it; 0: off ({ByNetwork(o => o.StyleAnchor.ToString(CultureInfo.InvariantCulture))})" };
    public readonly Option<string> Scales = new("--scales") { Description = $"Coarse to fine: auto (from about --scale-start px, ×√2 per scale, up to --size) or a number of scales; 1: single scale, as in the paper ({ByNetwork(o => o.Scales == StyleTransferOptions.AutoScales ? "auto" : o.Scales.ToString(CultureInfo.InvariantCulture))})" };

    // High resolution (docs/high-resolution.md): pipeline options too.
    public readonly Option<string?> MaxMemory = new("--max-memory") { Description = "Memory the run may take, e.g. 8G (K/M/G suffixes); picks the tile size and the L-BFGS history so the run fits (default: 80% of this machine's memory)" };
    public readonly Option<string?> Tile = new("--tile") { Description = "Tiled evaluation with whole-image style statistics: auto (chosen by --max-memory; default), off, or the tile size in pixels" };
    public readonly Option<int?> TileHalo = new("--tile-halo") { Description = "Pixels around each tile (default: the network's receptive radius, which makes tiles exact)" };
    public readonly Option<int> BitDepth = new Option<int>("--bit-depth") { Description = "Bits per channel of the output: 8 (default) or 16 (PNG and TIFF)", DefaultValueFactory = _ => 8 }.AcceptOnlyFromAmong("8", "16");

    public IEnumerable<Option> All =>
    [
        Size, Iterations, ContentWeight, StyleWeight, Ratio, TvWeight, TvChromaWeight, ContentLayers, StyleLayers, StyleLayerWeights, Init,
        Optimizer, LineSearch, LbfgsHistory, LearningRate, Pooling, Network, Weights, NormalizeWeights, FeatureTransform,
        SoftmaxTemperature, StyleNormalization, Seed, SaveEvery, Device, Threads, StyleScale, Precision, StyleLoss, Padding, AntiAlias, SizeInvariant, ScaleStart, StyleAnchor,
    ];

    /// <summary>Adds the options that only the full stylize pipeline honours (colour preservation, scales).</summary>
    public void AddPipelineTo(Command command)
    {
        command.Add(PreserveColor);
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

        StyleTransferOptions o;
        if (start is null)
        {
            o = NetworkFactory.DefaultOptions(network) with { WeightsPath = weights };
            o = o with { Size = size ?? p.GetValue(Size), Device = p.GetValue(Device)!, Threads = p.GetValue(Threads), Seed = p.GetValue(Seed) };
        }
        else
        {
            o = start with { Network = network, WeightsPath = weights ?? start.WeightsPath };
            o = Given(p, Size) ? o with { Size = p.GetValue(Size) } : o;
            o = Given(p, Device) ? o with { Device = p.GetValue(Device)! } : o;
            o = Given(p, Threads) ? o with { Threads = p.GetValue(Threads) } : o;
            o = Given(p, Seed) ? o with { Seed = p.GetValue(Seed) } : o;
            o = Given(p, LearningRate) ? o with { LearningRate = p.GetValue(LearningRate) } : o;
            o = Given(p, NormalizeWeights) ? o with { NormalizeWeights = p.GetValue(NormalizeWeights) } : o;
        }
        if (Given(p, Iterations))
        {
            o = o with { Iterations = p.GetValue(Iterations) };
        }

        if (Given(p, StyleWeight))
        {
            o = o with { StyleWeight = p.GetValue(StyleWeight) };
        }

        if (Given(p, ContentWeight))
        {
            o = o with { ContentWeight = p.GetValue(ContentWeight) };
        }

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

        if (Given(p, TvChromaWeight))
        {
            o = o with { TvChromaWeight = p.GetValue(TvChromaWeight) };
        }

        if (Given(p, TvWeight))
        {
            o = o with { TvWeight = p.GetValue(TvWeight) };
        }

        if (Given(p, ContentLayers))
        {
            o = o with { ContentLayers = SplitList(p.GetValue(ContentLayers)) };
        }

        if (Given(p, StyleLayers))
        {
            o = o with { StyleLayers = SplitList(p.GetValue(StyleLayers)) };
        }

        if (p.GetValue(StyleLayerWeights) is { } w)
        {
            o = o with { StyleLayerWeights = ParseNumbers(w, "--style-layer-weights") };
        }

        if (Given(p, Init))
        {
            o = o with { Init = Enum.Parse<InitMode>(p.GetValue(Init)!, ignoreCase: true) };
        }

        if (Given(p, Optimizer))
        {
            o = o with { Optimizer = Enum.Parse<OptimizerKind>(p.GetValue(Optimizer)!, ignoreCase: true) };
        }

        if (Given(p, LineSearch))
        {
            o = o with { LineSearch = p.GetValue(LineSearch) };
        }

        if (Given(p, LbfgsHistory))
        {
            o = o with { LbfgsHistory = p.GetValue(LbfgsHistory) };
        }

        if (Given(p, Pooling))
        {
            o = o with { Pooling = Enum.Parse<PoolingMode>(p.GetValue(Pooling)!, ignoreCase: true) };
        }

        if (Given(p, FeatureTransform))
        {
            o = o with { FeatureTransform = Enum.Parse<FeatureTransformKind>(p.GetValue(FeatureTransform)!, ignoreCase: true) };
        }

        if (Given(p, SoftmaxTemperature))
        {
            o = o with { SoftmaxTemperature = p.GetValue(SoftmaxTemperature) };
        }

        if (Given(p, StyleNormalization))
        {
            o = o with { StyleNormalization = Enum.Parse<StyleNormalization>(p.GetValue(StyleNormalization)!, ignoreCase: true) };
        }

        if (Given(p, SaveEvery))
        {
            o = o with { SaveEvery = p.GetValue(SaveEvery) };
        }

        if (Given(p, StyleScale))
        {
            o = o with { StyleScale = p.GetValue(StyleScale) };
        }

        if (Given(p, StyleLoss))
        {
            o = o with { StyleLoss = Enum.Parse<StyleLossKind>(p.GetValue(StyleLoss)!, ignoreCase: true) };
        }

        if (Given(p, StyleAnchor))
        {
            o = o with { StyleAnchor = p.GetValue(StyleAnchor) };
        }

        if (Given(p, ScaleStart))
        {
            o = o with { ScaleStart = p.GetValue(ScaleStart) };
        }

        if (Given(p, SizeInvariant))
        {
            o = o with { SizeInvariant = p.GetValue(SizeInvariant) };
        }

        if (Given(p, AntiAlias))
        {
            o = o with { AntiAlias = p.GetValue(AntiAlias) };
        }

        if (Given(p, Padding))
        {
            o = o with { Padding = Enum.Parse<FirstConvPadding>(p.GetValue(Padding)!, ignoreCase: true) };
        }

        o = HighResolution(p, o);
        if (Given(p, PreserveColor))
        {
            o = o with { PreserveColor = Enum.Parse<ColorPreservationMode>(p.GetValue(PreserveColor)!, ignoreCase: true) };
        }

        if (Given(p, Scales))
        {
            o = o with { Scales = ParseScales(p.GetValue(Scales)) };
        }

        if (start is null || Given(p, Precision))
        {
            o = o with { Precision = Enum.Parse<Precision>(p.GetValue(Precision)!, ignoreCase: true) };
        }

        return (start is null
            ? o with { LearningRate = p.GetValue(LearningRate), NormalizeWeights = p.GetValue(NormalizeWeights) }
            : o).Validate();
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

    /// <summary>Help text for a default that depends on the network: "default: 500 for vgg19, 150 for resnet18", from the library's own defaults.</summary>
    private static string Num(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

    private static string ByNetwork(Func<StyleTransferOptions, string> value) =>
        "default: " + string.Join(", ", new[] { "vgg19", "resnet18" }.Select(n => $"{value(NetworkFactory.DefaultOptions(n))} for {n}"));

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

        if (Given(p, TileHalo))
        {
            o = o with { TileHalo = p.GetValue(TileHalo) };
        }

        if (Given(p, BitDepth))
        {
            o = o with { BitDepth = p.GetValue(BitDepth) };
        }

        return o;
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

    public readonly Option<string> MaskFit = new Option<string>("--mask-fit") { Description = "A --mask of another aspect ratio than CONTENT: exact (default: refused) or stretch (stretched to the output)" }.AcceptOnlyFromAmong("exact", "stretch");

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
            o = o with { MaskFit = Enum.Parse<MaskFit>(p.GetValue(MaskFit)!, ignoreCase: true) };
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
