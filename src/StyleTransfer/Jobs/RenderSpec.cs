using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace StyleTransfer.Jobs;

/// <summary>An input image of a render, addressed by the SHA-256 of its bytes; <see cref="Name"/> is its file name, for output names and the manifest.</summary>
internal sealed record RenderInput(string Name, string Sha256);

/// <summary>
/// One render of a batch: a content and a style image (by content hash, so the job needs no shared
/// file system), the full options (seed included), the sweep values that made it, and the output's
/// file name. <see cref="Id"/> is a hash of everything that determines the output's bytes, so a
/// re-run of the same batch finds its finished renders.
/// </summary>
internal sealed record RenderSpec
{
    public required string Id { get; init; }

    public required RenderInput Content { get; init; }

    public required RenderInput Style { get; init; }

    /// <summary>Every setting of the render (network defaults included), seed included.</summary>
    public required StyleTransferOptions Options { get; init; }

    /// <summary>The swept option values of this render (option name without dashes → value as typed), in sweep order.</summary>
    public required IReadOnlyList<KeyValuePair<string, string>> Sweep { get; init; }

    /// <summary>The output's file name (no folder): see <see cref="BatchPlanner.OutputName"/>.</summary>
    public required string Output { get; init; }

    public long Seed => Options.Seed ?? throw new InvalidOperationException("a render spec always has a seed");

    public string ToJson() => JsonSerializer.Serialize(this, JobJson.Options);

    public static RenderSpec FromJson(string json) =>
        JsonSerializer.Deserialize<RenderSpec>(json, JobJson.Options) ?? throw new FormatException("empty render spec");
}

/// <summary>What a worker reports for one render: done with losses and the output's hash, or failed with one line.</summary>
internal sealed record RenderResult
{
    public required string RenderId { get; init; }

    /// <summary><see cref="RenderStatus.Done"/> or <see cref="RenderStatus.Failed"/>.</summary>
    public required RenderStatus Status { get; init; }

    /// <summary>The one-line reason of a failed render.</summary>
    public string? Error { get; init; }

    /// <summary>Which worker (and device) rendered it: "NAME/DEVICE".</summary>
    public required string Worker { get; init; }

    public string? OutputSha256 { get; init; }

    public long OutputBytes { get; init; }

    public RenderLosses? Losses { get; init; }

    public int Iterations { get; init; }

    /// <summary>Seconds from the lease to the result on the worker (input fetch, model load, optimisation, encoding).</summary>
    public double Seconds { get; init; }

    /// <summary>Seconds spent in the optimiser's iterations only.</summary>
    public double OptimizeSeconds { get; init; }

    /// <summary>How many times the render was handed out (1 unless a worker died or lost its lease).</summary>
    public int Attempts { get; init; }

    /// <summary>Every worker the render was handed to, in order (the last one delivered, unless an earlier one finished first).</summary>
    public IReadOnlyList<string> TriedBy { get; init; } = [];

    public DateTimeOffset FinishedUtc { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, JobJson.Options);

    public static RenderResult FromJson(string json) =>
        JsonSerializer.Deserialize<RenderResult>(json, JobJson.Options) ?? throw new FormatException("empty render result");
}

/// <summary>The last iteration's loss terms.</summary>
internal sealed record RenderLosses(double Total, double Content, double Style, double Tv);

/// <summary>Where a render stands.</summary>
internal enum RenderStatus
{
    Pending,
    Running,
    Done,
    Failed,
}

/// <summary>The JSON conventions of the job model: snake_case, enums as strings, NaN/∞ allowed.</summary>
internal static class JobJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = true,
    };

    /// <summary>Lower-case hex SHA-256 of <paramref name="bytes"/>.</summary>
    public static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Lower-case hex SHA-256 of a file's bytes.</summary>
    public static string Sha256File(string path)
    {
        using FileStream s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    internal static string Sha256(string text) => Sha256(Encoding.UTF8.GetBytes(text));

    internal static string Invariant(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
