using static TorchSharp.torch;

namespace StyleTransfer.Losses;

/// <summary>
/// The paper's per-layer style term E_l = Σ (G − A)² / (4 N² M²). When the style image has
/// another number of positions M_s than the generated image's M, A is first rescaled by M / M_s:
/// Grams per position are compared, which is the paper's formula exactly at equal sizes and
/// keeps it meaningful at any other (a texture larger than its source, a style at --style-scale).
/// </summary>
/// <remarks>
/// Guided Grams (Gatys et al., CVPR 2017, spatial control): with a mask m the features are
/// multiplied by m before the Gram is taken, G = (F ⊙ m)(F ⊙ m)ᵀ, and the number of positions
/// becomes the mask's effective count M = Σ m². Pass the masked features and that count as
/// <c>positions</c>.
/// </remarks>
internal static class StyleLoss
{
    /// <param name="features">The generated image's feature map [1,N,H,W]; N and M = H·W come from it.</param>
    /// <param name="targetGram">A: the style image's Gram matrix at the same layer, [N,N].</param>
    /// <param name="targetPositions">M_s: the positions (h·w) of the style image's feature map that gave A.</param>
    /// <param name="positions">M, when it is not H·W (guided Grams: Σ m²).</param>
    public static Tensor Layer(Tensor features, Tensor targetGram, double targetPositions, double? positions = null)
    {
        long n = features.shape[^3];
        double m = positions ?? features.shape[^1] * features.shape[^2];
        CheckShape(targetGram, n);
        using Tensor g = Gram.Compute(features);
        using Tensor a = targetGram * (m / targetPositions);
        double denominator = 4.0 * n * n * m * m;
        return (g - a).square().sum(ScalarType.Float64).div(denominator);
    }

    /// <summary>
    /// The per-layer term relative to the target: Σ (G − A)² / Σ A². Each layer then counts equally
    /// whatever the scale of its activations, which networks other than a normalised VGG need.
    /// </summary>
    public static Tensor RelativeLayer(Tensor features, Tensor targetGram, double targetPositions, double? positions = null)
    {
        double m = positions ?? features.shape[^1] * features.shape[^2];
        CheckShape(targetGram, features.shape[^3]);
        using Tensor g = Gram.Compute(features);
        using Tensor a = targetGram * (m / targetPositions);
        using Tensor norm = a.square().sum(ScalarType.Float64).clamp_min(1e-30);
        return (g - a).square().sum(ScalarType.Float64).div(norm);
    }

    private static void CheckShape(Tensor targetGram, long n)
    {
        if (targetGram.shape.Length != 2 || targetGram.shape[0] != n || targetGram.shape[1] != n)
        {
            throw new ArgumentException($"style target Gram [{string.Join(",", targetGram.shape)}] does not match {n} filters");
        }
    }
}
