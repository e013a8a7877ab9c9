using StyleTransfer.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Video.Tests;

/// <summary>Optical flow, warping, the consistency check and the temporal loss on clips whose motion is known.</summary>
public class FlowTests
{
    [Fact]
    public void Pan_FlowIsTheTranslationWithinHalfAPixelInTheInterior()
    {
        TorchRuntime.EnsureLoaded();
        List<Tensor> frames = Clips.Pan(frames: 2, width: 96, height: 64, step: 3);
        try
        {
            // Frame 1 is frame 0 moved 3 px to the left: each pixel of frame 0 is found 3 px left in frame 1.
            using Tensor forward = OpticalFlow.Compute(frames[0], frames[1]);
            using Tensor backward = OpticalFlow.Compute(frames[1], frames[0]);
            Assert.Equal(new long[] { 1, 2, 64, 96 }, forward.shape);
            using Tensor fi = Interior(forward, 8);
            using Tensor bi = Interior(backward, 8);
            double fx = (fi.select(1, 0) + 3).abs().max().ToDouble(), fy = fi.select(1, 1).abs().max().ToDouble();
            double bx = (bi.select(1, 0) - 3).abs().max().ToDouble(), by = bi.select(1, 1).abs().max().ToDouble();
            Assert.True(fx < 0.5 && fy < 0.5, $"forward flow error up to {Clips.F(fx)} px in x, {Clips.F(fy)} px in y");
            Assert.True(bx < 0.5 && by < 0.5, $"backward flow error up to {Clips.F(bx)} px in x, {Clips.F(by)} px in y");
        }
        finally
        {
            frames.ForEach(f => f.Dispose());
        }
    }

    [Fact]
    public void Pan_WarpingThePreviousFrameGivesTheCurrentOneWhereReliable()
    {
        TorchRuntime.EnsureLoaded();
        List<Tensor> frames = Clips.Pan(frames: 2, width: 96, height: 64, step: 3);
        try
        {
            using Tensor forward = OpticalFlow.Compute(frames[0], frames[1]);
            using Tensor backward = OpticalFlow.Compute(frames[1], frames[0]);
            using Tensor reliable = OpticalFlow.Reliability(forward, backward);

            // The 3-px band entering on the right came from outside frame 0: unreliable (the flow there is
            // extrapolated, so a few pixels may pass); the interior reliable.
            using Tensor band = reliable.narrow(3, 93, 3);
            Assert.True(band.mean().ToDouble() <= 0.1, $"reliable share of the entering band {Clips.F(band.mean().ToDouble())}");
            using Tensor interior = Interior(reliable, 8);
            Assert.True(interior.mean().ToDouble() > 0.99, $"reliable share of the interior {Clips.F(interior.mean().ToDouble())}");

            double error = WarpingError.Compute(frames[1], frames[0], backward, reliable);
            using Tensor diff = (frames[1] - frames[0]).square().mean();
            Assert.True(error < 0.02 * diff.ToDouble(), $"warping error {Clips.F(error)}, plain frame difference {Clips.F(diff.ToDouble())}");
        }
        finally
        {
            frames.ForEach(f => f.Dispose());
        }
    }

    [Fact]
    public void Sprite_DisoccludedBandIsMaskedAndTheStillBackgroundIsNot()
    {
        TorchRuntime.EnsureLoaded();
        using Tensor background = Clips.Texture(64, 96, seed: 2);
        using Tensor sprite = Clips.Texture(20, 20, seed: 3);
        using Tensor prev = Clips.WithSprite(background, sprite, 30, 22);
        using Tensor cur = Clips.WithSprite(background, sprite, 36, 22);
        using Tensor forward = OpticalFlow.Compute(prev, cur);
        using Tensor backward = OpticalFlow.Compute(cur, prev);
        using Tensor reliable = OpticalFlow.Reliability(forward, backward);

        // Columns 30-35 of the sprite's rows were under the sprite in the previous frame and are background now.
        using Tensor band = reliable.narrow(2, 22, 20).narrow(3, 30, 6);
        double coveredShare = 1 - band.mean().ToDouble();
        Assert.True(coveredShare >= 0.9, $"the mask covers {Clips.F(coveredShare)} of the disoccluded band");

        // The background away from the sprite (12+ px) did not move: reliable.
        using Tensor left = reliable.narrow(3, 2, 14);
        Assert.True(left.mean().ToDouble() > 0.98, $"reliable share of the still background {Clips.F(left.mean().ToDouble())}");
    }

    [Fact]
    public void Warp_SamplesBilinearlyAtTheFlowAndRepeatsEdges()
    {
        TorchRuntime.EnsureLoaded();
        using Tensor image = torch.tensor(new float[] { 0, 1, 2, 3, 10, 11, 12, 13 }, [1, 1, 2, 4]);
        using Tensor flow = torch.zeros(1, 2, 2, 4);
        flow.select(1, 0).fill_(0.5);
        flow[0, 1, 0, 0] = torch.tensor(0.25f);
        using Tensor warped = OpticalFlow.Warp(image, flow);
        float[] got = warped.data<float>().ToArray();

        // (0,0) samples (x 0.5, y 0.25): 0.75·0.5 + 0.25·10.5; the last column samples past the edge: repeated.
        float[] expected = [3.0f, 1.5f, 2.5f, 3, 10.5f, 11.5f, 12.5f, 13];
        Assert.All(Enumerable.Range(0, 8), i => Assert.Equal(expected[i], got[i], 4));
    }

    [Fact]
    public void TemporalLoss_IsTheWeightedMeanSquareAndIgnoresMaskedPixels()
    {
        TorchRuntime.EnsureLoaded();
        using Tensor x = torch.full(1, 3, 2, 2, 0.5f).requires_grad_(true);
        using Tensor target = torch.zeros(1, 3, 2, 2);
        using Tensor weights = torch.tensor(new float[] { 1, 0, 0, 1 }, [1, 1, 2, 2]);
        using Tensor loss = TemporalLoss.Compute(x, target, weights);

        // Six of twelve values count, each 0.25: 1.5 / 12.
        Assert.Equal(0.125, loss.ToDouble(), 6);
        loss.backward();
        float[] grad = x.grad!.data<float>().ToArray();
        Assert.Equal(1.0 / 12, grad[0], 6);
        Assert.Equal(0, grad[1]);
    }

    private static Tensor Interior(Tensor t, int border) =>
        t.narrow(2, border, t.shape[2] - (2 * border)).narrow(3, border, t.shape[3] - (2 * border));
}
