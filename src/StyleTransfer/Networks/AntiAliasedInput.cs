using StyleTransfer.Imaging;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>
/// Low-passes the image before the network sees it, in a luminance/chroma space (BT.601 Y, B−Y, R−Y):
/// luminance with a 3×3 binomial filter ([1,2,1]ᵀ[1,2,1]/16), the two chroma channels with a 5×5
/// binomial ([1,4,6,4,1]ᵀ[1,4,6,4,1]/256, about a Gaussian of σ = 1), edge pixels repeated. This is
/// the anti-aliasing of Zhang, <i>Making Convolutional Networks Shift-Invariant Again</i> (ICML 2019),
/// placed in front of a strided first layer, with the eye's lower acuity for colour. What the filter
/// removes is invisible to the losses and absent from their pixel gradient, so the optimiser cannot
/// paint it: both filters are exactly 0 at the Nyquist frequency (no 2-pixel lattice, which
/// ResNet-18's stride-2 stem lets through), and the chroma filter also cuts the pixel-sized colour
/// speckle. Content and style targets pass through the same filter, so the losses compare like with
/// like; the output image itself is never blurred (it keeps the starting image's detail).
/// </summary>
internal sealed class AntiAliasedInput : FeatureNetworkWrapper
{
    private Filters filters;

    /// <summary>Takes ownership of <paramref name="inner"/>.</summary>
    public AntiAliasedInput(IFeatureNetwork inner)
        : base(inner)
    {
        filters = new Filters(inner.Device);
    }

    /// <summary>A depthwise blur of every channel of a [N,C,H,W] image with a square kernel [1,1,k,k], edges repeated.</summary>
    public static Tensor Blur(Tensor image, Tensor kernel)
    {
        long channels = image.shape[1];
        long pad = kernel.shape[^1] / 2;
        using Tensor padded = F.pad(image, [pad, pad, pad, pad], PaddingModes.Replicate);
        using Tensor k = kernel.to(image.dtype).expand(channels, 1, kernel.shape[^2], kernel.shape[^1]);
        return F.conv2d(padded, k, groups: channels);
    }

    /// <summary>The separable binomial kernel of <paramref name="taps"/> taps (3: [1,2,1]/4, 5: [1,4,6,4,1]/16), as [1,1,taps,taps].</summary>
    public static Tensor Binomial(int taps)
    {
        float[] row = taps switch
        {
            3 => [1, 2, 1],
            5 => [1, 4, 6, 4, 1],
            _ => throw new ArgumentOutOfRangeException(nameof(taps), taps, "3 or 5"),
        };
        using Tensor r = torch.tensor(row) / row.Sum();
        using Tensor outer = r.outer(r);
        return outer.reshape(1, 1, taps, taps);
    }

    /// <summary>The whole filter on a [N,3,H,W] RGB image: luminance through <see cref="Binomial"/>(3), chroma through <see cref="Binomial"/>(5).</summary>
    public static Tensor Filter(Tensor image)
    {
        using var f = new Filters(image.device);
        return f.Apply(image);
    }

    public override void MoveTo(Device device, ScalarType? dtype = null)
    {
        Inner.MoveTo(device, dtype);
        filters.Dispose();
        filters = new Filters(device);
    }

    public override Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> taps)
    {
        using Tensor filtered = filters.Apply(image);
        return Inner.Extract(filtered, taps);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            filters.Dispose();
        }

        base.Dispose(disposing);
    }

    private sealed class Filters : IDisposable
    {
        private readonly Tensor toYcc, fromYcc, luma, chroma;

        public Filters(Device device)
        {
            toYcc = torch.tensor(Bt601.ToYcc).reshape(3, 3, 1, 1).to(device);
            fromYcc = torch.tensor(Bt601.FromYcc).reshape(3, 3, 1, 1).to(device);
            luma = Binomial(3).to(device);
            chroma = Binomial(5).to(device);
        }

        public Tensor Apply(Tensor image)
        {
            using Tensor ycc = F.conv2d(image, toYcc.to(image.dtype));
            using Tensor y = ycc.narrow(1, 0, 1);
            using Tensor c = ycc.narrow(1, 1, 2);
            using Tensor yf = Blur(y, luma);
            using Tensor cf = Blur(c, chroma);
            using Tensor both = torch.cat([yf, cf], 1);
            return F.conv2d(both, fromYcc.to(image.dtype));
        }

        public void Dispose()
        {
            toYcc.Dispose();
            fromYcc.Dispose();
            luma.Dispose();
            chroma.Dispose();
        }
    }
}
