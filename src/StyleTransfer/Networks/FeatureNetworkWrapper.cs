using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>
/// A network that wraps (and owns) another: name, taps, device and padding are the inner network's;
/// a wrapper changes what goes in or comes out (<see cref="Extract"/>) and how weights move.
/// </summary>
internal abstract class FeatureNetworkWrapper(IFeatureNetwork inner) : IFeatureNetwork
{
    /// <summary>The wrapped network.</summary>
    protected IFeatureNetwork Inner { get; } = inner;

    public string Name => Inner.Name;

    public virtual IReadOnlyList<string> TapNames => Inner.TapNames;

    public Device Device => Inner.Device;

    public FirstConvPadding Padding
    {
        get => Inner.Padding;
        set => Inner.Padding = value;
    }

    public abstract void MoveTo(Device device, ScalarType? dtype = null);

    public abstract Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> taps);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Disposes the inner network; wrappers holding tensors of their own release them too.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }
    }
}
