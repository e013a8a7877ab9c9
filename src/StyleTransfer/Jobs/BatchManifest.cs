using System.Text.Json;

namespace StyleTransfer.Jobs;

/// <summary>One render in the manifest: what it was asked to do, and what came of it.</summary>
internal sealed record ManifestEntry
{
    public required string Id { get; init; }

    public required string Output { get; init; }

    public required RenderInput Content { get; init; }

    public required RenderInput Style { get; init; }

    public Dictionary<string, string> Sweep { get; init; } = [];

    public long Seed { get; init; }

    public RenderStatus Status { get; init; }

    public string? Error { get; init; }

    public string? Worker { get; init; }

    public RenderLosses? Losses { get; init; }

    public int Iterations { get; init; }

    public double Seconds { get; init; }

    public double OptimizeSeconds { get; init; }

    public int Attempts { get; init; }

    /// <summary>Every worker the render was handed to, in order; <see cref="Worker"/> is the one whose result was taken.</summary>
    public IReadOnlyList<string> TriedBy { get; init; } = [];

    public string? OutputSha256 { get; init; }

    public DateTimeOffset? FinishedUtc { get; init; }

    /// <summary>Every setting of the render.</summary>
    public required StyleTransferOptions Settings { get; init; }

    public static ManifestEntry Pending(RenderSpec spec) => new()
    {
        Id = spec.Id,
        Output = spec.Output,
        Content = spec.Content,
        Style = spec.Style,
        Sweep = spec.Sweep.ToDictionary(p => p.Key, p => p.Value),
        Seed = spec.Seed,
        Status = RenderStatus.Pending,
        Settings = spec.Options,
    };

    public ManifestEntry With(RenderResult r) => this with
    {
        Status = r.Status,
        Error = r.Error,
        Worker = r.Worker,
        Losses = r.Losses,
        Iterations = r.Iterations,
        Seconds = r.Seconds,
        OptimizeSeconds = r.OptimizeSeconds,
        Attempts = r.Attempts,
        TriedBy = r.TriedBy,
        OutputSha256 = r.OutputSha256,
        FinishedUtc = r.FinishedUtc,
    };
}

/// <summary>
/// The manifest of a batch (OUTDIR/manifest.json): every render's inputs, settings, seed, losses,
/// time, status and worker. Written atomically after every finished render, so an interrupted
/// batch leaves a manifest of what is done; re-running skips the renders whose entry is done and
/// whose output file still has the recorded SHA-256.
/// </summary>
internal sealed class BatchManifest
{
    public const string FileName = "manifest.json";

    /// <summary>A manifest larger than this is refused rather than read.</summary>
    private const long MaxBytes = 256L << 20;

    public int Format { get; set; } = 1;

    public List<ManifestEntry> Renders { get; set; } = [];

    /// <summary>Reads OUTDIR/manifest.json; an empty manifest when there is none.</summary>
    public static BatchManifest Load(string outDir)
    {
        string path = Path.Combine(outDir, FileName);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            return new BatchManifest();
        }

        try
        {
            if (info.Length > MaxBytes)
            {
                throw new FormatException($"larger than {MaxBytes >> 20} MB");
            }

            BatchManifest m = JsonSerializer.Deserialize<BatchManifest>(File.ReadAllBytes(path), JobJson.Options) ?? throw new FormatException("empty");
            if (m.Format != 1)
            {
                throw new FormatException($"format {m.Format}, expected 1");
            }

            return m;
        }
        catch (Exception e) when (e is JsonException or FormatException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new StyleTransferException($"cannot read the manifest '{path}' ({e.Message.Split('\n')[0].Trim()}); move it away to start the batch afresh");
        }
    }

    /// <summary>Writes OUTDIR/manifest.json atomically.</summary>
    public void Save(string outDir) =>
        AtomicFile.Write(Path.Combine(outDir, FileName), s => JsonSerializer.Serialize(s, this, JobJson.Options));

    public ManifestEntry? Find(string id) => Renders.FirstOrDefault(e => e.Id == id);

    /// <summary>Replaces (or adds) the entry with <paramref name="entry"/>'s id.</summary>
    public void Put(ManifestEntry entry)
    {
        int i = Renders.FindIndex(e => e.Id == entry.Id);
        if (i >= 0)
        {
            Renders[i] = entry;
        }
        else
        {
            Renders.Add(entry);
        }
    }

    /// <summary>Whether <paramref name="spec"/> is done: its entry says so and OUTDIR has its output with the recorded SHA-256.</summary>
    public bool IsFinished(RenderSpec spec, string outDir)
    {
        if (Find(spec.Id) is not { Status: RenderStatus.Done, OutputSha256: { } sha } entry || entry.Output != spec.Output)
        {
            return false;
        }

        string path = Path.Combine(outDir, spec.Output);
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget != null)
        {
            return false;
        }

        try
        {
            return JobJson.Sha256File(path) == sha;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
