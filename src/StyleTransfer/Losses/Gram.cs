using static TorchSharp.torch;

namespace StyleTransfer.Losses;

/// <summary>The Gram matrix G = F Fᵀ of a feature map reshaped to F: N filters × M positions.</summary>
internal static class Gram
{
    /// <param name="features">A feature map [1,N,H,W] (or [N,H,W]), in either memory layout.</param>
    /// <returns>[N,N], not normalised (the paper's E_l divides by 4N²M² instead).</returns>
    /// <remarks>
    /// A channels-last map (NHWC in memory, as the CPU VGG-19 path produces) is read as Fᵀ: M × N
    /// without a copy, and G = (Fᵀ)ᵀFᵀ; reshaping it to N × M would first copy the whole map (and
    /// its gradient on the way back), at conv1_1 and 512 px 64 MB each way.
    /// </remarks>
    public static Tensor Compute(Tensor features)
    {
        long n = features.shape[^3];
        if (features.dim() == 4 && features.shape[0] == 1 && n > 1 && TensorLayout.IsChannelsLast(features))
        {
            using Tensor ft = features.permute(0, 2, 3, 1).reshape(-1, n);
            return ft.t().mm(ft);
        }

        using Tensor f = features.reshape(n, -1);
        return f.mm(f.t());
    }
}
