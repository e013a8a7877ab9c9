using static TorchSharp.torch;

namespace StyleTransfer.Losses;

/// <summary>The Gram matrix G = F Fᵀ of a feature map reshaped to F: N filters × M positions.</summary>
public static class Gram
{
    /// <param name="features">A feature map [1,N,H,W] (or [N,H,W]).</param>
    /// <returns>[N,N], not normalised (the paper's E_l divides by 4N²M² instead).</returns>
    public static Tensor Compute(Tensor features)
    {
        long n = features.shape[^3];
        using Tensor f = features.reshape(n, -1);
        return f.mm(f.t());
    }
}
