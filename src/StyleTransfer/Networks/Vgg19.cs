using StyleTransfer.Formats;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>
/// VGG-19's 16 convolutional and 5 pooling layers (no fully connected layers), as in Gatys et al.
/// Weights follow torchvision's state-dict layout (<c>features.N.weight|bias</c>); channel widths
/// are read from the tensors, so a narrow network of the same layout loads through the same code.
/// Taps: <c>convB_K</c> (before ReLU), <c>reluB_K</c> (after) and <c>poolB</c>. In the paper's Caffe
/// model the ReLUs work in place, so its "conv4_2" is the rectified response, <c>relu4_2</c> here.
/// </summary>
internal sealed class Vgg19 : IFeatureNetwork, ISequentialConvNet
{
    /// <summary>torchvision's file name for the ImageNet weights.</summary>
    public const string WeightsFileName = "vgg19-dcbb9e9d.pth";

    /// <summary>Indices of the convolutions in torchvision's <c>features</c> Sequential.</summary>
    internal static readonly int[] ConvIndices = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34];

    private static readonly int[] BlockSizes = [2, 2, 4, 4, 4];
    private static readonly int[] ImageNetWidths = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512];
    private static readonly float[] Mean = [0.485f, 0.456f, 0.406f];
    private static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    private readonly Tensor[] weights;
    private readonly Tensor[] biases;
    private readonly List<string> taps;
    private Tensor mean;
    private Tensor std;

    private Vgg19(Tensor[] weights, Tensor[] biases, PoolingMode pooling)
    {
        this.weights = weights;
        this.biases = biases;
        Pooling = pooling;
        mean = torch.tensor(Mean, new long[] { 1, 3, 1, 1 });
        std = torch.tensor(Std, new long[] { 1, 3, 1, 1 });
        taps = [];
        for (int b = 0; b < BlockSizes.Length; b++)
        {
            for (int k = 0; k < BlockSizes[b]; k++)
            {
                taps.Add($"conv{b + 1}_{k + 1}");
                taps.Add($"relu{b + 1}_{k + 1}");
            }

            taps.Add($"pool{b + 1}");
        }
    }

    public string Name => "vgg19";

    /// <summary>
    /// The convolutions at ImageNet widths, in order: name, input and output channels, and whether
    /// a 2×2 pooling comes before it (for <c>ConvProfile</c> in the diagnostics assembly).
    /// </summary>
    internal static IEnumerable<(string Name, long In, long Out, bool PoolBefore)> ConvLayers()
    {
        long inChannels = 3;
        int n = 0;
        for (int b = 0; b < BlockSizes.Length; b++)
        {
            for (int k = 0; k < BlockSizes[b]; k++, n++)
            {
                yield return ($"conv{b + 1}_{k + 1}", inChannels, ImageNetWidths[n], b > 0 && k == 0);
                inChannels = ImageNetWidths[n];
            }
        }
    }

    public PoolingMode Pooling { get; }

    public FirstConvPadding Padding { get; set; }

    public IReadOnlyList<string> TapNames => taps;

    public Device Device => weights[0].device;

    /// <summary>Output channels of each of the 16 convolutions.</summary>
    public IReadOnlyList<long> Widths => weights.Select(w => w.shape[0]).ToList();

    int ISequentialConvNet.ConvCount => weights.Length;

    /// <summary>Loads a torchvision-layout VGG-19 state dict from a .pth or .safetensors file.</summary>
    public static Vgg19 Load(string path, PoolingMode pooling) =>
        StateDictFile.Build(path, dict => FromStateDict(dict, path, pooling));

    /// <summary>Builds the network from state-dict tensors (copied), checking the layout; <paramref name="source"/> names the file in errors.</summary>
    public static Vgg19 FromStateDict(IReadOnlyDictionary<string, Tensor> dict, string source, PoolingMode pooling)
    {
        var expected = new HashSet<string>(StringComparer.Ordinal);
        foreach (int i in ConvIndices)
        {
            expected.Add($"features.{i}.weight");
            expected.Add($"features.{i}.bias");
        }

        foreach (string key in dict.Keys.Order(StringComparer.Ordinal))
        {
            if (key.StartsWith("features.", StringComparison.Ordinal) && !expected.Contains(key))
            {
                throw new StyleTransferException($"weights file '{source}': unexpected tensor '{key}' (not torchvision's VGG-19 layout; is it another VGG?)");
            }
        }

        var w = new Tensor[ConvIndices.Length];
        var b = new Tensor[ConvIndices.Length];
        long inChannels = 3;
        for (int n = 0; n < ConvIndices.Length; n++)
        {
            string wKey = $"features.{ConvIndices[n]}.weight", bKey = $"features.{ConvIndices[n]}.bias";
            if (!dict.TryGetValue(wKey, out Tensor? wt))
            {
                throw new StyleTransferException($"weights file '{source}' has no tensor '{wKey}' (expected torchvision's VGG-19 layout, e.g. {WeightsFileName})");
            }

            if (!dict.TryGetValue(bKey, out Tensor? bt))
            {
                throw new StyleTransferException($"weights file '{source}' has no tensor '{bKey}' (expected torchvision's VGG-19 layout, e.g. {WeightsFileName})");
            }

            long[] ws = wt.shape;
            if (ws.Length != 4 || ws[1] != inChannels || ws[2] != 3 || ws[3] != 3 || ws[0] < 1)
            {
                throw new StyleTransferException($"weights file '{source}': tensor '{wKey}' has shape [{string.Join(",", ws)}], expected [out,{inChannels},3,3]");
            }

            if (bt.shape.Length != 1 || bt.shape[0] != ws[0])
            {
                throw new StyleTransferException($"weights file '{source}': tensor '{bKey}' has shape [{string.Join(",", bt.shape)}], expected [{ws[0]}]");
            }

            if (!wt.is_floating_point() || !bt.is_floating_point())
            {
                throw new StyleTransferException($"weights file '{source}': tensor '{wKey}' is not floating point");
            }

            w[n] = wt.detach().to_type(ScalarType.Float32).clone();
            b[n] = bt.detach().to_type(ScalarType.Float32).clone();
            inChannels = ws[0];
        }

        return new Vgg19(w, b, pooling);
    }

    /// <summary>
    /// A network with random weights (He initialisation, zero bias), for benchmarks and tests.
    /// <paramref name="widthDivisor"/> narrows every layer (16 gives the test fixture's widths).
    /// </summary>
    public static Vgg19 CreateRandom(PoolingMode pooling, int widthDivisor = 1, long seed = 0)
    {
        using var gen = new Generator((ulong)seed);
        var w = new Tensor[ConvIndices.Length];
        var b = new Tensor[ConvIndices.Length];
        long inChannels = 3;
        for (int n = 0; n < ConvIndices.Length; n++)
        {
            long outChannels = Math.Max(1, ImageNetWidths[n] / widthDivisor);
            double stdev = Math.Sqrt(2.0 / (outChannels * 9));
            w[n] = torch.randn(new[] { outChannels, inChannels, 3, 3 }, generator: gen).mul_(stdev);
            b[n] = torch.zeros(outChannels);
            inChannels = outChannels;
        }

        return new Vgg19(w, b, pooling);
    }

    public void MoveTo(Device device, ScalarType? dtype = null)
    {
        for (int i = 0; i < weights.Length; i++)
        {
            weights[i] = NetworkTensors.Move(weights[i], device, dtype);
            biases[i] = NetworkTensors.Move(biases[i], device, dtype);
        }

        mean = NetworkTensors.Move(mean, device, dtype);
        std = NetworkTensors.Move(std, device, dtype);
    }

    public Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> requested)
    {
        int deepest = -1;
        foreach (string tap in requested)
        {
            int index = taps.IndexOf(tap);
            if (index < 0)
            {
                throw new StyleTransferException($"unknown layer '{tap}' for vgg19 (known: conv1_1 … conv5_4, relu1_1 … relu5_4, pool1 … pool5)");
            }

            deepest = Math.Max(deepest, index);
        }

        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Tensor x = (image.to(mean.dtype) - mean) / std;
        int tapIndex = 0, conv = 0;
        for (int block = 0; block < BlockSizes.Length && tapIndex <= deepest; block++)
        {
            for (int k = 0; k < BlockSizes[block] && tapIndex <= deepest; k++, conv++)
            {
                x = ConvHook.Conv(
                    conv == 0 && Padding == FirstConvPadding.Replicate
                        ? F.conv2d(NetworkTensors.Pad(x, 1, 1, 1, 1, Padding), weights[conv], biases[conv])
                        : F.conv2d(x, weights[conv], biases[conv], padding: [1, 1]),
                    weights[conv]);
                bool keepConv = Keep(requested, result, taps[tapIndex++], x);

                // In place when the pre-activation is not a tap: saves one activation per layer.
                x = F.relu(x, inplace: !keepConv);
                Keep(requested, result, taps[tapIndex++], x);
            }

            if (tapIndex <= deepest)
            {
                x = Pool(x);
                Keep(requested, result, taps[tapIndex++], x);
            }
        }

        return result;
    }

    public void Dispose()
    {
        foreach (Tensor t in weights.Concat(biases))
        {
            t.Dispose();
        }

        mean.Dispose();
        std.Dispose();
    }

    /// <summary>Preprocesses and runs up to and including the ReLU after convolution <paramref name="index"/>.</summary>
    Tensor ISequentialConvNet.ActivationAfterConv(Tensor image, int index)
    {
        int block = 0, k = 0;
        for (int n = 0; n < index; n++)
        {
            if (++k == BlockSizes[block])
            {
                block++;
                k = 0;
            }
        }

        return Extract(image, [$"relu{block + 1}_{k + 1}"]).Values.Single();
    }

    (Tensor Weight, Tensor Bias) ISequentialConvNet.Conv(int index) => (weights[index], biases[index]);

    private static bool Keep(IReadOnlyCollection<string> requested, Dictionary<string, Tensor> result, string name, Tensor x)
    {
        if (!requested.Contains(name))
        {
            return false;
        }

        result[name] = x;
        return true;
    }

    private Tensor Pool(Tensor x) => Pooling == PoolingMode.Avg
        ? F.avg_pool2d(x, kernel_size: 2, stride: 2)
        : MaxPooling.Pool2d(x, [2, 2], [2, 2], [0, 0]);
}
