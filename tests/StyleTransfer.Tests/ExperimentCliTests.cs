using System.Globalization;
using System.Text.Json;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StyleTransfer.Cli;
using StyleTransfer.Experiments;
using StyleTransfer.Imaging;

namespace StyleTransfer.Tests;

/// <summary>
/// `stylize reconstruct | texture | figure1 | grid` and --log/--plot end to end on tiny images with
/// the fixture weights, and their bad inputs: exit code 2, one stderr line, nothing written.
/// </summary>
public sealed class ExperimentCliTests : CliImagesTest
{
    [Fact]
    public void ReconstructWritesTheImageTheLogAndThePlot()
    {
        string output = dir.File("rec.png");
        (int code, string stdout, string stderr) = Run("reconstruct", content, "--layer", "relu2_2", "-o", output, "--size", "40", "-n", "5", "--seed", "4", "--log", dir.File("rec.json"), "--plot", dir.File("loss.png"));
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        using (Image<Rgb24> img = Image.Load<Rgb24>(output))
        {
            Assert.Equal((40, 27), (img.Width, img.Height));
        }

        using JsonDocument log = JsonDocument.Parse(File.ReadAllBytes(dir.File("rec.json")));
        Assert.Equal("reconstruct", log.RootElement.GetProperty("command").GetString());
        JsonElement run = Assert.Single(log.RootElement.GetProperty("runs").EnumerateArray());
        JsonElement[] iterations = [.. run.GetProperty("iterations").EnumerateArray()];
        Assert.Equal(5, iterations.Length);
        double final = run.GetProperty("final").GetProperty("total").GetDouble();
        Assert.Equal(iterations[^1].GetProperty("total").GetDouble(), final);
        Assert.Contains($"final loss {G(final)} ", stdout);
        Assert.Contains($"iter 5/5  loss {G(final)} ", stdout);
        Assert.Equal(["relu2_2"], run.GetProperty("options").GetProperty("contentLayers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("noise", run.GetProperty("options").GetProperty("init").GetString());
        Assert.Equal(4, run.GetProperty("seed").GetInt64());
        Assert.Equal((LossPlot.Width, LossPlot.Height), ExperimentTests.PngSize(dir.File("loss.png")));
    }

    [Fact]
    public void TheMainCommandWritesALogWhoseLastLossIsTheReportedOne()
    {
        (int code, string stdout, string stderr) = Run(content, style, "-o", dir.File("out.png"), "-n", "3", "--log", dir.File("run.json"), "--plot", dir.File("loss.png"));
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        using JsonDocument log = JsonDocument.Parse(File.ReadAllBytes(dir.File("run.json")));
        Assert.Equal("stylize", log.RootElement.GetProperty("command").GetString());
        Assert.Equal(content, log.RootElement.GetProperty("inputs").GetProperty("content").GetString());
        JsonElement run = Assert.Single(log.RootElement.GetProperty("runs").EnumerateArray());
        double final = run.GetProperty("final").GetProperty("total").GetDouble();
        Assert.Equal(run.GetProperty("iterations")[2].GetProperty("total").GetDouble(), final);
        Assert.Contains($"final loss {G(final)} ", stdout);
        Assert.True(run.GetProperty("iterations")[2].GetProperty("seconds").GetDouble() >= 0);
        Assert.Equal((LossPlot.Width, LossPlot.Height), ExperimentTests.PngSize(dir.File("loss.png")));
    }

    [Theory]
    [InlineData(48, 48)]
    [InlineData(100, 30)]
    public void TextureHasTheRequestedSizeWhateverTheStyleImageSize(int styleWidth, int styleHeight)
    {
        string s = TestImages.Save(TestImages.Stripes(styleWidth, styleHeight), dir.File($"s{styleWidth}.png"));
        (int code, string stdout, string stderr) = Run("texture", s, "--size", "56x24", "--layers", "relu1_1,relu2_1", "-o", dir.File("tex.png"), "-n", "3");
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        using Image<Rgb24> img = Image.Load<Rgb24>(dir.File("tex.png"));
        Assert.Equal((56, 24), (img.Width, img.Height));
        Assert.Contains("(content 0e+0, style ", stdout);
    }

    [Fact]
    public void Figure1IsALabelledSheetOfTenTilesAndTheOriginals()
    {
        string output = dir.File("fig.png");
        (int code, string text, string stderr) = Run("figure1", content, style, "-o", output, "--size", "32", "-n", "2", "--log", dir.File("fig.json"));
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("10 of 10 tiles", text);

        using JsonDocument log = JsonDocument.Parse(File.ReadAllBytes(dir.File("fig.json")));
        JsonElement[] runs = [.. log.RootElement.GetProperty("runs").EnumerateArray()];
        Assert.Equal(10, runs.Length);
        Assert.Equal(["content", "style"], runs.Select(r => r.GetProperty("group").GetString()).Distinct());
        Assert.Equal(["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2", "relu1_1", "relu1_1 + relu2_1", "relu1_1 … relu3_1", "relu1_1 … relu4_1", "relu1_1 … relu5_1"], runs.Select(r => r.GetProperty("label").GetString()));

        // The same sheet through the library, to get its layout: 2 rows x 6 columns, every label inked.
        using ExperimentResult result = Experiment.Figure1(content, style, dir.File("fig2.png"), Options(32, 2));
        SheetLayout l = result.Layout!;
        Assert.Equal((2, 6), (l.Spec.Rows, l.Spec.Columns));
        Assert.Equal((32, 21), (l.Spec.TileWidth, l.Spec.TileHeight));
        using Image<Rgb24> sheet = Image.Load<Rgb24>(output);
        Assert.Equal((l.Width, l.Height), (sheet.Width, sheet.Height));
        Assert.Equal(12, l.Spec.Cells.Count);
        foreach (SheetCell cell in l.Spec.Cells)
        {
            Assert.NotNull(cell.Caption);
            Assert.True(ExperimentTests.InkIn(sheet, l.Caption(cell.Row, cell.Column)) > 5, $"caption '{cell.Caption}' is blank");
        }

        Assert.True(ExperimentTests.InkIn(sheet, l.Title) > 20);
    }

    [Fact]
    public void GridIsLabelledByRatioAndDepth()
    {
        string output = dir.File("grid.png");
        (int code, string text, string stderr) = Run("grid", content, style, "-o", output, "--size", "32", "-n", "1", "--ratios", "1e-4,1e-2", "--depths", "1,3", "--log", dir.File("grid.json"), "--plot", dir.File("grid-loss.png"));
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("4 of 4 tiles", text);
        using JsonDocument log = JsonDocument.Parse(File.ReadAllBytes(dir.File("grid.json")));
        Assert.Equal(4, log.RootElement.GetProperty("runs").GetArrayLength());
        Assert.Equal((LossPlot.Width, LossPlot.Height), ExperimentTests.PngSize(dir.File("grid-loss.png")));

        using ExperimentResult result = Experiment.Grid(content, style, dir.File("grid2.png"), Options(32, 1), new GridAxes([1e-4, 1e-2], [1, 3]));
        SheetLayout l = result.Layout!;
        Assert.Equal(["α/β = 1e-4", "α/β = 1e-2"], l.Spec.ColumnHeaders);
        Assert.Equal(["relu1_1", "relu1_1 … relu3_1"], l.Spec.RowHeaders);
        using Image<Rgb24> sheet = Image.Load<Rgb24>(output);
        Assert.Equal((l.Width, l.Height), (sheet.Width, sheet.Height));
        foreach (Box label in new[] { l.ColumnHeader(0), l.ColumnHeader(1), l.RowHeader(0), l.RowHeader(1) })
        {
            Assert.True(ExperimentTests.InkIn(sheet, label) > 5, $"label {label} is blank");
        }
    }

    [Fact]
    public void SubcommandHelpListsTheirOptions()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, CliApp.Run(["grid", "--help"], stdout, new StringWriter()));
        foreach (string option in new[] { "--ratios", "--depths", "--inits", "--log", "--plot", "--network", "--size" })
        {
            Assert.Contains(option, stdout.ToString());
        }

        stdout = new StringWriter();
        Assert.Equal(0, CliApp.Run(["--help"], stdout, new StringWriter()));
        foreach (string command in new[] { "reconstruct", "texture", "figure1", "grid", "--log", "--plot" })
        {
            Assert.Contains(command, stdout.ToString());
        }
    }

    [Theory]
    [InlineData("error: --layer: unknown layer 'relu9_9' for vgg19 (known: conv1_1, relu1_1,", "reconstruct", "IMG", "--layer", "relu9_9")]
    [InlineData("error: --size: '768x' is not a size (N for a square, or WxH, e.g. 768x512)", "texture", "IMG", "--size", "768x")]
    [InlineData("error: --size: 8x512 is out of range (each side from 16 to 16384 px)", "texture", "IMG", "--size", "8x512")]
    [InlineData("error: --layers: unknown layer 'conv9_9' for vgg19 (known: conv1_1,", "texture", "IMG", "--layers", "relu1_1,conv9_9")]
    [InlineData("error: --ratios: 'abc' is not a number above 0", "grid", "IMG", "IMG", "--ratios", "1e-3,abc")]
    [InlineData("error: --ratios: '-1' is not a number above 0", "grid", "IMG", "IMG", "--ratios", "-1")]
    [InlineData("error: --ratios is empty", "grid", "IMG", "IMG", "--ratios", ",")]
    [InlineData("error: --depths: 'two' is not a whole number of 1 or more", "grid", "IMG", "IMG", "--depths", "1,two")]
    [InlineData("error: --depths: 6 is larger than the style ladder of vgg19 (5 layers: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1)", "grid", "IMG", "IMG", "--depths", "1,6")]
    [InlineData("error: --inits: 'zeros' is not one of noise, content, style", "grid", "IMG", "IMG", "--inits", "noise,zeros")]
    [InlineData("error: --init and --inits cannot be given together", "grid", "IMG", "IMG", "--inits", "noise", "--init", "style")]
    [InlineData("error: --content-layers: unknown layer 'relu9_9' for vgg19 (known: conv1_1,", "grid", "IMG", "IMG", "--content-layers", "relu9_9")]
    [InlineData("error: --plot 'PLOT.gif' must end in .png, .jpg or .jpeg", "figure1", "IMG", "IMG", "--plot", "PLOT.gif")]
    [InlineData("error: --log folder 'NOWHERE' does not exist", "figure1", "IMG", "IMG", "--log", "NOWHERE/run.json")]
    [InlineData("error: --log and -o name the same file 'OUT'", "reconstruct", "IMG", "--log", "OUT")]
    [InlineData("error: --plot folder 'NOWHERE' does not exist", "STYLIZE", "IMG", "IMG", "--plot", "NOWHERE/loss.png")]
    [InlineData("error: unknown option '--init' (see 'stylize reconstruct --help')", "reconstruct", "IMG", "--init", "content")]
    [InlineData("error: --iterations must be at least 1, not 0", "figure1", "IMG", "IMG", "-n", "0")]
    public void BadInputGivesOneLineAndWritesNothing(string expected, params string[] args)
    {
        string output = dir.File("existing.png"), log = dir.File("existing.json");
        File.WriteAllBytes(output, [9, 9, 9]);
        File.WriteAllBytes(log, [7, 7]);
        bool imagesFirst = true;
        var list = new List<string>();
        foreach (string a in args)
        {
            list.Add(a switch
            {
                "STYLIZE" => "",
                "IMG" => (imagesFirst = !imagesFirst) ? style : content,
                "PLOT.gif" => dir.File("p.gif"),
                "NOWHERE/run.json" or "NOWHERE/loss.png" => dir.File(a),
                "OUT" => output,
                _ => a,
            });
        }

        list.RemoveAll(a => a.Length == 0);
        if (!list.Contains("--log"))
        {
            list.AddRange(["--log", log]);
        }

        (int code, _, string stderr) = Run([.. list, "-o", output]);
        string expectedLine = expected.Replace("PLOT.gif", dir.File("p.gif"), StringComparison.Ordinal).Replace("NOWHERE", dir.File("NOWHERE"), StringComparison.Ordinal).Replace("'OUT'", $"'{output}'", StringComparison.Ordinal);
        Assert.Equal(CliApp.ExitBadInput, code);
        string[] lines = stderr.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        string line = Assert.Single(lines);
        if (expectedLine.EndsWith(','))
        {
            Assert.StartsWith(expectedLine, line);
        }
        else
        {
            Assert.Equal(expectedLine, line);
        }

        Assert.Equal(new byte[] { 9, 9, 9 }, File.ReadAllBytes(output));
        Assert.Equal(new byte[] { 7, 7 }, File.ReadAllBytes(log));
        Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal) || f.EndsWith(".gif", StringComparison.Ordinal));
    }

    /// <summary>The CLI's number format for losses.</summary>
    private static string G(double v) => v.ToString("0.###e+0", CultureInfo.InvariantCulture);

    private static StyleTransferOptions Options(int size, int iterations) => new StyleTransferOptions
    {
        Size = size,
        Iterations = iterations,
        Seed = 1,
        Threads = 2,
        WeightsPath = TestPaths.NarrowPth,
    }.Validate();

    /// <summary>Runs with the fixture weights and small defaults unless the arguments say otherwise.</summary>
    private (int Code, string Stdout, string Stderr) Run(params string[] args) =>
        CliRun.WithDefaults(args, ("-o", dir.File("out.png")), ("--weights", TestPaths.NarrowPth), ("--threads", "2"), ("--size", args[0] == "texture" ? "32x24" : "32"), ("-n", "2"));
}
