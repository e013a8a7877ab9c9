using StyleTransfer.Imaging;
using static TorchSharp.torch;

namespace StyleTransfer.Losses;

/// <summary>Squared total variation: Σ (x[i+1,j] − x[i,j])² + Σ (x[i,j+1] − x[i,j])², a smoothness prior (off by default).</summary>
internal static class TotalVariation
{
    /// <param name="image">[1,C,H,W].</param>
    public static Tensor Compute(Tensor image)
    {
        long h = image.shape[^2], w = image.shape[^1];
        using Tensor dy = image.narrow(-2, 1, h - 1) - image.narrow(-2, 0, h - 1);
        using Tensor dx = image.narrow(-1, 1, w - 1) - image.narrow(-1, 0, w - 1);
        return dy.square().sum() + dx.square().sum();
    }

    /// <summary>
    /// The same on the colour differences B−Y and R−Y (BT.601 luma Y): zero for any grey image,
    /// whatever its luminance, so weighting it smooths pixel-sized colour speckle without blurring
    /// edges or strokes of light and dark.
    /// </summary>
    /// <param name="image">[1,3,H,W], RGB.</param>
    public static Tensor ComputeChroma(Tensor image)
    {
        using Tensor chroma = Bt601.ColorDifferences(image);
        return Compute(chroma);
    }
}
