using StyleTransfer.Imaging;
using StyleTransfer.Losses;
using StyleTransfer.Networks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Optimization;

/// <summary>One optimiser iteration, as reported to progress displays and logs.</summary>
/// <param name="Iteration">1-based.</param>
/// <param name="Iterations">Iterations of the whole run, over every scale.</param>
/// <param name="Total">α·content + β·style + tv.</param>
/// <param name="Content">Unweighted content loss.</param>
/// <param name="Style">Unweighted style loss Σ w_l E_l.</param>
/// <param name="Tv">Unweighted total variation.</param>
/// <param name="Elapsed">Since the optimisation started (targets excluded).</param>
/// <param name="Evaluations">Forward/backward passes so far (a line search makes several per iteration).</param>
/// <param name="Scale">1-based scale of a coarse-to-fine run (1 when single-scale); losses are comparable within a scale only.</param>
/// <param name="Scales">Number of scales.</param>
public sealed record IterationReport(int Iteration, int Iterations, double Total, double Content, double Style, double Tv, TimeSpan Elapsed, int Evaluations, int Scale = 1, int Scales = 1);

/// <summary>What a run produced.</summary>
internal sealed class StylizeResult : IDisposable
{
    internal StylizeResult(Tensor image, IReadOnlyList<IterationReport> history, long seed, bool cancelled)
    {
        Image = image;
        History = history;
        Seed = seed;
        Cancelled = cancelled;
    }

    /// <summary>[1,3,H,W], RGB, on the CPU, clamped to [0,1].</summary>
    public Tensor Image { get; }

    public IReadOnlyList<IterationReport> History { get; }

    /// <summary>The seed used (the given one, or the one picked).</summary>
    public long Seed { get; }

    /// <summary>True when the run was stopped early through its cancellation token.</summary>
    public bool Cancelled { get; }

    /// <summary>
    /// Cancelled before any iteration of this run ran: nothing was optimised, so
    /// <see cref="Stylizer.StylizeFiles(string, string, string, StyleTransferOptions, IProgress{IterationReport}?, CancellationToken, Checkpoint?, string?)"/>
    /// wrote nothing (no image, no checkpoint) and left any old output as it was.
    /// </summary>
    public bool StoppedBeforeStart => Cancelled && History.Count == 0;

    public void Dispose() => Image.Dispose();
}

/// <summary>
/// Gatys et al.'s method: match a content image's features and a style image's Gram matrices by
/// optimising the pixels of an image. Data flows one way: images → network → losses → optimiser.
/// </summary>
internal static class Stylizer
{
    /// <summary>
    /// Reads the two images, stylises, writes <paramref name="outputPath"/> (PNG or JPEG, atomically;
    /// nothing when cancelled before the first iteration, see <see cref="StylizeResult.StoppedBeforeStart"/>).
    /// Snapshots go beside it as NAME-0100.png when <see cref="StyleTransferOptions.SaveEvery"/> is set,
    /// with a resumable checkpoint NAME.ckpt (rewritten every N iterations, and when cancelled).
    /// <paramref name="resume"/> continues from a checkpoint (see <see cref="Checkpoint.CheckCompatible"/>).
    /// </summary>
    public static StylizeResult StylizeFiles(
        string contentPath,
        string stylePath,
        string outputPath,
        StyleTransferOptions options,
        IProgress<IterationReport>? progress = null,
        CancellationToken cancellation = default,
        Checkpoint? resume = null,
        string? resumePath = null) =>
        StylizeFiles(contentPath, [stylePath], outputPath, options, progress, cancellation, resume, resumePath);

    /// <summary>
    /// Several style images, blended by <see cref="StyleTransferOptions.StyleBlend"/> and placed by
    /// the masks in <see cref="StyleTransferOptions.StyleMasks"/> (loaded here, at the output size).
    /// Snapshots and checkpoints as in the single-style form. <paramref name="companions"/> adds
    /// files (a log, a plot) written together with the image, all or none (<see cref="FileBatch"/>).
    /// </summary>
    public static StylizeResult StylizeFiles(
        string contentPath,
        IReadOnlyList<string> stylePaths,
        string outputPath,
        StyleTransferOptions options,
        IProgress<IterationReport>? progress = null,
        CancellationToken cancellation = default,
        Checkpoint? resume = null,
        string? resumePath = null,
        Action<StylizeResult, FileBatch>? companions = null)
    {
        options.Validate(stylePaths.Count);
        PrintOutput.CheckOutputPath(outputPath, options.BitDepth);
        TorchRuntime.SetThreads(options.Threads);
        Device device = TorchRuntime.ResolveDevice(options.Device);

        string[] styleNames = [.. stylePaths.Select((_, i) => StyleName(stylePaths.Count, i))];
        int[] styleEdges = [.. stylePaths.Select((p, i) => StyleEdge(options, p, styleNames[i]))];
        MemoryGuard.Check(options, device, [
            (contentPath, "content image", options.Size),
            .. stylePaths.Select((p, i) => (p, styleNames[i], styleEdges[i])),
            .. (options.StyleMasks ?? []).Select(m => (m.Path, $"mask for style image {m.Style + 1}", options.Size))], budget: true);
        var loaded = new List<Tensor>();
        try
        {
            Tensor content = Keep(loaded, ImageIO.LoadTensor(contentPath, "content image", options.Size));
            List<Tensor> styles = [.. stylePaths.Select((p, i) => Keep(loaded, ImageIO.LoadTensor(p, styleNames[i], styleEdges[i])))];
            var masks = new Tensor?[stylePaths.Count];
            foreach (StyleMask m in options.StyleMasks ?? [])
            {
                string what = $"mask for style image {m.Style + 1}";
                Tensor mask = Keep(loaded, ImageIO.LoadTensor(m.Path, what, options.Size));
                CheckMaskShape(mask, content, $"{what} '{m.Path}'", options.MaskFit);
                using (Tensor max = mask.max())
                {
                    if (max.ToDouble() < StyleTerms.Black)
                    {
                        throw new StyleTransferException($"{what} '{m.Path}' is all black: it places that style nowhere");
                    }
                }

                masks[m.Style] = mask;
            }

            string? contentSha = null, styleSha = null;
            if (options.SaveEvery > 0 || resume != null)
            {
                // Several styles (and masks) hash as one string, so a checkpoint only resumes with the same set.
                IEnumerable<string> styleFiles = stylePaths.Concat((options.StyleMasks ?? []).Select(m => m.Path));
                (contentSha, styleSha) = (Checkpoint.Sha256(contentPath), string.Join("+", styleFiles.Select(Checkpoint.Sha256)));
                resume?.CheckCompatible(options, contentSha, styleSha, resumePath ?? "checkpoint");
            }

            string checkpointPath = Checkpoint.PathFor(outputPath);
            void SaveCheckpoint(Checkpoint ck)
            {
                (ck.ContentSha256, ck.StyleSha256) = (contentSha, styleSha);
                ck.Save(checkpointPath);
            }

            using IFeatureNetwork network = NetworkFactory.Create(options, device);
            StylizeResult result = Run(
                content,
                styles,
                network,
                options,
                options.StyleMasks is null ? null : masks,
                progress,
                cancellation,
                options.SaveEvery > 0 ? (i, img) => PrintOutput.Save(img, SnapshotPath(outputPath, i), options.BitDepth) : null,
                options.SaveEvery > 0 ? SaveCheckpoint : null,
                resume);
            try
            {
                if (!result.StoppedBeforeStart)
                {
                    using var batch = new FileBatch();
                    PrintOutput.Save(result.Image, outputPath, options.BitDepth, contentPath, batch);
                    companions?.Invoke(result, batch);
                    batch.Commit();
                }
            }
            catch
            {
                result.Dispose();
                throw;
            }

            return result;
        }
        finally
        {
            loaded.ForEach(t => t.Dispose());
        }
    }

    /// <summary>What style image <paramref name="index"/> (from 0) of <paramref name="count"/> is called in messages: "style image", or "style image 2" among several.</summary>
    internal static string StyleName(int count, int index) => count == 1 ? "style image" : $"style image {index + 1}";

    /// <summary>The long edge the style image at <paramref name="path"/> is used at (<see cref="StyleTransferOptions.StyleEdge"/>), from its header.</summary>
    internal static int StyleEdge(StyleTransferOptions options, string path, string what)
    {
        (int w, int h) = ImageIO.Probe(path, what);
        return options.StyleEdge(w, h);
    }

    /// <summary>Where the snapshot of iteration <paramref name="iteration"/> goes: out.png → out-0100.png.</summary>
    public static string SnapshotPath(string outputPath, int iteration)
    {
        string dir = Path.GetDirectoryName(outputPath) ?? "";
        return Path.Combine(dir, $"{Path.GetFileNameWithoutExtension(outputPath)}-{iteration:D4}{Path.GetExtension(outputPath)}");
    }

    /// <summary>
    /// Stylises tensors: <paramref name="content"/> and <paramref name="style"/> are [1,3,H,W] RGB in
    /// [0,1] (any sizes; the output has the content's size). The options must have been validated.
    /// The pipeline: colour preservation's pre-processing (<see cref="ColorPreservation"/>), then one
    /// optimisation per scale (coarse to fine, each started from the previous result upsampled,
    /// targets recomputed at that scale), then colour preservation's post-processing.
    /// <paramref name="checkpoint"/> receives a resumable state every --save-every iterations and
    /// when cancelled; <paramref name="resume"/> continues from one.
    /// </summary>
    public static StylizeResult Run(
        Tensor content,
        Tensor style,
        IFeatureNetwork network,
        StyleTransferOptions options,
        IProgress<IterationReport>? progress = null,
        CancellationToken cancellation = default,
        Action<int, Tensor>? snapshot = null,
        Action<Checkpoint>? checkpoint = null,
        Checkpoint? resume = null) =>
        Run(content, [style], network, options, null, progress, cancellation, snapshot, checkpoint, resume);

    /// <summary>
    /// Several style images (each [1,3,h,w], any sizes), blended by
    /// <see cref="StyleTransferOptions.StyleBlend"/>; <paramref name="masks"/>, when given, holds one
    /// entry per style image: null, or a mask ([H,W], [C,H,W] or [1,C,H,W], values in [0,1], any
    /// size: it is stretched to the output) that places that style. <see cref="StyleTransferOptions.StyleMasks"/>
    /// is not read here. <see cref="InitMode.Style"/> starts from the first style image. The rest as
    /// the single-style form: colour preservation, scales, checkpoints.
    /// </summary>
    public static StylizeResult Run(
        Tensor content,
        IReadOnlyList<Tensor> styles,
        IFeatureNetwork network,
        StyleTransferOptions options,
        IReadOnlyList<Tensor?>? masks,
        IProgress<IterationReport>? progress = null,
        CancellationToken cancellation = default,
        Action<int, Tensor>? snapshot = null,
        Action<Checkpoint>? checkpoint = null,
        Checkpoint? resume = null,
        RunHooks? hooks = null)
    {
        CheckLayers(network, options);
        options.Validate(styles.Count);
        long seed = resume?.Seed ?? options.Seed ?? Random.Shared.NextInt64(0, int.MaxValue);
        options = options with { Seed = seed };

        // What a checkpoint records (the options as given), and what runs: a small style image's
        // layers (SmallStyles), which the same inputs give again on resuming.
        StyleTransferOptions saved = options;
        options = SmallStyles.Fit(options, network.Name, styles, (int)Math.Max(content.shape[2], content.shape[3]));
        using var pre = new DisposableList();
        Tensor c = options.PreserveColor == ColorPreservationMode.Luminance ? pre.Add(ColorPreservation.LuminanceInputs(content, styles[0])).Item1 : content;
        if (options.PreserveColor == ColorPreservationMode.None && options.PaletteTransfer > 0)
        {
            IReadOnlyList<double> blend = options.EffectiveStyleBlend(styles.Count);
            c = pre.Add(ColorPreservation.TowardsPalette(content, [.. styles.Select((s, i) => (s, blend[i]))], options.PaletteTransfer));
        }
        List<Tensor> styleInputs = [.. styles.Select(style => options.PreserveColor switch
        {
            ColorPreservationMode.Luminance => pre.Add(ColorPreservation.LuminanceInputs(content, style)).Item2,
            ColorPreservationMode.Histogram => pre.Add(ColorPreservation.MatchColorHistogram(style, content)),
            _ => style,
        })];
        Func<Tensor, Tensor> post = options.PreserveColor == ColorPreservationMode.Luminance
            ? img => ColorPreservation.Recombine(img, content)
            : img => img.clone();
        Action<int, Tensor>? snap = snapshot is null ? null : (i, img) =>
        {
            using Tensor p = post(img);
            snapshot(i, p);
        };

        IReadOnlyList<int> sizes = options.ScaleSizes;
        int scales = sizes.Count;
        (int height, int width) = ((int)content.shape[2], (int)content.shape[3]);
        int total = Enumerable.Range(0, scales).Sum(k => options.IterationsAtScale(k, scales));
        var history = new List<IterationReport>();
        int first = resume?.Scale ?? 0;
        if (first >= scales)
        {
            throw StyleTransferException.Named($"{Opt.Resume}: the checkpoint is at scale {first + 1}, the options have {scales}");
        }

        int done = Enumerable.Range(0, first).Sum(k => options.IterationsAtScale(k, scales));
        double seconds = resume?.Seconds ?? 0;
        int evaluations = resume?.Evaluations ?? 0;
        Tensor? previous = null;
        bool cancelled = false;
        try
        {
            for (int k = first; k < scales; k++)
            {
                bool last = k == scales - 1;
                double f = last ? 1 : sizes[k] / (double)Math.Max(height, width);
                (int h, int w) = last ? (height, width) : (Math.Max(1, (int)Math.Round(height * f)), Math.Max(1, (int)Math.Round(width * f)));
                using var scaleScope = torch.NewDisposeScope();
                Tensor ck = last ? c : Downsample(c, h, w);
                List<Tensor> sks = [.. styleInputs.Select(s => last ? s : Downsample(s, Math.Max(1, (int)Math.Round(s.shape[2] * f)), Math.Max(1, (int)Math.Round(s.shape[3] * f))))];
                Tensor sk = sks[0];
                MemoryPlan? plan = PlanFor(network, options, (h, w), sks, masks);

                // The style anchor's taps: a tiled scale takes them untiled, on the image scaled down (TiledObjective).
                (IFeatureNetwork stageNetwork, StyleTransferOptions stageOptions) = Anchor(network, options, Math.Max(h, w));
                using var anchored = stageNetwork as AnchoredTaps;
                using Targets targets = plan?.Tile is int tile
                    ? TiledObjective.ComputeTargets(stageNetwork, stageOptions, tile, plan.Halo, ck, ActiveContentLayers(stageOptions), sks, ActiveStyleLayers(stageOptions))
                    : Targets.Compute(stageNetwork, ck, ActiveContentLayers(stageOptions), sks, ActiveStyleLayers(stageOptions), options.FeatureTransform, options.SoftmaxTemperature);
                bool resuming = resume != null && k == first;
                Tensor? start = resuming
                    ? (resume!.Image.shape[2] == h && resume.Image.shape[3] == w ? resume.Image : throw StyleTransferException.Named($"{Opt.Resume}: the checkpoint's image is {resume.Image.shape[3]}×{resume.Image.shape[2]}, scale {k + 1} is {w}×{h}"))
                    : (previous ?? hooks?.Start) is not { } from ? null : F.interpolate(from, size: [h, w], mode: InterpolationMode.Bilinear, align_corners: false);
                var stage = new Stage(
                    k,
                    scales,
                    options.IterationsAtScale(k, scales),
                    resuming ? resume!.ScaleIteration : 0,
                    done,
                    total,
                    seconds,
                    evaluations,
                    start,
                    resuming ? resume!.Lbfgs : null,
                    resuming ? resume!.StartLosses : null,
                    checkpoint,
                    seed)
                {
                    RanBefore = history.Count > 0,
                    SavedOptions = saved,
                    Plan = plan,
                };
                StylizeResult r = Optimize(targets, stageNetwork, stageOptions, (h, w), ck, sk, progress, cancellation, snap, stage, keepRaw: true, masks, last ? hooks?.PixelLoss : null);
                history.AddRange(r.History);
                previous?.Dispose();
                previous = r.Image.DetachFromDisposeScope();
                done += stage.Iterations;
                seconds = r.History.Count > 0 ? r.History[^1].Elapsed.TotalSeconds : seconds;
                evaluations = r.History.Count > 0 ? r.History[^1].Evaluations : evaluations;
                if (r.Cancelled)
                {
                    cancelled = true;
                    break;
                }
            }

            using Tensor raw = previous!.clamp(0, 1);
            using Tensor processed = post(raw);
            Tensor image = processed.to(torch.CPU).clone();
            if (!torch.isfinite(image).all().item<bool>())
            {
                image.Dispose();
                throw new StyleTransferException("the image holds NaN or infinite values; no image was written", FailureKind.Diverged);
            }

            return new StylizeResult(image, history, seed, cancelled);
        }
        finally
        {
            previous?.Dispose();
        }
    }

    /// <summary>
    /// The style loss Σ_l w_l E_l of <paramref name="image"/> against <paramref name="style"/> alone,
    /// at the options' style layers, loss kind and normalisation; with a <paramref name="mask"/>
    /// measured on that region only (guided, not weighted by its area). For tests and comparisons.
    /// </summary>
    public static double MeasureStyleLoss(IFeatureNetwork network, Tensor image, Tensor style, StyleTransferOptions options, Tensor? mask = null)
    {
        CheckLayers(network, options);
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        string[] layers = [.. options.StyleLayers];
        using Targets targets = Targets.Compute(network, null, [], [style], layers, options.FeatureTransform, options.SoftmaxTemperature);
        var size = ((int)image.shape[2], (int)image.shape[3]);
        using StyleTerms terms = StyleTerms.Build(targets, layers, options with { StyleBlend = null }, size, mask is null ? null : [mask], network.Device, areaWeighted: false);
        Dictionary<string, Tensor> feats = network.Extract(image.to(network.Device), layers);
        foreach (string tap in layers)
        {
            feats[tap] = FeatureTransform.Apply(feats[tap], options.FeatureTransform, options.SoftmaxTemperature);
        }

        return terms.Loss(feats, network.Device).to(ScalarType.Float64).ToDouble();
    }

    /// <summary>
    /// The general form: optimises an image of <paramref name="size"/> (height, width) against
    /// precomputed <paramref name="targets"/>, which may hold more layers than the options use (a
    /// grid computes them once for all its tiles). <paramref name="content"/> and
    /// <paramref name="style"/> are only needed for --init content / style.
    /// </summary>
    public static StylizeResult Run(
        Targets targets,
        IFeatureNetwork network,
        StyleTransferOptions options,
        (int Height, int Width) size,
        Tensor? content = null,
        Tensor? style = null,
        IProgress<IterationReport>? progress = null,
        CancellationToken cancellation = default,
        Action<int, Tensor>? snapshot = null,
        IReadOnlyList<Tensor?>? masks = null)
    {
        CheckLayers(network, options);
        long seed = options.Seed ?? Random.Shared.NextInt64(0, int.MaxValue);
        var stage = new Stage(0, 1, options.Iterations, 0, 0, options.Iterations, 0, 0, null, null, null, null, seed);
        return Optimize(targets, network, options, size, content, style, progress, cancellation, snapshot, stage, keepRaw: false, masks);
    }

    /// <summary>
    /// One optimisation at one size. With <paramref name="keepRaw"/> the returned image is the
    /// optimised tensor itself (unclamped, on the network's device), for the next scale.
    /// </summary>
    private static StylizeResult Optimize(
        Targets targets,
        IFeatureNetwork network,
        StyleTransferOptions options,
        (int Height, int Width) size,
        Tensor? content,
        Tensor? style,
        IProgress<IterationReport>? progress,
        CancellationToken cancellation,
        Action<int, Tensor>? snapshot,
        Stage stage,
        bool keepRaw,
        IReadOnlyList<Tensor?>? masks = null,
        Func<Tensor, Tensor>? pixelLoss = null)
    {
        Objective.CheckTargets(targets, options);
        using IObjective objective = stage.Plan?.Tile is int tileSize
            ? new TiledObjectiveAdapter(new TiledObjective(network, options, targets, size, tileSize, stage.Plan.Halo), options, pixelLoss)
            : Objective.Create(network, targets, options, size, masks, pixelLoss);
        Tensor initial = stage.Start is { } start ? start.detach().clone() : InitialImage(options.Init, size, content, style, stage.Seed, options.InitNoise);
        using Parameter x = new(initial.to(network.Device), requires_grad: true);
        using IOptimizer optimizer = Optimizers.Create(x, options, stage.Plan?.History ?? options.LbfgsHistory, stage.Iterations, stage.Lbfgs, stage.StartLosses);
        var loop = new OptimizationLoop(stage, options, x, optimizer);
        List<IIterationObserver> observers = [new DivergenceCheck(), new ProgressReporter(progress), new MemoryTrim()];
        if (snapshot is not null)
        {
            observers.Add(new SnapshotWriter(snapshot));
        }

        if (stage.Checkpoint is not null)
        {
            observers.Add(new CheckpointWriter(stage.Checkpoint, stage.Seed));
        }

        bool cancelled = loop.Run(objective, observers, cancellation);
        Tensor image = keepRaw ? x.detach().clone() : x.detach().clamp(0, 1).to(torch.CPU);
        if (!keepRaw && !torch.isfinite(image).all().item<bool>())
        {
            image.Dispose();
            throw new StyleTransferException("the image holds NaN or infinite values; no image was written", FailureKind.Diverged);
        }

        return new StylizeResult(image, loop.History, stage.Seed, cancelled);
    }

    /// <summary>The memory plan at one scale of a stylize run (refuses when nothing fits; null on a GPU without a budget, see <see cref="MemoryBudget.Planned"/>).</summary>
    private static MemoryPlan? PlanFor(IFeatureNetwork network, StyleTransferOptions options, (int Height, int Width) size, List<Tensor> styles, IReadOnlyList<Tensor?>? masks)
    {
        if (!MemoryBudget.Planned(options))
        {
            return null;
        }

        string? unsupported = TiledObjective.Unsupported(options with { Network = network.Name }, masks?.Any(m => m is not null) == true);
        bool canTile = unsupported is null;
        if (!canTile && options.Tile > 0)
        {
            throw new StyleTransferException($"--tile: {unsupported}");
        }

        return MemoryBudget.Require(options with { Network = network.Name }, size.Height, size.Width, styles.Sum(t => t.shape[2] * t.shape[3]), canTile);
    }

    private static Tensor Keep(List<Tensor> list, Tensor t)
    {
        list.Add(t);
        return t;
    }

    /// <summary>The content taps that take part: none when α is 0; with <see cref="StyleTransferOptions.ContentLuminance"/> the layers' luminance taps (<see cref="LuminanceTaps"/>).</summary>
    public static IReadOnlyList<string> ActiveContentLayers(StyleTransferOptions options) => !(options.ContentWeight > 0) ? []
        : options.ContentLuminance ? [.. options.ContentLayers.Select(LuminanceTaps.Luminance)] : options.ContentLayers;

    /// <summary>The style layers that take part: none when β is 0.</summary>
    public static IReadOnlyList<string> ActiveStyleLayers(StyleTransferOptions options) => options.StyleWeight > 0 ? options.StyleLayers : [];

    /// <summary>
    /// The starting image for <paramref name="mode"/>, [1,3,H,W] at <paramref name="size"/>, on the CPU or
    /// the content's device; for content and style, <paramref name="noise"/> of it is the noise start
    /// of the same seed ((1 − noise)·image + noise·noise start).
    /// </summary>
    internal static Tensor InitialImage(InitMode mode, (int Height, int Width) size, Tensor? content, Tensor? style, long seed, double noise = 0)
    {
        Tensor image;
        switch (mode)
        {
            case InitMode.Content:
                Tensor c = content ?? throw StyleTransferException.Named($"{Opt.Init.Is("content")} needs a content image");
                image = c.shape[2] == size.Height && c.shape[3] == size.Width
                    ? c.detach().clone()
                    : F.interpolate(c.detach(), size: [size.Height, size.Width], mode: InterpolationMode.Bilinear, align_corners: false);
                break;
            case InitMode.Style:
                Tensor s = style ?? throw StyleTransferException.Named($"{Opt.Init.Is("style")} needs a style image");
                image = F.interpolate(s.detach(), size: [size.Height, size.Width], mode: InterpolationMode.Bilinear, align_corners: false);
                break;
            default:
                return NoiseStart(size, seed);
        }

        if (noise <= 0)
        {
            return image;
        }

        // Explicit Scalars, disposed after use (an implicit one is left to the garbage collector).
        using (image)
        using (Tensor start = NoiseStart(size, seed).to(image.device))
        using (Scalar keep = 1 - noise)
        using (Scalar mix = noise)
        {
            return image.mul(keep).add_(start, mix);
        }
    }

    private static Tensor NoiseStart((int Height, int Width) size, long seed)
    {
        using var gen = new Generator((ulong)seed);
        return torch.rand(new long[] { 1, 3, size.Height, size.Width }, generator: gen);
    }

    /// <summary>Whether the style anchor acts at a scale whose long edge is <paramref name="longEdge"/>: on, with style layers, and the scale above it.</summary>
    internal static bool AnchorActs(StyleTransferOptions options, int longEdge) =>
        options.StyleAnchor > 0 && longEdge > options.StyleAnchor * 1.01 && ActiveStyleLayers(options).Count > 0;

    /// <summary>
    /// The network and options of a scale whose long edge is <paramref name="longEdge"/>: above
    /// <see cref="StyleTransferOptions.StyleAnchor"/>, every style layer is also taken on the image
    /// scaled to the anchor (<see cref="AnchoredTaps"/>), each term at half the layer's weight; at or
    /// below it, the network and options as given.
    /// </summary>
    internal static (IFeatureNetwork Network, StyleTransferOptions Options) Anchor(IFeatureNetwork network, StyleTransferOptions options, int longEdge)
    {
        if (!AnchorActs(options, longEdge))
        {
            return (network, options);
        }

        IReadOnlyList<double> weights = options.EffectiveStyleLayerWeights;
        return (
            new AnchoredTaps(network, options.StyleAnchor / (double)longEdge),
            options with
            {
                StyleLayers = [.. options.StyleLayers, .. options.StyleLayers.Select(AnchoredTaps.Anchored)],
                StyleLayerWeights = [.. weights.Select(v => v / 2), .. weights.Select(v => v / 2)],
            });
    }

    /// <summary>Area-averaged downsampling (exact box filter at integer factors); bilinear when not shrinking.</summary>
    private static Tensor Downsample(Tensor image, int h, int w) =>
        h <= image.shape[2] && w <= image.shape[3]
            ? F.interpolate(image, size: [h, w], mode: InterpolationMode.Area)
            : F.interpolate(image, size: [h, w], mode: InterpolationMode.Bilinear, align_corners: false);

    private static void CheckLayers(IFeatureNetwork network, StyleTransferOptions options)
    {
        foreach ((Opt flag, IReadOnlyList<string> layers) in new[] { (Opt.ContentLayers, options.ContentLayers), (Opt.StyleLayers, options.StyleLayers) })
        {
            foreach (string layer in layers)
            {
                if (!network.TapNames.Contains(layer))
                {
                    throw StyleTransferException.Named(
                        $"{flag}: unknown layer '{layer}' for {network.Name} (known: {string.Join(", ", network.TapNames)})");
                }
            }
        }
    }

    /// <summary>
    /// Refuses a mask whose aspect ratio differs from the content's by more than the rounding of
    /// either side to whole pixels (both are loaded at the same long edge), unless stretching was
    /// asked for: a stretched mask places its style elsewhere than it was drawn.
    /// </summary>
    internal static void CheckMaskShape(Tensor mask, Tensor content, string what, MaskFit fit)
    {
        (long hm, long wm, long hc, long wc) = (mask.shape[^2], mask.shape[^1], content.shape[^2], content.shape[^1]);
        if (fit == MaskFit.Stretch || Math.Abs((hm * wc) - (wm * hc)) <= Math.Max(Math.Max(wc, hc), Math.Max(wm, hm)))
        {
            return;
        }

        throw StyleTransferException.Named(
            $"{what} is {wm}x{hm} at this size, the content image {wc}x{hc}: another aspect ratio, it would be stretched; give a mask of the content's proportions, or {Opt.MaskFit.Is("stretch")}");
    }
}

/// <summary>Where one optimisation stands in a coarse-to-fine, possibly resumed, run.</summary>
internal sealed record Stage(
    int Scale,
    int Scales,
    int Iterations,
    int StartIteration,
    int IterationsBefore,
    int TotalIterations,
    double SecondsBefore,
    int EvaluationsBefore,
    Tensor? Start,
    LbfgsState? Lbfgs,
    double[]? StartLosses,
    Action<Checkpoint>? Checkpoint,
    long Seed)
{
    /// <summary>Whether iterations of an earlier scale ran in this run (so a cancellation at this stage's start still has something to save).</summary>
    public bool RanBefore { get; init; }

    /// <summary>The options a checkpoint records, when the stage runs with options derived from them (the style anchor's extra layers).</summary>
    public StyleTransferOptions? SavedOptions { get; init; }

    /// <summary>The memory plan at this scale (tiles, L-BFGS history); null: whole image, the options' history.</summary>
    public MemoryPlan? Plan { get; init; }
}

/// <summary>Tensors made for a run's pre-processing, disposed with it.</summary>
internal sealed class DisposableList : IDisposable
{
    private readonly List<Tensor> items = [];

    public Tensor Add(Tensor t)
    {
        items.Add(t);
        return t;
    }

    public (Tensor, Tensor) Add((Tensor A, Tensor B) pair) => (Add(pair.A), Add(pair.B));

    public void Dispose()
    {
        foreach (Tensor t in items)
        {
            t.Dispose();
        }
    }
}
