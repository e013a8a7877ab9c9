using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using StyleTransfer.Video;

namespace StyleTransfer.Cli;

/// <summary>
/// `stylize video IN STYLE [STYLE…] -o OUT`: a video (or a folder of numbered frames) stylised frame
/// by frame with temporal consistency (<see cref="VideoStylizer"/>). Every per-frame option of the
/// image command applies (the shared <see cref="OptionSet"/>, style blends and masks).
/// </summary>
internal sealed class VideoCommand
{
    public readonly Argument<string> Input = new("IN") { Description = "Video file (mp4, mov, webm, gif, ...) or a folder of numbered frames (PNG/JPEG)" };
    public readonly Argument<string[]> Style = new("STYLE") { Description = "Style image(s)", Arity = ArgumentArity.OneOrMore };
    public readonly Option<string> Output = new("--output", "-o") { Description = "Output video (.mp4 H.264, .webm, .gif; frames kept in OUT.frames/) or a folder of PNG frames", Required = true };
    public readonly Option<VideoMethod> Method = Binding.EnumOption<VideoMethod>("--method", $"temporal (Ruder et al.: warped previous result and temporal loss) or independent (each frame as an image) [default: {LibraryDefaults.Text(new VideoSettings().Method)}]");
    public readonly Option<double> TemporalWeight = new("--temporal-weight") { Description = "λ_t, weight of the temporal loss", DefaultValueFactory = _ => VideoSettings.DefaultTemporalWeight };
    public readonly Option<int> FrameIterations = new("--frame-iterations") { Description = "Iterations for every frame after the first, which runs the image options", DefaultValueFactory = _ => VideoSettings.DefaultFrameIterations };
    public readonly Option<int?> Frames = new("--frames") { Description = "Stylise only the first N frames" };
    public readonly Option<double> Fps = new("--fps") { Description = "Frame rate of a video made from a folder of frames (a video input keeps its own)", DefaultValueFactory = _ => VideoSettings.DefaultFolderFrameRate };
    public readonly Option<string> LongTerm = new("--long-term") { Description = "Long-term consistency (Ruder et al.): comma-separated frame offsets j; frame t is held to frames t-j warped into it, each where no nearer frame sees the pixel; 1: short-term only", DefaultValueFactory = _ => string.Join(',', VideoSettings.DefaultLongTerm) };
    public readonly Option<bool> Report = new("--report") { Description = "Print each frame's temporal warping error (flicker) and style loss, and their means" };

    private readonly OptionSet set = new();
    private readonly StyleInputOptions styles = new();

    public VideoCommand()
    {
        Command = new Command("video", "Stylise a video with temporal consistency (optical flow, occlusions; Ruder et al. 2016); resumable: run it again after a stop")
        {
            Input, Style, Output, Method, TemporalWeight, FrameIterations, LongTerm, Frames, Fps, Report,
        };

        // Per-frame options: all of the image command's but the snapshots (the frames folder is the state).
        set.AddTo(Command, set.SaveEvery);
        styles.AddTo(Command);
        set.AddPipelineTo(Command);
    }

    public Command Command { get; }

    public int Run(ParseResult p, TextWriter stdout, bool interactive, CancellationToken cancellation)
    {
        string input = p.GetRequiredValue(Input);
        string[] stylePaths = p.GetRequiredValue(Style);
        string output = p.GetRequiredValue(Output);
        StyleTransferOptions options = styles.Apply(p, set.Build(p), stylePaths);
        var settings = new VideoSettings
        {
            Method = p.ValueOr(Method, new VideoSettings().Method),
            TemporalWeight = p.GetValue(TemporalWeight),
            FrameIterations = p.GetValue(FrameIterations),
            MaxFrames = p.GetValue(Frames),
            FolderFrameRate = p.GetValue(Fps),
            Report = p.GetValue(Report),
            LongTerm = VideoSettings.ParseLongTerm(p.GetValue(LongTerm)!),
        }.Validate();

        string version = TorchRuntime.EnsureLoaded();
        stdout.WriteLine($"stylize video: {settings.Method.ToString().ToLowerInvariant()}, {options.Network} ({NetworkFactory.Describe(options)}), libtorch {version}, {options.Device}, {options.Threads ?? Environment.ProcessorCount} thread(s)");
        using var stop = new StopSignals(cancellation);
        var later = new List<double>();
        VideoResult result = interactive
            ? WithProgressBar(input, stylePaths, output, options, settings, stdout, stop.Token)
            : VideoStylizer.Run(input, stylePaths, output, options, settings, null, r => stdout.WriteLine(FrameLine(r) + Eta(r, later)), stop.Token, stdout.WriteLine);

        if (settings.Report)
        {
            PrintReport(result, stdout);
        }

        if (result.Cancelled)
        {
            stdout.WriteLine($"stopped ({stop.Name}): {result.Resumed + result.Reports.Count} of {result.Frames} frames are in {result.FramesFolder}; run the same command again to continue");
            return stop.ExitCode;
        }

        stdout.WriteLine(result.Written is { } w
            ? $"wrote {w} ({result.Frames} frames; frames in {result.FramesFolder}); seed {result.Seed}"
            : $"wrote {result.Frames} frames to {result.FramesFolder}; seed {result.Seed}");
        return CliApp.ExitOk;
    }

    private static VideoResult WithProgressBar(string input, string[] stylePaths, string output, StyleTransferOptions options, VideoSettings settings, TextWriter stdout, CancellationToken token)
    {
        VideoResult? result = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask("preparing", maxValue: 1);
                int frame = 1, frames = 1;
                var progress = new Progress(r => task.Description = $"frame {frame}/{frames} iter {r.Iteration}/{r.Iterations} loss {CliApp.G(r.Total)}");
                result = VideoStylizer.Run(input, stylePaths, output, options, settings, progress, r =>
                {
                    (frame, frames) = (r.Frame + 1, r.Frames);
                    task.MaxValue = r.Frames;
                    task.Value = r.Frame;
                    AnsiConsole.MarkupLine(Markup.Escape(FrameLine(r)));
                }, token, line => AnsiConsole.MarkupLine(Markup.Escape(line)));
            });
        return result!;
    }

    /// <summary>"; eta 00:01:40": the frames left × the mean time of the later frames done so far (the first frame runs the image options and is slower).</summary>
    private static string Eta(FrameReport r, List<double> later)
    {
        if (r.Frame > 1)
        {
            later.Add(r.Seconds);
        }

        return later.Count == 0 || r.Frame == r.Frames ? "" : $"; eta {TimeSpan.FromSeconds(later.Average() * (r.Frames - r.Frame)):hh\\:mm\\:ss}";
    }

    private static string FrameLine(FrameReport r)
    {
        string line = string.Create(CultureInfo.InvariantCulture, $"frame {r.Frame}/{r.Frames}: {r.Iterations} iterations, {r.Seconds:F1} s, loss {CliApp.G(r.Loss)}");
        if (r.WarpingError is double e)
        {
            line += string.Create(CultureInfo.InvariantCulture, $", warping_error={e:0.0000e+00}");
        }

        if (r.WarpingError2 is double e2)
        {
            line += string.Create(CultureInfo.InvariantCulture, $", warping_error_2={e2:0.0000e+00}");
        }

        if (r.StyleLoss is double s)
        {
            line += string.Create(CultureInfo.InvariantCulture, $", style_loss={s:0.000e+00}");
        }

        return line;
    }

    private static void PrintReport(VideoResult result, TextWriter stdout)
    {
        double[] errors = [.. result.Reports.Where(r => r.WarpingError is double e && double.IsFinite(e)).Select(r => r.WarpingError!.Value)];
        double[] losses = [.. result.Reports.Where(r => r.StyleLoss is not null).Select(r => r.StyleLoss!.Value)];
        double[] seconds = [.. result.Reports.Skip(1).Select(r => r.Seconds)];
        double[] errors2 = [.. result.Reports.Where(r => r.WarpingError2 is double e && double.IsFinite(e)).Select(r => r.WarpingError2!.Value)];
        string Mean(double[] v, string format) => v.Length == 0 ? "n/a" : v.Average().ToString(format, CultureInfo.InvariantCulture);
        stdout.WriteLine($"report: warping_error_mean={Mean(errors, "0.0000e+00")} over {errors.Length} frame pairs; style_loss_mean={Mean(losses, "0.000e+00")} over {losses.Length} frames; first frame {(result.Reports.FirstOrDefault(r => r.Frame == 1) is { } f ? f.Seconds.ToString("F1", CultureInfo.InvariantCulture) + " s" : "n/a")}, later frames {Mean(seconds, "F1")} s each; warping_error_2_mean={Mean(errors2, "0.0000e+00")} over {errors2.Length} pairs t-2 -> t");
    }

    private sealed class Progress(Action<IterationReport> action) : IProgress<IterationReport>
    {
        public void Report(IterationReport value) => action(value);
    }
}
