using System.Text.Json;

namespace StyleTransfer.Jobs;

/// <summary>One render of a job file: content and style paths (resolved against the file's folder) and option values by name.</summary>
internal sealed record JobFileRender(string Content, string Style, IReadOnlyList<KeyValuePair<string, string>> Options);

/// <summary>
/// A JSON job file listing renders, for batches that are not a full grid:
/// <c>{"renders": [{"content": "a.jpg", "style": "starry.jpg", "options": {"style-weight": "1e8"}}, …]}</c>.
/// Paths are relative to the file's folder; option names are the image options' names without
/// dashes, values strings (or numbers) as they would be typed.
/// </summary>
internal static class JobFile
{
    private const long MaxBytes = 16L << 20;

    public static IReadOnlyList<JobFileRender> Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new StyleTransferException($"job file '{path}' does not exist");
        }

        if (info.Length > MaxBytes)
        {
            throw new StyleTransferException($"job file '{path}' is larger than {MaxBytes >> 20} MB");
        }

        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 8 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("renders", out JsonElement renders) || renders.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException("it must be an object with a \"renders\" array");
            }

            var list = new List<JobFileRender>();
            int i = 0;
            foreach (JsonElement r in renders.EnumerateArray())
            {
                string where = $"renders[{i++}]";
                if (list.Count >= BatchPlanner.MaxRenders)
                {
                    throw new FormatException($"more than {BatchPlanner.MaxRenders} renders");
                }

                string Field(string name) =>
                    r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s
                        ? Path.GetFullPath(s, dir)
                        : throw new FormatException($"{where}: \"{name}\" must be a path");

                var options = new List<KeyValuePair<string, string>>();
                if (r.TryGetProperty("options", out JsonElement o))
                {
                    if (o.ValueKind != JsonValueKind.Object)
                    {
                        throw new FormatException($"{where}: \"options\" must be an object");
                    }

                    foreach (JsonProperty p in o.EnumerateObject())
                    {
                        string value = p.Value.ValueKind switch
                        {
                            JsonValueKind.String => p.Value.GetString()!,
                            JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => p.Value.GetRawText(),
                            _ => throw new FormatException($"{where}: option \"{p.Name}\" must be a string or a number"),
                        };
                        options.Add(new(p.Name.TrimStart('-'), value));
                    }
                }

                list.Add(new JobFileRender(Field("content"), Field("style"), options));
            }

            return list;
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw new StyleTransferException($"job file '{path}': {e.Message.Split('\n')[0].Trim()}");
        }
    }
}
