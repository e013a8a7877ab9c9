using static TorchSharp.torch;

namespace StyleTransfer.Losses;

/// <summary>
/// Ruder, Dosovitskiy &amp; Brox's short-term temporal loss (GCPR 2016): the weighted squared
/// difference between the image and a target, (1/D) Σ_k c_k (x_k − w_k)², where w is the previous
/// stylised frame warped along the optical flow, c the per-pixel weights (1 where the flow is
/// reliable, 0 at occlusions and motion boundaries; broadcast over the channels) and D = C·H·W.
/// A pixel-space term: it knows nothing of the feature network.
/// </summary>
internal static class TemporalLoss
{
    /// <param name="image">[1,C,H,W].</param>
    /// <param name="target">[1,C,H,W]: the warped previous result.</param>
    /// <param name="weights">[1,1,H,W] or [1,C,H,W], values in [0,1].</param>
    /// <returns>A scalar tensor.</returns>
    public static Tensor Compute(Tensor image, Tensor target, Tensor weights)
    {
        if (image.shape[^2] != target.shape[^2] || image.shape[^1] != target.shape[^1] || weights.shape[^2] != image.shape[^2] || weights.shape[^1] != image.shape[^1])
        {
            throw new ArgumentException($"temporal loss: image {string.Join('x', image.shape)}, target {string.Join('x', target.shape)} and weights {string.Join('x', weights.shape)} differ in size");
        }

        using Tensor diff = image - target;
        using Tensor squared = diff.square();
        using Tensor weighted = squared * weights;
        return weighted.sum() / image.numel();
    }
}
