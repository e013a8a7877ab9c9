using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace StyleTransfer.Web;

/// <summary>Job states, as the API spells them.</summary>
public static class JobStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Done = "done";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public static bool IsFinal(string status) => status is Done or Failed or Cancelled;
}

/// <summary>One uploaded image: the name the user gave it (shown, never used as a path) and the generated file name it is stored under.</summary>
public sealed record StoredImage(string Name, string File, string ContentType, int Width, int Height);

/// <summary>A job as stored. Mutable fields change only under <see cref="JobManager"/>'s lock.</summary>
public sealed class JobRecord
{
    public required string Id { get; init; }

    public long Seq { get; set; }

    public required string Client { get; init; }

    public required string Device { get; init; }

    public required DateTimeOffset Created { get; init; }

    /// <summary>The form fields as given (name, value), in order: the settings shown in the gallery and reloaded into the form.</summary>
    public required List<KeyValuePair<string, string>> Fields { get; init; }

    public required StoredImage Content { get; init; }

    public required List<StoredImage> Styles { get; init; }

    public string Status { get; set; } = JobStatus.Queued;

    public DateTimeOffset? Started { get; set; }

    public DateTimeOffset? Finished { get; set; }

    public int Iteration { get; set; }

    public int Iterations { get; set; }

    public string? Error { get; set; }

    /// <summary>True for a job that was running when the server stopped (its status is failed).</summary>
    public bool Interrupted { get; set; }

    public long? Seed { get; set; }

    public int? Width { get; set; }

    public int? Height { get; set; }

    public double? Seconds { get; set; }

    /// <summary>Optimisation time per iteration (the last report's elapsed time over its iteration), as the CLI prints it.</summary>
    public double? SecondsPerIteration { get; set; }

    /// <summary>Time the optimisation thread spent in the web app's hooks (progress events, preview copies): the serving overhead.</summary>
    public double? HookSeconds { get; set; }

    /// <summary>The total loss per iteration (for the loss curve).</summary>
    public List<double> Losses { get; set; } = [];
}

/// <summary>
/// The jobs table in SQLite (jobs.db in the data folder). One connection, used under a lock: a
/// handful of writes per job, none per iteration.
/// </summary>
public sealed class JobStore : IDisposable
{
    private const string InterruptedMessage = "interrupted: the server stopped while this job was running";
    private readonly SqliteConnection db;
    private readonly Lock gate = new();

    public JobStore(string path)
    {
        db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        db.Open();
        Exec("PRAGMA journal_mode=WAL;");
        Exec("""
            CREATE TABLE IF NOT EXISTS jobs (
              seq INTEGER PRIMARY KEY AUTOINCREMENT,
              id TEXT NOT NULL UNIQUE,
              client TEXT NOT NULL,
              device TEXT NOT NULL,
              status TEXT NOT NULL,
              created TEXT NOT NULL,
              started TEXT, finished TEXT,
              fields TEXT NOT NULL,
              content TEXT NOT NULL,
              styles TEXT NOT NULL,
              iteration INTEGER NOT NULL DEFAULT 0,
              iterations INTEGER NOT NULL DEFAULT 0,
              error TEXT, interrupted INTEGER NOT NULL DEFAULT 0,
              seed INTEGER, width INTEGER, height INTEGER, seconds REAL, per_iteration REAL, hook_seconds REAL,
              losses TEXT NOT NULL DEFAULT '[]');
            """);
    }

    public static string InterruptedError => InterruptedMessage;

    /// <summary>At start-up: jobs left running by a server that stopped become failed and interrupted. Returns how many.</summary>
    public int MarkInterrupted()
    {
        lock (gate)
        {
            using SqliteCommand c = Command(
                "UPDATE jobs SET status=$failed, interrupted=1, error=$error, finished=$now WHERE status=$running",
                ("$failed", JobStatus.Failed), ("$error", InterruptedMessage), ("$now", Now()), ("$running", JobStatus.Running));
            return c.ExecuteNonQuery();
        }
    }

    public void Insert(JobRecord job)
    {
        lock (gate)
        {
            using SqliteCommand c = Command(
                "INSERT INTO jobs (id, client, device, status, created, fields, content, styles, iterations) VALUES ($id, $client, $device, $status, $created, $fields, $content, $styles, $iterations) RETURNING seq",
                ("$id", job.Id), ("$client", job.Client), ("$device", job.Device), ("$status", job.Status), ("$created", Format(job.Created)),
                ("$fields", JsonSerializer.Serialize(job.Fields.Select(f => new[] { f.Key, f.Value }))),
                ("$content", JsonSerializer.Serialize(job.Content)), ("$styles", JsonSerializer.Serialize(job.Styles)), ("$iterations", job.Iterations));
            job.Seq = (long)c.ExecuteScalar()!;
        }
    }

    /// <summary>Writes the job's changing fields.</summary>
    public void Update(JobRecord job)
    {
        lock (gate)
        {
            using SqliteCommand c = Command(
                "UPDATE jobs SET status=$status, started=$started, finished=$finished, iteration=$iteration, iterations=$iterations, error=$error, interrupted=$interrupted, seed=$seed, width=$width, height=$height, seconds=$seconds, per_iteration=$perIteration, hook_seconds=$hookSeconds, losses=$losses WHERE id=$id",
                ("$id", job.Id), ("$status", job.Status), ("$started", Format(job.Started)), ("$finished", Format(job.Finished)),
                ("$iteration", job.Iteration), ("$iterations", job.Iterations), ("$error", job.Error), ("$interrupted", job.Interrupted ? 1 : 0),
                ("$seed", job.Seed), ("$width", job.Width), ("$height", job.Height), ("$seconds", job.Seconds), ("$perIteration", job.SecondsPerIteration), ("$hookSeconds", job.HookSeconds),
                ("$losses", JsonSerializer.Serialize(job.Losses)));
            c.ExecuteNonQuery();
        }
    }

    public JobRecord? Get(string id)
    {
        lock (gate)
        {
            return Read(Command("SELECT * FROM jobs WHERE id=$id", ("$id", id))).FirstOrDefault();
        }
    }

    /// <summary>All jobs in <paramref name="statuses"/>, oldest first (the queue's order), or the newest <paramref name="limit"/> of any status.</summary>
    public List<JobRecord> List(IReadOnlyList<string>? statuses = null, int limit = 200)
    {
        lock (gate)
        {
            return statuses is null
                ? Read(Command("SELECT * FROM jobs ORDER BY seq DESC LIMIT $limit", ("$limit", limit)))
                : Read(Command($"SELECT * FROM jobs WHERE status IN ({string.Join(",", statuses.Select((_, i) => "$s" + i))}) ORDER BY seq", [.. statuses.Select((s, i) => ("$s" + i, (object?)s))]));
        }
    }

    public void Dispose() => db.Dispose();

    private static string Now() => Format(DateTimeOffset.UtcNow)!;

    private static string? Format(DateTimeOffset? t) => t?.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset? ParseTime(object v) => v is string s ? DateTimeOffset.Parse(s, CultureInfo.InvariantCulture) : null;

    private void Exec(string sql)
    {
        using SqliteCommand c = Command(sql);
        c.ExecuteNonQuery();
    }

    private SqliteCommand Command(string sql, params (string Name, object? Value)[] args)
    {
        SqliteCommand c = db.CreateCommand();
        c.CommandText = sql;
        foreach ((string name, object? value) in args)
        {
            c.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return c;
    }

    private static List<JobRecord> Read(SqliteCommand command)
    {
        using (command)
        using (SqliteDataReader r = command.ExecuteReader())
        {
            var list = new List<JobRecord>();
            while (r.Read())
            {
                object Col(string name) => r[name];
                int? Int(string name) => Col(name) is long l ? (int)l : null;
                list.Add(new JobRecord
                {
                    Seq = (long)Col("seq"),
                    Id = (string)Col("id"),
                    Client = (string)Col("client"),
                    Device = (string)Col("device"),
                    Status = (string)Col("status"),
                    Created = ParseTime(Col("created"))!.Value,
                    Started = ParseTime(Col("started")),
                    Finished = ParseTime(Col("finished")),
                    Fields = [.. JsonSerializer.Deserialize<string[][]>((string)Col("fields"))!.Select(f => new KeyValuePair<string, string>(f[0], f[1]))],
                    Content = JsonSerializer.Deserialize<StoredImage>((string)Col("content"))!,
                    Styles = JsonSerializer.Deserialize<List<StoredImage>>((string)Col("styles"))!,
                    Iteration = Int("iteration") ?? 0,
                    Iterations = Int("iterations") ?? 0,
                    Error = Col("error") as string,
                    Interrupted = (long)Col("interrupted") != 0,
                    Seed = Col("seed") as long?,
                    Width = Int("width"),
                    Height = Int("height"),
                    Seconds = Col("seconds") as double?,
                    SecondsPerIteration = Col("per_iteration") as double?,
                    HookSeconds = Col("hook_seconds") as double?,
                    Losses = JsonSerializer.Deserialize<List<double>>((string)Col("losses")) ?? [],
                });
            }

            return list;
        }
    }
}
