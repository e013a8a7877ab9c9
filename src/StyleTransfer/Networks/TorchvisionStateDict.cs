using StyleTransfer.Formats;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>A convolution with its batch norm (if any) folded in: weight [out,in,kh,kw] and bias [out].</summary>
internal sealed class FoldedConv(Tensor weight, Tensor bias)
{
    /// <summary>The convolution of weights read from a file (it takes ownership of them).</summary>
    public FoldedConv(ConvWeights read)
        : this(read.Weight, read.Bias)
    {
    }

    public Tensor Weight { get; private set; } = weight;

    public Tensor Bias { get; private set; } = bias;

    public long OutChannels => Weight.shape[0];

    public long Kernel => Weight.shape[2];

    public Tensor Apply(Tensor x, long stride = 1, long padding = 0) =>
        ConvHook.Conv(F.conv2d(x, Weight, Bias, strides: [stride, stride], padding: [padding, padding]), Weight);

    /// <summary>The convolution with <paramref name="padding"/> filled as <paramref name="mode"/> says (replicate: the edge pixels repeated).</summary>
    public Tensor Apply(Tensor x, long stride, long padding, FirstConvPadding mode) => mode == FirstConvPadding.Replicate && padding > 0
        ? ConvHook.Conv(F.conv2d(NetworkTensors.Pad(x, padding, padding, padding, padding, mode), Weight, Bias, strides: [stride, stride]), Weight)
        : Apply(x, stride, padding);

    public void MoveTo(Device device, ScalarType? dtype = null)
    {
        Weight = NetworkTensors.Move(Weight, device, dtype);
        Bias = NetworkTensors.Move(Bias, device, dtype);
    }

    public void Dispose()
    {
        Weight.Dispose();
        Bias.Dispose();
    }

    /// <summary>Random weights (He initialisation, fan in) and zero bias, for full-size tests and benchmarks.</summary>
    public static FoldedConv Random(long outChannels, long inChannels, long kernel, Generator gen)
    {
        double stdev = Math.Sqrt(2.0 / (inChannels * kernel * kernel));
        return new FoldedConv(
            torch.randn(new[] { outChannels, inChannels, kernel, kernel }, generator: gen).mul_(stdev).DetachFromDisposeScope(),
            torch.zeros(outChannels).DetachFromDisposeScope());
    }

    /// <summary>Several convolutions that read the same input, as one (their outputs concatenated).</summary>
    public static FoldedConv Concat(IReadOnlyList<FoldedConv> convs) => new(
        torch.cat(convs.Select(c => c.Weight).ToList(), 0).DetachFromDisposeScope(),
        torch.cat(convs.Select(c => c.Bias).ToList(), 0).DetachFromDisposeScope());
}

/// <summary>Small helpers shared by the torchvision feature networks.</summary>
internal static class NetworkTensors
{
    public static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];
    public static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];

    /// <summary>
    /// Moves <paramref name="t"/> to <paramref name="device"/> and, if it is floating point and
    /// <paramref name="dtype"/> is given, converts it; disposes the old copy when a new one is made.
    /// </summary>
    public static Tensor Move(Tensor t, Device device, ScalarType? dtype = null)
    {
        ScalarType target = dtype is { } d && t.is_floating_point() ? d : t.dtype;
        if (t.device == device && t.dtype == target)
        {
            return t;
        }

        Tensor moved = t.to(target, device).DetachFromDisposeScope();
        t.Dispose();
        return moved;
    }

    /// <summary>Checks the requested taps and returns the index of the deepest (−1 for none).</summary>
    public static int Deepest(IReadOnlyCollection<string> requested, IReadOnlyDictionary<string, int> index, string network, IReadOnlyList<string> taps)
    {
        int deepest = -1;
        foreach (string tap in requested)
        {
            if (!index.TryGetValue(tap, out int i))
            {
                throw new StyleTransferException($"unknown layer '{tap}' for {network} (known: {string.Join(", ", taps)})");
            }

            deepest = Math.Max(deepest, i);
        }

        return deepest;
    }

    /// <summary>Pads [left, right, top, bottom] with zeros or by repeating the edge pixels.</summary>
    public static Tensor Pad(Tensor x, long left, long right, long top, long bottom, FirstConvPadding mode) =>
        F.pad(x, [left, right, top, bottom], mode == FirstConvPadding.Replicate ? PaddingModes.Replicate : PaddingModes.Constant);

    /// <summary>Throws a one-line error when a window of <paramref name="kernel"/> (with <paramref name="padding"/>) does not fit <paramref name="x"/>.</summary>
    public static void RequireFits(Tensor x, long kernel, long padding, string network, string layer)
    {
        if (x.shape[2] + (2 * padding) < kernel || x.shape[3] + (2 * padding) < kernel)
        {
            throw new StyleTransferException(
                $"{network}: a feature map of {x.shape[3]}×{x.shape[2]} is too small for the {kernel}×{kernel} window of {layer}; use a larger image or a shallower layer");
        }
    }
}
