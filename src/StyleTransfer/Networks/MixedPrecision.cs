using TorchSharp;
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
/// Runs a network in reduced precision and/or channels-last layout. In reduced precision its weights
/// are converted once (ResNet-18 keeps its input stage, preprocessing and stem convolution, in
/// float32, which took the README example's bf16 loss from +2.6 % to +1.6 % of fp32's), the
/// float32 image is converted where the reduced-precision layers begin (the conversion passes
/// gradients back unchanged), and every tap comes back as float32, so Grams, losses and the
/// optimiser never see the lower precision: what PyTorch's autocast does for convolutions, without
/// the per-call weight casts. Channels-last hands the network an NHWC-strided image; libtorch's
/// oneDNN convolutions keep that layout through the network, which spares them a reorder of every
/// activation in and out of their blocked format (TorchSharp has no memory_format argument; a
/// permute-copy-permute gives the same strides).
/// </summary>
internal sealed class MixedPrecisionNetwork : FeatureNetworkWrapper
{
    /// <summary>Takes ownership of <paramref name="inner"/> and converts its weights to <paramref name="dtype"/>.</summary>
    public MixedPrecisionNetwork(IFeatureNetwork inner, ScalarType dtype, bool channelsLast = false)
        : base(inner)
    {
        DType = dtype;
        ChannelsLast = channelsLast;
        inner.MoveTo(inner.Device, dtype);
    }

    /// <summary>The network's arithmetic type.</summary>
    public ScalarType DType { get; }

    /// <summary>Whether the image goes in NHWC-strided.</summary>
    public bool ChannelsLast { get; }

    /// <summary>The scalar type of a precision.</summary>
    public static ScalarType TypeOf(Precision precision) => precision switch
    {
        Precision.Bf16 => ScalarType.BFloat16,
        Precision.Fp16 => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    /// <summary>
    /// Whether channels-last is used (<see cref="NetworkSpec.ChannelsLastOnCpu"/>): for VGG-19 on the CPU, where it was measured 14 % faster at
    /// 512 px in fp32 and 16 % in bf16; ResNet-18 was measured 12 % slower (its iterations are short
    /// and the extra layout copies count), the other networks and CUDA were not measured and keep
    /// libtorch's default layout (docs/performance.md). STYLIZE_CHANNELS_LAST=0 or 1 overrides.
    /// </summary>
    public static bool PrefersChannelsLast(IFeatureNetwork net) => PrefersChannelsLast(net.Name, net.Device);

    /// <summary>The same rule for a network by name on <paramref name="device"/>.</summary>
    public static bool PrefersChannelsLast(string network, Device device) =>
        Environment.GetEnvironmentVariable("STYLIZE_CHANNELS_LAST") switch
        {
            "0" => false,
            "1" => true,
            _ => device.type == DeviceType.CPU && NetworkSpecs.Find(network)?.ChannelsLastOnCpu == true,
        };

    /// <summary><paramref name="net"/> itself for fp32 in the default layout, else wrapped (and owned).</summary>
    public static IFeatureNetwork Wrap(IFeatureNetwork net, Precision precision) =>
        Wrap(net, precision, PrefersChannelsLast(net));

    /// <summary><paramref name="net"/> itself for fp32 in the default layout, else wrapped (and owned).</summary>
    public static IFeatureNetwork Wrap(IFeatureNetwork net, Precision precision, bool channelsLast) =>
        precision == Precision.Fp32 && !channelsLast ? net : new MixedPrecisionNetwork(net, TypeOf(precision), channelsLast);

    /// <summary>Moves the weights; they keep this wrapper's precision whatever <paramref name="dtype"/> says.</summary>
    public override void MoveTo(Device device, ScalarType? dtype = null) => Inner.MoveTo(device, DType);

    public override Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> taps)
    {
        // The image goes in as float32: each network converts it where its reduced-precision
        // layers begin (ResNet-18 keeps its input stage in float32, the others convert at once).
        Tensor input = image;
        if (ChannelsLast && input.dim() == 4)
        {
            input = TensorLayout.ToChannelsLast(input);
        }

        Dictionary<string, Tensor> feats = Inner.Extract(input, taps);
        foreach (string tap in feats.Keys.ToList())
        {
            // float32 out. The layout is kept: the Gram reads a channels-last map without a copy,
            // and the other losses reshape (copying only where they must).
            feats[tap] = feats[tap].to(ScalarType.Float32);
        }

        return feats;
    }

}
