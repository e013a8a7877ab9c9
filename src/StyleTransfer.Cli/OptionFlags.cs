namespace StyleTransfer.Cli;

/// <summary>
/// The one table from the library's names for settings (<see cref="StyleTransferOptions"/>
/// properties, and the <c>resume</c> parameter) to the command line's flags: library errors name
/// properties (<c>ContentLayers: unknown layer ...</c>), the CLI prints them with its flags
/// (<c>--content-layers: unknown layer ...</c>) through <see cref="StyleTransferException.FormatMessage"/>.
/// </summary>
internal static class OptionFlags
{
    private static readonly Dictionary<string, string> Flags = new(StringComparer.Ordinal)
    {
        [nameof(StyleTransferOptions.Size)] = "--size",
        [nameof(StyleTransferOptions.Iterations)] = "--iterations",
        ["Iterations.Short"] = "-n",
        [nameof(StyleTransferOptions.ContentWeight)] = "--content-weight",
        [nameof(StyleTransferOptions.StyleWeight)] = "--style-weight",
        [nameof(StyleTransferOptions.TvWeight)] = "--tv-weight",
        [nameof(StyleTransferOptions.TvChromaWeight)] = "--tv-chroma-weight",
        [nameof(StyleTransferOptions.ContentLayers)] = "--content-layers",
        [nameof(StyleTransferOptions.StyleLayers)] = "--style-layers",
        [nameof(StyleTransferOptions.StyleLayerWeights)] = "--style-layer-weights",
        [nameof(StyleTransferOptions.Init)] = "--init",
        [nameof(StyleTransferOptions.Optimizer)] = "--optimizer",
        [nameof(StyleTransferOptions.LineSearch)] = "--line-search",
        [nameof(StyleTransferOptions.LbfgsHistory)] = "--lbfgs-history",
        [nameof(StyleTransferOptions.LearningRate)] = "--learning-rate",
        [nameof(StyleTransferOptions.Pooling)] = "--pooling",
        [nameof(StyleTransferOptions.Network)] = "--network",
        [nameof(StyleTransferOptions.WeightsPath)] = "--weights",
        [nameof(StyleTransferOptions.NormalizeWeights)] = "--normalize-weights",
        [nameof(StyleTransferOptions.FeatureTransform)] = "--feature-transform",
        [nameof(StyleTransferOptions.SoftmaxTemperature)] = "--softmax-temperature",
        [nameof(StyleTransferOptions.StyleNormalization)] = "--style-normalization",
        [nameof(StyleTransferOptions.Seed)] = "--seed",
        [nameof(StyleTransferOptions.SaveEvery)] = "--save-every",
        [nameof(StyleTransferOptions.Device)] = "--device",
        [nameof(StyleTransferOptions.Threads)] = "--threads",
        [nameof(StyleTransferOptions.StyleScale)] = "--style-scale",
        [nameof(StyleTransferOptions.Precision)] = "--precision",
        [nameof(StyleTransferOptions.StyleLoss)] = "--style-loss",
        [nameof(StyleTransferOptions.AntiAlias)] = "--anti-alias",
        [nameof(StyleTransferOptions.SizeInvariant)] = "--size-invariant",
        [nameof(StyleTransferOptions.ScaleStart)] = "--scale-start",
        [nameof(StyleTransferOptions.StyleAnchor)] = "--style-anchor",
        [nameof(StyleTransferOptions.SmallStyle)] = "--small-style",
        [nameof(StyleTransferOptions.InitNoise)] = "--init-noise",
        [nameof(StyleTransferOptions.ContentLuminance)] = "--content-luminance",
        [nameof(StyleTransferOptions.IterationTaper)] = "--iteration-taper",
        [nameof(StyleTransferOptions.BitDepth)] = "--bit-depth",
        [nameof(StyleTransferOptions.MaxMemory)] = "--max-memory",
        [nameof(StyleTransferOptions.Tile)] = "--tile",
        [nameof(StyleTransferOptions.TileHalo)] = "--tile-halo",
        [nameof(StyleTransferOptions.Padding)] = "--padding",
        [nameof(StyleTransferOptions.PreserveColor)] = "--preserve-color",
        [nameof(StyleTransferOptions.PaletteTransfer)] = "--palette-transfer",
        [nameof(StyleTransferOptions.Scales)] = "--scales",
        [nameof(StyleTransferOptions.StyleBlend)] = "--style-blend",
        [nameof(StyleTransferOptions.StyleMasks)] = "--mask",
        [nameof(StyleTransferOptions.MaskFit)] = "--mask-fit",
        ["resume"] = "--resume",
    };

    /// <summary>The flag for a library name, or null (the name is kept).</summary>
    public static string? Of(string name) => Flags.GetValueOrDefault(name);

    /// <summary>A library error as the CLI prints it: with flags for property names.</summary>
    public static string Message(StyleTransferException e) => e.FormatMessage(Of);
}
