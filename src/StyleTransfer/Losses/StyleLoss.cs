using static TorchSharp.torch;

namespace StyleTransfer.Losses;

/// <summary>The paper's per-layer style term E_l = Σ (G − A)² / (4 N² M²).</summary>
public static class StyleLoss
{
    /// <param name="features">The generated image's feature map [1,N,H,W]; N and M = H·W come from it.</param>
    /// <param name="targetGram">A: the style image's Gram matrix at the same layer, [N,N].</param>
    public static Tensor Layer(Tensor features, Tensor targetGram)
    {
        long n = features.shape[^3];
        long m = features.shape[^1] * features.shape[^2];
        if (targetGram.shape.Length != 2 || targetGram.shape[0] != n || targetGram.shape[1] != n)
        {
            throw new ArgumentException($"style target Gram [{string.Join(",", targetGram.shape)}] does not match {n} filters");
        }

        using Tensor g = Gram.Compute(features);
        double denominator = 4.0 * n * n * (double)m * m;
        return (g - targetGram).square().sum().div(denominator);
    }
}
