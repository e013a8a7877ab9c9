using StyleTransfer.Formats;
using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>Turns a network name and options into a ready <see cref="IFeatureNetwork"/> on a device.</summary>
public static class NetworkFactory
{
    /// <summary>Networks that --network accepts.</summary>
    public static readonly IReadOnlyList<string> Names = ["vgg19", "resnet18", "alexnet", "googlenet", "resnet50"];

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
            foreach (string name in (string[])["alexnet", "googlenet", "resnet50"])
            {
                if (file.StartsWith(name, StringComparison.OrdinalIgnoreCase))
                {
                    return name;
                }
            }

            return weightsPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? "resnet18" : "vgg19";
        }

        return WeightLocator.Find(null, Vgg19.WeightsFileName) != null ? "vgg19" : "resnet18";
    }

    /// <summary>
    /// Options whose layers, weights and loss settings are this network's defaults. For VGG-19 they
    /// are the paper's; for ResNet-18 they were chosen by side-by-side comparison (docs/resnet18.md).
    /// </summary>
    public static StyleTransferOptions DefaultOptions(string network) => Profile(network).Defaults;

    /// <summary>A network's defaults (<see cref="NetworkDefaults"/>) and the layer ladders that the paper's Figure 1 walks.</summary>
    internal static NetworkProfile Profile(string network) => network switch
    {
        "vgg19" => new NetworkProfile(
            new StyleTransferOptions { Network = "vgg19" },
            ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"],
            ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]),
        "resnet18" => Ladder("resnet18", ["relu1", "layer1_1", "layer2_1", "layer3_1", "layer4_2"]),
        "alexnet" => Ladder("alexnet", ["relu1", "relu2", "relu3", "relu4", "relu5"]),
        "googlenet" => Ladder("googlenet", ["conv1", "conv3", "inception3b", "inception4e", "inception5b"]),
        "resnet50" => Ladder("resnet50", ["relu1", "layer1_2", "layer2_3", "layer3_5", "layer4_2"]),
        _ => throw new StyleTransferException($"unknown network '{network}' (known: {string.Join(", ", Names)})"),
    };

    // Measured: growth of the process peak over targets and one L-BFGS iteration with the default
    // layers at 512² (full-width random weights), per pixel; ResNet-18 measured 317 the same way.
    private const long AlexNetFloatsPerPixel = 120;
    private const long GoogLeNetFloatsPerPixel = 550;
    private const long ResNet50FloatsPerPixel = 900;

    /// <summary>A network's defaults with one ladder for both Figure 1 walks.</summary>
    private static NetworkProfile Ladder(string network, IReadOnlyList<string> ladder) =>
        new(new StyleTransferOptions { Network = network }, ladder, ladder);

    /// <summary>
    /// Each network, where its weights are looked for and whether they were found, and its taps
    /// (read from a small random instance of the same layout, or the bundled ONNX graph).
    /// </summary>
    internal static IReadOnlyList<NetworkInfo> Describe()
    {
        var list = new List<NetworkInfo>();
        foreach (string name in Names)
        {
            string? file = name switch
            {
                "vgg19" => Vgg19.WeightsFileName,
                "alexnet" => AlexNet.WeightsFileName,
                "googlenet" => GoogLeNet.WeightsFileName,
                "resnet50" => ResNet50.WeightsFileName,
                _ => null,
            };
            string? found;
            string searched;
            IFeatureNetwork probe;
            if (file == null)
            {
                (string model, string preprocess) = ResNet18.ResolvePaths(null);
                found = File.Exists(model) ? model : null;
                searched = $"bundled {model} (from NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18)";
                probe = ResNet18.Load(model, preprocess);
            }
            else
            {
                found = WeightLocator.Find(null, file);
                searched = $"--weights, else {file} in {string.Join(", ", WeightLocator.CandidatePaths(file).Select(Path.GetDirectoryName))}";
                probe = name switch
                {
                    "vgg19" => Vgg19.CreateRandom(PoolingMode.Avg, widthDivisor: 16),
                    "alexnet" => AlexNet.CreateRandom(widthDivisor: 16),
                    "googlenet" => GoogLeNet.CreateRandom(widthDivisor: 16),
                    _ => ResNet50.CreateRandom(widthDivisor: 16),
                };
            }

            using (probe)
            {
                list.Add(new NetworkInfo(name, found, searched, [.. probe.TapNames]));
            }
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
            return options.AntiAlias ? new AntiAliasedInput(wrapped) : wrapped;
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    private static IFeatureNetwork CreateFp32(StyleTransferOptions options, Device device)
    {
        switch (options.Network)
        {
            case "vgg19":
                string path = WeightLocator.Find(options.WeightsPath, Vgg19.WeightsFileName)
                    ?? throw StyleTransferException.Named(
                        $"VGG-19 weights not found: pass {Opt.WeightsPath.Is("PATH")}, or put torchvision's {Vgg19.WeightsFileName} in one of: {string.Join(", ", WeightLocator.CandidatePaths(Vgg19.WeightsFileName).Select(Path.GetDirectoryName))}");
                return Prepare(Vgg19.Load(path, options.Pooling), device, vgg =>
                {
                    if (options.NormalizeWeights)
                    {
                        WeightNormalization.Apply(vgg, path, CacheDirectory);
                    }
                });

            case "resnet18":
                return CreateResNet18(options, device);

            case "alexnet":
                return CreateTorchvision(options, device, "AlexNet", AlexNet.WeightsFileName, AlexNet.Load);

            case "googlenet":
                return CreateTorchvision(options, device, "GoogLeNet", GoogLeNet.WeightsFileName, GoogLeNet.Load);

            case "resnet50":
                return CreateTorchvision(options, device, "ResNet-50", ResNet50.WeightsFileName, ResNet50.Load);

            default:
                throw new StyleTransferException($"unknown network '{options.Network}' (known: {string.Join(", ", Names)})");
        }
    }

    /// <summary>A short description of where the network's weights come from, for the start-up line.</summary>
    public static string Describe(StyleTransferOptions options) => options.Network switch
    {
        "vgg19" => WeightLocator.Find(options.WeightsPath, Vgg19.WeightsFileName) is { } p ? $"weights {p}" : "weights not found",
        "resnet18" => ResNet18.Describe(options.WeightsPath),
        "alexnet" => DescribeTorchvision(options, AlexNet.WeightsFileName),
        "googlenet" => DescribeTorchvision(options, GoogLeNet.WeightsFileName),
        "resnet50" => DescribeTorchvision(options, ResNet50.WeightsFileName),
        _ => "unknown",
    };

    /// <summary>
    /// Rough working memory of one optimisation step, in bytes, for an output of
    /// <paramref name="pixels"/> pixels: VGG-19 keeps about 900 floats of activations and
    /// gradients per input pixel up to relu5_1; ResNet-18 about 200 up to layer4 (process peak over
    /// a forward and backward pass with five Gram layers: 132 floats at 512², 162 at 1024², where
    /// VGG-19 measured 760); AlexNet, GoogLeNet and ResNet-50 120, 550 and 900 up to their deepest
    /// default style layer. Order of magnitude, not a bound.
    /// </summary>
    public static long EstimateWorkingBytes(string network, long pixels) => network switch
    {
        "resnet18" => pixels * 200L * sizeof(float),
        "alexnet" => pixels * AlexNetFloatsPerPixel * sizeof(float),
        "googlenet" => pixels * GoogLeNetFloatsPerPixel * sizeof(float),
        "resnet50" => pixels * ResNet50FloatsPerPixel * sizeof(float),
        _ => pixels * 900L * sizeof(float),
    };

    /// <summary>
    /// A torchvision network whose weights are found like VGG-19's (--weights, then the PyTorch hub
    /// cache); the paper's weight normalisation is VGG-only.
    /// </summary>
    private static IFeatureNetwork CreateTorchvision(StyleTransferOptions options, Device device, string title, string fileName, Func<string, IFeatureNetwork> load)
    {
        if (options.NormalizeWeights)
        {
            throw StyleTransferException.Named($"{Opt.NormalizeWeights} works with {Opt.Network.Is("vgg19")} only (it rescales a plain chain of convolutions)");
        }

        string path = WeightLocator.Find(options.WeightsPath, fileName)
            ?? throw StyleTransferException.Named(
                $"{title} weights not found: pass {Opt.WeightsPath.Is("PATH")}, or put torchvision's {fileName} in one of: {string.Join(", ", WeightLocator.CandidatePaths(fileName).Select(Path.GetDirectoryName))}");
        return Prepare(load(path), device);
    }

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

    private static string DescribeTorchvision(StyleTransferOptions options, string fileName) =>
        WeightLocator.Find(options.WeightsPath, fileName) is { } p ? $"weights {p}" : "weights not found";

    /// <summary>The bundled (or --weights) ResNet-18 ONNX graph; the paper's weight normalisation is VGG-only.</summary>
    private static ResNet18 CreateResNet18(StyleTransferOptions options, Device device)
    {
        if (options.NormalizeWeights)
        {
            throw StyleTransferException.Named($"{Opt.NormalizeWeights} works with {Opt.Network.Is("vgg19")} only (it rescales a plain chain of convolutions)");
        }

        (string model, string preprocess) = ResNet18.ResolvePaths(options.WeightsPath);
        return Prepare(ResNet18.Load(model, preprocess), device);
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
