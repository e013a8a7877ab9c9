using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>Turns a network name and options into a ready <see cref="IFeatureNetwork"/> on a device.</summary>
public static class NetworkFactory
{
    /// <summary>Networks that --network accepts.</summary>
    public static readonly IReadOnlyList<string> Names = ["vgg19", "resnet18"];

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

    /// <summary>Loads the network the options name, with its weights, on <paramref name="device"/>.</summary>
    public static IFeatureNetwork Create(StyleTransferOptions options, Device device)
    {
        switch (options.Network)
        {
            case "vgg19":
                string path = WeightLocator.Find(options.WeightsPath, Vgg19.WeightsFileName)
                    ?? throw new StyleTransferException(
                        $"VGG-19 weights not found: pass --weights PATH, or put torchvision's {Vgg19.WeightsFileName} in one of: {string.Join(", ", WeightLocator.CandidatePaths(Vgg19.WeightsFileName).Select(Path.GetDirectoryName))}");
                Vgg19 vgg = Vgg19.Load(path, options.Pooling);
                try
                {
                    vgg.MoveTo(device);
                    if (options.NormalizeWeights)
                    {
                        WeightNormalization.Apply(vgg, path, CacheDirectory);
                    }

                    return vgg;
                }
                catch
                {
                    vgg.Dispose();
                    throw;
                }

            case "resnet18":
                return CreateResNet18(options, device);

            default:
                throw new StyleTransferException($"unknown network '{options.Network}' (known: {string.Join(", ", Names)})");
        }
    }

    /// <summary>A short description of where the network's weights come from, for the start-up line.</summary>
    public static string Describe(StyleTransferOptions options) => options.Network switch
    {
        "vgg19" => WeightLocator.Find(options.WeightsPath, Vgg19.WeightsFileName) is { } p ? $"weights {p}" : "weights not found",
        "resnet18" => ResNet18.Describe(options.WeightsPath),
        _ => "unknown",
    };

    /// <summary>
    /// Rough working memory of one optimisation step, in bytes, for an output of
    /// <paramref name="pixels"/> pixels: VGG-19 keeps about 900 floats of activations and
    /// gradients per input pixel up to relu5_1; ResNet-18 about 200 up to layer4 (process peak over
    /// a forward and backward pass with five Gram layers: 132 floats at 512², 162 at 1024², where
    /// VGG-19 measured 760). Order of magnitude, not a bound.
    /// </summary>
    public static long EstimateWorkingBytes(string network, long pixels) => network switch
    {
        "resnet18" => pixels * 200L * sizeof(float),
        _ => pixels * 900L * sizeof(float),
    };

    /// <summary>The bundled (or --weights) ResNet-18 ONNX graph; the paper's weight normalisation is VGG-only.</summary>
    private static ResNet18 CreateResNet18(StyleTransferOptions options, Device device)
    {
        if (options.NormalizeWeights)
        {
            throw new StyleTransferException("--normalize-weights works with --network vgg19 only (it rescales a plain chain of convolutions)");
        }

        (string model, string preprocess) = ResNet18.ResolvePaths(options.WeightsPath);
        ResNet18 net = ResNet18.Load(model, preprocess);
        try
        {
            net.MoveTo(device);
            return net;
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }
}
