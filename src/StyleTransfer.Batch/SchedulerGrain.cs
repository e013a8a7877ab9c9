using Orleans.Runtime;
using StyleTransfer.Jobs;

namespace StyleTransfer.Batch;

[GenerateSerializer]
[Alias("StyleTransfer.Batch.SchedulerState")]
internal sealed class SchedulerState
{
    [Id(0)]
    public Dictionary<string, BatchState> Batches { get; set; } = [];
}

[GenerateSerializer]
[Alias("StyleTransfer.Batch.BatchState")]
internal sealed class BatchState
{
    [Id(0)]
    public List<RenderSlot> Renders { get; set; } = [];

    [Id(1)]
    public double LeaseSeconds { get; set; }
}

[GenerateSerializer]
[Alias("StyleTransfer.Batch.RenderSlot")]
internal sealed class RenderSlot
{
    [Id(0)]
    public string Id { get; set; } = "";

    [Id(1)]
    public string SpecJson { get; set; } = "";

    [Id(2)]
    public RenderStatus Status { get; set; }

    [Id(3)]
    public string? Token { get; set; }

    [Id(4)]
    public string? Worker { get; set; }

    [Id(5)]
    public string? Silo { get; set; }

    [Id(6)]
    public DateTime LeaseUntilUtc { get; set; }

    [Id(7)]
    public int Attempts { get; set; }

    [Id(8)]
    public string? ResultJson { get; set; }

    /// <summary>Every worker the render was handed to, in order.</summary>
    [Id(9)]
    public List<string> TriedBy { get; set; } = [];
}

internal sealed class SchedulerGrain(
    [PersistentState("scheduler", BatchHosting.StorageName)] IPersistentState<SchedulerState> state,
    IClusterMembershipService membership) : Grain, ISchedulerGrain
{
    /// <summary>Workers seen, with when they last asked for work (not persisted: for the progress display).</summary>
    private readonly Dictionary<string, DateTime> workers = [];

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // Reactivated elsewhere (the silo it ran on died): running renders get a fresh lease period,
        // since their workers could not renew while this grain was away.
        DateTime now = DateTime.UtcNow;
        foreach (BatchState b in state.State.Batches.Values)
        {
            foreach (RenderSlot r in b.Renders.Where(r => r.Status == RenderStatus.Running))
            {
                r.LeaseUntilUtc = now.AddSeconds(b.LeaseSeconds);
            }
        }

        return Task.CompletedTask;
    }

    public async Task Submit(string batchId, IReadOnlyList<string> specJsons, double leaseSeconds)
    {
        if (state.State.Batches.TryGetValue(batchId, out BatchState? old) && old.Renders.Any(r => r.Status is RenderStatus.Pending or RenderStatus.Running))
        {
            throw new InvalidOperationException($"batch {batchId} is already running");
        }

        var batch = new BatchState { LeaseSeconds = leaseSeconds };
        foreach (string json in specJsons)
        {
            RenderSpec spec = RenderSpec.FromJson(json);
            batch.Renders.Add(new RenderSlot { Id = spec.Id, SpecJson = json, Status = RenderStatus.Pending });
        }

        state.State.Batches[batchId] = batch;
        await state.WriteStateAsync();
    }

    public async Task<Lease?> Next(string worker, string silo)
    {
        DateTime now = DateTime.UtcNow;
        workers[worker] = now;
        bool changed = ReleaseLost(now);
        Lease? lease = null;
        foreach ((string batchId, BatchState b) in state.State.Batches)
        {
            if (b.Renders.FirstOrDefault(r => r.Status == RenderStatus.Pending) is { } r)
            {
                r.Status = RenderStatus.Running;
                r.Token = Guid.NewGuid().ToString("N");
                r.Worker = worker;
                r.Silo = silo;
                r.Attempts++;
                r.TriedBy.Add(worker);
                r.LeaseUntilUtc = now.AddSeconds(b.LeaseSeconds);
                lease = new Lease(batchId, r.SpecJson, r.Token, r.Attempts);
                changed = true;
                break;
            }
        }

        if (changed)
        {
            await state.WriteStateAsync();
        }

        return lease;
    }

    public Task<bool> Renew(string batchId, string renderId, string token)
    {
        if (Find(batchId, renderId) is { Status: RenderStatus.Running } r && r.Token == token && state.State.Batches.TryGetValue(batchId, out BatchState? b))
        {
            r.LeaseUntilUtc = DateTime.UtcNow.AddSeconds(b.LeaseSeconds);
            return Task.FromResult(true);
        }

        return Task.FromResult(false);
    }

    public async Task<bool> Complete(string batchId, string renderId, string token, string resultJson)
    {
        if (Find(batchId, renderId) is not { } r || r.Status is RenderStatus.Done or RenderStatus.Failed)
        {
            return false;
        }

        // A lease that was taken away (its worker presumed dead) still delivers if it is first:
        // the render is done once, and the later lease is told to stop at its next renewal.
        RenderResult result = RenderResult.FromJson(resultJson) with { Attempts = r.Attempts, TriedBy = [.. r.TriedBy] };
        r.Status = result.Status;
        r.ResultJson = result.ToJson();
        r.Token = null;
        await state.WriteStateAsync();
        return true;
    }

    public Task<BatchProgress> Progress(string batchId)
    {
        DateTime now = DateTime.UtcNow;
        if (!state.State.Batches.TryGetValue(batchId, out BatchState? b))
        {
            return Task.FromResult(new BatchProgress(0, 0, 0, 0, 0, [], [], []));
        }

        List<RenderSlot> rs = b.Renders;
        return Task.FromResult(new BatchProgress(
            rs.Count,
            rs.Count(r => r.Status == RenderStatus.Pending),
            rs.Count(r => r.Status == RenderStatus.Running),
            rs.Count(r => r.Status == RenderStatus.Done),
            rs.Count(r => r.Status == RenderStatus.Failed),
            [.. rs.Where(r => r.ResultJson != null).Select(r => r.ResultJson!)],
            [.. workers.Where(w => now - w.Value < TimeSpan.FromMinutes(1)).Select(w => w.Key).Order(StringComparer.Ordinal)],
            [.. rs.Where(r => r.Status == RenderStatus.Running).Select(r => $"{r.Id}@{r.Worker}")]));
    }

    public async Task Forget(string batchId)
    {
        if (state.State.Batches.Remove(batchId))
        {
            await state.WriteStateAsync();
        }
    }

    private RenderSlot? Find(string batchId, string renderId) =>
        state.State.Batches.TryGetValue(batchId, out BatchState? b) ? b.Renders.FirstOrDefault(r => r.Id == renderId) : null;

    /// <summary>Hands back renders whose worker's silo is dead or whose lease ran out; true when any was.</summary>
    private bool ReleaseLost(DateTime now)
    {
        bool changed = false;
        ClusterMembershipSnapshot snapshot = membership.CurrentSnapshot;
        foreach (RenderSlot r in state.State.Batches.Values.SelectMany(b => b.Renders).Where(r => r.Status == RenderStatus.Running))
        {
            bool dead = r.Silo is { } s && snapshot.GetSiloStatus(SiloAddress.FromParsableString(s)) == SiloStatus.Dead;
            if (dead || now > r.LeaseUntilUtc)
            {
                r.Status = RenderStatus.Pending;
                r.Token = null;
                changed = true;
            }
        }

        return changed;
    }
}
