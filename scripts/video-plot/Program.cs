using System.Globalization;
using System.Text.RegularExpressions;

// Reads "frame N/M: ..., warping_error=E, ..." lines of `stylize video --report` logs (several logs may
// share a label: their frames are merged) and plots the warping error per frame, one curve per label.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: video-plot OUT.png LABEL=LOG[,LOG...] ...");
    return 2;
}

var plot = new ScottPlot.Plot();
foreach (string spec in args[1..])
{
    string[] parts = spec.Split('=', 2);
    var points = new SortedDictionary<int, double>();
    foreach (string log in parts[1].Split(','))
    {
        foreach (string line in File.ReadLines(log))
        {
            Match m = Regex.Match(line, @"^frame (\d+)/\d+: .*warping_error=([0-9.e+-]+)");
            if (m.Success)
            {
                points[int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)] = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            }
        }
    }

    ScottPlot.Plottables.Scatter s = plot.Add.Scatter(points.Keys.Select(k => (double)k).ToArray(), points.Values.ToArray());
    s.LegendText = parts[0];
}

plot.Title("Temporal warping error per frame (lower: less flicker)");
plot.XLabel("frame (error against the previous frame)");
plot.YLabel("warping error (MSE)");
plot.ShowLegend(ScottPlot.Edge.Top);
plot.SavePng(args[0], 800, 400);
return 0;
