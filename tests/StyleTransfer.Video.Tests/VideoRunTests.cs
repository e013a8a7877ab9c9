using System.Diagnostics;
using StyleTransfer.Cli;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using static TorchSharp.torch;

namespace StyleTransfer.Video.Tests;

/// <summary>`stylize video` end to end on tiny clips: resuming, ffmpeg in and out, the temporal method against frame by frame.</summary>
public class VideoRunTests
{
    /// <summary>ResNet-18 (bundled) at 64 px, single scale, few iterations: fast, and deterministic with one thread.</summary>
    internal static StyleTransferOptions Tiny => NetworkFactory.DefaultOptions("resnet18") with { Size = 64, Iterations = 8, Scales = 1, Seed = 5, Threads = 1 };

    internal static VideoSettings TinySettings => new() { FrameIterations = 4 };

    internal static string Style(TempDir dir)
    {
        using Tensor style = Clips.Texture(64, 64, seed: 9);
        ImageIO.Save(style, dir.File("style.png"));
        return dir.File("style.png");
    }

    /// <summary>A 4-frame 64×48 pan written to DIR/in; returns the style image's path.</summary>
    private static string PanClip(TempDir dir)
    {
        List<Tensor> frames = Clips.Pan(frames: 4, width: 64, height: 48, step: 2);
        Clips.WriteFolder(dir.File("in"), frames);
        frames.ForEach(f => f.Dispose());
        return Style(dir);
    }

    [Fact]
    public void Resume_AfterAStopAtFrame2_RedoesNothingAndEndsWithTheFramesOfAnUninterruptedRun()
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDir();
        string style = PanClip(dir);

        VideoResult whole = VideoStylizer.Run(dir.File("in"), [style], dir.File("whole"), Tiny, TinySettings);
        Assert.Equal((4, 0, 4, false), (whole.Frames, whole.Resumed, whole.Reports.Count, whole.Cancelled));

        using var stop = new CancellationTokenSource();
        VideoResult first = VideoStylizer.Run(dir.File("in"), [style], dir.File("parts"), Tiny, TinySettings, frameDone: r =>
        {
            if (r.Frame == 2)
            {
                stop.Cancel();
            }
        }, cancellation: stop.Token);
        Assert.True(first.Cancelled);
        Assert.Equal([1, 2], first.Reports.Select(r => r.Frame));
        string[] names = [.. Directory.GetFiles(dir.File("parts"), "frame-*.png").Select(Path.GetFileName).Order(StringComparer.Ordinal)!];
        Assert.Equal(["frame-00001.png", "frame-00002.png"], names);
        byte[] frame2 = File.ReadAllBytes(Path.Combine(dir.File("parts"), "frame-00002.png"));

        VideoResult second = VideoStylizer.Run(dir.File("in"), [style], dir.File("parts"), Tiny with { Seed = null }, TinySettings);
        Assert.Equal((4, 2, false), (second.Frames, second.Resumed, second.Cancelled));
        Assert.Equal([3, 4], second.Reports.Select(r => r.Frame));
        Assert.Equal(5, second.Seed);
        Assert.Equal(frame2, File.ReadAllBytes(Path.Combine(dir.File("parts"), "frame-00002.png")));
        for (int i = 1; i <= 4; i++)
        {
            string name = VideoStylizer.FrameName(i, 4);
            Assert.True(File.ReadAllBytes(Path.Combine(dir.File("whole"), name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir.File("parts"), name))), $"{name} differs after resuming");
        }
    }

    [Fact]
    public void Temporal_FlickersLessThanFrameByFrame()
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDir();
        string style = PanClip(dir);

        // Noise start: each independent frame finds its own optimum.
        StyleTransferOptions options = Tiny with { Init = InitMode.Noise };
        VideoResult independent = VideoStylizer.Run(dir.File("in"), [style], dir.File("a"), options, TinySettings with { Method = VideoMethod.Independent, Report = true });
        VideoResult temporal = VideoStylizer.Run(dir.File("in"), [style], dir.File("b"), options, TinySettings with { Report = true });
        double a = independent.Reports.Skip(1).Average(r => r.WarpingError!.Value);
        double b = temporal.Reports.Skip(1).Average(r => r.WarpingError!.Value);
        Assert.Null(temporal.Reports[0].WarpingError);
        Assert.All(temporal.Reports, r => Assert.True(r.StyleLoss > 0));
        Assert.True(b < 0.3 * a, $"warping error: temporal {Clips.F(b)}, frame by frame {Clips.F(a)}");
    }

    [Fact]
    public void Cli_Mp4InMp4Out_KeepsFrameRateFramesAndAudio()
    {
        using var dir = new TempDir();
        string style = Style(dir);
        List<Tensor> frames = Clips.Pan(frames: 4, width: 64, height: 48, step: 2);
        Clips.WriteVideo(dir.File("in.mp4"), frames, "15", audio: true);
        frames.ForEach(f => f.Dispose());

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["video", dir.File("in.mp4"), style, "-o", dir.File("out.mp4"), "--size", "64", "-n", "6", "--scales", "1", "--frame-iterations", "3", "--threads", "1", "--seed", "2", "--report"], stdout, stderr);
        Assert.True(code == 0, stderr.ToString());
        Dictionary<string, string> v = Clips.Probe(dir.File("out.mp4"), "v");
        Assert.Equal(("h264", "64", "48", "15/1", "4"), (v["codec_name"], v["width"], v["height"], v["r_frame_rate"], v["nb_read_packets"]));
        Assert.Equal("aac", Clips.Probe(dir.File("out.mp4"), "a")["codec_name"]);
        Assert.Matches(@"report: warping_error_mean=\d\.\d{4}e[-+]\d\d over 3 frame pairs; style_loss_mean=\d\.\d{3}e[-+]\d\d over 4 frames", stdout.ToString());
        Assert.Equal(["in.mp4", "out.mp4", "out.mp4.frames", "out.mp4.frames/.stylize-video.json", "out.mp4.frames/frame-00001.png", "out.mp4.frames/frame-00002.png", "out.mp4.frames/frame-00003.png", "out.mp4.frames/frame-00004.png", "style.png"], dir.Entries());
    }
}
