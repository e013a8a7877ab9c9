using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Spectre.Console;
using StyleTransfer.Experiments;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;

namespace StyleTransfer.Cli;

/// <summary>
/// The `stylize` command line: parses arguments into one <see cref="StyleTransferOptions"/>,
/// validates it once, and hands it to <see cref="Stylizer"/>. Nothing else lives here.
/// </summary>
public static class CliApp
{
    public const int ExitOk = 0;
    public const int ExitInternal = 1;
    public const int ExitBadInput = 2;
    public const int ExitDiverged = 3;
    public const int ExitEngine = 4;
    public const int ExitCancelled = 130;
    public const int ExitTerminated = 143;

    /// <summary>Runs the command line. <paramref name="interactive"/> turns on the live progress bar.</summary>
    /// <remarks>
    /// Each command carries its action (<see cref="Binding.Bind"/>); the parser picks it, or help,
    /// or the version. <paramref name="cancellation"/> is the actions' token.
    /// </remarks>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool interactive = false, CancellationToken cancellation = default)
    {
        var cli = new Definition(new CliContext(stdout, stderr, interactive, args));
        ParseResult parsed = cli.Root.Parse(args);
        if (ParseErrors.First(parsed) is { } parseError)
        {
            stderr.WriteLine($"error: {parseError}");
            return ExitBadInput;
        }

        // Ctrl-C and SIGTERM are the runs' own (StopSignals: the image so far is written, 130 or 143);
        // exceptions past Guarded (STYLIZE_DEBUG=1) go up as they are.
        var invocation = new InvocationConfiguration { Output = stdout, Error = stderr, ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false };
        return parsed.InvokeAsync(invocation, cancellation).GetAwaiter().GetResult();
    }

    /// <summary>`stylize CONTENT STYLE… -o OUT`: the root command's action.</summary>
    private static int Stylize(Definition cli, CliContext context, ParseResult parsed, CancellationToken cancellation)
    {
        string? resumePath = parsed.GetValue(cli.Resume);
        using Checkpoint? resume = resumePath is null ? null : LoadCheckpoint(resumePath);
        StyleTransferOptions options = cli.Options.Build(parsed, start: resume?.Options);
        string content = parsed.GetRequiredValue(cli.Content);
        string[] styles = parsed.GetRequiredValue(cli.Style);
        string output = parsed.GetRequiredValue(cli.Output);
        options = cli.Styles.Apply(parsed, options, styles);
        List<(string What, string Path)> read = [("content image", content), .. styles.Select((s, i) => (Stylizer.StyleName(styles.Length, i), s))];
        read.AddRange((options.StyleMasks ?? []).Select(m => ($"mask for style image {m.Style + 1}", m.Path)));
        cli.Outputs.Check(parsed, output, read, options, resumePath, checkpoint: options.SaveEvery > 0, print: true);
        var inputs = new Dictionary<string, string> { ["content"] = content };
        for (int i = 0; i < styles.Length; i++)
        {
            inputs[i == 0 ? "style" : $"style{i + 1}"] = styles[i];
        }

        foreach (StyleMask m in options.StyleMasks ?? [])
        {
            inputs[$"mask{m.Style + 1}"] = m.Path;
        }

        inputs["output"] = output;
        return Stylize(content, styles, output, options, context.Stdout, context.Interactive, cancellation, resume, resumePath, (result, batch) =>
            cli.Outputs.Stage(parsed, "stylize", inputs, options, [LoggedRun.From("stylize", 0, 0, options, result)], batch), () => cli.Outputs.Report(parsed, context.Stdout));
    }

    /// <summary>`stylize models`: every network, whether its weights are here, its default and its taps.</summary>
    private static int ListModels(TextWriter stdout)
    {
        TorchRuntime.EnsureLoaded();
        string chosen = NetworkFactory.ChooseDefault(null);
        foreach (NetworkInfo n in NetworkFactory.Describe())
        {
            StyleTransferOptions d = NetworkFactory.DefaultOptions(n.Name);
            string mark = n.Name == chosen ? " (default here)" : "";
            stdout.WriteLine($"{n.Name}{mark}: weights {(n.Weights is { } w ? "found: " + w : "not found")}");
            stdout.WriteLine($"  looked for: {n.SearchedFor}");
            stdout.WriteLine($"  default content: {string.Join(",", d.ContentLayers)}; style: {string.Join(",", d.StyleLayers)}");
            stdout.WriteLine($"  taps: {string.Join(", ", n.Taps)}");
        }

        return ExitOk;
    }

    /// <summary>Runs a command body, turning library errors into one stderr line and an exit code.</summary>
    internal static int Guarded(TextWriter stderr, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (StyleTransferException e)
        {
            stderr.WriteLine($"error: {OptionFlags.Message(e)}");
            return e.Kind switch
            {
                FailureKind.Diverged => ExitDiverged,
                FailureKind.Engine => ExitEngine,
                _ => ExitBadInput,
            };
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("STYLIZE_DEBUG") != "1")
        {
            stderr.WriteLine($"error: internal error ({e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}); set STYLIZE_DEBUG=1 for details");
            return ExitInternal;
        }
    }

    /// <summary>Reads a --resume checkpoint; libtorch must be loaded to make its tensors.</summary>
    private static Checkpoint LoadCheckpoint(string path)
    {
        TorchRuntime.EnsureLoaded();
        return Checkpoint.Load(path);
    }

    private static int Stylize(string content, IReadOnlyList<string> style, string output, StyleTransferOptions options, TextWriter stdout, bool interactive, CancellationToken cancellation, Checkpoint? resume, string? resumePath, Action<StylizeResult, FileBatch> companions, Action written)
    {
        string version = TorchRuntime.EnsureLoaded();
        string pooling = options.Network == "vgg19" ? $", {options.Pooling.ToString().ToLowerInvariant()} pooling" : "";
        string hugePages = MemoryTuning.Status(options.Network, options.Precision, options.Device);
        stdout.WriteLine($"stylize: {options.Network} ({NetworkFactory.Describe(options)}){pooling}, libtorch {version}, {options.Device}, {options.Threads ?? Environment.ProcessorCount} thread(s), {hugePages}, {MemoryTuning.HeapReuseStatus}");

        if (MemoryBudget.StartupLine(options, content, style) is { } memory)
        {
            stdout.WriteLine(memory);
        }

        // The images are checked in the library's order (content first), so the first bad one is the one named.
        _ = ImageIO.Probe(content, "content image");
        if (SmallStyles.Describe(options, [.. style.Select((s, i) => ImageIO.Probe(s, Stylizer.StyleName(style.Count, i)))]) is { } small)
        {
            stdout.WriteLine($"small style: {small} (--small-style enlarge stretches it, with every layer)");
        }

        IReadOnlyList<int> sizes = options.ScaleSizes;
        if (sizes.Count > 1)
        {
            stdout.WriteLine($"scales: {string.Join(", ", sizes)} px (long edge); iterations {string.Join(", ", sizes.Select((_, k) => options.IterationsAtScale(k, sizes.Count)))}");
        }

        if (resume != null)
        {
            stdout.WriteLine($"resuming from {resumePath} at iteration {resume.Iteration} (scale {resume.Scale + 1}), seed {resume.Seed}");
        }

        using var stop = new StopSignals(cancellation);
        StylizeResult result = interactive
            ? RunWithProgressBar(content, style, output, options, stop.Token, resume, resumePath, companions)
            : Stylizer.StylizeFiles(content, style, output, options, new LineProgress(stdout), stop.Token, resume, resumePath, companions);
        using (result)
        {
            if (result.StoppedBeforeStart)
            {
                stdout.WriteLine($"stopped before the first iteration ({stop.Name}): nothing was written");
                return stop.ExitCode;
            }

            IterationReport? last = result.History.LastOrDefault();
            string losses = last is null
                ? "no iterations run"
                : $"final loss {G(last.Total)} (content {G(last.Content)}, style {G(last.Style)}) after {last.Iteration} iterations ({last.Evaluations} evaluations) in {last.Elapsed.TotalSeconds:F1} s ({last.Elapsed.TotalMilliseconds / last.Iteration:F0} ms/iteration)";
            stdout.WriteLine($"wrote {output} ({result.Image.shape[3]}x{result.Image.shape[2]}); {losses}; seed {result.Seed}");
            written();
            if (result.Cancelled)
            {
                stdout.WriteLine(options.SaveEvery > 0
                    ? $"stopped early ({stop.Name}): the image so far was written, and a checkpoint: continue with --resume {Checkpoint.PathFor(output)}"
                    : $"stopped early ({stop.Name}): the image so far was written");
                return stop.ExitCode;
            }

            return ExitOk;
        }
    }

    private static StylizeResult RunWithProgressBar(string content, IReadOnlyList<string> style, string output, StyleTransferOptions options, CancellationToken cancellation, Checkpoint? resume, string? resumePath, Action<StylizeResult, FileBatch> companions)
    {
        StylizeResult? result = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask("preparing", maxValue: options.TotalIterations);
                var progress = new SyncProgress(r =>
                {
                    task.Value = r.Iteration;
                    task.Description = $"{ScaleLabel(r)}iter {r.Iteration}/{r.Iterations} loss {G(r.Total)} content {G(r.Content)} style {G(r.Style)}";
                });
                result = Stylizer.StylizeFiles(content, style, output, options, progress, cancellation, resume, resumePath, companions);
            });
        return result!;
    }

    private static string ScaleLabel(IterationReport r) => r.Scales > 1 ? $"scale {r.Scale}/{r.Scales} " : "";

    internal static string G(double v) => v.ToString("0.###e+0", CultureInfo.InvariantCulture);

    /// <summary>Plain progress lines for logs and pipes: every 10th iteration, the first and the last.</summary>
    private sealed class LineProgress(TextWriter writer) : IProgress<IterationReport>
    {
        public void Report(IterationReport r)
        {
            if (r.Iteration != 1 && r.Iteration % 10 != 0 && r.Iteration != r.Iterations)
            {
                return;
            }

            double perIteration = r.Elapsed.TotalSeconds / r.Iteration;
            TimeSpan eta = TimeSpan.FromSeconds(perIteration * (r.Iterations - r.Iteration));
            writer.WriteLine(
                $"{ScaleLabel(r)}iter {r.Iteration}/{r.Iterations}  loss {G(r.Total)}  content {G(r.Content)}  style {G(r.Style)}  {r.Elapsed.TotalSeconds:F1} s  eta {eta:hh\\:mm\\:ss}");
        }
    }

    private sealed class SyncProgress(Action<IterationReport> action) : IProgress<IterationReport>
    {
        public void Report(IterationReport value) => action(value);
    }

    /// <summary>The command tree: the stylize command (two images, an output, the shared options) and its subcommands, each with its action.</summary>
    private sealed class Definition
    {
        public readonly Argument<string> Content = new("CONTENT") { Description = "Content image (the photograph)" };
        public readonly Argument<string[]> Style = new("STYLE") { Description = "Style image(s) (the painting; several are blended, see --style-blend and --mask)", Arity = ArgumentArity.OneOrMore };
        public readonly Option<string> Output = new("--output", "-o") { Description = "Output image, .png or .jpg", Required = true };
        public readonly Option<string?> Resume = new("--resume") { Description = "Continue from a checkpoint (OUT.ckpt, written with --save-every); the same CONTENT and STYLE, options from the checkpoint unless given" };

        public Definition(CliContext context)
        {
            Experiments = new ExperimentCommands(context);
            Root = new RootCommand("Repaint a photograph in the style of a painting (Gatys, Ecker & Bethge, CVPR 2016).")
            {
                Content, Style, Output, Resume, Bench.Command, Models,
            };
            foreach (Command experiment in Experiments.Commands)
            {
                Root.Add(experiment);
            }

            Root.Add(Metrics.Command);
            Models.Add(ModelsDownload.Command);
            Root.Add(Batch.Command);
            Root.Add(Batch.Worker);
            Root.Add(Video.Command);
            Root.Add(Serve.Command);

            Options.AddTo(Root);
            Styles.AddTo(Root);
            Options.AddPipelineTo(Root);
            Outputs.AddTo(Root);

            // One action per command; the parser chooses (help and --version are its own).
            Root.Bind(context, (p, ct) => Stylize(this, context, p, ct));
            Models.Bind(context, (_, _) => ListModels(context.Stdout));
            ModelsDownload.Command.Bind(context, (p, ct) => ModelsDownload.Run(p, context.Stdout, context.Interactive, ct));
            Bench.Command.Bind(context, (p, _) => Bench.Run(p, context.Stdout));
            Metrics.Command.Bind(context, (p, _) => Metrics.Run(p, context.Stdout));
            Batch.Command.Bind(context, (p, ct) => Batch.Run(p, context.Args, Root, context.Stdout, context.Interactive, ct));
            Batch.Worker.Bind(context, (p, ct) => Batch.RunWorker(p, context.Stdout, ct));
            Video.Command.Bind(context, (p, ct) => Video.Run(p, context.Stdout, context.Interactive, ct));
            Serve.Command.Bind(context, (p, ct) => Serve.Run(p, context.Stdout, context.Stderr, ct));
        }

        public RootCommand Root { get; }

        public OptionSet Options { get; } = new();

        public StyleInputOptions Styles { get; } = new();

        public BenchCommand Bench { get; } = new();

        public ExperimentCommands Experiments { get; }

        public MetricsCommand Metrics { get; } = new();

        public BatchCommand Batch { get; } = new();

        public VideoCommand Video { get; } = new();

        public ServeCommand Serve { get; } = new();

        public RunOutputOptions Outputs { get; } = new();

        public Command Models { get; } = new("models", "List the feature networks, their taps, and where their weights are looked for");

        public ModelsDownloadCommand ModelsDownload { get; } = new();
    }

    /// <summary>`stylize bench`: ms per iteration, GFLOP/s and peak memory on random full-width weights.</summary>
    private sealed class BenchCommand
    {
        public readonly Option<string> Network = new("--network") { Description = "Network to time", DefaultValueFactory = _ => "vgg19" };
        public readonly Option<string> Sizes = new("--sizes") { Description = "Comma-separated square sizes in pixels", DefaultValueFactory = _ => "256,512" };
        public readonly Option<int> Iterations = new("--iterations", "-n") { Description = "Timed iterations per size (after one warm-up)", DefaultValueFactory = _ => 10 };
        public readonly Option<int?> Threads = new("--threads") { Description = "CPU threads (default: one per core)" };
        public readonly Option<double?> PeakGflops = new("--peak-gflops") { Description = "fp32 peak to compare against (default: measured, all threads running vector FMAs; none on CUDA)" };
        public readonly Option<bool> Profile = new("--profile") { Description = "Also time each VGG-19 convolution alone, forward and input-gradient backward, and its ReLU and pooling against the measured memory bandwidth (one 'profile' line per layer)" };
        public readonly Option<bool> Phases = new("--phases") { Description = "Also time the phases of one evaluation (forward, feature transform, content, style, TV, loss backward, network backward) with the network's default recipe (one 'phases' line per size, CPU only)" };
        public readonly Option<string> Device = new("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        public readonly Option<Precision> Precision = Binding.EnumOption<Precision>("--precision", "Network arithmetic: fp32, bf16 or fp16 (CUDA)" + LibraryDefaults.Of(o => o.Precision));
        public readonly Option<string?> Tiles = new("--tiles") { Description = "Tiled evaluation: auto (chosen by the memory budget, as stylize does), off, or a tile size; adds tile= and history= to each line (default: whole image)" };
        public readonly Option<string?> MaxMemory = new("--max-memory") { Description = "Memory budget for --tiles auto, e.g. 8G" };
        public readonly Option<string?> Weights = new("--weights") { Description = "Weights file of the network timed (default: its bundled or installed weights; vgg19 always times random weights)" };

        public BenchCommand()
        {
            Command = new Command("bench", "Time style-transfer iterations (random full-width weights): one machine-readable line per size")
            {
                Network, Sizes, Iterations, Threads, PeakGflops, Device, Precision, Profile, Phases, Tiles, MaxMemory, Weights,
            };
        }

        public Command Command { get; }

        /// <summary>--tiles: absent or off → 0 (whole image), auto → null (the budget chooses), N → N.</summary>
        private static int? BenchTiles(string? value) => value?.Trim().ToLowerInvariant() switch
        {
            null or "off" or "0" => 0,
            "auto" => null,
            string n when int.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out int t) && t >= 64 => t,
            string n => throw new StyleTransferException($"--tiles: '{n}' is not auto, off or a size of 64 px or more"),
        };

        public int Run(ParseResult p, TextWriter stdout)
        {
            int iterations = p.GetValue(Iterations);
            if (iterations < 1)
            {
                throw new StyleTransferException($"--iterations must be at least 1, not {iterations}");
            }

            var sizes = new List<int>();
            int? tiles = BenchTiles(p.GetValue(Tiles));
            int largest = tiles == 0 ? 4096 : 16384;
            foreach (string item in (p.GetValue(Sizes) ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!int.TryParse(item, NumberStyles.Integer, CultureInfo.InvariantCulture, out int size) || size < 16 || size > largest)
                {
                    throw new StyleTransferException($"--sizes: '{item}' is not a size from 16 to {largest}{(tiles == 0 ? " (16384 with --tiles)" : "")}");
                }

                sizes.Add(size);
            }

            if (sizes.Count == 0)
            {
                throw new StyleTransferException("--sizes must list at least one size from 16 to 4096 (e.g. --sizes 256,512)");
            }

            if (p.GetValue(PeakGflops) is double given && !(double.IsFinite(given) && given > 0))
            {
                throw new StyleTransferException($"--peak-gflops must be a positive number of GFLOP/s, not {given.ToString(CultureInfo.InvariantCulture)}");
            }

            TorchRuntime.SetThreads(p.GetValue(Threads));
            string device = p.GetValue(Device)!;
            Precision precision = p.ValueOr(Precision, new StyleTransferOptions().Precision);
            bool profile = p.GetValue(Profile);
            if (profile && (p.GetValue(Network) != "vgg19" || device != "cpu"))
            {
                throw new StyleTransferException("--profile times VGG-19's convolutions on the CPU only");
            }

            bool phases = p.GetValue(Phases);
            if (phases && device != "cpu")
            {
                throw new StyleTransferException("--phases times an evaluation on the CPU only");
            }

            string version = TorchRuntime.EnsureLoaded();
            int threads = TorchSharp.torch.get_num_threads();
            double? peak = p.GetValue(PeakGflops);
            string peakNote;
            if (peak is null && device == "cpu")
            {
                Diagnostics.FmaPeakResult measured = Diagnostics.FmaPeak.Measure(threads);
                peak = measured.Gflops;
                peakNote = $"fp32 peak {measured}";
            }
            else
            {
                peakNote = peak is null ? "no peak on this device" : string.Create(CultureInfo.InvariantCulture, $"fp32 peak {peak:F0} GFLOP/s given");
            }

            CpuInfo cpu = CpuInfo.ThisMachine;
            string hugePages = MemoryTuning.Status(p.GetValue(Network)!, precision, device);
            Diagnostics.MemoryBandwidthResult? memory = profile ? Diagnostics.MemoryBandwidth.Measure(threads) : null;
            stdout.WriteLine($"# libtorch {version}, {threads} thread(s), {Environment.ProcessorCount} core(s); {peakNote}{(memory is null ? "" : $"; {memory}")}; cpu {cpu.Model}, onednn isa {cpu.OneDnnIsaNote()}; {hugePages}; {MemoryTuning.HeapReuseStatus}");
            foreach (int size in sizes)
            {
                if (profile)
                {
                    bool channelsLast = Networks.MixedPrecisionNetwork.PrefersChannelsLast("vgg19", TorchSharp.torch.CPU);
                    IReadOnlyList<Diagnostics.ConvProfileRow> rows = Diagnostics.ConvProfile.Run(size, precision, channelsLast, memory: memory);
                    foreach (Diagnostics.ConvProfileRow row in rows)
                    {
                        stdout.WriteLine(row);
                    }

                    stdout.WriteLine(Diagnostics.ConvProfile.Total(rows, size, peak!.Value, channelsLast, precision));
                }

                if (phases)
                {
                    stdout.WriteLine(Diagnostics.IterationPhases.Run(p.GetValue(Network)!, size, precision, iterations, p.GetValue(Weights)));
                }

                stdout.WriteLine(Diagnostics.Benchmark.Run(p.GetValue(Network)!, size, iterations, peak, device, precision, tiles, p.GetValue(MaxMemory) is { } m ? MemoryBudget.Parse(m) : null, p.GetValue(Weights)));
            }

            return ExitOk;
        }
    }
}
