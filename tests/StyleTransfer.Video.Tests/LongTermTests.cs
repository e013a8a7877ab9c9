using StyleTransfer.Cli;
using StyleTransfer.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Video.Tests;

/// <summary>Long-term consistency (Ruder et al.'s c_long over several previous frames): the weights, the start image, the loss, a region seen two frames ago, resuming, the option.</summary>
public class LongTermTests
{
    [Fact]
    public void Weights_AreEachReliabilityLessTheNearerOnesClampedAtZero()
    {
        TorchRuntime.EnsureLoaded();
        using Tensor c1 = torch.tensor(new float[] { 1, 0, 0, 1, 0.5f }, [1, 1, 1, 5]);
        using Tensor c2 = torch.tensor(new float[] { 1, 1, 0, 0, 1 }, [1, 1, 1, 5]);
        using Tensor c4 = torch.tensor(new float[] { 1, 1, 1, 0, 1 }, [1, 1, 1, 5]);
        List<Tensor> weights = LongTermConsistency.Weights([c1, c2, c4]);
        try
        {
            // c_long(t-1) = c1; c_long(t-2) = max(c2 - c1, 0); c_long(t-4) = max(c4 - c1 - c2, 0).
            Assert.Equal([1, 0, 0, 1, 0.5f], weights[0].data<float>().ToArray());
            Assert.Equal([0, 1, 0, 0, 0.5f], weights[1].data<float>().ToArray());
            Assert.Equal([0, 0, 1, 0, 0], weights[2].data<float>().ToArray());
        }
        finally
        {
            weights.ForEach(w => w.Dispose());
        }
    }

    [Fact]
    public void StartAndLoss_TakeEachPixelFromTheNearestFrameThatSeesIt()
    {
        TorchRuntime.EnsureLoaded();
        using Tensor content = torch.full(1, 1, 1, 3, 0.5f);
        using Tensor w1 = torch.full(1, 1, 1, 3, 0.1f);
        using Tensor w2 = torch.full(1, 1, 1, 3, 0.9f);
        using Tensor c1 = torch.tensor(new float[] { 1, 0, 0 }, [1, 1, 1, 3]);
        using Tensor c2 = torch.tensor(new float[] { 0, 1, 0 }, [1, 1, 1, 3]);
        using Tensor start = LongTermConsistency.Start(content, [w1, w2], [c1, c2]);
        float[] s = start.data<float>().ToArray();
        Assert.Equal(0.1f, s[0], 6);
        Assert.Equal(0.9f, s[1], 6);
        Assert.Equal(0.5f, s[2], 6);

        // x = 0.5 everywhere: (0.4² from frame t-1 at pixel 0 + 0.4² from t-2 at pixel 1) / 3 values.
        using Tensor x = torch.full(1, 1, 1, 3, 0.5f);
        using Tensor loss = LongTermConsistency.Loss(x, [w1, w2], [c1, c2]);
        Assert.Equal(2 * 0.16 / 3, loss.ToDouble(), 6);
    }

    /// <summary>
    /// A sprite steps right and back: frame 3 equals frame 1, and the band the sprite covered in
    /// frame 2 only (columns 50-55 of its rows) is disoccluded in frame 3. Short-term, frame 3
    /// repaints that band from the content; with offsets 1,2 it is held to frame 1's stylisation.
    /// </summary>
    [Fact]
    public void SpriteOccludesThenDisoccludes_LongTermBringsTheBandBackToItsEarlierStylisation()
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDir();
        string style = VideoRunTests.Style(dir);
        using Tensor background = Clips.Texture(64, 96, seed: 2);
        using Tensor sprite = Clips.Texture(20, 20, seed: 3);
        List<Tensor> frames = [Clips.WithSprite(background, sprite, 30, 22), Clips.WithSprite(background, sprite, 36, 22), Clips.WithSprite(background, sprite, 30, 22)];
        Clips.WriteFolder(dir.File("in"), frames);
        frames.ForEach(f => f.Dispose());

        // Frame 1 from noise, so its strokes are its own: content-started repainting does not find them again.
        StyleTransferOptions options = VideoRunTests.Tiny with { Size = 96, Iterations = 10, Init = InitMode.Noise };
        VideoSettings settings = VideoRunTests.TinySettings with { FrameIterations = 10 };
        _ = VideoStylizer.Run(dir.File("in"), [style], dir.File("short"), options, settings with { LongTerm = [1] });
        _ = VideoStylizer.Run(dir.File("in"), [style], dir.File("long"), options, settings with { LongTerm = [1, 2] });

        double BandChange(string run)
        {
            using Tensor first = ImageIO.LoadTensor(Path.Combine(dir.File(run), "frame-00001.png"), "frame", 96);
            using Tensor third = ImageIO.LoadTensor(Path.Combine(dir.File(run), "frame-00003.png"), "frame", 96);
            using Tensor band1 = first.narrow(2, 22, 20).narrow(3, 50, 6);
            using Tensor band3 = third.narrow(2, 22, 20).narrow(3, 50, 6);
            using Tensor d = (band3 - band1).square().mean();
            return d.ToDouble();
        }

        // Frame 1 is the same image in both runs (stylised as an image); the band's change to frame 3 is what differs.
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir.File("short"), "frame-00001.png")), File.ReadAllBytes(Path.Combine(dir.File("long"), "frame-00001.png")));
        double shortTerm = BandChange("short"), longTerm = BandChange("long");
        Assert.True(longTerm < 0.2 * shortTerm, $"band's mean square change frame 1 -> 3: long-term {Clips.F(longTerm)}, short-term {Clips.F(shortTerm)}");
    }

    [Fact]
    public void Resume_WithLongTerm_EndsWithTheFramesOfAnUninterruptedRun()
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDir();
        string style = VideoRunTests.Style(dir);
        List<Tensor> frames = Clips.Pan(frames: 5, width: 64, height: 48, step: 2);
        Clips.WriteFolder(dir.File("in"), frames);
        frames.ForEach(f => f.Dispose());
        VideoSettings settings = VideoRunTests.TinySettings with { LongTerm = [2, 3] };

        VideoResult whole = VideoStylizer.Run(dir.File("in"), [style], dir.File("whole"), VideoRunTests.Tiny, settings);
        Assert.Equal(5, whole.Reports.Count);

        using var stop = new CancellationTokenSource();
        VideoResult first = VideoStylizer.Run(dir.File("in"), [style], dir.File("parts"), VideoRunTests.Tiny, settings, frameDone: r =>
        {
            if (r.Frame == 3)
            {
                stop.Cancel();
            }
        }, cancellation: stop.Token);
        Assert.True(first.Cancelled);
        VideoResult second = VideoStylizer.Run(dir.File("in"), [style], dir.File("parts"), VideoRunTests.Tiny, settings);
        Assert.Equal((3, false), (second.Resumed, second.Cancelled));
        Assert.Equal([4, 5], second.Reports.Select(r => r.Frame));
        for (int i = 1; i <= 5; i++)
        {
            string name = VideoStylizer.FrameName(i, 5);
            Assert.True(File.ReadAllBytes(Path.Combine(dir.File("whole"), name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir.File("parts"), name))), $"{name} differs after resuming");
        }
    }

    [Fact]
    public void Settings_OffsetsAddOneSortAndAreBounded()
    {
        Assert.Equal([1, 2, 4], new VideoSettings { LongTerm = VideoSettings.ParseLongTerm("4, 2") }.Offsets);
        Assert.Equal([1, 2, 4], new VideoSettings().Offsets);
        Assert.Equal([1], new VideoSettings { LongTerm = null }.Offsets);
        var e = Assert.Throws<StyleTransferException>(() => new VideoSettings { LongTerm = [1, 33] }.Validate());
        Assert.Equal("--long-term: frame offsets must be from 1 to 32, not 33", e.Message);
        e = Assert.Throws<StyleTransferException>(() => new VideoSettings { LongTerm = [1, 2, 3, 4, 5, 6, 7, 8, 9] }.Validate());
        Assert.Equal("--long-term: at most 8 frame offsets, not 9", e.Message);
    }

    [Theory]
    [InlineData("0", "error: --long-term: frame offsets must be from 1 to 32, not 0")]
    [InlineData("1,x", "error: --long-term: '1,x' is not a comma-separated list of frame offsets such as 1,2,4")]
    [InlineData("2,,4", "error: --long-term: '2,,4' is not a comma-separated list of frame offsets such as 1,2,4")]
    public void Cli_BadLongTerm_OneLineExit2AndNothingWritten(string value, string message)
    {
        using var dir = new TempDir();
        string style = VideoRunTests.Style(dir);
        List<Tensor> frames = Clips.Pan(frames: 2, width: 64, height: 48, step: 2);
        Clips.WriteFolder(dir.File("in"), frames);
        frames.ForEach(f => f.Dispose());
        string[] before = dir.Entries();

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["video", dir.File("in"), style, "-o", dir.File("out"), "--size", "64", "--threads", "1", "--long-term", value], stdout, stderr);
        Assert.Equal(2, code);
        Assert.Equal(message + "\n", stderr.ToString().Replace("\r\n", "\n", StringComparison.Ordinal));
        Assert.Equal(before, dir.Entries());
    }
}
