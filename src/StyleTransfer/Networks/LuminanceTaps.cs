using StyleTransfer.Imaging;
using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>
/// Adds, for every tap <c>NAME</c> of the wrapped network, a tap <c>NAME@luma</c>: the same layer
/// on the image's BT.601 luminance, repeated in the three channels (a grey image). A content term
/// on these taps, with its target taken from the photograph through the same wrapper, holds the
/// photograph's structure of light and dark but not its colours, which are then left to the style
/// (<see cref="StyleTransferOptions.ContentLuminance"/>). Owns the wrapped network.
/// </summary>
internal sealed class LuminanceTaps : FeatureNetworkWrapper
{
    /// <summary>The suffix of the luminance taps.</summary>
    public const string Suffix = "@luma";

    private readonly string[] tapNames;

    /// <summary>Wraps <paramref name="inner"/>, which it then owns.</summary>
    public LuminanceTaps(IFeatureNetwork inner)
        : base(inner)
    {
        tapNames = [.. inner.TapNames, .. inner.TapNames.Select(Luminance)];
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> TapNames => tapNames;

    /// <summary>The luminance tap of <paramref name="tap"/>.</summary>
    public static string Luminance(string tap) => tap + Suffix;

    /// <summary>Whether <paramref name="tap"/> is a luminance tap.</summary>
    public static bool IsLuminance(string tap) => tap.EndsWith(Suffix, StringComparison.Ordinal);

    /// <summary>The grey image of a [N,3,H,W] RGB image: its luminance in all three channels.</summary>
    public static Tensor Grey(Tensor rgb)
    {
        using Tensor r = rgb.narrow(1, 0, 1), g = rgb.narrow(1, 1, 1), b = rgb.narrow(1, 2, 1);
        using Tensor y = (r * Bt601.Kr) + (g * Bt601.Kg) + (b * Bt601.Kb);
        return y.expand(-1, 3, -1, -1);
    }

    /// <inheritdoc/>
    public override void MoveTo(Device device, ScalarType? dtype = null) => Inner.MoveTo(device, dtype);

    /// <inheritdoc/>
    public override Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> taps)
    {
        string[] plain = [.. taps.Where(t => !IsLuminance(t))];
        string[] luma = [.. taps.Where(IsLuminance).Select(t => t[..^Suffix.Length])];
        Dictionary<string, Tensor> result = plain.Length > 0 ? Inner.Extract(image, plain) : [];
        if (luma.Length > 0)
        {
            using Tensor grey = Grey(image);
            foreach ((string tap, Tensor f) in Inner.Extract(grey, luma))
            {
                result[Luminance(tap)] = f;
            }
        }

        return result;
    }
}
