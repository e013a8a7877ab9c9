using StyleTransfer.Formats;
using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>Turns a network name and options into a ready <see cref="IFeatureNetwork"/> on a device.</summary>
public static class NetworkFactory
{
    /// <summary>Networks that --network accepts.</summary>
    public static readonly IReadOnlyList<string> Names = [.. NetworkSpecs.All.Select(s => s.Name)];

    /// <summary>
    /// The network used when none is named: VGG-19 (the paper's) when its weights are found, else
    /// ResNet-18, which ships with the package and needs no download. A --weights file decides by
    /// its kind: .onnx is ResNet-18, anything else VGG-19.
    /// </summary>
    public static string ChooseDefault(string? weightsPath)
    {
        if (weightsPath != null)
        {
            // torchvision's own file names say which network they hold.
            string file = Path.GetFileName(weightsPath);
            foreach (NetworkSpec spec in NetworkSpecs.All)
            {
                if (!ReferenceEquals(spec, NetworkSpecs.Vgg19Spec) && spec.WeightsFileName != null && file.StartsWith(spec.Name, StringComparison.OrdinalIgnoreCase))
                {
                    return spec.Name;
                }
            }

            return weightsPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? NetworkSpecs.ResNet18Spec.Name : NetworkSpecs.Vgg19Spec.Name;
        }

        return NetworkSpecs.Vgg19Spec.Locate(null) != null ? NetworkSpecs.Vgg19Spec.Name : NetworkSpecs.ResNet18Spec.Name;
    }

    /// <summary>
    /// Options whose layers, weights and loss settings are this network's defaults. For VGG-19 they
    /// are the paper's; for ResNet-18 they were chosen by side-by-side comparison (docs/resnet18.md).
    /// </summary>
    public static StyleTransferOptions DefaultOptions(string network) => Profile(network).Defaults;

    /// <summary>A network's defaults (<see cref="NetworkDefaults"/>) and the layer ladders that the paper's Figure 1 walks.</summary>
    internal static NetworkProfile Profile(string network)
    {
        NetworkSpec spec = NetworkSpecs.Get(network);
        return new NetworkProfile(new StyleTransferOptions { Network = spec.Name }, spec.ContentLadder, spec.StyleLadder);
    }

    /// <summary>
    /// Each network, where its weights are looked for and whether they were found, and its taps
    /// (read from a small random instance of the same layout, or the bundled ONNX graph).
    /// </summary>
    internal static IReadOnlyList<NetworkInfo> Describe()
    {
        var list = new List<NetworkInfo>();
        foreach (NetworkSpec spec in NetworkSpecs.All)
        {
            string? found = spec.Locate(null);
            string searched = spec.SearchedFor();
            using IFeatureNetwork probe = spec.Probe();
            list.Add(new NetworkInfo(spec.Name, found, searched, [.. probe.TapNames]));
        }

        return list;
    }

    /// <summary>Where normalisation factors are cached: $XDG_CACHE_HOME/stylize or ~/.cache/stylize.</summary>
    public static string CacheDirectory
    {
        get
        {
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string root = !string.IsNullOrEmpty(xdg)
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "stylize");
        }
    }

    /// <summary>
    /// Loads the network the options name, with its weights, on <paramref name="device"/>, in the
    /// options' precision (weight normalisation, if asked for, is done in fp32 first) and with the
    /// options' first-convolution padding.
    /// </summary>
    public static IFeatureNetwork Create(StyleTransferOptions options, Device device)
    {
        IFeatureNetwork net = CreateFp32(options, device);
        try
        {
            net.Padding = options.Padding;
            IFeatureNetwork wrapped = MixedPrecisionNetwork.Wrap(net, options.Precision);
            IFeatureNetwork filtered = options.AntiAlias ? new AntiAliasedInput(wrapped) : wrapped;
            return options.ContentLuminance ? new LuminanceTaps(filtered) : filtered;
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The network on the device in float32: its weights found (--weights, else where the network
    /// keeps them) and loaded, then, when asked for, the paper's weight normalisation (VGG-only).
    /// </summary>
    private static IFeatureNetwork CreateFp32(StyleTransferOptions options, Device device)
    {
        NetworkSpec spec = NetworkSpecs.Get(options.Network);
        if (options.NormalizeWeights && spec.NormalizeWeights == null)
        {
            throw StyleTransferException.Named($"{Opt.NormalizeWeights} works with {Opt.Network.Is(NetworkSpecs.Vgg19Spec.Name)} only (it rescales a plain chain of convolutions)");
        }

        string path = spec.Locate(options.WeightsPath)
            ?? throw StyleTransferException.Named(
                $"{spec.Title} weights not found: pass {Opt.WeightsPath.Is("PATH")}, or put torchvision's {spec.WeightsFileName} in one of: {string.Join(", ", WeightLocator.CandidatePaths(spec.WeightsFileName!).Select(Path.GetDirectoryName))}");
        return Prepare(spec.Load(path, options), device, net =>
        {
            if (options.NormalizeWeights)
            {
                spec.NormalizeWeights!(net, path);
            }
        });
    }

    /// <summary>A short description of where the network's weights come from, for the start-up line.</summary>
    public static string Describe(StyleTransferOptions options) =>
        NetworkSpecs.Find(options.Network) is { } spec ? spec.DescribeWeights(options.WeightsPath) : "unknown";

    /// <summary>
    /// Rough working memory of one optimisation step, in bytes, for an output of
    /// <paramref name="pixels"/> pixels: <see cref="NetworkSpec.FloatsPerPixel"/> floats per pixel
    /// (VGG-19's for a network that is not known). Order of magnitude, not a bound.
    /// </summary>
    public static long EstimateWorkingBytes(string network, long pixels) =>
        pixels * (NetworkSpecs.Find(network) ?? NetworkSpecs.Vgg19Spec).FloatsPerPixel * sizeof(float);

    /// <summary>Moves a freshly loaded network to the device, then runs <paramref name="finish"/>; disposes it if either fails.</summary>
    private static T Prepare<T>(T net, Device device, Action<T>? finish = null)
        where T : IFeatureNetwork
    {
        try
        {
            net.MoveTo(device);
            finish?.Invoke(net);
            return net;
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }
}

/// <summary>What `stylize models` prints about one network.</summary>
/// <param name="Name">As given to --network.</param>
/// <param name="Weights">Where the weights are found, or null when they are not.</param>
/// <param name="SearchedFor">What is looked for, and where, when --weights is not given.</param>
/// <param name="Taps">Every tap, in forward order.</param>
internal sealed record NetworkInfo(string Name, string? Weights, string SearchedFor, IReadOnlyList<string> Taps);

/// <summary>A network's default options and the layers that the paper's Figure 1 walks through.</summary>
/// <param name="Defaults">Options with this network's default layers, weights and loss settings.</param>
/// <param name="ContentLadder">Content reconstructions, shallow to deep (the paper: conv1_2 … conv5_2).</param>
/// <param name="StyleLadder">Style reconstructions use the first 1, 2, … of these (the paper: conv1_1 … conv5_1).</param>
internal sealed record NetworkProfile(StyleTransferOptions Defaults, IReadOnlyList<string> ContentLadder, IReadOnlyList<string> StyleLadder);
