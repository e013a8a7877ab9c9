using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using StyleTransfer.Optimization;

namespace StyleTransfer.Experiments;

/// <summary>One optimisation as it goes into a log or a plot: which tile, with which options, and every iteration's report.</summary>
/// <param name="Label">The tile's label ("relu4_2"), or the command's name for a single image.</param>
/// <param name="Row">Row on the sheet (0 for a single image).</param>
/// <param name="Column">Column on the sheet (0 for a single image).</param>
/// <param name="Options">The options the run used.</param>
/// <param name="Seed">The seed it used.</param>
/// <param name="Cancelled">Stopped early (Ctrl-C).</param>
/// <param name="History">The reports the progress display was given, in order.</param>
internal sealed record LoggedRun(string Label, int Row, int Column, StyleTransferOptions Options, long Seed, bool Cancelled, IReadOnlyList<IterationReport> History)
{
    /// <summary>"content" or "style" where the label alone is ambiguous (Figure 1); null otherwise.</summary>
    public string? Group { get; init; }

    /// <summary>The label with its group: "style: relu1".</summary>
    public string Name => Group is null ? Label : $"{Group}: {Label}";

    /// <summary>The last iteration's report, or null when none ran.</summary>
    public IterationReport? Final => History.Count > 0 ? History[^1] : null;

    public static LoggedRun From(string label, int row, int column, StyleTransferOptions options, StylizeResult result) =>
        new(label, row, column, options with { Seed = result.Seed }, result.Seed, result.Cancelled, result.History);
}

/// <summary>
/// The --log file: JSON with the command, its inputs and options, and per run (one per sheet tile)
/// its options, seed, final loss and every iteration: iteration, total, content, style, tv,
/// seconds (since that run's optimisation started) and evaluations (forward/backward passes so far).
/// </summary>
internal static class RunLog
{
    private static readonly JsonSerializerOptions OptionsJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>The log as JSON text.</summary>
    /// <param name="command">"stylize", "reconstruct", "texture", "figure1" or "grid".</param>
    /// <param name="inputs">Named paths ("content", "style", "output").</param>
    /// <param name="options">The options as given (before each tile's changes).</param>
    /// <param name="runs">One per optimisation, in the order they ran.</param>
    public static byte[] Serialize(string command, IReadOnlyDictionary<string, string> inputs, StyleTransferOptions options, IReadOnlyList<LoggedRun> runs)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("command", command);
            w.WriteStartObject("inputs");
            foreach ((string k, string v) in inputs)
            {
                w.WriteString(k, v);
            }

            w.WriteEndObject();
            w.WritePropertyName("options");
            JsonSerializer.Serialize(w, options, OptionsJson);
            w.WriteStartArray("runs");
            foreach (LoggedRun run in runs)
            {
                w.WriteStartObject();
                w.WriteString("label", run.Label);
                w.WriteString("group", run.Group);
                w.WriteNumber("row", run.Row);
                w.WriteNumber("column", run.Column);
                w.WriteNumber("seed", run.Seed);
                w.WriteBoolean("cancelled", run.Cancelled);
                w.WritePropertyName("final");
                if (run.Final is { } f)
                {
                    WriteReport(w, f);
                }
                else
                {
                    w.WriteNullValue();
                }

                w.WritePropertyName("options");
                JsonSerializer.Serialize(w, run.Options, OptionsJson);
                w.WriteStartArray("iterations");
                foreach (IterationReport r in run.History)
                {
                    WriteReport(w, r);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return stream.ToArray();
    }

    /// <summary>Writes the log to <paramref name="path"/> through a temporary file and a rename; with <paramref name="batch"/>, together with the batch's other files.</summary>
    public static void Save(string path, string command, IReadOnlyDictionary<string, string> inputs, StyleTransferOptions options, IReadOnlyList<LoggedRun> runs, FileBatch? batch = null)
    {
        byte[] json = Serialize(command, inputs, options, runs);
        if (batch is null)
        {
            AtomicFile.Write(path, s => s.Write(json));
        }
        else
        {
            batch.Add(path, s => s.Write(json));
        }
    }

    /// <summary>Checks a --log path before any work is done.</summary>
    public static void CheckPath(string path) => AtomicFile.CheckPath(path, "--log");

    private static void WriteReport(Utf8JsonWriter w, IterationReport r)
    {
        w.WriteStartObject();
        w.WriteNumber("iteration", r.Iteration);
        w.WriteNumber("total", r.Total);
        w.WriteNumber("content", r.Content);
        w.WriteNumber("style", r.Style);
        w.WriteNumber("tv", r.Tv);
        w.WriteNumber("seconds", r.Elapsed.TotalSeconds);
        w.WriteNumber("evaluations", r.Evaluations);
        if (r.Scales > 1)
        {
            // Coarse to fine: losses are comparable within one scale only.
            w.WriteNumber("scale", r.Scale);
        }

        w.WriteEndObject();
    }
}
