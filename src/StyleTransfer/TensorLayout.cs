using static TorchSharp.torch;

namespace StyleTransfer;

/// <summary>
/// Channels-last (NHWC in memory) for [1,C,H,W] tensors. TorchSharp has no memory_format argument;
/// a permute to NHWC, a copy and a permute back gives the same strides as PyTorch's
/// <c>torch.channels_last</c>.
/// </summary>
internal static class TensorLayout
{
    /// <summary>The same values laid out NHWC in memory (a copy), still indexed [N,C,H,W].</summary>
    public static Tensor ToChannelsLast(Tensor t)
    {
        using Tensor nhwc = t.permute(0, 2, 3, 1);
        using Tensor dense = nhwc.contiguous();
        return dense.permute(0, 3, 1, 2);
    }

    /// <summary>Whether a [N,C,H,W] tensor is laid out NHWC (channel stride 1, dense).</summary>
    public static bool IsChannelsLast(Tensor t)
    {
        using Tensor nhwc = t.permute(0, 2, 3, 1);
        return nhwc.is_contiguous() && t.stride(1) == 1;
    }
}
