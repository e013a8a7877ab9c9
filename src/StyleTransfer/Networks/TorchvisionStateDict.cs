using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>
/// Reads a torchvision state dict for a feature network (AlexNet, GoogLeNet, ResNet-50): takes
/// tensors by key with their shapes checked, folds batch norms into the convolutions, and finally
/// refuses keys that belong to neither the network nor a head it skips. Every error is one line
/// naming the file and the first offending tensor. <see cref="Take"/> returns float32 copies in
/// the caller's dispose scope; the <see cref="FoldedConv"/>s are detached from it (the caller owns them).
/// </summary>
internal sealed class TorchvisionStateDict
{
    private readonly IReadOnlyDictionary<string, Tensor> dict;
    private readonly string source;
    private readonly string layout;
    private readonly HashSet<string> used = new(StringComparer.Ordinal);

    /// <param name="dict">The file's tensors.</param>
    /// <param name="source">The file, for messages.</param>
    /// <param name="layout">What was expected, for messages, e.g. "torchvision's ResNet-50 layout, e.g. resnet50-0676ba61.pth".</param>
    public TorchvisionStateDict(IReadOnlyDictionary<string, Tensor> dict, string source, string layout)
    {
        this.dict = dict;
        this.source = source;
        this.layout = layout;
    }

    /// <summary>Whether the file has <paramref name="key"/>.</summary>
    public bool Has(string key) => dict.ContainsKey(key);

    /// <summary>
    /// The tensor <paramref name="key"/> as a float32 copy; <paramref name="shape"/> gives each
    /// dimension or null for any, <paramref name="expected"/> the same for messages (e.g. "[out,3,11,11]").
    /// </summary>
    public Tensor Take(string key, long?[] shape, string expected)
    {
        if (!dict.TryGetValue(key, out Tensor? t))
        {
            throw Error($"weights file '{source}' has no tensor '{key}' (expected {layout})");
        }

        long[] s = t.shape;
        bool fits = s.Length == shape.Length && s.Zip(shape).All(p => p.Second is not { } want ? p.First >= 1 : p.First == want);
        if (!fits)
        {
            throw Error($"weights file '{source}': tensor '{key}' has shape [{string.Join(",", s)}], expected {expected}");
        }

        if (!t.is_floating_point())
        {
            throw Error($"weights file '{source}': tensor '{key}' is not floating point");
        }

        used.Add(key);
        return t.detach().to_type(ScalarType.Float32).clone();
    }

    /// <summary>A convolution weight [out,<paramref name="inChannels"/>,k,k].</summary>
    public Tensor ConvWeight(string key, long inChannels, long kernel) =>
        Take(key, [null, inChannels, kernel, kernel], $"[out,{inChannels},{kernel},{kernel}]");

    /// <summary>A vector of <paramref name="length"/> entries.</summary>
    public Tensor Vector(string key, long length) => Take(key, [length], $"[{length}]");

    /// <summary>
    /// A bias-free convolution <paramref name="conv"/>.weight followed by the eval-mode batch norm
    /// <paramref name="bn"/> (weight, bias, running_mean, running_var; num_batches_tracked optional and
    /// unused), folded into one convolution: W' = W·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε) (the scale and
    /// the bias in float64).
    /// </summary>
    public FoldedConv ConvBn(string conv, string bn, long inChannels, long kernel, double eps)
    {
        using var scope = torch.NewDisposeScope();
        Tensor w = ConvWeight(conv + ".weight", inChannels, kernel);
        if (Has(conv + ".bias"))
        {
            throw Error($"weights file '{source}': unexpected tensor '{conv}.bias' (torchvision's convolutions before a batch norm have no bias; expected {layout})");
        }

        long outChannels = w.shape[0];
        Tensor gamma = Vector(bn + ".weight", outChannels);
        Tensor beta = Vector(bn + ".bias", outChannels);
        Tensor mean = Vector(bn + ".running_mean", outChannels);
        Tensor variance = Vector(bn + ".running_var", outChannels);
        if (!(variance >= 0).all().item<bool>())
        {
            throw Error($"weights file '{source}': tensor '{bn}.running_var' has negative entries");
        }

        used.Add(bn + ".num_batches_tracked");
        Tensor s = gamma.to_type(ScalarType.Float64) / (variance.to_type(ScalarType.Float64) + eps).sqrt();
        Tensor bias = beta.to_type(ScalarType.Float64) - (mean.to_type(ScalarType.Float64) * s);

        // One float32 rounding of W·s, in place on the copy: the weights are the bulk of the file.
        w.mul_(s.to_type(ScalarType.Float32).reshape(-1, 1, 1, 1));
        return new FoldedConv(w.DetachFromDisposeScope(), bias.to_type(ScalarType.Float32).DetachFromDisposeScope());
    }

    /// <summary>A convolution <paramref name="conv"/>.weight [out,in,k,k] with its bias [out].</summary>
    public FoldedConv ConvWithBias(string conv, long inChannels, long kernel)
    {
        using var scope = torch.NewDisposeScope();
        Tensor w = ConvWeight(conv + ".weight", inChannels, kernel);
        Tensor b = Vector(conv + ".bias", w.shape[0]);
        return new FoldedConv(w.DetachFromDisposeScope(), b.DetachFromDisposeScope());
    }

    /// <summary>
    /// Refuses any key that was not taken and does not start with one of <paramref name="skipped"/>
    /// (heads the feature network does not need); the first in ordinal order is named.
    /// </summary>
    public void CheckNothingElse(IReadOnlyList<string> skipped, string hint)
    {
        foreach (string key in dict.Keys.Order(StringComparer.Ordinal))
        {
            if (!used.Contains(key) && !skipped.Any(p => key.StartsWith(p, StringComparison.Ordinal)))
            {
                throw Error($"weights file '{source}': unexpected tensor '{key}' ({hint})");
            }
        }
    }

    private static StyleTransferException Error(string message) => new(message);
}

/// <summary>A convolution with its batch norm (if any) folded in: weight [out,in,kh,kw] and bias [out].</summary>
internal sealed class FoldedConv(Tensor weight, Tensor bias)
{
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
