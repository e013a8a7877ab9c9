using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>
/// Adds, for every tap <c>NAME</c> of the wrapped network, a tap <c>NAME</c> + suffix: the same layer
/// on an image derived from the input (<see cref="Derive"/>). One call extracts both kinds: the
/// plain taps from the image, the suffixed ones from the derived image. The wrappers built on it
/// (<see cref="AnchoredTaps"/>, <see cref="LuminanceTaps"/>) nest: a tap's suffixes are peeled
/// from the outside in.
/// </summary>
internal abstract class DerivedImageTaps : FeatureNetworkWrapper
{
    private readonly string suffix;
    private readonly string[] tapNames;

    protected DerivedImageTaps(IFeatureNetwork inner, string suffix)
        : base(inner)
    {
        this.suffix = suffix;
        tapNames = [.. inner.TapNames, .. inner.TapNames.Select(t => t + suffix)];
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> TapNames => tapNames;

    /// <inheritdoc/>
    public override void MoveTo(Device device, ScalarType? dtype = null) => Inner.MoveTo(device, dtype);

    /// <inheritdoc/>
    public override Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> taps)
    {
        string[] plain = [.. taps.Where(t => !t.EndsWith(suffix, StringComparison.Ordinal))];
        string[] derived = [.. taps.Where(t => t.EndsWith(suffix, StringComparison.Ordinal)).Select(t => t[..^suffix.Length])];
        Dictionary<string, Tensor> result = plain.Length > 0 ? Inner.Extract(image, plain) : [];
        if (derived.Length > 0)
        {
            using Tensor other = Derive(image);
            foreach ((string tap, Tensor f) in Inner.Extract(other, derived))
            {
                result[tap + suffix] = f;
            }
        }

        return result;
    }

    /// <summary>The image the suffixed taps see, made from the [N,3,H,W] input (inside the graph, so gradients reach the input).</summary>
    protected abstract Tensor Derive(Tensor image);
}
