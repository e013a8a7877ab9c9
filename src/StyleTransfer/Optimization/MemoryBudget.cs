using System.Globalization;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;

namespace StyleTransfer.Optimization;

/// <summary>
/// What a run at one size will do to stay within its memory budget: evaluate whole or in tiles of
/// <see cref="Tile"/> px (with <see cref="Halo"/> px around each), and keep <see cref="History"/>
/// L-BFGS pairs. <see cref="Estimate"/> is the peak memory expected (bytes).
/// </summary>
internal sealed record MemoryPlan(long Budget, string BudgetSource, int? Tile, int Halo, int History, int RequestedHistory, long Estimate)
{
    /// <summary>One line for the start-up report.</summary>
    public string Describe()
    {
        string tiles = Tile is int t ? TileGeometry.Describe(t, Halo) : "whole image (no tiles)";
        string history = RequestedHistory == 0 ? "" : History < RequestedHistory ? $", L-BFGS history {History} (of {RequestedHistory})" : $", L-BFGS history {History}";
        return $"memory: budget {MemoryBudget.Format(Budget)} ({BudgetSource}); {tiles}{history}; estimated peak {MemoryBudget.Format(Estimate)}";
    }
}

/// <summary>
/// The memory budget (--max-memory): picks, for an output size, whether to evaluate the loss in
/// tiles (<see cref="TiledObjective"/>) and how many L-BFGS pairs to keep (each two image-sized
/// float32 tensors: 100 pairs at 3840×2560 are 24 GB), from an estimate of the run's peak memory:
/// the runtime and weights, the image-sized tensors (image, gradient, optimiser state, the
/// whole-image TV term, the inputs), the history, and the network's working memory for the whole
/// image or one tile with its halo (<see cref="NetworkFactory.EstimateWorkingBytes"/>).
/// Preference: the whole image with at least <see cref="PreferredHistory"/> pairs; then the largest
/// tile with that many; then the largest tile with at least <see cref="TiledHistory"/>, then
/// <see cref="MinHistory"/> pairs; else refused. (A larger tile costs less halo per pixel; beyond 5
/// pairs L-BFGS gains little: docs/high-resolution.md, "Where the time goes".)
/// </summary>
internal static class MemoryBudget
{
    /// <summary>The process before any image: .NET, libtorch, the weights (measured: about 0.5 GB with ResNet-18).</summary>
    public const long BaselineBytes = 600L << 20;

    /// <summary>Image-sized float32 tensors per output pixel outside the network (image, gradient, L-BFGS directions and line search, TV terms, inputs): 24 × 3 channels × 4 bytes.</summary>
    public const long BytesPerPixel = 24 * 12;

    /// <summary>Fewest L-BFGS pairs a budget may leave.</summary>
    public const int MinHistory = 3;

    /// <summary>Pairs worth keeping before tiling: beyond about 20 pairs L-BFGS gains little.</summary>
    public const int PreferredHistory = 20;

    /// <summary>Pairs a tiled run keeps before it takes a smaller tile (measured: 5 pairs end 0.3 % above 10, 1.4 % above 100).</summary>
    public const int TiledHistory = 5;

    /// <summary>
    /// The share of the budget a plan's estimate may fill: the estimate has no margin of its own
    /// (a 3840 px run planned to 7.8 GB of an 8 GB budget peaked at 8.11 GiB, docs/high-resolution.md).
    /// </summary>
    public const double PlanShare = 0.9;

    /// <summary>Tile interiors tried, largest first.</summary>
    public static readonly IReadOnlyList<int> TileLadder = [2048, 1536, 1024, 768, 512, 384, 256];

    /// <summary>The default budget's share of the memory there is.</summary>
    public const double DefaultShare = 0.8;

    /// <summary>80 % of this machine's memory (or of the container's limit).</summary>
    public static long DefaultBudget()
    {
        long have = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return have > 0 ? (long)(have * DefaultShare) : 8L << 30;
    }

    /// <summary>
    /// The budget a run on <paramref name="device"/> gets without --max-memory, and what it is a
    /// share of: this machine's memory for the CPU, the GPU's free memory for CUDA (its feature
    /// maps, L-BFGS history and image live there). Null on a GPU whose memory cannot be read
    /// (no NVIDIA management library): such a run is planned only when --max-memory or --tile is given.
    /// </summary>
    public static (long Bytes, string Source)? DefaultBudget(string device)
    {
        if (!TorchRuntime.TryCudaIndex(device, out _))
        {
            return (DefaultBudget(), "default: 80% of this machine's");
        }

        return GpuMemory.Query(device) is { } gpu ? ((long)(gpu.Free * DefaultShare), "default: 80% of the GPU's free memory") : null;
    }

    /// <summary>The budget of a run with <paramref name="options"/>: --max-memory, else <see cref="DefaultBudget(string)"/>; null when neither is known.</summary>
    public static (long Bytes, string Source)? BudgetFor(StyleTransferOptions options) =>
        options.MaxMemory is long given ? (given, "--max-memory") : DefaultBudget(options.Device);

    /// <summary>A size with an optional K, M, G or T suffix (powers of 1024; a trailing B allowed): "8G", "512M", "1.5G".</summary>
    public static long Parse(string text, string flag = "--max-memory")
    {
        string t = text.Trim().ToUpperInvariant();
        if (t.EndsWith('B'))
        {
            t = t[..^1];
        }

        long unit = 1;
        if (t.Length > 0 && "KMGT".Contains(t[^1], StringComparison.Ordinal))
        {
            unit = 1L << (10 * ("KMGT".IndexOf(t[^1], StringComparison.Ordinal) + 1));
            t = t[..^1];
        }

        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v) || v <= 0 || v * unit > 1L << 50)
        {
            throw new StyleTransferException($"{flag}: '{text}' is not a size (a number with K, M or G, e.g. 8G)");
        }

        return (long)(v * unit);
    }

    /// <summary>Bytes as "7.4 GB" / "512 MB".</summary>
    public static string Format(long bytes) => bytes >= 1L << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F1} GB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):F0} MB");

    /// <summary>The luminance content pass's working memory as a share (1 / this) of the rest (<see cref="StyleTransferOptions.ContentLuminance"/>).</summary>
    private const int LuminanceShare = 4;

    /// <summary>The estimated peak for <paramref name="pixels"/> output pixels and <paramref name="stylePixels"/> style pixels (all style images), whole or in tiles.</summary>
    /// <remarks>
    /// <paramref name="anchorPixels"/>: the pixels of the style anchor's image (<see cref="AnchorPixels"/>),
    /// which the network also runs on, whole, at every evaluation of a scale above the anchor. Counted
    /// for a whole image, where the estimate without it was measured low (1024 px: 3.2 GiB estimated,
    /// 3.75 GiB measured; docs/high-resolution.md); not for tiles, whose estimate was measured higher
    /// than the peak by more than the anchor's share (3840 px at 8G: 7.0 estimated, 6.48 GiB measured).
    /// </remarks>
    public static long Estimate(StyleTransferOptions options, long pixels, long stylePixels, int? tile, int halo, int history, long anchorPixels = 0)
    {
        long image = (pixels * BytesPerPixel) + (stylePixels * 3 * 12);
        long working = tile is int t
            ? NetworkFactory.EstimateWorkingBytes(options.Network, (long)(t + (2 * halo)) * (t + (2 * halo))) + ContentBuffers(options, pixels)
            : NetworkFactory.EstimateWorkingBytes(options.Network, pixels);
        if (tile is null)
        {
            working += NetworkFactory.EstimateWorkingBytes(options.Network, anchorPixels);
        }

        if (Stylizer.ActiveContentLayers(options).Any(LuminanceTaps.IsLuminance))
        {
            // The grey pass runs the network again, only up to the content layers: a quarter of a
            // whole pass is a generous share (512 px, ResNet-18: +0 to +100 MB of 1.2–1.3 GB measured).
            working += working / LuminanceShare;
        }

        long optimiser = options.Optimizer == OptimizerKind.Lbfgs ? history * pixels * 24L : pixels * 24L;
        return BaselineBytes + image + working + optimiser;
    }

    /// <summary>
    /// The pixels of the image the style anchor runs the network on for a scale of
    /// <paramref name="height"/>×<paramref name="width"/>: the scale shrunk to a long edge of
    /// <see cref="StyleTransferOptions.StyleAnchor"/>, or 0 where the anchor does not act
    /// (<see cref="Stylizer.AnchorActs"/>).
    /// </summary>
    public static long AnchorPixels(StyleTransferOptions options, int height, int width)
    {
        int longEdge = Math.Max(height, width);
        if (!Stylizer.AnchorActs(options, longEdge))
        {
            return 0;
        }

        double f = options.StyleAnchor / (double)longEdge;
        return (long)Math.Round(height * f) * (long)Math.Round(width * f);
    }

    /// <summary>
    /// The plan for an output of <paramref name="height"/>×<paramref name="width"/>, or null when
    /// nothing fits the budget. <paramref name="canTile"/>: whether this run may be tiled at all.
    /// </summary>
    public static MemoryPlan? Choose(StyleTransferOptions options, int height, int width, long stylePixels, bool canTile)
    {
        (long budget, string source) = BudgetFor(options) ?? (long.MaxValue, "no budget: the GPU's memory could not be read");
        long usable = budget == long.MaxValue ? budget : (long)(budget * PlanShare);
        long pixels = (long)height * width;
        long anchor = AnchorPixels(options, height, width);
        int requested = options.Optimizer == OptimizerKind.Lbfgs ? options.LbfgsHistory : 0;
        int halo = 0, align = 1;
        canTile &= options.Tile != 0 && TiledObjective.Unsupported(options, false) is null;
        if (canTile)
        {
            (align, int exact) = TileGeometry.For(options.Network, Stylizer.ActiveContentLayers(options).Union(Stylizer.ActiveStyleLayers(options)), options.AntiAlias);
            halo = options.TileHalo is int h ? TileGeometry.RoundUp(h, align) : exact;
        }

        List<int?> candidates = options.Tile is int forced && forced > 0 && canTile
            ? [TileGeometry.RoundUp(forced, align)]
            : [null, .. canTile ? TileLadder.Where(t => t < Math.Max(height, width)) : []];
        foreach (int least in new[] { PreferredHistory, TiledHistory, MinHistory }.Select(n => Math.Min(requested, n)).Distinct())
        {
            foreach (int? tile in candidates)
            {
                long fixedPart = Estimate(options, pixels, stylePixels, tile, halo, 0, anchor);
                long pair = options.Optimizer == OptimizerKind.Lbfgs ? pixels * 24L : 1;
                long fit = requested == 0 ? (fixedPart <= usable ? 0 : -1) : (usable - fixedPart) / pair;
                if (fixedPart <= usable && fit >= least)
                {
                    int history = (int)Math.Min(requested, fit);
                    return new MemoryPlan(budget, source, tile, tile is null ? 0 : halo, history, requested, Estimate(options, pixels, stylePixels, tile, halo, history, anchor));
                }
            }
        }

        return null;
    }

    /// <summary><see cref="Choose"/>, or the one-line refusal when nothing fits.</summary>
    public static MemoryPlan Require(StyleTransferOptions options, int height, int width, long stylePixels, bool canTile)
    {
        if (Choose(options, height, width, stylePixels, canTile) is { } plan)
        {
            return plan;
        }

        long pixels = (long)height * width;
        canTile &= options.Tile != 0 && TiledObjective.Unsupported(options, false) is null;
        int smallest = options.Tile is int forced && forced > 0 ? forced : TileLadder[^1];
        int halo = canTile ? TileGeometry.For(options.Network, Stylizer.ActiveContentLayers(options).Union(Stylizer.ActiveStyleLayers(options)), options.AntiAlias).Halo : 0;
        int least = Math.Min(options.Optimizer == OptimizerKind.Lbfgs ? options.LbfgsHistory : 0, MinHistory);
        // What --max-memory must be for that plan to fit, the margin (PlanShare) included.
        long need = (long)(Estimate(options, pixels, stylePixels, canTile ? smallest : null, options.TileHalo ?? halo, least, AnchorPixels(options, height, width)) / PlanShare);
        string how = canTile ? $"{smallest} px tiles, L-BFGS history {least}" : $"untiled, L-BFGS history {least}";
        if (options.MaxMemory is long given)
        {
            throw new StyleTransferException(
                $"--max-memory {Format(given)} is too small for a {width}x{height} output with {options.Network}: it needs about {Format(need)} ({how}); give more, or a smaller --size");
        }

        string has = BudgetFor(options) is { } b && TorchRuntime.TryCudaIndex(options.Device, out _)
            ? $"the GPU has {b.Bytes / DefaultShare / 1e9:F0} GB free"
            : $"this machine has {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 1e9:F0} GB";
        throw new StyleTransferException(
            $"--size {options.Size} needs about {need / 1e9:F0} GB of memory with {options.Network}, and {has}; use a smaller --size");
    }

    /// <summary>
    /// The start-up report for a stylize run: the plan at the output size, from the images' headers
    /// (nothing decoded). Null when there is nothing to say (whole image, full history, no --max-memory)
    /// or a header cannot be read (the run itself then reports that).
    /// </summary>
    public static string? StartupLine(StyleTransferOptions options, string contentPath, IReadOnlyList<string> stylePaths)
    {
        if (!Planned(options))
        {
            return null;
        }

        try
        {
            (int w, int h) = ImageIO.Probe(contentPath, "content image");
            (int sw, int sh) = ImageIO.ScaledSize(w, h, options.Size);
            long stylePixels = StylePixels(options, stylePaths);
            MemoryPlan? plan = Choose(options, sh, sw, stylePixels, TiledObjective.Unsupported(options, options.StyleMasks is not null) is null);
            return plan is null || (plan.Tile is null && plan.History == plan.RequestedHistory && options.MaxMemory is null) ? null : plan.Describe();
        }
        catch (StyleTransferException)
        {
            return null;
        }
    }

    /// <summary>
    /// Whether a run is planned at all: always on the CPU; on a GPU when --max-memory or --tile is
    /// given or the GPU's memory can be read (<see cref="DefaultBudget(string)"/>).
    /// </summary>
    public static bool Planned(StyleTransferOptions options) =>
        !TorchRuntime.TryCudaIndex(options.Device, out _) || options.MaxMemory is not null || options.Tile is > 0 || BudgetFor(options) is not null;

    /// <summary>Pixels of all style images at the run's style size, from their headers.</summary>
    internal static long StylePixels(StyleTransferOptions options, IEnumerable<string> stylePaths)
    {
        long sum = 0;
        foreach (string p in stylePaths)
        {
            (int w, int h) = ImageIO.Probe(p, "style image");
            (int sw, int sh) = ImageIO.ScaledSize(w, h, options.StyleEdge(w, h));
            sum += (long)sw * sh;
        }

        return sum;
    }

    /// <summary>The content layers' whole-image buffers a tiled run keeps (features, their gradient, the target, the transformed copy).</summary>
    private static long ContentBuffers(StyleTransferOptions options, long pixels) =>
        options.Network == "vgg19" ? pixels * 128 : pixels * 32;
}
