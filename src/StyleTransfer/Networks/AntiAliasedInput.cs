using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>
/// Low-passes the image with a 3×3 binomial filter ([1,2,1]ᵀ[1,2,1]/16, edge pixels repeated) before
/// the network sees it: the anti-aliasing of Zhang, <i>Making Convolutional Networks Shift-Invariant
/// Again</i> (ICML 2019), placed in front of a strided first layer. The filter's response at the
/// Nyquist frequency is exactly 0, so the losses cannot see a 2-pixel checkerboard and their pixel
/// gradient holds none: the optimiser no longer paints the stride-2 lattice that ResNet-18's stem
/// (a 7×7 convolution with stride 2) lets through. Content and style targets pass through the same
/// filter, so the losses compare like with like; the output image itself is never blurred.
/// </summary>
public sealed class AntiAliasedInput : IFeatureNetwork
{
    private readonly IFeatureNetwork inner;
    private Tensor kernel;

    /// <summary>Takes ownership of <paramref name="inner"/>.</summary>
    public AntiAliasedInput(IFeatureNetwork inner)
    {
        this.inner = inner;
        kernel = MakeKernel(inner.Device);
    }

    public string Name => inner.Name;

    public IReadOnlyList<string> TapNames => inner.TapNames;

    public Device Device => inner.Device;

    public FirstConvPadding Padding
    {
        get => inner.Padding;
        set => inner.Padding = value;
    }

    /// <summary>The filter applied to a [N,C,H,W] image: a depthwise 3×3 binomial blur with replicated edges.</summary>
    public static Tensor Blur(Tensor image, Tensor kernel)
    {
        long channels = image.shape[1];
        using Tensor padded = F.pad(image, [1, 1, 1, 1], PaddingModes.Replicate);
        using Tensor k = kernel.to(image.dtype).expand(channels, 1, 3, 3);
        return F.conv2d(padded, k, groups: channels);
    }

    public void MoveTo(Device device, ScalarType? dtype = null)
    {
        inner.MoveTo(device, dtype);
        kernel.Dispose();
        kernel = MakeKernel(device);
    }

    public Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> taps)
    {
        using Tensor blurred = Blur(image, kernel);
        return inner.Extract(blurred, taps);
    }

    public void Dispose()
    {
        kernel.Dispose();
        inner.Dispose();
    }

    private static Tensor MakeKernel(Device device)
    {
        using Tensor row = torch.tensor(new float[] { 1, 2, 1 }) / 4f;
        using Tensor outer = row.outer(row);
        return outer.reshape(1, 1, 3, 3).to(device);
    }
}
