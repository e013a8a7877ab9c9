using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>Arithmetic precision of the feature network's convolutions.</summary>
public enum Precision
{
    /// <summary>float32 throughout.</summary>
    Fp32,

    /// <summary>bfloat16 weights and activations; Grams, losses and the optimiser stay in float32/float64.</summary>
    Bf16,

    /// <summary>float16 weights and activations (CUDA); Grams, losses and the optimiser stay in float32/float64.</summary>
    Fp16,
}

/// <summary>
/// Runs a network in reduced precision: its weights are converted once, the image is converted on
/// the way in (the conversion passes gradients back to the float32 pixels unchanged), and every tap
/// comes back as float32, so Grams, losses and the optimiser never see the lower precision. This is
/// what PyTorch's autocast does for convolutions, without the per-call weight casts.
/// </summary>
public sealed class MixedPrecisionNetwork : IFeatureNetwork
{
    private readonly IFeatureNetwork inner;

    /// <summary>Takes ownership of <paramref name="inner"/> and converts its weights to <paramref name="dtype"/>.</summary>
    public MixedPrecisionNetwork(IFeatureNetwork inner, ScalarType dtype)
    {
        this.inner = inner;
        DType = dtype;
        inner.MoveTo(inner.Device, dtype);
    }

    /// <summary>The network's arithmetic type.</summary>
    public ScalarType DType { get; }

    public string Name => inner.Name;

    public IReadOnlyList<string> TapNames => inner.TapNames;

    public Device Device => inner.Device;

    /// <summary>The scalar type of a precision.</summary>
    public static ScalarType TypeOf(Precision precision) => precision switch
    {
        Precision.Bf16 => ScalarType.BFloat16,
        Precision.Fp16 => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    /// <summary><paramref name="net"/> itself for fp32, else wrapped (and owned).</summary>
    public static IFeatureNetwork Wrap(IFeatureNetwork net, Precision precision) =>
        precision == Precision.Fp32 ? net : new MixedPrecisionNetwork(net, TypeOf(precision));

    /// <summary>Moves the weights; they keep this wrapper's precision whatever <paramref name="dtype"/> says.</summary>
    public void MoveTo(Device device, ScalarType? dtype = null) => inner.MoveTo(device, DType);

    public Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> taps)
    {
        Dictionary<string, Tensor> feats = inner.Extract(image.to(DType), taps);
        foreach (string tap in feats.Keys.ToList())
        {
            feats[tap] = feats[tap].to(ScalarType.Float32);
        }

        return feats;
    }

    public void Dispose() => inner.Dispose();
}
