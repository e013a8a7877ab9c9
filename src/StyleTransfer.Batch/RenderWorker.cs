using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Orleans.Runtime;
using StyleTransfer.Jobs;

namespace StyleTransfer.Batch;

/// <summary>The settings of a worker process: its name, its devices (one render at a time on each), CPU threads, and where inputs are cached.</summary>
public sealed record WorkerSettings
{
    public required string Name { get; init; }

    public IReadOnlyList<string> Devices { get; init; } = ["cpu"];

    public int? Threads { get; init; }

    /// <summary>Inputs fetched from the cluster, by SHA-256 (fetched once per worker).</summary>
    public required string CacheDir { get; init; }

    /// <summary>How often a running render's lease is renewed.</summary>
    public TimeSpan RenewEvery { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long an idle device waits before asking again.</summary>
    public TimeSpan PollEvery { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>One line per event ("w1/cpu: render ... done"), or null.</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>
/// A worker: one loop per device, each asking the scheduler for a render when free, fetching its
/// inputs by hash (once per worker, then from the local cache), rendering through
/// <see cref="EngineAdapter"/> while renewing the lease, and handing the output back by hash.
/// </summary>
internal sealed class RenderWorker(IGrainFactory grains, ILocalSiloDetails silo, WorkerSettings settings, BlobCache cache) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(settings.Devices.Select(d => Task.Factory.StartNew(() => DeviceLoop(d, stoppingToken), TaskCreationOptions.LongRunning).Unwrap()));

    private async Task DeviceLoop(string device, CancellationToken stop)
    {
        string worker = $"{settings.Name}/{device}";
        string siloAddress = silo.SiloAddress.ToParsableString();
        ISchedulerGrain scheduler = grains.GetGrain<ISchedulerGrain>(BatchHosting.SchedulerKey);
        Log($"{worker}: ready");
        while (!stop.IsCancellationRequested)
        {
            Lease? lease;
            try
            {
                lease = await scheduler.Next(worker, siloAddress);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
            {
                // The scheduler is moving to another silo (its own died): ask again shortly.
                Log($"{worker}: scheduler unavailable ({FirstLine(e)}); retrying");
                await Delay(TimeSpan.FromSeconds(1), stop);
                continue;
            }

            if (lease is null)
            {
                await Delay(settings.PollEvery, stop);
                continue;
            }

            await RunLease(scheduler, worker, device, lease, stop);
        }
    }

    private async Task RunLease(ISchedulerGrain scheduler, string worker, string device, Lease lease, CancellationToken stop)
    {
        var clock = Stopwatch.StartNew();
        RenderSpec spec = RenderSpec.FromJson(lease.SpecJson);
        Log($"{worker}: render {spec.Id} {spec.Output} started (attempt {lease.Attempt})");
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(stop);
        Task renewing = RenewLoop(scheduler, lease, spec.Id, lost);
        RenderResult result;
        byte[]? png = null;
        string? content = null, style = null;
        try
        {
            content = await Retry(() => cache.Fetch(spec.Content.Sha256, worker), $"fetching {spec.Content.Name}", worker, lost.Token);
            style = await Retry(() => cache.Fetch(spec.Style.Sha256, worker), $"fetching {spec.Style.Name}", worker, lost.Token);
            StyleTransferOptions options = spec.Options with { Device = device, Threads = settings.Threads ?? spec.Options.Threads };
            EngineOutcome outcome = await Task.Run(() => EngineAdapter.Render(content, style, options, cache.ScratchDir, lost.Token), CancellationToken.None);
            png = outcome.Png;
            string sha = JobJson.Sha256(png);
            await Retry(async () => { await grains.GetGrain<IBlobGrain>(sha).Put(png); return true; }, $"storing {spec.Output}", worker, lost.Token);
            result = new RenderResult
            {
                RenderId = spec.Id,
                Status = RenderStatus.Done,
                Worker = worker,
                OutputSha256 = sha,
                OutputBytes = png.Length,
                Losses = new RenderLosses(outcome.Total, outcome.Content, outcome.Style, outcome.Tv),
                Iterations = outcome.Iterations,
                OptimizeSeconds = outcome.OptimizeSeconds,
                Seconds = clock.Elapsed.TotalSeconds,
                FinishedUtc = DateTimeOffset.UtcNow,
            };
        }
        catch (OperationCanceledException)
        {
            await lost.CancelAsync();
            await renewing;
            Log(stop.IsCancellationRequested ? $"{worker}: render {spec.Id} abandoned (stopping)" : $"{worker}: render {spec.Id} abandoned (lease lost)");
            return;
        }
        catch (Exception e) when (IsTransient(e))
        {
            // The cluster, not the render, failed (a silo that just died still held a grain): leave the
            // render to its lease, which runs out and puts it back in the queue for any worker.
            await lost.CancelAsync();
            await renewing;
            Log($"{worker}: render {spec.Id} abandoned (cluster error: {FirstLine(e)})");
            return;
        }
        catch (StyleTransferException e)
        {
            // Name the inputs as the submitter knows them, not by their place in the cache.
            string message = e.Message;
            message = content is null ? message : message.Replace(content, spec.Content.Name, StringComparison.Ordinal);
            message = style is null ? message : message.Replace(style, spec.Style.Name, StringComparison.Ordinal);
            result = Failed(spec, worker, message, clock);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            result = Failed(spec, worker, $"internal error ({e.GetType().Name}: {FirstLine(e)})", clock);
        }

        await lost.CancelAsync();
        await renewing;
        for (int attempt = 1; attempt <= 30 && !stop.IsCancellationRequested; attempt++)
        {
            try
            {
                bool accepted = await scheduler.Complete(lease.BatchId, spec.Id, lease.Token, result.ToJson());
                Log(result.Status == RenderStatus.Done
                    ? $"{worker}: render {spec.Id} {spec.Output} done in {result.Seconds:F2} s (optimising {result.OptimizeSeconds:F2} s){(accepted ? " accepted" : " not accepted: finished elsewhere")}"
                    : $"{worker}: render {spec.Id} {spec.Output} failed: {result.Error}{(accepted ? " accepted" : " not accepted")}");
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log($"{worker}: cannot report {spec.Id} yet ({FirstLine(e)}); retrying");
                await Delay(TimeSpan.FromSeconds(1), stop);
            }
        }
    }

    private static RenderResult Failed(RenderSpec spec, string worker, string error, Stopwatch clock) => new()
    {
        RenderId = spec.Id,
        Status = RenderStatus.Failed,
        Error = error.Split('\n')[0].Trim(),
        Worker = worker,
        Seconds = clock.Elapsed.TotalSeconds,
        FinishedUtc = DateTimeOffset.UtcNow,
    };

    /// <summary>Renews the lease until <paramref name="lost"/> is cancelled; cancels it when the lease is no longer ours.</summary>
    private async Task RenewLoop(ISchedulerGrain scheduler, Lease lease, string renderId, CancellationTokenSource lost)
    {
        while (!lost.IsCancellationRequested)
        {
            await Delay(settings.RenewEvery, lost.Token);
            if (lost.IsCancellationRequested)
            {
                return;
            }

            try
            {
                if (!await scheduler.Renew(lease.BatchId, renderId, lease.Token))
                {
                    await lost.CancelAsync();
                    return;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The scheduler is moving; its new activation extends every running lease.
            }
        }
    }

    private void Log(string line)
    {
        TextWriter? log = settings.Log;
        if (log != null)
        {
            lock (log)
            {
                log.WriteLine(line);
                log.Flush();
            }
        }
    }

    private static string FirstLine(Exception e) => e.Message.Split('\n')[0].Trim();

    /// <summary>A failure of the cluster's messaging (a dead silo, a timeout), not of the render: worth retrying.</summary>
    private static bool IsTransient(Exception e) =>
        e is OrleansException or TimeoutException || (e.InnerException is { } inner && IsTransient(inner));

    /// <summary>Runs a cluster step, retrying transient failures once a second up to 10 times.</summary>
    private async Task<T> Retry<T>(Func<Task<T>> step, string what, string worker, CancellationToken stop)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await step();
            }
            catch (Exception e) when (IsTransient(e) && attempt < 10 && !stop.IsCancellationRequested)
            {
                Log($"{worker}: {what} failed ({FirstLine(e)}); retrying");
                await Delay(TimeSpan.FromSeconds(1), stop);
            }
        }
    }

    private static async Task Delay(TimeSpan t, CancellationToken c)
    {
        try
        {
            await Task.Delay(t, c);
        }
        catch (OperationCanceledException)
        {
        }
    }
}

/// <summary>A worker's local copies of input blobs, by SHA-256: each is fetched from the cluster once, checked, and written atomically.</summary>
internal sealed class BlobCache(IGrainFactory grains, WorkerSettings settings)
{
    private readonly SemaphoreSlim gate = new(1, 1);

    public string ScratchDir { get; } = Directory.CreateDirectory(Path.Combine(settings.CacheDir, "scratch")).FullName;

    public async Task<string> Fetch(string sha, string worker)
    {
        if (sha.Length != 64 || !sha.All(char.IsAsciiHexDigitLower))
        {
            throw new StyleTransferException($"'{sha}' is not a SHA-256");
        }

        string path = Path.Combine(settings.CacheDir, sha);
        await gate.WaitAsync();
        try
        {
            if (File.Exists(path) && JobJson.Sha256File(path) == sha)
            {
                return path;
            }

            byte[] data = await grains.GetGrain<IBlobGrain>(sha).Get() ?? throw new StyleTransferException($"input {sha[..12]} is not in the cluster's store");
            if (JobJson.Sha256(data) != sha)
            {
                throw new StyleTransferException($"input {sha[..12]} arrived damaged");
            }

            AtomicFile.Write(path, s => s.Write(data));
            settings.Log?.WriteLine($"{worker}: fetched input {sha[..12]} ({data.Length} bytes)");
            return path;
        }
        finally
        {
            gate.Release();
        }
    }
}
