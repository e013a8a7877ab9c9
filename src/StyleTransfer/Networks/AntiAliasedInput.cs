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

    /// <summary>
    /// Blurs every channel of a [N,C,H,W] image with the binomial filter of <paramref name="taps"/>
    /// taps (<see cref="Binomial"/>), edges repeated: the separable filter as weighted sums of
    /// shifted views, down the rows, then along them. Element-wise passes that autograd runs
    /// vectorised both ways: oneDNN ran a depthwise convolution's backward on one or two
    /// channels at 1 GFLOP/s, and ATen's 2×2 mean pooling (the previous way) is scalar on NCHW
    /// maps, 5.4 → 1.4 ms forward and backward for the 3-tap luminance blur of a 512 × 384 image,
    /// 15.7 → 4.2 ms for the 5-tap chroma one (docs/performance.md).
    /// </summary>
    public static Tensor Blur(Tensor image, int taps)
    {
        float[] row = BinomialRow(taps);
        long pad = (taps - 1) / 2;
        using Tensor padded = F.pad(image, [pad, pad, pad, pad], PaddingModes.Replicate);
        using Tensor down = Pass(padded, 2, image.shape[2], row);
        return Pass(down, 3, image.shape[3], row);
    }

    /// <summary>Σ_i row[i] · x shifted by i along <paramref name="dim"/>, <paramref name="length"/> long.</summary>
    private static Tensor Pass(Tensor x, int dim, long length, float[] row)
    {
        using Tensor first = x.narrow(dim, 0, length);
        Tensor sum = first.mul(row[0]);
        for (int i = 1; i < row.Length; i++)
        {
            using Tensor shifted = x.narrow(dim, i, length);
            _ = sum.add_(shifted, alpha: row[i]);
        }

        return sum;
    }

    /// <summary>The binomial row of <paramref name="taps"/> taps, normalised: [1,2,1]/4 or [1,4,6,4,1]/16.</summary>
    private static float[] BinomialRow(int taps)
    {
        float[] row = taps switch
        {
            3 => [1, 2, 1],
            5 => [1, 4, 6, 4, 1],
            _ => throw new ArgumentOutOfRangeException(nameof(taps), taps, "3 or 5"),
        };
        float total = row.Sum();
        return [.. row.Select(v => v / total)];
    }

    /// <summary>The separable binomial kernel of <paramref name="taps"/> taps (3: [1,2,1]/4, 5: [1,4,6,4,1]/16), as [1,1,taps,taps]: what <see cref="Blur"/> applies.</summary>
    public static Tensor Binomial(int taps)
    {
        using Tensor r = torch.tensor(BinomialRow(taps));
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
        private readonly Tensor toYcc, fromYcc;

        public Filters(Device device)
        {
            toYcc = torch.tensor(Bt601.ToYcc).to(device);
            fromYcc = torch.tensor(Bt601.FromYcc).to(device);
        }

        public Tensor Apply(Tensor image)
        {
            // The colour transforms as a 3×3 matrix product over the pixels (a 1×1 convolution of three
            // channels ran at 3 GFLOP/s in oneDNN, plus a layout copy each way).
            using Tensor ycc = Mix(toYcc, image);
            using Tensor y = ycc.narrow(1, 0, 1);
            using Tensor c = ycc.narrow(1, 1, 2);
            using Tensor yf = Blur(y, 3);
            using Tensor cf = Blur(c, 5);
            using Tensor both = torch.cat([yf, cf], 1);
            return Mix(fromYcc, both);
        }

        public void Dispose()
        {
            toYcc.Dispose();
            fromYcc.Dispose();
        }

        /// <summary>Σ_i m[o,i]·x[n,i,h,w] for a [N,3,H,W] image.</summary>
        private static Tensor Mix(Tensor m, Tensor x)
        {
            long n = x.shape[0], h = x.shape[2], w = x.shape[3];
            using Tensor k = m.to(x.dtype);
            using Tensor flat = x.reshape(n, 3, h * w);
            using Tensor mixed = k.matmul(flat);
            return mixed.reshape(n, 3, h, w);
        }
    }
}
