using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>
/// Adds, for every tap <c>NAME</c> of the wrapped network, a tap <c>NAME@anchor</c>: the same layer
/// on the image scaled by <see cref="Factor"/> (area-averaged). A style term on these taps, with
/// targets taken from the style image through the same wrapper, holds the image's look at the
/// anchor size while the plain taps add detail at the full size (<see cref="StyleTransferOptions.StyleAnchor"/>).
/// Does not own the wrapped network.
/// </summary>
internal sealed class AnchoredTaps : DerivedImageTaps
{
    /// <summary>The suffix of the anchored taps.</summary>
    public const string Suffix = "@anchor";

    /// <summary>Wraps <paramref name="inner"/> (not owned); <paramref name="factor"/> in (0, 1].</summary>
    public AnchoredTaps(IFeatureNetwork inner, double factor)
        : base(inner, Suffix)
    {
        if (!(factor > 0 && factor <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(factor), factor, "in (0, 1]");
        }

        Factor = factor;
    }

    /// <summary>The scale of the image the anchored taps see.</summary>
    public double Factor { get; }

    /// <summary>The anchored name of tap <paramref name="tap"/>.</summary>
    public static string Anchored(string tap) => tap + Suffix;

    /// <summary>The wrapped network is not owned: nothing to release.</summary>
    protected override void Dispose(bool disposing)
    {
    }

    /// <summary>The image scaled by <see cref="Factor"/>, area-averaged.</summary>
    protected override Tensor Derive(Tensor image)
    {
        long h = Math.Max(1, (long)Math.Round(image.shape[2] * Factor));
        long w = Math.Max(1, (long)Math.Round(image.shape[3] * Factor));
        return F.interpolate(image, size: [h, w], mode: InterpolationMode.Area);
    }
}
