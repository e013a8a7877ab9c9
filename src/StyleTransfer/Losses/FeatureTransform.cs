using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Losses;

/// <summary>A transformation applied to feature maps before any loss sees them.</summary>
public enum FeatureTransformKind
{
    /// <summary>Features as the network gives them (the paper).</summary>
    None,

    /// <summary>
    /// Wang et al., CVPR 2021 ("Rethinking and Improving the Robustness of Image Style
    /// Transfer", SWAG): a softmax over all entries of each layer's map, exp(F/T) / Σ exp(F/T).
    /// It evens out the peaky activations of residual networks that otherwise make their Gram
    /// matrices dominated by a few channels.
    /// </summary>
    Softmax,
}

/// <summary>Applies a <see cref="FeatureTransformKind"/> to a [1,C,H,W] feature map.</summary>
internal static class FeatureTransform
{
    public static Tensor Apply(Tensor features, FeatureTransformKind kind, double temperature)
    {
        if (kind == FeatureTransformKind.None)
        {
            return features;
        }

        // Scaled by the entry count so values stay near 1 whatever the layer's size: the Gram and
        // content losses then keep magnitudes comparable to untransformed features.
        //
        // Written out rather than softmax(): a softmax over one row of millions of entries runs on
        // one thread (CPU) or one thread block (CUDA), which made it the slowest step of a
        // ResNet-18 iteration. Here the max, exp, sum and scaling are each parallel. The
        // normaliser sums millions of entries: in float32 its rounding alone would move the losses
        // by more than a small optimiser step, so it is accumulated in float64; the exponentials
        // and the result stay float32 (each entry rounded on its own, as any float32 feature).
        long count = features.numel();
        // An explicit Scalar, disposed after use: an implicit one (features / temperature) is left to
        // the garbage collector, which may finalize it while the division still runs natively.
        using Scalar divisor = temperature;
        using Tensor scaled = features.div(divisor);
        using Tensor max = scaled.detach().max();
        using Tensor e = scaled.sub(max).exp_();
        using Tensor sum = e.sum(ScalarType.Float64);
        using Tensor factor = sum.reciprocal().mul(count).to(ScalarType.Float32);
        return e * factor;
    }
}
