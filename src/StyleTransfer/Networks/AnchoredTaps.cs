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
internal sealed class AnchoredTaps : FeatureNetworkWrapper
{
    /// <summary>The suffix of the anchored taps.</summary>
    public const string Suffix = "@anchor";

    private readonly string[] tapNames;

    /// <summary>Wraps <paramref name="inner"/> (not owned); <paramref name="factor"/> in (0, 1].</summary>
    public AnchoredTaps(IFeatureNetwork inner, double factor)
        : base(inner)
    {
        if (!(factor > 0 && factor <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(factor), factor, "in (0, 1]");
        }

        Factor = factor;
        tapNames = [.. inner.TapNames, .. inner.TapNames.Select(Anchored)];
    }

    /// <summary>The scale of the image the anchored taps see.</summary>
    public double Factor { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<string> TapNames => tapNames;

    /// <summary>The anchored name of tap <paramref name="tap"/>.</summary>
    public static string Anchored(string tap) => tap + Suffix;

    /// <inheritdoc/>
    public override void MoveTo(Device device, ScalarType? dtype = null) => Inner.MoveTo(device, dtype);

    /// <inheritdoc/>
    public override Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> taps)
    {
        string[] plain = [.. taps.Where(t => !t.EndsWith(Suffix, StringComparison.Ordinal))];
        string[] anchored = [.. taps.Where(t => t.EndsWith(Suffix, StringComparison.Ordinal)).Select(t => t[..^Suffix.Length])];
        Dictionary<string, Tensor> result = plain.Length > 0 ? Inner.Extract(image, plain) : [];
        if (anchored.Length > 0)
        {
            long h = Math.Max(1, (long)Math.Round(image.shape[2] * Factor));
            long w = Math.Max(1, (long)Math.Round(image.shape[3] * Factor));
            using Tensor small = F.interpolate(image, size: [h, w], mode: InterpolationMode.Area);
            foreach ((string tap, Tensor f) in Inner.Extract(small, anchored))
            {
                result[Anchored(tap)] = f;
            }
        }

        return result;
    }

    /// <summary>The wrapped network is not owned: nothing to release.</summary>
    protected override void Dispose(bool disposing)
    {
    }
}
