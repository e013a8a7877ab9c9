using static TorchSharp.torch;

namespace StyleTransfer.Losses;

/// <summary>The paper's content loss on one layer: ½ Σ (F − P)².</summary>
internal static class ContentLoss
{
    /// <param name="features">F: the generated image's feature map, [1,C,H,W].</param>
    /// <param name="target">P: the content image's feature map at the same layer.</param>
    public static Tensor Compute(Tensor features, Tensor target)
    {
        if (!features.shape.SequenceEqual(target.shape))
        {
            throw new ArgumentException($"content features [{string.Join(",", features.shape)}] and target [{string.Join(",", target.shape)}] differ in shape");
        }

        return (features - target).square().sum(ScalarType.Float64).mul(0.5);
    }
}
