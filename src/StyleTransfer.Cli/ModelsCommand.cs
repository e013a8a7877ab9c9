using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using StyleTransfer.Models;

namespace StyleTransfer.Cli;

/// <summary>
/// `stylize models download NETWORK…`: torchvision's ImageNet weights into the PyTorch hub cache
/// (<see cref="ModelDownloader"/>), with a progress bar on a terminal and plain lines otherwise.
/// </summary>
internal sealed class ModelsDownloadCommand
{
    public readonly Argument<string[]> Networks = new("NETWORK") { Description = $"Network(s) whose weights to fetch: {string.Join(", ", ModelDownloader.Known.Select(k => k.Network))}", Arity = ArgumentArity.OneOrMore };
    public readonly Option<string?> BaseUrl = new("--base-url") { Description = $"Fetch the files from this URL instead of {ModelDownloader.DefaultBaseUrl} (a mirror with the same file names; also ${ModelDownloader.BaseUrlVariable})" };

    public ModelsDownloadCommand()
    {
        Command = new Command("download", "Download torchvision's ImageNet weights into the PyTorch hub cache, where they are looked for (SHA-256 checked; an interrupted download resumes)")
        {
            Networks, BaseUrl,
        };
    }

    public Command Command { get; }

    public int Run(ParseResult p, TextWriter stdout, bool interactive, CancellationToken cancellation)
    {
        // Every name and the URL are checked before anything is fetched.
        ModelFile[] files = p.GetRequiredValue(Networks).Select(ModelDownloader.Find).Distinct().ToArray();
        Uri baseUrl = p.GetValue(BaseUrl) is { } given ? ModelDownloader.ParseBaseUrl(given, "--base-url") : ModelDownloader.BaseUrlFromEnvironment();
        string folder = ModelDownloader.HubFolder();
        using var downloader = new ModelDownloader(baseUrl);
        using var stop = new StopSignals(cancellation);
        foreach (ModelFile file in files)
        {
            if (ModelDownloader.FindExisting(file) is { } existing)
            {
                stdout.WriteLine($"{file.Network}: {existing} is there already; nothing downloaded");
                continue;
            }

            string target = Path.Combine(folder, file.FileName);
            stdout.WriteLine($"{file.Network}: {downloader.UrlOf(file)} -> {target}");
            DownloadResult result;
            try
            {
                result = interactive
                    ? WithProgressBar(downloader, file, folder, stop.Token)
                    : downloader.DownloadAsync(file, folder, new LineProgress(stdout), stop.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException) when (stop.Token.IsCancellationRequested)
            {
                stdout.WriteLine($"stopped ({stop.Name}): what was downloaded is kept in {target}.partial; run the command again to resume");
                return stop.ExitCode;
            }

            string resumed = result.ResumedFrom > 0 ? $", resumed after {Mb(result.ResumedFrom)} MB" : "";
            stdout.WriteLine($"{file.Network}: wrote {result.Path} ({Mb(result.Bytes)} MB{resumed}; SHA-256 {file.Sha256Prefix}… verified)");
        }

        return CliApp.ExitOk;
    }

    private static DownloadResult WithProgressBar(ModelDownloader downloader, ModelFile file, string folder, CancellationToken cancellation)
    {
        DownloadResult? result = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask(file.FileName, maxValue: file.MaxBytes);
                task.IsIndeterminate = true;
                var progress = new SyncProgress(r =>
                {
                    if (r.Total is long total)
                    {
                        task.MaxValue = total;
                        task.IsIndeterminate = false;
                    }

                    task.Value = r.Received;
                });
                result = downloader.DownloadAsync(file, folder, progress, cancellation).GetAwaiter().GetResult();
                task.Value = task.MaxValue;
            });
        return result!;
    }

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);

    /// <summary>Plain lines for logs and pipes: one per 10 % (per 50 MB while the size is unknown).</summary>
    private sealed class LineProgress(TextWriter writer) : IProgress<DownloadProgress>
    {
        private long lastStep = -1;

        public void Report(DownloadProgress r)
        {
            long step = r.Total is long total and > 0 ? r.Received * 10 / total : r.Received / (50L << 20);
            if (step == lastStep)
            {
                return;
            }

            lastStep = step;
            writer.WriteLine(r.Total is long t
                ? $"{r.FileName}: {step * 10}% ({Mb(r.Received)} of {Mb(t)} MB)"
                : $"{r.FileName}: {Mb(r.Received)} MB");
        }
    }

    private sealed class SyncProgress(Action<DownloadProgress> action) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => action(value);
    }
}
