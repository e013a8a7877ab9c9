using StyleTransfer.Formats;

namespace StyleTransfer.Networks;

/// <summary>
/// Everything the library knows about one feature network: its name, where its weights are found
/// and how they are loaded, its defaults (<see cref="NetworkDefaults"/>), the layer ladders of the
/// paper's Figure 1, its working memory per pixel and its preferred layout. The factory, the
/// defaults, the model download, `stylize models`, the help text and the memory estimate all read
/// <see cref="NetworkSpecs.All"/>.
/// </summary>
internal sealed record NetworkSpec
{
    /// <summary>As given to --network.</summary>
    public required string Name { get; init; }

    /// <summary>As written in messages, e.g. "VGG-19".</summary>
    public required string Title { get; init; }

    /// <summary>torchvision's weight file, looked for in the PyTorch hub cache; null for a network whose weights come with stylize.</summary>
    public string? WeightsFileName { get; init; }

    /// <summary>The settings whose defaults depend on the network.</summary>
    public required NetworkDefaults Defaults { get; init; }

    /// <summary>Content reconstructions of the paper's Figure 1, shallow to deep.</summary>
    public required IReadOnlyList<string> ContentLadder { get; init; }

    /// <summary>Style reconstructions of Figure 1 use the first 1, 2, … of these.</summary>
    public required IReadOnlyList<string> StyleLadder { get; init; }

    /// <summary>Floats of activations and gradients kept per input pixel by one optimisation step (measured; order of magnitude).</summary>
    public required long FloatsPerPixel { get; init; }

    /// <summary>Whether channels-last is used on the CPU (measured faster; docs/performance.md).</summary>
    public bool ChannelsLastOnCpu { get; init; }

    /// <summary>An upper bound on the size of the published weight file (0: nothing to download).</summary>
    public long DownloadBytes { get; init; }

    /// <summary>The weights to load: the explicit path (it must exist), else where they are found, else null.</summary>
    public required Func<string?, string?> Locate { get; init; }

    /// <summary>What is looked for, and where, when --weights is not given (`stylize models`).</summary>
    public required Func<string> SearchedFor { get; init; }

    /// <summary>Loads the network from the weights that <see cref="Locate"/> found, on the CPU in float32.</summary>
    public required Func<string, StyleTransferOptions, IFeatureNetwork> Load { get; init; }

    /// <summary>An instance with the same taps, for listing them: small random weights, or the bundled file.</summary>
    public required Func<IFeatureNetwork> Probe { get; init; }

    /// <summary>The paper's weight normalisation (network, weights file), applied on the device; null where the network has none.</summary>
    public Action<IFeatureNetwork, string>? NormalizeWeights { get; init; }

    /// <summary>A short description of where the weights come from, given an optional --weights, for the start-up line.</summary>
    public required Func<string?, string> DescribeWeights { get; init; }

    /// <summary>
    /// A network whose weights are torchvision's file <paramref name="file"/>, found like VGG-19's
    /// (--weights, then the PyTorch hub cache), and whose layers are listed from a random instance at 1/16 of its width.
    /// </summary>
    public static NetworkSpec Torchvision(
        string name,
        string title,
        string file,
        NetworkDefaults defaults,
        IReadOnlyList<string> ladder,
        long floatsPerPixel,
        long downloadBytes,
        Func<string, StyleTransferOptions, IFeatureNetwork> load,
        Func<int, IFeatureNetwork> createRandom) => new()
        {
            Name = name,
            Title = title,
            WeightsFileName = file,
            Defaults = defaults,
            ContentLadder = ladder,
            StyleLadder = ladder,
            FloatsPerPixel = floatsPerPixel,
            DownloadBytes = downloadBytes,
            Locate = path => WeightLocator.Find(path, file),
            DescribeWeights = path => WeightLocator.Find(path, file) is { } p ? $"weights {p}" : "weights not found",
            SearchedFor = () => $"--weights, else {file} in {string.Join(", ", WeightLocator.CandidatePaths(file).Select(Path.GetDirectoryName))}",
            Load = load,
            Probe = () => createRandom(16),
        };
}
