using System.Diagnostics;
using StyleTransfer.Jobs;

namespace StyleTransfer.Batch;

/// <summary>A batch to run: its renders, where each input hash is read from, the output folder, and the bounds.</summary>
internal sealed record BatchRequest
{
    public required IReadOnlyList<RenderSpec> Specs { get; init; }

    /// <summary>SHA-256 → a local file with those bytes.</summary>
    public required IReadOnlyDictionary<string, string> Inputs { get; init; }

    public required string OutDir { get; init; }

    /// <summary>How long a worker may go without renewing its lease before its render is handed out again.</summary>
    public TimeSpan Lease { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The batch gives up after this long (null: no limit).</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>How often the submitter asks for progress.</summary>
    public TimeSpan PollEvery { get; init; } = TimeSpan.FromMilliseconds(300);
}

/// <summary>Something that happened to a batch, for a progress display.</summary>
internal sealed record BatchEvent(int Finished, int Total, ManifestEntry? Entry, BatchProgress? Snapshot);

/// <summary>How a batch ended.</summary>
internal sealed record BatchSummary(int Total, int Skipped, int Done, int Failed, TimeSpan Wall, IReadOnlyList<ManifestEntry> Entries)
{
    public bool Complete => Done + Failed + Skipped == Total;
}

/// <summary>
/// The submitter's side of a batch: skips renders the manifest and the output checksums say are
/// finished, uploads the inputs by hash, submits the rest to the scheduler, and follows it, writing
/// each accepted output atomically under its final name (once: the scheduler accepts one result per
/// render) and the manifest after each.
/// </summary>
internal static class BatchRunner
{
    public static async Task<BatchSummary> RunAsync(IGrainFactory grains, BatchRequest request, IProgress<BatchEvent>? progress, CancellationToken cancellation)
    {
        var wall = Stopwatch.StartNew();
        Directory.CreateDirectory(request.OutDir);
        BatchManifest manifest = BatchManifest.Load(request.OutDir);
        var todo = new List<RenderSpec>();
        int skipped = 0;
        foreach (RenderSpec spec in request.Specs)
        {
            if (manifest.IsFinished(spec, request.OutDir))
            {
                skipped++;
            }
            else
            {
                todo.Add(spec);
                manifest.Put(ManifestEntry.Pending(spec));
            }
        }

        manifest.Save(request.OutDir);
        int total = request.Specs.Count;
        progress?.Report(new BatchEvent(skipped, total, null, null));
        if (todo.Count == 0)
        {
            return Summary(request, manifest, skipped, wall);
        }

        foreach (string sha in todo.SelectMany(s => new[] { s.Content.Sha256, s.Style.Sha256 }).Distinct())
        {
            IBlobGrain blob = grains.GetGrain<IBlobGrain>(sha);
            if (!await blob.Exists())
            {
                byte[] data = await File.ReadAllBytesAsync(request.Inputs[sha], cancellation);
                if (JobJson.Sha256(data) != sha)
                {
                    throw new StyleTransferException($"'{request.Inputs[sha]}' changed while the batch was being prepared");
                }

                await blob.Put(data);
            }
        }

        string batchId = Guid.NewGuid().ToString("N");
        ISchedulerGrain scheduler = grains.GetGrain<ISchedulerGrain>(BatchHosting.SchedulerKey);
        await scheduler.Submit(batchId, [.. todo.Select(s => s.ToJson())], request.Lease.TotalSeconds);
        var pending = todo.ToDictionary(s => s.Id);
        var outputs = new HashSet<string>(StringComparer.Ordinal);
        DateTime? deadline = request.Timeout is { } t ? DateTime.UtcNow + t : null;
        try
        {
            while (pending.Count > 0)
            {
                cancellation.ThrowIfCancellationRequested();
                if (deadline is { } d && DateTime.UtcNow > d)
                {
                    throw new StyleTransferException($"the batch did not finish within {request.Timeout!.Value.TotalSeconds:F0} s ({pending.Count} of {todo.Count} renders unfinished; the manifest has the rest)", FailureKind.Engine);
                }

                BatchProgress snapshot;
                try
                {
                    snapshot = await scheduler.Progress(batchId);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The scheduler is moving to another silo; ask again.
                    await Task.Delay(request.PollEvery, cancellation);
                    continue;
                }

                foreach (string json in snapshot.Results)
                {
                    RenderResult result = RenderResult.FromJson(json);
                    if (!pending.Remove(result.RenderId, out RenderSpec? spec))
                    {
                        continue;
                    }

                    if (result.Status == RenderStatus.Done)
                    {
                        await WriteOutput(grains, request.OutDir, spec, result);
                        outputs.Add(result.OutputSha256!);
                    }

                    ManifestEntry entry = (manifest.Find(spec.Id) ?? ManifestEntry.Pending(spec)).With(result);
                    manifest.Put(entry);
                    manifest.Save(request.OutDir);
                    progress?.Report(new BatchEvent(total - pending.Count, total, entry, snapshot));
                }

                if (pending.Count > 0)
                {
                    progress?.Report(new BatchEvent(total - pending.Count, total, null, snapshot));
                    await Task.Delay(request.PollEvery, cancellation);
                }
            }
        }
        finally
        {
            // Done, given up or cancelled: the scheduler forgets the batch, and workers still on it stop at their next renewal.
            try
            {
                await scheduler.Forget(batchId).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
            }

            // The outputs written leave the store (at the end: two renders may have made the same bytes).
            foreach (string sha in outputs)
            {
                try
                {
                    await grains.GetGrain<IBlobGrain>(sha).Delete().WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                }
            }
        }

        return Summary(request, manifest, skipped, wall);
    }

    private static async Task WriteOutput(IGrainFactory grains, string outDir, RenderSpec spec, RenderResult result)
    {
        string sha = result.OutputSha256 ?? throw new StyleTransferException($"render {spec.Output} came back without its output's hash", FailureKind.Engine);
        IBlobGrain blob = grains.GetGrain<IBlobGrain>(sha);
        byte[] data = await blob.Get() ?? throw new StyleTransferException($"the output of {spec.Output} is missing from the cluster's store", FailureKind.Engine);
        if (JobJson.Sha256(data) != sha)
        {
            throw new StyleTransferException($"the output of {spec.Output} arrived damaged", FailureKind.Engine);
        }

        AtomicFile.Write(Path.Combine(outDir, spec.Output), s => s.Write(data));
    }

    private static BatchSummary Summary(BatchRequest request, BatchManifest manifest, int skipped, Stopwatch wall)
    {
        List<ManifestEntry> entries = [.. request.Specs.Select(s => manifest.Find(s.Id)!)];
        int done = entries.Count(e => e.Status == RenderStatus.Done) - skipped;
        int failed = entries.Count(e => e.Status == RenderStatus.Failed);
        return new BatchSummary(request.Specs.Count, skipped, done, failed, wall.Elapsed, entries);
    }
}
