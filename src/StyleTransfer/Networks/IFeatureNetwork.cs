using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>
/// A convolutional network seen as a set of named feature maps ("taps"). Losses only ever see
/// what <see cref="Extract"/> returns, so any network that can name its layers can drive them.
/// </summary>
public interface IFeatureNetwork : IDisposable
{
    /// <summary>Short name, as given to --network.</summary>
    string Name { get; }

    /// <summary>Every tap, in the order the forward pass reaches them.</summary>
    IReadOnlyList<string> TapNames { get; }

    /// <summary>The device the weights live on.</summary>
    Device Device { get; }

    /// <summary>
    /// How the first convolution pads its input: zeros (as trained) or the edge pixels repeated.
    /// Networks that cannot replicate refuse anything but <see cref="FirstConvPadding.Zero"/>.
    /// </summary>
    FirstConvPadding Padding
    {
        get => FirstConvPadding.Zero;
        set
        {
            if (value != FirstConvPadding.Zero)
            {
                throw StyleTransferException.Named($"{Opt.Padding.Is(value.ToString().ToLowerInvariant())} is not supported by {Name}");
            }
        }
    }

    /// <summary>
    /// Moves the weights to <paramref name="device"/> and, when <paramref name="dtype"/> is given,
    /// converts the floating-point ones (weights, preprocessing constants) to it.
    /// </summary>
    void MoveTo(Device device, ScalarType? dtype = null);

    /// <summary>
    /// Runs the network on <paramref name="image"/> ([1,3,H,W], RGB in [0,1], on <see cref="Device"/>;
    /// the network applies its own preprocessing) only as deep as the deepest requested tap, and
    /// returns the requested feature maps, each [1,C,h,w].
    /// </summary>
    Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> taps);
}
