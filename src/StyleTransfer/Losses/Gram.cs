using TorchSharp;
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
    /// its gradient on the way back), at conv1_1 and 512 px 64 MB each way. With a gradient to
    /// carry, <see cref="GramFunction"/> gives the backward as one product.
    /// </remarks>
    public static Tensor Compute(Tensor features) => features.requires_grad && torch.is_grad_enabled()
        ? GramFunction.apply(features)
        : Values(features);

    /// <summary>G without a graph.</summary>
    private static Tensor Values(Tensor features)
    {
        long n = features.shape[^3];
        if (IsChannelsLastMap(features))
        {
            using Tensor ft = features.permute(0, 2, 3, 1).reshape(-1, n);
            return ft.t().mm(ft);
        }

        using Tensor f = features.reshape(n, -1);
        return f.mm(f.t());
    }

    private static bool IsChannelsLastMap(Tensor features) =>
        features.dim() == 4 && features.shape[0] == 1 && features.shape[^3] > 1 && TensorLayout.IsChannelsLast(features);

    /// <summary>
    /// G = F Fᵀ with its backward written out: ∂L/∂F = (Ĝ + Ĝᵀ) F for the incoming gradient Ĝ, one
    /// N × N by N × M product. Autograd's chain through mm and the transpose computes Ĝ F and Ĝᵀ F
    /// as two products of that size and adds them: for ResNet-18's relu1 at 512 px (64 × 65 536)
    /// 23 ms against 13 ms forward and backward (docs/performance.md). The gradient has the map's
    /// layout: NHWC for a channels-last map, computed as Fᵀ (Ĝ + Ĝᵀ).
    /// </summary>
    private sealed class GramFunction : torch.autograd.SingleTensorFunction<GramFunction>
    {
        public override string Name => "Gram";

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var features = (Tensor)vars[0];
            ctx.save_for_backward([features]);
            return Values(features);
        }

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output)
        {
            using Tensor features = ctx.get_saved_variables()[0];
            using Tensor transposed = grad_output.t();
            using Tensor symmetric = grad_output.add(transposed);
            long n = features.shape[^3];
            if (IsChannelsLastMap(features))
            {
                using Tensor ft = features.permute(0, 2, 3, 1).reshape(-1, n);
                using Tensor gradT = ft.mm(symmetric);
                using Tensor nhwc = gradT.view(1, features.shape[2], features.shape[3], n);
                return [nhwc.permute(0, 3, 1, 2)];
            }

            using Tensor f = features.reshape(n, -1);
            using Tensor grad = symmetric.mm(f);
            return [grad.view(features.shape)];
        }
    }
}
