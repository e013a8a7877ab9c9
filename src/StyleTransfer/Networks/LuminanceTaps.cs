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
internal sealed class LuminanceTaps : DerivedImageTaps
{
    /// <summary>The suffix of the luminance taps.</summary>
    public const string Suffix = "@luma";

    /// <summary>Wraps <paramref name="inner"/>, which it then owns.</summary>
    public LuminanceTaps(IFeatureNetwork inner)
        : base(inner, Suffix)
    {
    }

    /// <summary>The luminance tap of <paramref name="tap"/>.</summary>
    public static string Luminance(string tap) => tap + Suffix;

    /// <summary>Whether <paramref name="tap"/> is a luminance tap.</summary>
    public static bool IsLuminance(string tap) => tap.EndsWith(Suffix, StringComparison.Ordinal);

    /// <summary>The grey image of a [N,3,H,W] RGB image: its luminance in all three channels.</summary>
    public static Tensor Grey(Tensor rgb)
    {
        using Tensor y = Bt601.Luma(rgb);
        return y.expand(-1, 3, -1, -1);
    }

    /// <summary>The grey image (<see cref="Grey"/>).</summary>
    protected override Tensor Derive(Tensor image) => Grey(image);
}
