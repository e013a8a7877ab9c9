using System.Globalization;
using StyleTransfer.Imaging;
using StyleTransfer.Optimization;

namespace StyleTransfer.Experiments;

/// <summary>
/// The --plot file: loss against iteration on a log scale. One run: its total, content and style
/// losses (α·content + β·style + tv is the total; content and style are unweighted). Several runs
/// (a sheet's tiles): one total-loss curve per tile, labelled. Zero losses (a term that is off) are
/// left out, as a log scale cannot show them.
/// </summary>
internal static class LossPlot
{
    public const int Width = 800;
    public const int Height = 500;

    /// <summary>Checks a --plot path before any work is done: .png or .jpg in a folder that exists.</summary>
    public static void CheckPath(string path) => ImageIO.CheckOutputPath(path, "--plot");

    /// <summary>The plot as PNG or JPEG bytes (<paramref name="format"/>: ".png" or ".jpg").</summary>
    public static byte[] Render(IReadOnlyList<LoggedRun> runs, string title, int width = Width, int height = Height, string format = ".png")
    {
        var plot = new ScottPlot.Plot();
        try
        {
            plot.Title(title);
            plot.XLabel("iteration");
            plot.YLabel("loss (log scale)");
            bool any = false;
            if (runs.Count == 1)
            {
                IReadOnlyList<IterationReport> h = runs[0].History;
                any |= AddCurve(plot, h, r => r.Total, "total (α·content + β·style)");
                any |= AddCurve(plot, h, r => r.Content, "content");
                any |= AddCurve(plot, h, r => r.Style, "style");
                any |= AddCurve(plot, h, r => r.Tv, "total variation");
            }
            else
            {
                foreach (LoggedRun run in runs)
                {
                    any |= AddCurve(plot, run.History, r => r.Total, run.Name);
                }
            }

            var ticks = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = y => "1e" + y.ToString("0", CultureInfo.InvariantCulture),
            };
            plot.Axes.Left.TickGenerator = ticks;
            if (any)
            {
                plot.ShowLegend(runs.Count > 6 ? ScottPlot.Edge.Right : ScottPlot.Edge.Top);
            }

            ScottPlot.ImageFormat kind = format is ".jpg" or ".jpeg" ? ScottPlot.ImageFormat.Jpeg : ScottPlot.ImageFormat.Png;
            return plot.GetImageBytes(width, height, kind);
        }
        finally
        {
            plot.Dispose();
        }
    }

    /// <summary>Writes the plot to <paramref name="path"/> (PNG or JPEG by extension) through a temporary file and a rename.</summary>
    /// <remarks>With <paramref name="batch"/>, written together with the batch's other files.</remarks>
    public static void Save(string path, IReadOnlyList<LoggedRun> runs, string title, int width = Width, int height = Height, FileBatch? batch = null)
    {
        byte[] bytes = Render(runs, title, width, height, Path.GetExtension(path).ToLowerInvariant());
        if (batch is null)
        {
            AtomicFile.Write(path, s => s.Write(bytes));
        }
        else
        {
            batch.Add(path, s => s.Write(bytes));
        }
    }

    private static bool AddCurve(ScottPlot.Plot plot, IReadOnlyList<IterationReport> history, Func<IterationReport, double> value, string label)
    {
        var points = history.Where(r => value(r) > 0 && double.IsFinite(value(r))).ToList();
        if (points.Count == 0)
        {
            return false;
        }

        double[] xs = [.. points.Select(r => (double)r.Iteration)];
        double[] ys = [.. points.Select(r => Math.Log10(value(r)))];
        ScottPlot.Plottables.Scatter s = plot.Add.Scatter(xs, ys);
        s.LegendText = label;
        s.MarkerSize = points.Count == 1 ? 5 : 0;
        s.LineWidth = 2;
        return true;
    }
}
