using StyleTransfer.Jobs;

namespace StyleTransfer.Batch;

/// <summary>
/// A content-addressed blob (an input image, or a finished output until the submitter has written
/// it), keyed by the lower-case hex SHA-256 of its bytes and kept in grain storage, so workers need
/// no shared file system.
/// </summary>
public interface IBlobGrain : IGrainWithStringKey
{
    /// <summary>Stores the bytes; refused unless their SHA-256 is the key.</summary>
    Task Put(byte[] data);

    Task<bool> Exists();

    /// <summary>The bytes, or null when not stored.</summary>
    Task<byte[]?> Get();

    Task Delete();
}

/// <summary>A render handed to a worker: the batch, the spec (JSON of <see cref="RenderSpec"/>), the lease token to renew and complete with, and the attempt number.</summary>
[GenerateSerializer]
[Alias("StyleTransfer.Batch.Lease")]
public sealed record Lease([property: Id(0)] string BatchId, [property: Id(1)] string SpecJson, [property: Id(2)] string Token, [property: Id(3)] int Attempt);

/// <summary>Where a batch stands: counts, every finished render's result (JSON of <see cref="RenderResult"/>), and the workers seen.</summary>
[GenerateSerializer]
[Alias("StyleTransfer.Batch.BatchProgress")]
public sealed record BatchProgress(
    [property: Id(0)] int Total,
    [property: Id(1)] int Pending,
    [property: Id(2)] int Running,
    [property: Id(3)] int Done,
    [property: Id(4)] int Failed,
    [property: Id(5)] IReadOnlyList<string> Results,
    [property: Id(6)] IReadOnlyList<string> Workers,
    [property: Id(7)] IReadOnlyList<string> RunningOn);

/// <summary>
/// The job state of the cluster: batches of renders, handed out to workers that ask (one render per
/// free device), with leases that a live worker renews. A render whose worker's silo Orleans has
/// declared dead, or whose lease ran out, is handed out again; only the first result of a render is
/// accepted, so no render is written twice. Its state is persisted (in memory in-process, in
/// PostgreSQL in a cluster), so the scheduler survives the loss of the silo it runs on.
/// </summary>
public interface ISchedulerGrain : IGrainWithStringKey
{
    /// <summary>Adds a batch (or replaces a finished one of the same id). <paramref name="leaseSeconds"/>: how long a worker may go without renewing.</summary>
    Task Submit(string batchId, IReadOnlyList<string> specJsons, double leaseSeconds);

    /// <summary>The next render for <paramref name="worker"/> ("NAME/DEVICE") on silo <paramref name="silo"/>, or null when none is waiting.</summary>
    Task<Lease?> Next(string worker, string silo);

    /// <summary>Extends a lease; false when the lease is no longer this worker's (the render was finished or handed out again): stop.</summary>
    Task<bool> Renew(string batchId, string renderId, string token);

    /// <summary>Records a result (JSON of <see cref="RenderResult"/>); true when accepted (the first result of the render, from a current or expired lease of it).</summary>
    Task<bool> Complete(string batchId, string renderId, string token, string resultJson);

    Task<BatchProgress> Progress(string batchId);

    /// <summary>Drops a batch's state (its submitter has written every output).</summary>
    Task Forget(string batchId);
}
