using System.CommandLine;
using Spectre.Console;
using StyleTransfer.Experiments;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;

namespace StyleTransfer.Cli;

/// <summary>--log and --plot, which every image-making command takes.</summary>
internal sealed class RunOutputOptions
{
    public readonly Option<string?> Log = new("--log") { Description = "Also write a JSON log: the options, every iteration's losses, seconds and evaluations, the final loss (one entry per tile on sheets)" };
    public readonly Option<string?> Plot = new("--plot") { Description = $"Also write the loss curves, log scale, as a {LossPlot.Width}x{LossPlot.Height} PNG (or .jpg)" };

    public void AddTo(Command command)
    {
        command.Add(Log);
        command.Add(Plot);
    }

    /// <summary>
    /// Refuses bad -o / --log / --plot paths before any work is done (before the network loads):
    /// unsupported formats, missing or unwritable folders, and any output that is (after links)
    /// one of the <paramref name="inputs"/>, the --weights file, the <paramref name="resume"/>
    /// checkpoint or another output. With <paramref name="checkpoint"/> the run also writes OUT.ckpt
    /// (--save-every), which may be the checkpoint it resumes from but nothing else.
    /// </summary>
    public void Check(ParseResult p, string output, IEnumerable<(string What, string Path)> inputs, StyleTransferOptions options, string? resume = null, bool checkpoint = false, bool print = false)
    {
        if (print)
        {
            PrintOutput.CheckOutputPath(output, options.BitDepth);
        }
        else
        {
            ImageIO.CheckOutputPath(output);
        }

        string? log = p.GetValue(Log), plot = p.GetValue(Plot);
        if (log != null)
        {
            RunLog.CheckPath(log);
        }

        if (plot != null)
        {
            LossPlot.CheckPath(plot);
        }

        List<(string Name, string Path)> outputs = [("-o", output)];
        outputs.AddRange(new[] { ("--log", log), ("--plot", plot) }.Where(o => o.Item2 != null).Select(o => (o.Item1, o.Item2!)));
        List<(string What, string Path)> read = [.. inputs];
        if (options.WeightsPath is { } weights)
        {
            read.Add(("weights file", weights));
        }

        OutputPaths.CheckDistinct(outputs, resume is null ? read : [.. read, ("--resume checkpoint", resume)]);
        if (checkpoint)
        {
            OutputPaths.CheckDistinct([.. outputs, ("the --save-every checkpoint", Checkpoint.PathFor(output))], read);
        }
    }

    /// <summary>Adds the log and the plot that were asked for to <paramref name="batch"/>, which writes them with the image, all or none.</summary>
    public void Stage(ParseResult p, string command, IReadOnlyDictionary<string, string> inputs, StyleTransferOptions options, IReadOnlyList<LoggedRun> runs, FileBatch batch)
    {
        if (p.GetValue(Log) is { } log)
        {
            RunLog.Save(log, command, inputs, options, runs, batch);
        }

        if (p.GetValue(Plot) is { } plot)
        {
            string title = $"stylize {command}: {string.Join(" × ", inputs.Where(i => i.Key != "output").Select(i => Path.GetFileName(i.Value)))} ({options.Network})";
            LossPlot.Save(plot, runs, title, batch: batch);
        }
    }

    /// <summary>The "wrote" lines of the log and the plot, once written.</summary>
    public void Report(ParseResult p, TextWriter stdout)
    {
        foreach (string? path in new[] { p.GetValue(Log), p.GetValue(Plot) })
        {
            if (path != null)
            {
                stdout.WriteLine($"wrote {path}");
            }
        }
    }
}

/// <summary>
/// The paper's experiments as sub-commands: reconstruct, texture, figure1 and grid. Each parses
/// its arguments and the shared options and calls <see cref="Experiment"/>; nothing else lives here.
/// </summary>
internal sealed class ExperimentCommands
{
    private readonly List<Command> commands = [];
    private readonly CliContext context;

    public ExperimentCommands(CliContext context)
    {
        this.context = context;
        AddReconstruct();
        AddTexture();
        AddFigure1();
        AddGrid();
    }

    public IEnumerable<Command> Commands => commands;

    private static Option<string> OutputOption() => new("--output", "-o") { Description = "Output image, .png or .jpg", Required = true };

    private static Argument<string> ImageArgument(string name, string description) => new(name) { Description = description };

    private void AddReconstruct()
    {
        var image = ImageArgument("IMAGE", "The image whose content is reconstructed");
        var layer = new Option<string?>("--layer") { Description = "The layer whose features are matched: the network's (first) content layer unless given" + LibraryDefaults.Of(o => o.ContentLayers[0]) };
        var output = OutputOption();
        var set = new OptionSet();
        var outputs = new RunOutputOptions();
        var command = new Command("reconstruct", "Content reconstruction (the paper's Figure 1, top): white noise optimised to match one layer's features of IMAGE") { image, layer, output };
        set.AddTo(command, set.Init, set.ContentLayers, set.StyleLayers, set.StyleLayerWeights, set.StyleWeight, set.Ratio, set.StyleScale);
        outputs.AddTo(command);
        Register(command, (p, stdout, interactive, ct) =>
        {
            StyleTransferOptions options = set.Build(p);
            string input = p.GetRequiredValue(image), path = p.GetRequiredValue(output);
            return Execute("reconstruct", p, outputs, options, new() { ["content"] = input, ["output"] = path }, stdout, interactive, ct, (progress, token, companions) =>
                Experiment.Reconstruct(input, path, options, p.GetValue(layer), progress, token, companions));
        });
    }

    private void AddTexture()
    {
        var image = ImageArgument("STYLE", "The style image (any size: it is scaled to the output's long edge × --style-scale)");
        var layers = new Option<string?>("--layers") { Description = "Comma-separated layers whose Gram matrices are matched: the network's style layers unless given" + LibraryDefaults.Of(o => o.StyleLayers) };
        var size = new Option<string>("--size") { Description = "Output size: WxH, or N for a square", DefaultValueFactory = _ => "512" };
        var output = OutputOption();
        var set = new OptionSet();
        var outputs = new RunOutputOptions();
        var command = new Command("texture", "Style reconstruction / texture synthesis (the paper's Figure 1, bottom): white noise optimised to match STYLE's Gram matrices") { image, layers, size, output };
        set.AddTo(command, set.Size, set.Init, set.ContentLayers, set.ContentWeight, set.Ratio, set.StyleLayers);
        outputs.AddTo(command);
        Register(command, (p, stdout, interactive, ct) =>
        {
            (int w, int h) = OutputSize.Parse(p.GetValue(size) ?? "512");
            StyleTransferOptions options = set.Build(p, Math.Max(w, h));
            List<string>? layerList = p.GetValue(layers) is { } text
                ? [.. text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)]
                : null;
            string input = p.GetRequiredValue(image), path = p.GetRequiredValue(output);
            return Execute("texture", p, outputs, options, new() { ["style"] = input, ["output"] = path }, stdout, interactive, ct, (progress, token, companions) =>
                Experiment.Texture(input, path, options, (w, h), layerList, progress, token, companions));
        });
    }

    private void AddFigure1()
    {
        var content = ImageArgument("CONTENT", "Content image (the photograph)");
        var style = ImageArgument("STYLE", "Style image (the painting)");
        var output = OutputOption();
        var set = new OptionSet();
        var outputs = new RunOutputOptions();
        var command = new Command("figure1", "The paper's Figure 1 as one labelled sheet: content reconstructions from each layer of the network's content ladder, style reconstructions from its first 1, 2, … style layers") { content, style, output };
        set.AddTo(command, set.Init, set.ContentLayers, set.StyleLayers, set.StyleLayerWeights, set.Ratio, set.SaveEvery);
        outputs.AddTo(command);
        Register(command, (p, stdout, interactive, ct) =>
        {
            StyleTransferOptions options = set.Build(p);
            string c = p.GetRequiredValue(content), s = p.GetRequiredValue(style), path = p.GetRequiredValue(output);
            return Execute("figure1", p, outputs, options, new() { ["content"] = c, ["style"] = s, ["output"] = path }, stdout, interactive, ct, (progress, token, companions) =>
                Experiment.Figure1(c, s, path, options, progress, token, companions));
        });
    }

    private void AddGrid()
    {
        var content = ImageArgument("CONTENT", "Content image (the photograph)");
        var style = ImageArgument("STYLE", "Style image (the painting)");
        var ratios = new Option<string?>("--ratios") { Description = "Comma-separated α/β values, one per column: the network's α/β × 1e-2, 1e-1, 1, 1e1 unless given (for vgg19 the paper's)" + LibraryDefaults.Of(o => string.Join(",", GridAxes.DecadesAround(o.ContentWeight / o.StyleWeight).Select(r => LibraryDefaults.Text(r)))) };
        var depths = new Option<string?>("--depths") { Description = "Comma-separated style depths, one per row: depth d matches the first d layers of the network's style ladder (default: 1 to the ladder's length)" };
        var inits = new Option<string?>("--inits") { Description = "Comma-separated initialisations (noise, content, style), one row each, at the default α/β and style layers unless --ratios/--depths are given too" };
        var output = OutputOption();
        var set = new OptionSet();
        var outputs = new RunOutputOptions();
        var command = new Command("grid", "The paper's Figure 3 as one labelled sheet: α/β across the columns, style depth (or initialisation) down the rows") { content, style, ratios, depths, inits, output };
        set.AddTo(command, set.Ratio, set.StyleLayerWeights, set.SaveEvery);
        outputs.AddTo(command);
        Register(command, (p, stdout, interactive, ct) =>
        {
            StyleTransferOptions options = set.Build(p);
            if (p.GetValue(inits) != null && p.GetResult(set.Init) is { Implicit: false })
            {
                throw new StyleTransferException("--init and --inits cannot be given together");
            }

            var axes = new GridAxes(
                p.GetValue(ratios) is { } r ? GridAxes.ParseRatios(r) : null,
                p.GetValue(depths) is { } d ? GridAxes.ParseDepths(d) : null,
                p.GetValue(inits) is { } i ? GridAxes.ParseInits(i) : null);
            Experiment.PlanGrid(NetworkFactory.Profile(options.Network), options, axes); // bad axes fail here, before any image is read
            string c = p.GetRequiredValue(content), s = p.GetRequiredValue(style), path = p.GetRequiredValue(output);
            return Execute("grid", p, outputs, options, new() { ["content"] = c, ["style"] = s, ["output"] = path }, stdout, interactive, ct, (progress, token, companions) =>
                Experiment.Grid(c, s, path, options, axes, progress, token, companions));
        });
    }

    private void Register(Command command, Func<ParseResult, TextWriter, bool, CancellationToken, int> body)
    {
        command.Bind(context, (p, cancellation) => body(p, context.Stdout, context.Interactive, cancellation));
        commands.Add(command);
    }

    /// <summary>Start line, Ctrl-C, progress, the log and plot, and the summary: the same for every experiment.</summary>
    private static int Execute(
        string name,
        ParseResult p,
        RunOutputOptions outputs,
        StyleTransferOptions options,
        Dictionary<string, string> inputs,
        TextWriter stdout,
        bool interactive,
        CancellationToken cancellation,
        Func<IProgress<TileReport>, CancellationToken, Action<ExperimentResult, FileBatch>, ExperimentResult> run)
    {
        string output = inputs["output"];
        outputs.Check(p, output, inputs.Where(i => i.Key != "output").Select(i => ($"{i.Key} image", i.Value)), options);
        string version = TorchRuntime.EnsureLoaded();
        stdout.WriteLine($"stylize {name}: {options.Network} ({NetworkFactory.Describe(options)}), libtorch {version}, {options.Device}, {options.Threads ?? Environment.ProcessorCount} thread(s)");

        using var stop = new StopSignals(cancellation);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        void Companions(ExperimentResult r, FileBatch batch) => outputs.Stage(p, name, inputs, options, r.Log, batch);
        using ExperimentResult result = interactive ? RunWithProgressBar(run, stop.Token, Companions) : run(new TileLines(stdout), stop.Token, Companions);
        if (result.StoppedBeforeStart)
        {
            stdout.WriteLine($"stopped before the first iteration ({stop.Name}): nothing was written");
            return stop.ExitCode;
        }

        IReadOnlyList<LoggedRun> runs = result.Log;
        string size = $"{result.OutputSize.Width}x{result.OutputSize.Height}";
        if (result.Planned.Count == 1)
        {
            IterationReport? last = runs[0].Final;
            string losses = last is null
                ? "no iterations run"
                : $"final loss {CliApp.G(last.Total)} (content {CliApp.G(last.Content)}, style {CliApp.G(last.Style)}) after {last.Iteration} iterations ({last.Evaluations} evaluations) in {last.Elapsed.TotalSeconds:F1} s ({last.Elapsed.TotalMilliseconds / last.Iteration:F0} ms/iteration)";
            stdout.WriteLine($"wrote {output} ({size}); {losses}; seed {result.Seed}");
        }
        else
        {
            foreach (LoggedRun r in runs)
            {
                IterationReport? last = r.Final;
                stdout.WriteLine(last is null
                    ? $"  {r.Name}: no iterations run"
                    : $"  {r.Name}: final loss {CliApp.G(last.Total)} (content {CliApp.G(last.Content)}, style {CliApp.G(last.Style)}) after {last.Iteration} iterations in {last.Elapsed.TotalSeconds:F1} s");
            }

            stdout.WriteLine($"wrote {output} ({size}, {result.Tiles.Count} of {result.Planned.Count} tiles) in {clock.Elapsed.TotalSeconds:F1} s; seed {result.Seed}");
        }

        outputs.Report(p, stdout);
        if (result.Cancelled)
        {
            stdout.WriteLine($"stopped early ({stop.Name}): what was done so far was written");
            return stop.ExitCode;
        }

        return CliApp.ExitOk;
    }

    private static ExperimentResult RunWithProgressBar(Func<IProgress<TileReport>, CancellationToken, Action<ExperimentResult, FileBatch>, ExperimentResult> run, CancellationToken cancellation, Action<ExperimentResult, FileBatch> companions)
    {
        ExperimentResult? result = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask("preparing", maxValue: 1);
                var progress = new TileProgress(t =>
                {
                    IterationReport r = t.Report;
                    task.MaxValue = (double)t.Tiles * r.Iterations;
                    task.Value = ((t.Tile - 1) * (double)r.Iterations) + r.Iteration;
                    string tile = t.Tiles > 1 ? $"tile {t.Tile}/{t.Tiles} {Markup.Escape(Name(t.Plan))} " : "";
                    task.Description = $"{tile}iter {r.Iteration}/{r.Iterations} loss {CliApp.G(r.Total)} content {CliApp.G(r.Content)} style {CliApp.G(r.Style)}";
                });
                result = run(progress, cancellation, companions);
            });
        return result!;
    }

    private static string Name(TilePlan plan) => plan.Group is { } g ? $"{g}: {plan.Label}" : plan.Label;

    /// <summary>Plain progress lines for logs and pipes: every 10th iteration of each tile, its first and its last.</summary>
    private sealed class TileLines(TextWriter writer) : IProgress<TileReport>
    {
        public void Report(TileReport t)
        {
            IterationReport r = t.Report;
            if (r.Iteration != 1 && r.Iteration % 10 != 0 && r.Iteration != r.Iterations)
            {
                return;
            }

            string tile = t.Tiles > 1 ? $"[{t.Tile}/{t.Tiles} {Name(t.Plan)}] " : "";
            writer.WriteLine($"{tile}iter {r.Iteration}/{r.Iterations}  loss {CliApp.G(r.Total)}  content {CliApp.G(r.Content)}  style {CliApp.G(r.Style)}  {r.Elapsed.TotalSeconds:F1} s");
        }
    }

    private sealed class TileProgress(Action<TileReport> action) : IProgress<TileReport>
    {
        public void Report(TileReport value) => action(value);
    }
}
