using static TorchSharp.torch;

namespace StyleTransfer.Diagnostics;

/// <summary>
/// Counts convolution FLOPs (2 per multiply-add) of the forward passes run inside
/// <see cref="Measure"/> on this thread, from the real output shapes, for benchmarks of any network.
/// Outside a measurement the networks' one call per convolution costs a thread-static read.
/// </summary>
internal static class ConvFlopCounter
{
    [ThreadStatic]
    private static double? flop;

    /// <summary>Runs <paramref name="forward"/> and returns the convolution FLOPs it performed.</summary>
    public static double Measure(Action forward)
    {
        flop = 0;
        try
        {
            forward();
            return flop.Value;
        }
        finally
        {
            flop = null;
        }
    }

    /// <summary>Called by the networks after each convolution: output elements × (in/groups) × kh × kw × 2.</summary>
    internal static Tensor Count(Tensor output, Tensor weight)
    {
        if (flop is { } f)
        {
            flop = f + (2.0 * output.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]);
        }

        return output;
    }
}
