using StyleTransfer.Formats;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>
/// AlexNet's five convolutions and three max poolings (no fully connected layers), as torchvision
/// has it: the single-tower "one weird trick" variant of Krizhevsky 2014, without local response
/// normalisation (torchvision's weights were trained without it) and with 64, 192, 384, 256, 256
/// filters. Weights follow torchvision's state-dict layout (<c>features.{0,3,6,8,10}.weight|bias</c>,
/// the file <c>alexnet-owt-7be5be79.pth</c>); <c>classifier.*</c> is skipped; the widths are read
/// from the tensors. Pooling is AlexNet's overlapping 3×3, stride 2 max pooling (<c>--pooling</c>
/// is VGG-only). Input: ImageNet mean/std on RGB [0,1].
/// Taps: <c>convK</c> (before ReLU), <c>reluK</c> (after), <c>pool1</c>, <c>pool2</c>, <c>pool5</c>.
/// </summary>
internal sealed class AlexNet : IFeatureNetwork
{
    /// <summary>torchvision's file name for the ImageNet weights.</summary>
    public const string WeightsFileName = "alexnet-owt-7be5be79.pth";

    private const string Layout = "torchvision's AlexNet layout, e.g. " + WeightsFileName;

    /// <summary>Indices of the convolutions in torchvision's <c>features</c> Sequential.</summary>
    private static readonly int[] ConvIndices = [0, 3, 6, 8, 10];
    private static readonly int[] Kernels = [11, 5, 3, 3, 3];
    private static readonly int[] Strides = [4, 1, 1, 1, 1];
    private static readonly int[] Paddings = [2, 2, 1, 1, 1];
    private static readonly bool[] PoolAfter = [true, true, false, false, true];
    private static readonly int[] ImageNetWidths = [64, 192, 384, 256, 256];

    private readonly FoldedConv[] convs;
    private readonly List<string> taps = [];
    private readonly Dictionary<string, int> tapIndex;
    private Tensor mean;
    private Tensor std;

    private AlexNet(FoldedConv[] convs)
    {
        this.convs = convs;
        mean = torch.tensor(NetworkTensors.ImageNetMean, new long[] { 1, 3, 1, 1 }).DetachFromDisposeScope();
        std = torch.tensor(NetworkTensors.ImageNetStd, new long[] { 1, 3, 1, 1 }).DetachFromDisposeScope();
        for (int k = 0; k < convs.Length; k++)
        {
            taps.Add($"conv{k + 1}");
            taps.Add($"relu{k + 1}");
            if (PoolAfter[k])
            {
                taps.Add($"pool{k + 1}");
            }
        }

        tapIndex = taps.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i, StringComparer.Ordinal);
    }

    public string Name => "alexnet";

    public FirstConvPadding Padding { get; set; }

    public IReadOnlyList<string> TapNames => taps;

    public Device Device => convs[0].Weight.device;

    /// <summary>Output channels of each of the five convolutions.</summary>
    public IReadOnlyList<long> Widths => convs.Select(c => c.OutChannels).ToList();

    /// <summary>Loads a torchvision-layout AlexNet state dict from a .pth or .safetensors file.</summary>
    public static AlexNet Load(string path) =>
        StateDictFile.Build(path, dict => FromStateDict(dict, path));

    /// <summary>Builds the network from state-dict tensors (copied), checking the layout; <paramref name="source"/> names the file in errors.</summary>
    public static AlexNet FromStateDict(IReadOnlyDictionary<string, Tensor> dict, string source)
    {
        var reader = new TorchvisionStateDict(dict, source, Layout);
        var convs = new List<FoldedConv>();
        try
        {
            long inChannels = 3;
            for (int k = 0; k < ConvIndices.Length; k++)
            {
                FoldedConv c = new(reader.ConvWithBias($"features.{ConvIndices[k]}", inChannels, Kernels[k]));
                convs.Add(c);
                inChannels = c.OutChannels;
            }

            reader.CheckNothingElse(["classifier."], "not torchvision's AlexNet layout");
            return new AlexNet([.. convs]);
        }
        catch
        {
            convs.ForEach(c => c.Dispose());
            throw;
        }
    }

    /// <summary>A network with random weights (He initialisation, zero bias); <paramref name="widthDivisor"/> narrows every layer.</summary>
    public static AlexNet CreateRandom(int widthDivisor = 1, long seed = 0)
    {
        using var gen = new Generator((ulong)seed);
        var convs = new FoldedConv[ImageNetWidths.Length];
        long inChannels = 3;
        for (int k = 0; k < convs.Length; k++)
        {
            convs[k] = FoldedConv.Random(Math.Max(1, ImageNetWidths[k] / widthDivisor), inChannels, Kernels[k], gen);
            inChannels = convs[k].OutChannels;
        }

        return new AlexNet(convs);
    }

    public void MoveTo(Device device, ScalarType? dtype = null)
    {
        foreach (FoldedConv c in convs)
        {
            c.MoveTo(device, dtype);
        }

        mean = NetworkTensors.Move(mean, device, dtype);
        std = NetworkTensors.Move(std, device, dtype);
    }

    public Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> requested)
    {
        int deepest = NetworkTensors.Deepest(requested, tapIndex, Name, taps);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Tensor x = (image.to(mean.dtype) - mean) / std;
        int next = 0;
        for (int k = 0; k < convs.Length && next <= deepest; k++)
        {
            string conv = taps[next];
            NetworkTensors.RequireFits(x, Kernels[k], Paddings[k], Name, conv);
            x = k == 0 ? FirstConv(convs[0], x, Padding) : convs[k].Apply(x, Strides[k], Paddings[k]);
            bool keepConv = Keep(requested, result, taps[next++], x);

            // In place when the pre-activation is not a tap: saves one activation per layer.
            x = F.relu(x, inplace: !keepConv);
            Keep(requested, result, taps[next++], x);
            if (PoolAfter[k] && next <= deepest)
            {
                NetworkTensors.RequireFits(x, 3, 0, Name, taps[next]);
                x = MaxPooling.Pool2d(x, [3, 3], [2, 2], [0, 0]);
                Keep(requested, result, taps[next++], x);
            }
        }

        return result;
    }

    /// <summary>
    /// AlexNet's first layer (11×11, stride 4, padding 2) as unfold (im2col) and a matrix product
    /// instead of a convolution: oneDNN 3.7's jit:avx512_core backward_data kernel for this shape
    /// (3 input channels, 11×11, stride 4) gives a wrong input gradient on AMD Zen 4, and the
    /// gradient of unfold is ATen's own col2im. Same function as <see cref="FoldedConv.Apply(Tensor, long, long, FirstConvPadding)"/>.
    /// </summary>
    internal static Tensor FirstConv(FoldedConv conv, Tensor x, FirstConvPadding mode)
    {
        long kernel = Kernels[0], stride = Strides[0], padding = Paddings[0];
        return UnfoldConv(conv.Weight, conv.Bias, x, kernel, stride, padding, mode);
    }

    /// <summary>A convolution [out,in,k,k] with bias as unfold + matmul; <paramref name="mode"/> fills the padding.</summary>
    internal static Tensor UnfoldConv(Tensor weight, Tensor bias, Tensor x, long kernel, long stride, long padding, FirstConvPadding mode)
    {
        using var scope = torch.NewDisposeScope();
        Tensor padded = mode == FirstConvPadding.Replicate && padding > 0
            ? NetworkTensors.Pad(x, padding, padding, padding, padding, mode)
            : x;
        long p = mode == FirstConvPadding.Replicate ? 0 : padding;
        long n = x.shape[0];
        long outH = ((x.shape[2] + (2 * padding) - kernel) / stride) + 1;
        long outW = ((x.shape[3] + (2 * padding) - kernel) / stride) + 1;
        Tensor columns = F.unfold(padded, kernel_size: (kernel, kernel), padding: (p, p), stride: (stride, stride)); // [N, in·k·k, L]
        Tensor y = torch.matmul(weight.reshape(weight.shape[0], -1), columns).add_(bias.reshape(1, -1, 1));
        return ConvHook.Conv(y.reshape(n, weight.shape[0], outH, outW), weight).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (FoldedConv c in convs)
        {
            c.Dispose();
        }

        mean.Dispose();
        std.Dispose();
    }

    private static bool Keep(IReadOnlyCollection<string> requested, Dictionary<string, Tensor> result, string name, Tensor x)
    {
        if (!requested.Contains(name))
        {
            return false;
        }

        result[name] = x;
        return true;
    }
}
