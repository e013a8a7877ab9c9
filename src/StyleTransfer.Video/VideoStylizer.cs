using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using StyleTransfer.Imaging;
using StyleTransfer.Losses;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Video;

/// <summary>One finished frame.</summary>
/// <param name="Frame">1-based.</param>
/// <param name="Frames">Frames in the clip.</param>
/// <param name="Iterations">Optimiser iterations this frame ran (all scales).</param>
/// <param name="Seconds">Wall time of the frame (flow, optimisation, writing, measuring).</param>
/// <param name="Loss">The final total loss (the temporal term included).</param>
/// <param name="WarpingError">With <see cref="VideoSettings.Report"/>, from frame 2 on: see <see cref="Video.WarpingError"/>.</param>
/// <param name="StyleLoss">With <see cref="VideoSettings.Report"/>: the frame's style loss against the first style image.</param>
public sealed record FrameReport(int Frame, int Frames, int Iterations, double Seconds, double Loss, double? WarpingError, double? StyleLoss)
{
    /// <summary>With <see cref="VideoSettings.Report"/>, from frame 3 on: the warping error against frame t−2 (what long-term consistency holds).</summary>
    public double? WarpingError2 { get; init; }
}

/// <summary>What a video run did.</summary>
/// <param name="Frames">Frames in the clip.</param>
/// <param name="Resumed">Frames found finished in the frames folder and not redone.</param>
/// <param name="Reports">The frames stylised in this run.</param>
/// <param name="Cancelled">Stopped through the cancellation token: the frame in progress was dropped (a later run redoes it).</param>
/// <param name="FramesFolder">The frames folder (the state of the run).</param>
/// <param name="Written">The video file written, or null (frames output, or stopped).</param>
/// <param name="Seed">The seed the frames use.</param>
public sealed record VideoResult(int Frames, int Resumed, IReadOnlyList<FrameReport> Reports, bool Cancelled, string FramesFolder, string? Written, long Seed);

/// <summary>
/// Video style transfer after Ruder, Dosovitskiy &amp; Brox (GCPR 2016): frame 1 stylised as an
/// image; frame t started from frame t−1's result warped along the content's optical flow (the
/// content frame where the flow is unreliable) and optimised with the short-term temporal loss
/// (and, with <see cref="VideoSettings.LongTerm"/>, the long-term one: <see cref="LongTermConsistency"/>).
/// The frames folder is the state: a run resumes at the first missing frame; a video output is
/// encoded from the frames at the end, atomically.
/// </summary>
public static class VideoStylizer
{
    /// <summary>The file in a frames folder that says which run its frames belong to.</summary>
    public const string StateFile = ".stylize-video.json";

    public static VideoResult Run(
        string input,
        IReadOnlyList<string> stylePaths,
        string output,
        StyleTransferOptions options,
        VideoSettings settings,
        IProgress<IterationReport>? progress = null,
        Action<FrameReport>? frameDone = null,
        CancellationToken cancellation = default,
        Action<string>? log = null)
    {
        options.Validate(stylePaths.Count);
        settings.Validate();

        // Everything is checked before anything is written.
        string ext = Path.GetExtension(output).ToLowerInvariant();
        bool videoOut = VideoWriter.Extensions.Contains(ext);
        if (!videoOut && ext.Length > 0 && !Directory.Exists(output))
        {
            throw new StyleTransferException($"output '{output}': unsupported type '{ext}' (a video: {string.Join(", ", VideoWriter.Extensions)}; or a folder for PNG frames)");
        }

        bool folderIn = Directory.Exists(input);
        if (!folderIn && !File.Exists(input))
        {
            throw new StyleTransferException($"input '{input}' does not exist");
        }

        Ffmpeg? tools = !folderIn || videoOut ? Ffmpeg.Find(settings.SearchPath) : null;
        string[] styleNames = [.. stylePaths.Select((_, i) => Stylizer.StyleName(stylePaths.Count, i))];
        int[] styleEdges = [.. stylePaths.Select((p, i) => Stylizer.StyleEdge(options, p, styleNames[i]))];

        foreach (StyleMask m in options.StyleMasks ?? [])
        {
            _ = ImageIO.Probe(m.Path, $"mask for style image {m.Style + 1}");
        }

        VideoInfo? info = null;
        int width, height, count;
        if (folderIn)
        {
            using FolderFrameSource probe = FolderFrameSource.Open(input, options.Size, settings.MaxFrames);
            (width, height, count) = (probe.Width, probe.Height, probe.Count);
        }
        else
        {
            info = tools!.Probe(input);
            if ((long)info.Width * info.Height > ImageIO.MaxInputPixels)
            {
                throw new StyleTransferException($"'{input}' is {info.Width}x{info.Height}: too large");
            }

            (width, height) = ImageIO.ScaledSize(info.Width, info.Height, options.Size);
            count = Math.Min(info.Frames, settings.MaxFrames ?? int.MaxValue);
        }

        string frames = videoOut ? output + ".frames" : output;
        if (videoOut)
        {
            AtomicFile.CheckPath(output, "output");
        }

        bool existing = Directory.Exists(frames);
        AtomicFile.CheckPath(existing ? Path.Combine(frames, FrameName(1, count)) : frames, existing ? "frames" : "output");
        List<(string What, string Path)> inputs = [("input", input), .. stylePaths.Select((s, i) => (styleNames[i], s)), .. (options.StyleMasks ?? []).Select(m => ("mask", m.Path))];
        OutputPaths.CheckDistinct(videoOut ? [("-o", output), ("the frames folder", frames)] : [("-o", output)], inputs);

        string fingerprint = Fingerprint(input, stylePaths, options, settings, width, height, count);
        long seed = options.Seed ?? Random.Shared.NextInt64(0, int.MaxValue);
        if (existing)
        {
            seed = CheckState(frames, fingerprint, options.Seed) ?? seed;
        }

        options = options with { Seed = seed };
        string rate = info?.FrameRate ?? settings.FolderFrameRate.ToString("0.######", CultureInfo.InvariantCulture);

        TorchRuntime.SetThreads(options.Threads);
        Device device = TorchRuntime.ResolveDevice(options.Device);
        var loaded = new List<Tensor>();
        try
        {
            List<Tensor> styles = [.. stylePaths.Select((p, i) => Keep(loaded, ImageIO.LoadTensor(p, styleNames[i], styleEdges[i])))];
            Tensor?[]? masks = options.StyleMasks is null ? null : new Tensor?[stylePaths.Count];
            foreach (StyleMask m in options.StyleMasks ?? [])
            {
                masks![m.Style] = Keep(loaded, ImageIO.LoadTensor(m.Path, $"mask for style image {m.Style + 1}", options.Size));
            }

            using IFeatureNetwork network = NetworkFactory.Create(options, device);

            // The frames folder appears with the first finished frame, so a run that fails before it leaves nothing.
            void CreateFolder()
            {
                if (existing)
                {
                    return;
                }

                try
                {
                    Directory.CreateDirectory(frames);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new StyleTransferException($"cannot create the frames folder '{frames}' ({e.Message.Split('\n')[0]})");
                }

                AtomicFile.Write(Path.Combine(frames, StateFile), s => JsonSerializer.Serialize(s, new State(fingerprint, seed)));
                existing = true;
            }

            int first = 1;
            while (first <= count && File.Exists(Path.Combine(frames, FrameName(first, count))))
            {
                first++;
            }

            if (first > 1)
            {
                log?.Invoke($"resuming: frames 1-{first - 1} of {count} found in {frames}");
            }

            var reports = new List<FrameReport>();
            bool cancelled = false;

            // The frames the offsets in use reach back to (two for the report's t−2 warping error): content and result.
            int keep = Math.Max(settings.Offsets[^1], settings.Report ? 2 : 1);
            var contents = new Dictionary<int, Tensor>();
            var outputs = new Dictionary<int, Tensor>();
            void Forget(int before)
            {
                foreach (Dictionary<int, Tensor> d in new[] { contents, outputs })
                {
                    foreach (int k in d.Keys.Where(k => k < before).ToList())
                    {
                        d[k].Dispose();
                        d.Remove(k);
                    }
                }
            }

            try
            {
                using IFrameSource? source = first > count ? null : folderIn ? FolderFrameSource.Open(input, options.Size, settings.MaxFrames) : new FfmpegFrameSource(tools!, input, width, height, count);
                for (int t = 1; source != null && t <= count; t++)
                {
                    Tensor? cur = source.Next();
                    if (cur is null)
                    {
                        count = t - 1;
                        break;
                    }

                    if (t < first)
                    {
                        contents[t] = cur;
                        Forget(t + 1 - keep);
                        continue;
                    }

                    if (cancellation.IsCancellationRequested)
                    {
                        cur.Dispose();
                        cancelled = true;
                        break;
                    }

                    // Previous results not made in this run (resuming) are read back from their PNGs, exactly what an uninterrupted run holds.
                    var previous = new List<PreviousFrame>();
                    for (int j = 1; j <= keep && t - j >= 1; j++)
                    {
                        if (!outputs.ContainsKey(t - j))
                        {
                            outputs[t - j] = ImageIO.LoadTensor(Path.Combine(frames, FrameName(t - j, count)), "frame", Math.Max(width, height));
                        }

                        previous.Add(new PreviousFrame(j, contents[t - j], outputs[t - j]));
                    }

                    var clock = Stopwatch.StartNew();
                    FrameReport? report = StylizeFrame(t, count, cur, previous, styles, masks, network, options, settings, frames, CreateFolder, progress, cancellation, out Tensor? written);
                    if (report is null)
                    {
                        cur.Dispose();
                        cancelled = true;
                        break;
                    }

                    report = report with { Seconds = clock.Elapsed.TotalSeconds };
                    reports.Add(report);
                    frameDone?.Invoke(report);
                    contents[t] = cur;
                    outputs[t] = written!;
                    Forget(t + 1 - keep);
                }
            }
            finally
            {
                Forget(int.MaxValue);
            }

            string? writtenVideo = null;
            if (!cancelled && videoOut)
            {
                if (count < 1)
                {
                    throw new StyleTransferException($"'{input}' holds no video frames");
                }

                string[] list = [.. Enumerable.Range(1, count).Select(i => Path.Combine(frames, FrameName(i, count)))];
                VideoWriter.Write(tools!, list, width, height, rate, output, folderIn ? null : input, info?.AudioCodec);
                writtenVideo = output;
            }

            return new VideoResult(count, first - 1, reports, cancelled, frames, writtenVideo, seed);
        }
        finally
        {
            loaded.ForEach(t => t.Dispose());
        }
    }

    /// <summary>frame-00001.png: five digits at least, more when the clip needs them, so names sort in order.</summary>
    public static string FrameName(int frame, int count) => "frame-" + frame.ToString(new string('0', Math.Max(5, count.ToString(CultureInfo.InvariantCulture).Length)), CultureInfo.InvariantCulture) + ".png";

    /// <summary>Stylises frame <paramref name="t"/> and writes it; null when cancelled (nothing written).</summary>
    /// <param name="previous">The previous frames the offsets in use (and the report) need, nearest first.</param>
    private static FrameReport? StylizeFrame(
        int t,
        int count,
        Tensor cur,
        IReadOnlyList<PreviousFrame> previous,
        List<Tensor> styles,
        Tensor?[]? masks,
        IFeatureNetwork network,
        StyleTransferOptions options,
        VideoSettings settings,
        string frames,
        Action beforeWrite,
        IProgress<IterationReport>? progress,
        CancellationToken cancellation,
        out Tensor? written)
    {
        written = null;
        using var scope = torch.NewDisposeScope();
        bool temporal = settings.Method == VideoMethod.Temporal && t > 1;

        // The content's flow from frame t back to t−j and its reliability (forward-backward check), per offset, computed once.
        var pairs = new Dictionary<int, (Tensor Backward, Tensor Reliable)>();
        (Tensor Backward, Tensor Reliable) Pair(PreviousFrame p)
        {
            if (!pairs.TryGetValue(p.Offset, out (Tensor, Tensor) pair))
            {
                Tensor backward = OpticalFlow.Compute(cur, p.Content);
                Tensor forward = OpticalFlow.Compute(p.Content, cur);
                pair = (backward, OpticalFlow.Reliability(forward, backward));
                pairs[p.Offset] = pair;
            }

            return pair;
        }

        StyleTransferOptions frameOptions = options;
        RunHooks? hooks = null;
        if (temporal)
        {
            List<PreviousFrame> used = [.. previous.Where(p => settings.Offsets.Contains(p.Offset))];
            List<Tensor> warped = [.. used.Select(p => OpticalFlow.Warp(p.Output, Pair(p).Backward))];
            List<Tensor> weights = LongTermConsistency.Weights([.. used.Select(p => Pair(p).Reliable)]);
            Tensor start = LongTermConsistency.Start(cur, warped, weights);
            List<Tensor> targets = warped;
            if (options.PreserveColor == ColorPreservationMode.Luminance)
            {
                // The optimised image is the luminance, replicated: hold that to the previous results'.
                start = ColorPreservation.Luminance(start).expand(-1, 3, -1, -1).contiguous();
                targets = [.. warped.Select(w => ColorPreservation.Luminance(w).expand(-1, 3, -1, -1).contiguous())];
            }

            List<Tensor> targetsOnDevice = [.. targets.Select(w => w.to(network.Device))];
            List<Tensor> weightsOnDevice = [.. weights.Select(c => c.to(network.Device))];
            double lambda = settings.TemporalWeight;
            hooks = new RunHooks(start, x => LongTermConsistency.Loss(x, targetsOnDevice, weightsOnDevice) * lambda);
            frameOptions = options with { Scales = 1, Iterations = settings.FrameIterations };
        }

        using StylizeResult result = Stylizer.Run(cur, styles, network, frameOptions, masks, progress, cancellation, null, null, null, hooks);
        if (result.Cancelled)
        {
            return null;
        }

        Tensor image = FrameTensor.Quantize(result.Image);
        beforeWrite();
        ImageIO.Save(image, Path.Combine(frames, FrameName(t, count)));
        double? ErrorAt(int offset) => settings.Report && previous.FirstOrDefault(p => p.Offset == offset) is { } p
            ? WarpingError.Compute(image, p.Output, Pair(p).Backward, Pair(p).Reliable)
            : null;
        double? warpingError = ErrorAt(1), warpingError2 = ErrorAt(2);
        double? styleLoss = settings.Report ? Stylizer.MeasureStyleLoss(network, image, styles[0], options) : null;
        written = image.MoveToOuterDisposeScope();
        double loss = result.History.Count > 0 ? result.History[^1].Total : double.NaN;
        return new FrameReport(t, count, result.History.Count, 0, loss, warpingError, styleLoss) { WarpingError2 = warpingError2 };
    }

    private sealed record State(string Fingerprint, long Seed);

    /// <summary>What the frames of a run depend on: the input, the styles, the per-frame options and the video settings (not the seed, threads or device).</summary>
    private static string Fingerprint(string input, IReadOnlyList<string> styles, StyleTransferOptions options, VideoSettings settings, int width, int height, int count)
    {
        long inputSize = Directory.Exists(input) ? Directory.EnumerateFiles(input).Count() : new FileInfo(input).Length;
        var what = new
        {
            Input = Path.GetFullPath(input),
            InputSize = inputSize,
            Styles = styles.Select(Path.GetFullPath).ToArray(),
            Width = width,
            Height = height,
            Count = count,
            Options = JsonSerializer.Serialize(options with { Seed = null, Threads = null, Device = "" }),
            Settings = JsonSerializer.Serialize(settings with { Report = false, SearchPath = null }),
        };
        return JsonSerializer.Serialize(what);
    }

    /// <summary>The seed of an existing frames folder's run; a one-line error when the folder belongs to another run or to nobody.</summary>
    private static long? CheckState(string frames, string fingerprint, long? givenSeed)
    {
        string statePath = Path.Combine(frames, StateFile);
        if (!File.Exists(statePath))
        {
            bool empty;
            try
            {
                empty = !Directory.EnumerateFileSystemEntries(frames).Any();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new StyleTransferException($"cannot read the frames folder '{frames}' ({e.Message.Split('\n')[0]})");
            }

            return empty ? null : throw new StyleTransferException($"'{frames}' exists and is not a frames folder of stylize video (no {StateFile}); choose another -o");
        }

        State? state;
        try
        {
            var file = new FileInfo(statePath);
            state = file.Length > 1 << 20 ? null : JsonSerializer.Deserialize<State>(File.ReadAllText(statePath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            state = null;
        }

        if (state is null || state.Fingerprint != fingerprint || (givenSeed is long s && s != state.Seed))
        {
            throw new StyleTransferException($"'{frames}' holds frames of another run (other input, styles, options or seed): remove it to start again, or choose another -o");
        }

        return state.Seed;
    }

    private static Tensor Keep(List<Tensor> list, Tensor t)
    {
        list.Add(t);
        return t;
    }
}
