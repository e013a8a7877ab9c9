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

        // With a gradient to carry, one function with its backward written out (SwagSoftmax);
        // otherwise (targets, no_grad) the same forward alone.
        return features.requires_grad && torch.is_grad_enabled()
            ? SwagSoftmax.apply(features, temperature)
            : SwagSoftmax.Values(features, temperature);
    }

    /// <summary>
    /// The softmax over all entries scaled by their count, y = N·exp(F/T) / Σ exp(F/T), as one autograd
    /// function. Scaled by the entry count so values stay near 1 whatever the layer's size: the Gram
    /// and content losses then keep magnitudes comparable to untransformed features.
    /// </summary>
    /// <remarks>
    /// Written out rather than softmax(): a softmax over one row of millions of entries runs on one
    /// thread (CPU) or one thread block (CUDA). Here the max, exp, sum and scaling are each parallel.
    /// The normaliser sums millions of entries: in float32 its rounding alone would move the losses by
    /// more than a small optimiser step, so it is accumulated in float64; the exponentials and the
    /// result stay float32 (each entry rounded on its own, as any float32 feature).
    ///
    /// The backward is the softmax's Jacobian applied directly, ∂L/∂F = (y/T) ⊙ (g − Σ(g ⊙ y)/N) for
    /// the incoming gradient g: four passes over the map where autograd's chain through the division,
    /// exponential, float64 sum and scaling took about twice as many, with as many full-size
    /// temporaries (the largest tap, ResNet-18's relu1, has 4 M entries at 512 px; docs/performance.md).
    /// </remarks>
    private sealed class SwagSoftmax : torch.autograd.SingleTensorFunction<SwagSoftmax>
    {
        private const string TemperatureKey = "T";

        public override string Name => nameof(SwagSoftmax);

        /// <summary>y for <paramref name="features"/> at <paramref name="temperature"/>, without a graph.</summary>
        public static Tensor Values(Tensor features, double temperature)
        {
            long count = features.numel();

            // An explicit Scalar, disposed after use: an implicit one (features / temperature) is left to
            // the garbage collector, which may finalize it while the division still runs natively.
            using Scalar divisor = temperature;
            Tensor e = features.div(divisor);
            using (Tensor max = e.max())
            {
                e.sub_(max).exp_();
            }

            using Tensor sum = e.sum(ScalarType.Float64);
            using Tensor inverse = sum.reciprocal();
            using Tensor scaled = inverse.mul(count);
            using Tensor factor = scaled.to(e.dtype);
            return e.mul_(factor);
        }

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            double temperature = (double)vars[1];
            Tensor y = Values((Tensor)vars[0], temperature);
            ctx.save_for_backward([y]);
            ctx.save_data(TemperatureKey, temperature);
            return y;
        }

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
        {
            using Tensor y = ctx.get_saved_variables()[0];
            double temperature = (double)ctx.get_data(TemperatureKey);
            Tensor grad = grad_output.mul(y);
            using (Tensor dot = grad.sum(ScalarType.Float64))
            using (Tensor mean = dot.div(-y.numel()))
            using (Tensor coefficient = mean.to(y.dtype))
            using (Scalar one = 1.0)
            {
                grad.addcmul_(y, coefficient, one);
            }

            using Scalar inverse = 1.0 / temperature;
            grad.mul_(inverse);
            return [grad, null!];
        }
    }
}
