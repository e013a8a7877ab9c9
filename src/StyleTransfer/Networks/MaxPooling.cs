using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>
/// Max pooling of an NCHW feature map on the CPU without ATen's NCHW max-pooling kernel, which
/// is scalar: ResNet-18's stem pooling (64 × 256² → 128² at 512 px) took 21–22 ms forward there,
/// against 7 ms for the vectorised channels-last kernel including the layout copy
/// (docs/performance.md). The winners are found by that kernel on a channels-last copy, without
/// gradient; the values are then gathered from the map itself, so the gradient flows through
/// <c>gather</c>, whose backward adds each output's gradient at its winner: max pooling's
/// backward exactly (ties and NaNs pick the same element: both kernels scan the window in the
/// same order). Channels-last input (VGG-19's layout on the CPU) and other devices keep
/// <c>max_pool2d</c> as it is.
/// </summary>
internal static class MaxPooling
{
    public static Tensor Pool2d(Tensor x, long[] kernel, long[] stride, long[] padding, bool ceilMode = false)
    {
        if (x.device_type != TorchSharp.DeviceType.CPU || x.dim() != 4 || TensorLayout.IsChannelsLast(x))
        {
            return F.max_pool2d(x, kernel, stride, padding, ceil_mode: ceilMode);
        }

        long n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        using Tensor winners = Winners(x, kernel, stride, padding, ceilMode);
        long oh = winners.shape[2], ow = winners.shape[3];
        using Tensor flat = x.reshape(n, c, h * w);
        using Tensor flatWinners = winners.view(n, c, oh * ow);
        using Tensor picked = flat.gather(2, flatWinners);
        return picked.view(n, c, oh, ow);
    }

    /// <summary>The index (row × width + column within its channel) of every window's maximum, NCHW-contiguous.</summary>
    private static Tensor Winners(Tensor x, long[] kernel, long[] stride, long[] padding, bool ceilMode)
    {
        using var noGrad = no_grad();
        using Tensor values = x.detach();
        using Tensor channelsLast = TensorLayout.ToChannelsLast(values);
        (Tensor pooled, Tensor indices) = F.max_pool2d_with_indices(channelsLast, kernel, stride, padding, ceil_mode: ceilMode);
        using (pooled)
        using (indices)
        {
            return indices.contiguous();
        }
    }
}
