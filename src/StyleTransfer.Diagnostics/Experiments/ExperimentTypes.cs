using System.Globalization;
using System.Text.RegularExpressions;
using StyleTransfer.Imaging;
using StyleTransfer.Optimization;

namespace StyleTransfer.Experiments;

/// <summary>One optimisation of an experiment: where its image goes on the sheet, its label, its options.</summary>
internal sealed record TilePlan(int Row, int Column, string Label, StyleTransferOptions Options)
{
    /// <summary>What kind of tile this is when labels alone are ambiguous ("content", "style" on Figure 1); logs and plots name it.</summary>
    public string? Group { get; init; }
}

/// <summary>An iteration of tile <paramref name="Tile"/> of <paramref name="Tiles"/> (1-based).</summary>
internal sealed record TileReport(int Tile, int Tiles, TilePlan Plan, IterationReport Report);

/// <summary>A tile that ran, with its result.</summary>
internal sealed class TileRun(TilePlan plan, StylizeResult result) : IDisposable
{
    public TilePlan Plan { get; } = plan;

    public StylizeResult Result { get; } = result;

    public LoggedRun ToLog() => LoggedRun.From(Plan.Label, Plan.Row, Plan.Column, Plan.Options, Result) with { Group = Plan.Group };

    public void Dispose() => Result.Dispose();
}

/// <summary>What an experiment produced: every tile that ran (all of them unless it was cancelled).</summary>
internal sealed class ExperimentResult : IDisposable
{
    internal ExperimentResult(IReadOnlyList<TilePlan> planned, IReadOnlyList<TileRun> tiles, bool cancelled, long seed)
    {
        Planned = planned;
        Tiles = tiles;
        Cancelled = cancelled;
        Seed = seed;
    }

    /// <summary>Every tile that was planned, in running order.</summary>
    public IReadOnlyList<TilePlan> Planned { get; }

    /// <summary>The tiles that ran, in order.</summary>
    public IReadOnlyList<TileRun> Tiles { get; }

    /// <summary>Stopped early through the cancellation token; the tiles that did not run are left blank on a sheet.</summary>
    public bool Cancelled { get; }

    /// <summary>The seed every tile used.</summary>
    public long Seed { get; }

    /// <summary>Cancelled before any tile ran an iteration: nothing was written and any old output was left as it was.</summary>
    public bool StoppedBeforeStart => Cancelled && Tiles.All(t => t.Result.History.Count == 0);

    /// <summary>Width and height of the written image or sheet (0×0 before it is written).</summary>
    public (int Width, int Height) OutputSize { get; internal set; }

    /// <summary>Where the tiles and labels went, for the sheet commands (figure1, grid); null for single images.</summary>
    public SheetLayout? Layout { get; internal set; }

    /// <summary>The runs as the log and the plot take them.</summary>
    public IReadOnlyList<LoggedRun> Log => [.. Tiles.Select(t => t.ToLog())];

    public void Dispose()
    {
        foreach (TileRun t in Tiles)
        {
            t.Dispose();
        }
    }
}

/// <summary>
/// The axes of <c>stylize grid</c> (the paper's Figure 3). Null means the axis was not given:
/// without <see cref="Inits"/>, ratios default to <see cref="DecadesAround"/> the options' α/β
/// (the paper's 1e-5 … 1e-2 for VGG-19's 1e-3) and depths to the whole style ladder; with
/// <see cref="Inits"/>, an axis not given keeps the options' single value (their α/β and their
/// style layers), so <c>--inits</c> alone gives one row per initialisation.
/// </summary>
internal sealed record GridAxes(IReadOnlyList<double>? Ratios = null, IReadOnlyList<int>? Depths = null, IReadOnlyList<InitMode>? Inits = null)
{
    /// <summary>The α/β values of the paper's Figure 3.</summary>
    public static readonly IReadOnlyList<double> PaperRatios = [1e-5, 1e-4, 1e-3, 1e-2];

    /// <summary>
    /// The paper's columns moved to another network's scale: <paramref name="ratio"/> × 1e-2, 1e-1,
    /// 1, 1e1 (for VGG-19's default 1e-3, exactly <see cref="PaperRatios"/>). Networks whose loss
    /// terms are scaled differently (ResNet-18's default α/β is 1e-8) get a comparable sweep.
    /// </summary>
    public static IReadOnlyList<double> DecadesAround(double ratio) =>
        [.. new[] { -2, -1, 0, 1 }.Select(e => double.Parse((ratio * Math.Pow(10, e)).ToString("G12", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture))];

    /// <summary>Parses "1e-5,1e-4": numbers above 0.</summary>
    public static List<double> ParseRatios(string text) => ParseList(text, "--ratios", item =>
        double.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d) && d > 0
            ? d
            : throw new StyleTransferException($"--ratios: '{item}' is not a number above 0"));

    /// <summary>Parses "1,2,3": whole numbers of 1 or more (the upper bound is the network's ladder, checked by the plan).</summary>
    public static List<int> ParseDepths(string text) => ParseList(text, "--depths", item =>
        int.TryParse(item, NumberStyles.Integer, CultureInfo.InvariantCulture, out int d) && d >= 1
            ? d
            : throw new StyleTransferException($"--depths: '{item}' is not a whole number of 1 or more"));

    /// <summary>Parses "noise,content,style".</summary>
    public static List<InitMode> ParseInits(string text) => ParseList(text, "--inits", item =>
        item is "noise" or "content" or "style"
            ? Enum.Parse<InitMode>(item, ignoreCase: true)
            : throw new StyleTransferException($"--inits: '{item}' is not one of noise, content, style"));

    private static List<T> ParseList<T>(string text, string flag, Func<string, T> parse)
    {
        string[] items = text.Split(',', StringSplitOptions.TrimEntries);
        if (items.All(string.IsNullOrEmpty))
        {
            throw new StyleTransferException($"{flag} is empty");
        }

        return [.. items.Select(item => item.Length == 0 ? throw new StyleTransferException($"{flag}: an item is empty in '{text}'") : parse(item))];
    }
}

/// <summary>An output size for a texture: "768x512" (width × height) or "512" (a square).</summary>
internal static partial class OutputSize
{
    /// <summary>Parses <paramref name="text"/>; each side must be 16 to 16384 pixels.</summary>
    public static (int Width, int Height) Parse(string text)
    {
        Match m = SizePattern().Match(text.Trim());
        if (!m.Success
            || !int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int w)
            || !int.TryParse(m.Groups[2].Success ? m.Groups[2].Value : m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int h))
        {
            throw new StyleTransferException($"--size: '{text}' is not a size (N for a square, or WxH, e.g. 768x512)");
        }

        if (Math.Min(w, h) < 16 || Math.Max(w, h) > 16384)
        {
            throw new StyleTransferException($"--size: {w}x{h} is out of range (each side from 16 to 16384 px)");
        }

        return (w, h);
    }

    [GeneratedRegex(@"^([0-9]{1,9})(?:[xX]([0-9]{1,9}))?$")]
    private static partial Regex SizePattern();
}
