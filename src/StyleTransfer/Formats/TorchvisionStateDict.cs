using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Formats;

/// <summary>
/// Reads a torchvision state dict for a feature network (AlexNet, GoogLeNet, ResNet-50): takes
/// tensors by key with their shapes checked, folds batch norms into the convolutions, and finally
/// refuses keys that belong to neither the network nor a head it skips. Every error is one line
/// naming the file and the first offending tensor. <see cref="Take"/> returns float32 copies in
/// the caller's dispose scope; the <see cref="ConvWeights"/> are detached from it (the caller owns them).
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
    public ConvWeights ConvBn(string conv, string bn, long inChannels, long kernel, double eps)
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
        return new ConvWeights(w.DetachFromDisposeScope(), bias.to_type(ScalarType.Float32).DetachFromDisposeScope());
    }

    /// <summary>A convolution <paramref name="conv"/>.weight [out,in,k,k] with its bias [out].</summary>
    public ConvWeights ConvWithBias(string conv, long inChannels, long kernel)
    {
        using var scope = torch.NewDisposeScope();
        Tensor w = ConvWeight(conv + ".weight", inChannels, kernel);
        Tensor b = Vector(conv + ".bias", w.shape[0]);
        return new ConvWeights(w.DetachFromDisposeScope(), b.DetachFromDisposeScope());
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

/// <summary>A convolution's weight [out,in,kh,kw] and bias [out], as read (batch norm folded in, if any).</summary>
internal readonly record struct ConvWeights(Tensor Weight, Tensor Bias);
