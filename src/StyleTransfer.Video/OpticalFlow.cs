using System.Runtime.InteropServices;
using OpenCvSharp;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Video;

/// <summary>
/// Dense optical flow between content frames (OpenCV's Farnebäck, through OpenCvSharp), bilinear
/// warping along it, and Ruder et al.'s forward-backward consistency check, which finds where the
/// flow cannot be trusted (occlusions, motion boundaries, pixels that left the frame).
/// Flows are [1,2,H,W] float32 tensors on the CPU: channel 0 the x displacement, 1 the y, in pixels.
/// </summary>
public static class OpticalFlow
{
    /// <summary>
    /// The flow from <paramref name="from"/> to <paramref name="to"/> (both [1,3,H,W] RGB in [0,1]):
    /// for each pixel x of <paramref name="from"/>, where it went in <paramref name="to"/>, so that
    /// from(x) ≈ to(x + flow(x)).
    /// </summary>
    public static Tensor Compute(Tensor from, Tensor to)
    {
        (int h, int w) = ((int)from.shape[2], (int)from.shape[3]);
        if (to.shape[2] != h || to.shape[3] != w)
        {
            throw new ArgumentException($"optical flow: frames of different sizes ({w}x{h}, {to.shape[3]}x{to.shape[2]})");
        }

        using Mat a = ToGray(from);
        using Mat b = ToGray(to);
        using var flow = new Mat();

        // Five levels halve the image down to 1/16: displacements of tens of pixels at 640x360.
        int levels = Math.Clamp((int)Math.Floor(Math.Log2(Math.Min(h, w) / 16.0)), 1, 5);
        Cv2.CalcOpticalFlowFarneback(a, b, flow, pyrScale: 0.5, levels: levels, winsize: 15, iterations: 5, polyN: 7, polySigma: 1.5, flags: OpticalFlowFlags.FarnebackGaussian);
        var data = new float[h * w * 2];
        Marshal.Copy(flow.Data, data, 0, data.Length);
        using Tensor hwc = torch.tensor(data, [h, w, 2]);
        return hwc.permute(2, 0, 1).unsqueeze(0).contiguous();
    }

    /// <summary>
    /// Bilinear backward warping: out(x) = image(x + flow(x)), with the image's edge pixels repeated
    /// outside it. <paramref name="image"/> is [1,C,H,W] on any device; <paramref name="flow"/> [1,2,H,W].
    /// </summary>
    public static Tensor Warp(Tensor image, Tensor flow)
    {
        using var scope = torch.NewDisposeScope();
        Tensor grid = SamplingGrid(flow.to(image.device).to(image.dtype));
        return F.grid_sample(image, grid, mode: GridSampleMode.Bilinear, padding_mode: GridSamplePaddingMode.Border, align_corners: true).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Ruder et al.'s per-pixel weights c for warping the previous frame into the current one, [1,1,H,W]
    /// in {0,1}: 0 where the backward flow (current → previous) and the forward flow (previous →
    /// current) read at its end point disagree (|ŵ + w|² &gt; 0.01 (|ŵ|² + |w|²) + 0.5: occluded or
    /// disoccluded), at motion boundaries (|∇u|² + |∇v|² &gt; 0.01 |w|² + 0.002), and where the
    /// backward flow leaves the frame; 1 elsewhere.
    /// </summary>
    /// <param name="forward">Flow from the previous frame to the current one.</param>
    /// <param name="backward">Flow from the current frame to the previous one.</param>
    public static Tensor Reliability(Tensor forward, Tensor backward)
    {
        using var scope = torch.NewDisposeScope();
        long h = backward.shape[2], w = backward.shape[3];
        Tensor fw = Warp(forward, backward);
        Tensor sum = (fw + backward).square().sum(1, keepdim: true);
        Tensor norms = fw.square().sum(1, keepdim: true) + backward.square().sum(1, keepdim: true);
        Tensor consistent = sum <= (norms * 0.01) + 0.5;

        Tensor dx = F.pad(backward.narrow(3, 1, w - 1) - backward.narrow(3, 0, w - 1), [0, 1, 0, 0]);
        Tensor dy = F.pad(backward.narrow(2, 1, h - 1) - backward.narrow(2, 0, h - 1), [0, 0, 0, 1]);
        Tensor gradient = (dx.square() + dy.square()).sum(1, keepdim: true);
        Tensor smooth = gradient <= (backward.square().sum(1, keepdim: true) * 0.01) + 0.002;

        (Tensor xs, Tensor ys) = Coordinates(h, w);
        Tensor x1 = xs + backward.narrow(1, 0, 1), y1 = ys + backward.narrow(1, 1, 1);
        Tensor inside = (x1 >= 0) & (x1 <= w - 1) & (y1 >= 0) & (y1 <= h - 1);
        return (consistent & smooth & inside).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    private static (Tensor X, Tensor Y) Coordinates(long h, long w)
    {
        Tensor xs = torch.arange(w, dtype: ScalarType.Float32).view(1, 1, 1, w).expand(1, 1, h, w);
        Tensor ys = torch.arange(h, dtype: ScalarType.Float32).view(1, 1, h, 1).expand(1, 1, h, w);
        return (xs, ys);
    }

    /// <summary>grid_sample's grid ([1,H,W,2], in [-1,1], align_corners) for sampling at x + flow(x).</summary>
    private static Tensor SamplingGrid(Tensor flow)
    {
        long h = flow.shape[2], w = flow.shape[3];
        (Tensor xs, Tensor ys) = Coordinates(h, w);
        Tensor gx = ((xs.to(flow.dtype).to(flow.device) + flow.narrow(1, 0, 1)) * (2.0 / Math.Max(1, w - 1))) - 1;
        Tensor gy = ((ys.to(flow.dtype).to(flow.device) + flow.narrow(1, 1, 1)) * (2.0 / Math.Max(1, h - 1))) - 1;
        return torch.cat([gx, gy], 1).permute(0, 2, 3, 1);
    }

    /// <summary>[1,3,H,W] RGB in [0,1] → an 8-bit BT.601 grey Mat.</summary>
    private static Mat ToGray(Tensor rgb)
    {
        (int h, int w) = ((int)rgb.shape[2], (int)rgb.shape[3]);
        byte[] bytes;
        using (var scope = torch.NewDisposeScope())
        {
            Tensor c = rgb.detach().to(torch.CPU).to(ScalarType.Float32);
            Tensor y = (c.select(1, 0) * 0.299) + (c.select(1, 1) * 0.587) + (c.select(1, 2) * 0.114);
            bytes = y.mul(255).round().clamp(0, 255).to(ScalarType.Byte).contiguous().data<byte>().ToArray();
        }

        Mat m = new(h, w, MatType.CV_8UC1);
        Marshal.Copy(bytes, 0, m.Data, bytes.Length);
        return m;
    }
}
