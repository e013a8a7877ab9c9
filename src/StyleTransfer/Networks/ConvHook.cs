using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>
/// Sees every convolution that the feature networks run on its thread while it is installed
/// (<see cref="ConvHook.Install"/>): its output and its weight [out, in/groups, kh, kw]. Measuring
/// code (the FLOP count of <c>stylize bench</c>, in the diagnostics assembly) implements it; the
/// networks know nothing of what is measured.
/// </summary>
internal interface IConvObserver
{
    /// <summary>Called after a convolution with its <paramref name="output"/> and <paramref name="weight"/>; must not dispose or change them.</summary>
    void OnConv(Tensor output, Tensor weight);
}

/// <summary>
/// The networks' one call per convolution (<see cref="Conv"/>): with no observer installed on the
/// thread (the default) it costs a thread-static read and returns the output untouched.
/// </summary>
internal static class ConvHook
{
    [ThreadStatic]
    private static IConvObserver? observer;

    /// <summary>Reports a convolution's output to this thread's observer, if any, and returns the output.</summary>
    internal static Tensor Conv(Tensor output, Tensor weight)
    {
        observer?.OnConv(output, weight);
        return output;
    }

    /// <summary>Installs <paramref name="conv"/> on this thread until the result is disposed, which restores the previous observer.</summary>
    internal static IDisposable Install(IConvObserver conv)
    {
        var installed = new Installed(observer);
        observer = conv;
        return installed;
    }

    private sealed class Installed(IConvObserver? previous) : IDisposable
    {
        private bool disposed;

        public void Dispose()
        {
            if (!disposed)
            {
                disposed = true;
                observer = previous;
            }
        }
    }
}
