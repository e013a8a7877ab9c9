using StyleTransfer.Networks;
using static TorchSharp.torch;

namespace StyleTransfer.Diagnostics;

/// <summary>
/// Counts convolution FLOPs (2 per multiply-add) of the forward passes run inside
/// <see cref="Measure"/> on this thread, from the real output shapes, for benchmarks of any network.
/// It observes the networks' convolutions through <see cref="ConvHook"/>, which costs them a
/// thread-static read when nothing is measured.
/// </summary>
internal sealed class ConvFlopCounter : IConvObserver
{
    private double flop;

    /// <summary>Runs <paramref name="forward"/> and returns the convolution FLOPs it performed.</summary>
    public static double Measure(Action forward)
    {
        var counter = new ConvFlopCounter();
        using (ConvHook.Install(counter))
        {
            forward();
        }

        return counter.flop;
    }

    /// <summary>Output elements × (in/groups) × kh × kw × 2.</summary>
    void IConvObserver.OnConv(Tensor output, Tensor weight) =>
        flop += 2.0 * output.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3];
}
