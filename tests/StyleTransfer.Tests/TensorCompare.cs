using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>
/// The parity measure, shared by the tests and by tests/StyleTransfer.DeviceCheck (which links this
/// file): the largest absolute difference relative to the largest magnitude of the expected tensor.
/// </summary>
internal static class TensorCompare
{
    /// <summary>max |expected − actual| / max |expected| in float64 on the CPU (either may be on a GPU); +∞ when the shapes differ.</summary>
    public static double MaxRelativeError(Tensor expected, Tensor actual)
    {
        using var scope = NewDisposeScope();
        if (!expected.shape.SequenceEqual(actual.shape))
        {
            return double.PositiveInfinity;
        }

        Tensor e = expected.detach().to(ScalarType.Float64).cpu(), a = actual.detach().to(ScalarType.Float64).cpu();
        return (e - a).abs().max().ToDouble() / Math.Max(e.abs().max().ToDouble(), 1e-12);
    }
}
