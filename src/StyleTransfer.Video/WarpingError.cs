using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Video;

/// <summary>
/// The temporal warping error (flicker) of a stylised video: between consecutive frames, the mean
/// squared difference of frame t and frame t−1 warped by the content's backward flow, over the
/// pixels where that flow is reliable (<see cref="OpticalFlow.Reliability"/>) and the three channels.
/// </summary>
public static class WarpingError
{
    /// <param name="current">Stylised frame t, [1,3,H,W] in [0,1].</param>
    /// <param name="previous">Stylised frame t−1.</param>
    /// <param name="backward">Content flow from frame t to t−1.</param>
    /// <param name="reliable">Weights from <see cref="OpticalFlow.Reliability"/>.</param>
    /// <returns>NaN when no pixel is reliable.</returns>
    public static double Compute(Tensor current, Tensor previous, Tensor backward, Tensor reliable)
    {
        using var scope = NewDisposeScope();
        Tensor warped = OpticalFlow.Warp(previous.to(ScalarType.Float32), backward);
        Tensor c = reliable.to(warped.device);
        double count = c.sum().ToDouble() * current.shape[1];
        return count == 0 ? double.NaN : ((current.to(ScalarType.Float32).to(warped.device) - warped).square() * c).sum().ToDouble() / count;
    }
}
