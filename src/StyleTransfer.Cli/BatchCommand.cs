using System.CommandLine;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Spectre.Console;
using StyleTransfer.Batch;
using StyleTransfer.Jobs;

namespace StyleTransfer.Cli;

/// <summary>
/// `stylize batch` (every content with every style, and sweeps over any option, on Orleans:
/// in-process by default, or submitted to a cluster) and `stylize worker` (a cluster member that
/// renders). The job model lives in the library (<see cref="BatchPlanner"/>, <see cref="BatchManifest"/>);
/// the grains and hosts in StyleTransfer.Batch; this file only parses and displays.
/// </summary>
internal sealed class BatchCommand
{
    public readonly Option<string[]> Contents = new("--contents") { Description = "Content images: a folder (its PNG/JPEG/... files), a file, or a glob in the file name (photos/*.jpg); repeatable", AllowMultipleArgumentsPerToken = true };
    public readonly Option<string[]> Styles = new("--styles") { Description = "Style images, as --contents; every content is rendered with every style", AllowMultipleArgumentsPerToken = true };
    public readonly Option<string?> Jobs = new("--jobs") { Description = "Instead of --contents and --styles: a JSON file listing renders, {\"renders\": [{\"content\": PATH, \"style\": PATH, \"options\": {\"style-weight\": \"1e8\"}}]} (paths relative to the file)" };
    public readonly Option<string> OutDir = new("--output", "-o") { Description = "Output folder: one PNG per render, CONTENT__STYLE[__NAME-VALUE...].png, and manifest.json", Required = true };
    public readonly Option<string[]> Sweep = new("--sweep") { Description = "NAME=V1,V2,...: render once per value of an image option (e.g. style-weight=1e7,1e8 or scales=1,auto); repeatable (all combinations)" };
    public readonly Option<string?> Cluster = new("--cluster") { Description = "Submit to the cluster whose state is in this PostgreSQL database (postgres://USER[:PASSWORD]@HOST[:PORT]/DB) instead of rendering in this process" };
    public readonly Option<double> LeaseSeconds = new("--lease") { Description = "Seconds a worker may go without renewing a render before it is handed out again (a dead worker's renders move sooner, once the cluster declares it dead)", DefaultValueFactory = _ => 60 };
    public readonly Option<double> TimeoutSeconds = new("--timeout") { Description = "Give up after this many seconds (0: no limit); finished renders stay in the manifest", DefaultValueFactory = _ => 0 };

    public readonly Option<string> WorkerCluster = new("--cluster") { Description = "The cluster's PostgreSQL database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB", Required = true };
    public readonly Option<string?> WorkerName = new("--name") { Description = "This worker's name in manifests (default: host name and process id)" };
    public readonly Option<string> WorkerDevices = new("--device") { Description = "Devices to render on, one render at a time each: cpu, cuda, cuda:N, comma-separated", DefaultValueFactory = _ => "cpu" };
    public readonly Option<int?> WorkerThreads = new("--threads") { Description = "libtorch CPU threads (default: one per core)" };
    public readonly Option<string?> WorkerAddress = new("--address") { Description = "IP address other members reach this worker at (default: loopback, a cluster on one machine)" };
    public readonly Option<int?> WorkerPort = new("--port") { Description = "Silo port (default: a free one)" };
    public readonly Option<int?> WorkerGatewayPort = new("--gateway-port") { Description = "Gateway port that submitters connect to (default: a free one)" };
    public readonly Option<string?> WorkerCache = new("--cache") { Description = "Folder for inputs fetched from the cluster, by SHA-256 (default: a temporary folder, removed at exit)" };
    public readonly Option<double> WorkerProbeTimeout = new("--probe-timeout") { Description = "Seconds before an unanswered liveness probe counts as missed; two missed probes declare a member dead", DefaultValueFactory = _ => 2 };

    private readonly OptionSet set = new();

    public BatchCommand()
    {
        Command = new Command("batch", "Render every content image with every style image (and every --sweep value) on Orleans: in this process, or on a cluster of `stylize worker`s (--cluster)")
        {
            Contents, Styles, Jobs, OutDir, Sweep, Cluster, LeaseSeconds, TimeoutSeconds,
        };
        set.AddTo(Command, set.SaveEvery);
        set.AddPipelineTo(Command);
        Worker = new Command("worker", "Join a batch cluster (membership and job state in PostgreSQL) and render its batches until stopped")
        {
            WorkerCluster, WorkerName, WorkerDevices, WorkerThreads, WorkerAddress, WorkerPort, WorkerGatewayPort, WorkerCache, WorkerProbeTimeout,
        };
    }

    public Command Command { get; }

    public Command Worker { get; }

    /// <summary>`stylize batch`: <paramref name="args"/> and <paramref name="root"/> re-parse the command line once per sweep combination.</summary>
    public int Run(ParseResult p, string[] args, RootCommand root, TextWriter stdout, bool interactive, CancellationToken cancellation)
    {
        string outDir = p.GetRequiredValue(OutDir);
        if (File.Exists(outDir))
        {
            throw new StyleTransferException($"-o '{outDir}' is a file; give a folder for the batch's outputs");
        }

        List<SweepAxis> sweeps = [.. (p.GetValue(Sweep) ?? []).Select(SweepAxis.Parse)];
        var sweepable = set.All.Concat([set.PreserveColor, set.PaletteTransfer, set.SmallStyle, set.Scales]).Except([set.SaveEvery, set.Device, set.Threads]).ToDictionary(o => o.Name.TrimStart('-'));
        void CheckName(string name, string where)
        {
            if (!sweepable.TryGetValue(name, out Option? option))
            {
                throw new StyleTransferException($"{where}: '{name}' is not an image option (e.g. style-weight, content-weight, size, iterations, scales, seed)");
            }

            if (p.GetResult(option) is { Implicit: false })
            {
                throw new StyleTransferException($"{where} {name} and --{name} cannot be given together");
            }
        }

        foreach (SweepAxis axis in sweeps)
        {
            CheckName(axis.Name, "--sweep");
            if (sweeps.Count(s => s.Name == axis.Name) > 1)
            {
                throw new StyleTransferException($"--sweep {axis.Name} is given twice");
            }
        }

        StyleTransferOptions baseOptions = set.Build(p);
        StyleTransferOptions OptionsFor(IReadOnlyList<KeyValuePair<string, string>> settings)
        {
            if (settings.Count == 0)
            {
                return baseOptions;
            }

            if (settings.GroupBy(c => c.Key).FirstOrDefault(g => g.Count() > 1) is { } twice)
            {
                throw new StyleTransferException($"option {twice.Key} is given both in the job file and by --sweep");
            }

            ParseResult again = root.Parse([.. args, .. settings.SelectMany(c => new[] { "--" + c.Key, c.Value })]);
            if (ParseErrors.First(again) is { } error)
            {
                throw new StyleTransferException($"{string.Join(" ", settings.Select(c => $"{c.Key}={c.Value}"))}: {error}");
            }

            return set.Build(again);
        }

        var inputs = new Dictionary<string, string>(StringComparer.Ordinal);
        string[]? contentArgs = p.GetResult(Contents) is null ? null : p.GetValue(Contents), styleArgs = p.GetResult(Styles) is null ? null : p.GetValue(Styles);
        string? jobFile = p.GetValue(Jobs);
        IReadOnlyList<RenderSpec> specs;
        string shape;
        if (jobFile is not null)
        {
            if (contentArgs is not null || styleArgs is not null)
            {
                throw new StyleTransferException("--jobs cannot be combined with --contents or --styles");
            }

            var pairs = new List<RenderPair>();
            foreach (JobFileRender r in JobFile.Load(jobFile))
            {
                foreach (KeyValuePair<string, string> o in r.Options)
                {
                    CheckName(o.Key, $"job file '{jobFile}': option");
                }

                pairs.Add(new RenderPair(Expand([r.Content], "job file", inputs)[0], Expand([r.Style], "job file", inputs)[0], r.Options));
            }

            specs = BatchPlanner.Plan(pairs, sweeps, OptionsFor);
            shape = $"{pairs.Count} from {Path.GetFileName(jobFile)}";
        }
        else
        {
            if (contentArgs is null || styleArgs is null)
            {
                throw new StyleTransferException("give --contents and --styles (or --jobs FILE)");
            }

            List<RenderInput> contents = Expand(contentArgs, "--contents", inputs);
            List<RenderInput> styles = Expand(styleArgs, "--styles", inputs);
            specs = BatchPlanner.Plan(contents, styles, sweeps, OptionsFor);
            shape = $"{contents.Count} content × {styles.Count} style";
        }

        shape += sweeps.Count > 0 ? " × " + string.Join(" × ", sweeps.Select(s => $"{s.Values.Count} {s.Name}")) : "";
        Directory.CreateDirectory(outDir);
        AtomicFile.CheckPath(Path.Combine(outDir, BatchManifest.FileName), "output");
        OutputPaths.CheckDistinct(
            [(BatchManifest.FileName, Path.Combine(outDir, BatchManifest.FileName)), .. specs.Select(s => (s.Output, Path.Combine(outDir, s.Output)))],
            [.. inputs.Values.Select(v => ("input image", v))]);

        double timeout = p.GetValue(TimeoutSeconds), lease = p.GetValue(LeaseSeconds);
        if (!(timeout >= 0) || !(lease > 0))
        {
            throw new StyleTransferException("--timeout must be 0 or more seconds and --lease more than 0");
        }

        var request = new BatchRequest
        {
            Specs = specs,
            Inputs = inputs,
            OutDir = outDir,
            Lease = TimeSpan.FromSeconds(lease),
            Timeout = timeout > 0 ? TimeSpan.FromSeconds(timeout) : null,
        };

        string? cluster = p.GetValue(Cluster);
        stdout.WriteLine(cluster is null
            ? $"batch: {specs.Count} render(s) ({shape}) in this process on {baseOptions.Device}"
            : $"batch: {specs.Count} render(s) ({shape}) submitted to {ClusterAddress.Parse(cluster).Display}");
        using var stop = new StopSignals(cancellation);
        try
        {
            BatchSummary summary = cluster is null
                ? RunInProcess(request, baseOptions, stdout, interactive, stop.Token)
                : RunOnCluster(ClusterAddress.Parse(cluster), request, stdout, interactive, stop.Token);
            return Report(summary, outDir, stdout);
        }
        catch (OperationCanceledException) when (stop.Token.IsCancellationRequested)
        {
            stdout.WriteLine($"stopped ({stop.Name}): the manifest lists what is finished; run the same command again to continue");
            return stop.ExitCode;
        }
    }

    private static BatchSummary RunInProcess(BatchRequest request, StyleTransferOptions options, TextWriter stdout, bool interactive, CancellationToken cancellation)
    {
        string cache = Directory.CreateTempSubdirectory("stylize-batch-").FullName;
        try
        {
            var worker = new WorkerSettings { Name = "local", Devices = [options.Device], Threads = options.Threads, CacheDir = cache };
            using IHost host = BatchHosting.InProcess(worker);
            host.StartAsync(cancellation).GetAwaiter().GetResult();
            try
            {
                return Follow(host.Services.GetRequiredService<IGrainFactory>(), request, stdout, interactive, cancellation);
            }
            finally
            {
                host.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
            }
        }
        finally
        {
            try
            {
                Directory.Delete(cache, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static BatchSummary RunOnCluster(ClusterAddress cluster, BatchRequest request, TextWriter stdout, bool interactive, CancellationToken cancellation)
    {
        PostgresSchema.EnsureAsync(cluster, cancellation).GetAwaiter().GetResult();
        PostgresSchema.Register();

        // Connecting needs a worker's gateway; wait a bounded while for the first one to join.
        for (int attempt = 1; ; attempt++)
        {
            IHost host = BatchHosting.ClusterClient(cluster);
            try
            {
                host.StartAsync(cancellation).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is not OperationCanceledException && attempt < 30)
            {
                host.Dispose();
                Thread.Sleep(1000);
                continue;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                host.Dispose();
                throw new StyleTransferException($"no worker of the cluster {cluster.Display} answered in 30 s ({e.Message.Split('\n')[0].Trim()}); start one with `stylize worker --cluster ...`", FailureKind.Engine);
            }

            using (host)
            {
                try
                {
                    return Follow(host.Services.GetRequiredService<IClusterClient>(), request, stdout, interactive, cancellation);
                }
                finally
                {
                    host.StopAsync(CancellationToken.None).Wait(TimeSpan.FromSeconds(10));
                }
            }
        }
    }

    /// <summary>Runs the batch with a progress bar on a terminal, or a line per finished render.</summary>
    private static BatchSummary Follow(IGrainFactory grains, BatchRequest request, TextWriter stdout, bool interactive, CancellationToken cancellation)
    {
        if (!interactive)
        {
            var lines = new LineProgress(stdout);
            return BatchRunner.RunAsync(grains, request, lines, cancellation).GetAwaiter().GetResult();
        }

        BatchSummary? summary = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask("renders", maxValue: request.Specs.Count);
                var progress = new SyncProgress(e =>
                {
                    task.Value = e.Finished;
                    string running = e.Snapshot is { } s ? $" ({s.Running} running on {s.Workers.Count} worker(s))" : "";
                    task.Description = $"renders {e.Finished}/{e.Total}{running}";
                    if (e.Entry is { } entry)
                    {
                        AnsiConsole.MarkupLine(Markup.Escape(Line(e, entry)));
                    }
                });
                summary = BatchRunner.RunAsync(grains, request, progress, cancellation).GetAwaiter().GetResult();
            });
        return summary!;
    }

    private static int Report(BatchSummary s, string outDir, TextWriter stdout)
    {
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"batch: {s.Total} render(s): {s.Done} done, {s.Failed} failed, {s.Skipped} skipped (already done); wall {s.Wall.TotalSeconds:F1} s; manifest {Path.Combine(outDir, BatchManifest.FileName)}"));
        if (s.Failed > 0)
        {
            ManifestEntry first = s.Entries.First(e => e.Status == RenderStatus.Failed);
            throw new StyleTransferException($"{s.Failed} of {s.Total} renders failed (first: {first.Output}: {first.Error}); the manifest has each reason");
        }

        return CliApp.ExitOk;
    }

    private static string Line(BatchEvent e, ManifestEntry entry) => entry.Status == RenderStatus.Done
        ? string.Create(CultureInfo.InvariantCulture, $"[{e.Finished}/{e.Total}] {entry.Output} done by {entry.Worker} in {entry.Seconds:F1} s (optimising {entry.OptimizeSeconds:F1} s), loss {CliApp.G(entry.Losses?.Total ?? double.NaN)}")
        : $"[{e.Finished}/{e.Total}] {entry.Output} failed on {entry.Worker}: {entry.Error}";

    /// <summary>`stylize worker`: joins the cluster and renders until SIGTERM or Ctrl-C.</summary>
    public int RunWorker(ParseResult p, TextWriter stdout, CancellationToken cancellation)
    {
        ClusterAddress cluster = ClusterAddress.Parse(p.GetRequiredValue(WorkerCluster));
        string name = p.GetValue(WorkerName) ?? $"{Environment.MachineName}-{Environment.ProcessId}";
        List<string> devices = [.. p.GetRequiredValue(WorkerDevices).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
        if (devices.Count == 0 || devices.Any(d => d != "cpu" && d != "cuda" && !d.StartsWith("cuda:", StringComparison.Ordinal)) || devices.Count(d => d == "cpu") > 1)
        {
            throw new StyleTransferException($"--device must list cpu (at most once), cuda or cuda:N, comma-separated, not '{p.GetValue(WorkerDevices)}'");
        }

        IPAddress? address = null;
        if (p.GetValue(WorkerAddress) is { } a && !IPAddress.TryParse(a, out address))
        {
            throw new StyleTransferException($"--address must be an IP address, not '{a}'");
        }

        double probe = p.GetValue(WorkerProbeTimeout);
        if (!(probe > 0 && probe <= 600))
        {
            throw new StyleTransferException("--probe-timeout must be more than 0 and at most 600 seconds");
        }

        string? givenCache = p.GetValue(WorkerCache);
        string cache = givenCache is null ? Directory.CreateTempSubdirectory("stylize-worker-").FullName : Directory.CreateDirectory(givenCache).FullName;
        using var stop = new StopSignals(cancellation);
        try
        {
            PostgresSchema.EnsureAsync(cluster, stop.Token).GetAwaiter().GetResult();
            PostgresSchema.Register();
            var settings = new WorkerSettings { Name = name, Devices = devices, Threads = p.GetValue(WorkerThreads), CacheDir = cache, Log = stdout };
            using IHost host = BatchHosting.ClusterWorker(cluster, settings, address, p.GetValue(WorkerPort), p.GetValue(WorkerGatewayPort), TimeSpan.FromSeconds(probe));
            host.StartAsync(stop.Token).GetAwaiter().GetResult();
            stdout.WriteLine($"worker {name}: joined {cluster.Display}; devices {string.Join(", ", devices)}; stop with Ctrl-C or SIGTERM");
            stdout.Flush();
            stop.Token.WaitHandle.WaitOne();
            host.StopAsync(CancellationToken.None).Wait(TimeSpan.FromSeconds(15));
            stdout.WriteLine($"worker {name}: left the cluster ({stop.Name})");
            return stop.ExitCode;
        }
        catch (OperationCanceledException) when (stop.Token.IsCancellationRequested)
        {
            return stop.ExitCode;
        }
        finally
        {
            if (givenCache is null)
            {
                try
                {
                    Directory.Delete(cache, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    /// <summary>Files named by the arguments (a folder: its image files; a glob in the file name; a file), hashed; <paramref name="inputs"/> maps each hash to a file.</summary>
    private static List<RenderInput> Expand(string[] specs, string flag, Dictionary<string, string> inputs)
    {
        string[] extensions = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".tif", ".tiff", ".webp"];
        var files = new List<string>();
        foreach (string spec in specs)
        {
            string name = Path.GetFileName(spec);
            if (Directory.Exists(spec))
            {
                files.AddRange(Directory.EnumerateFiles(spec).Where(f => extensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal));
            }
            else if (name.Contains('*', StringComparison.Ordinal) || name.Contains('?', StringComparison.Ordinal))
            {
                string dir = Path.GetDirectoryName(spec) is { Length: > 0 } d ? d : ".";
                if (!Directory.Exists(dir))
                {
                    throw new StyleTransferException($"{flag}: folder '{dir}' does not exist");
                }

                files.AddRange(Directory.EnumerateFiles(dir, name).Order(StringComparer.Ordinal));
            }
            else if (File.Exists(spec))
            {
                files.Add(spec);
            }
            else
            {
                throw new StyleTransferException($"{flag}: '{spec}' does not exist");
            }
        }

        if (files.Count == 0)
        {
            throw new StyleTransferException($"{flag}: no image files in {string.Join(", ", specs.Select(s => $"'{s}'"))}");
        }

        var list = new List<RenderInput>();
        foreach (string f in files.Distinct(StringComparer.Ordinal))
        {
            string sha;
            try
            {
                sha = JobJson.Sha256File(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new StyleTransferException($"{flag}: cannot read '{f}' ({e.Message.Split('\n')[0].Trim()})");
            }

            inputs.TryAdd(sha, f);
            list.Add(new RenderInput(Path.GetFileName(f), sha));
        }

        return list;
    }

    private sealed class LineProgress(TextWriter writer) : IProgress<BatchEvent>
    {
        public void Report(BatchEvent e)
        {
            if (e.Entry is { } entry)
            {
                writer.WriteLine(Line(e, entry));
                writer.Flush();
            }
        }
    }

    private sealed class SyncProgress(Action<BatchEvent> action) : IProgress<BatchEvent>
    {
        public void Report(BatchEvent value) => action(value);
    }
}
