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
public static class FeatureTransform
{
    public static Tensor Apply(Tensor features, FeatureTransformKind kind, double temperature)
    {
        if (kind == FeatureTransformKind.None)
        {
            return features;
        }

        // Scaled by the entry count so values stay near 1 whatever the layer's size: the Gram and
        // content losses then keep magnitudes comparable to untransformed features.
        long count = features.numel();
        using Tensor flat = features.reshape(1, -1);
        using Tensor scaled = flat / temperature;
        // The normaliser sums millions of entries: in float32 its rounding alone moves the losses
        // by more than a small optimiser step would, so the softmax runs in float64.
        using Tensor soft = scaled.to(ScalarType.Float64).softmax(1);
        return soft.mul(count).to(ScalarType.Float32).reshape(features.shape);
    }
}
