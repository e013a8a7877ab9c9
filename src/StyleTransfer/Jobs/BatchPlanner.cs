using System.Text;
using System.Text.Json;

namespace StyleTransfer.Jobs;

/// <summary>A content and a style image to render together, with option values of their own (name without dashes → value as typed).</summary>
internal sealed record RenderPair(RenderInput Content, RenderInput Style, IReadOnlyList<KeyValuePair<string, string>> Options);

/// <summary>One swept option: its name (without dashes, e.g. "style-weight") and the values to try, as typed.</summary>
internal sealed record SweepAxis(string Name, IReadOnlyList<string> Values)
{
    /// <summary>Parses "name=v1,v2" (a leading "--" on the name is allowed).</summary>
    public static SweepAxis Parse(string spec)
    {
        int eq = spec.IndexOf('=', StringComparison.Ordinal);
        string name = eq > 0 ? spec[..eq].Trim().TrimStart('-') : "";
        string[] values = eq > 0 ? spec[(eq + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : [];
        if (name.Length == 0 || values.Length == 0)
        {
            throw new StyleTransferException($"--sweep must be NAME=V1,V2,... (e.g. style-weight=1e7,1e8), not '{spec}'");
        }

        if (values.Distinct(StringComparer.Ordinal).Count() != values.Length)
        {
            throw new StyleTransferException($"--sweep {name}: a value is listed twice");
        }

        return new SweepAxis(name, values);
    }
}

/// <summary>
/// Turns contents × styles × sweeps into <see cref="RenderSpec"/>s: every content with every
/// style, once per combination of the swept values. Output names are predictable:
/// CONTENT_STEM__STYLE_STEM[__NAME-VALUE...].png. Without a --seed each render gets a seed derived
/// from its inputs and settings, so a re-run makes the same bytes.
/// </summary>
internal static class BatchPlanner
{
    /// <summary>More renders than this in one batch is refused (a typo in a glob should not queue a million).</summary>
    public const int MaxRenders = 100_000;

    /// <summary>Every content with every style, once per combination of the sweeps.</summary>
    public static IReadOnlyList<RenderSpec> Plan(
        IReadOnlyList<RenderInput> contents,
        IReadOnlyList<RenderInput> styles,
        IReadOnlyList<SweepAxis> sweeps,
        Func<IReadOnlyList<KeyValuePair<string, string>>, StyleTransferOptions> options)
    {
        if ((long)contents.Count * styles.Count > MaxRenders)
        {
            throw new StyleTransferException($"the batch has {(long)contents.Count * styles.Count} renders, more than {MaxRenders}");
        }

        return Plan([.. contents.SelectMany(c => styles.Select(s => new RenderPair(c, s, [])))], sweeps, options);
    }

    /// <summary>
    /// The given pairs (each with its own option values, e.g. from a job file), once per combination
    /// of the sweeps. <paramref name="options"/> gets a pair's values followed by the combination's.
    /// </summary>
    public static IReadOnlyList<RenderSpec> Plan(
        IReadOnlyList<RenderPair> pairs,
        IReadOnlyList<SweepAxis> sweeps,
        Func<IReadOnlyList<KeyValuePair<string, string>>, StyleTransferOptions> options)
    {
        long count = pairs.Count * sweeps.Aggregate(1L, (n, s) => n * s.Values.Count);
        if (count == 0)
        {
            throw new StyleTransferException("the batch has no renders (no content or no style images)");
        }

        if (count > MaxRenders)
        {
            throw new StyleTransferException($"the batch has {count} renders, more than {MaxRenders}");
        }

        List<IReadOnlyList<KeyValuePair<string, string>>> combos = [[]];
        foreach (SweepAxis axis in sweeps)
        {
            combos = [.. combos.SelectMany(c => axis.Values.Select(v => (IReadOnlyList<KeyValuePair<string, string>>)[.. c, new(axis.Name, v)]))];
        }

        var specs = new List<RenderSpec>();
        var names = new Dictionary<string, RenderSpec>(StringComparer.Ordinal);
        var built = new Dictionary<string, StyleTransferOptions>(StringComparer.Ordinal);
        foreach (IReadOnlyList<KeyValuePair<string, string>> combo in combos)
        {
            foreach ((RenderInput content, RenderInput style, IReadOnlyList<KeyValuePair<string, string>> own) in pairs)
            {
                IReadOnlyList<KeyValuePair<string, string>> settings = [.. own, .. combo];
                string key = string.Join("\n", settings.Select(p => $"{p.Key}={p.Value}"));
                if (!built.TryGetValue(key, out StyleTransferOptions? o))
                {
                    built[key] = o = options(settings);
                }

                StyleTransferOptions withSeed = o.Seed is null ? o with { Seed = DeriveSeed(content, style, o) } : o;
                string output = OutputName(content, style, settings);
                var spec = new RenderSpec
                {
                    Id = RenderId(content, style, withSeed, output),
                    Content = content,
                    Style = style,
                    Options = withSeed,
                    Sweep = settings,
                    Output = output,
                };
                if (names.TryGetValue(output, out RenderSpec? other))
                {
                    throw new StyleTransferException(
                        $"two renders would both be named '{output}' ({other.Content.Name} × {other.Style.Name} and {content.Name} × {style.Name}): give the inputs distinct file names");
                }

                names[output] = spec;
                specs.Add(spec);
            }
        }

        return specs;
    }

    /// <summary>CONTENT_STEM__STYLE_STEM[__NAME-VALUE...].png, with characters other than letters, digits, '.', '+', '-' and '_' replaced by '_'.</summary>
    public static string OutputName(RenderInput content, RenderInput style, IReadOnlyList<KeyValuePair<string, string>> sweep)
    {
        var b = new StringBuilder();
        b.Append(Clean(Path.GetFileNameWithoutExtension(content.Name))).Append("__").Append(Clean(Path.GetFileNameWithoutExtension(style.Name)));
        foreach ((string name, string value) in sweep)
        {
            b.Append("__").Append(Clean(name)).Append('-').Append(Clean(value));
        }

        return b.Append(".png").ToString();
    }

    private static string Clean(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (char c in s)
        {
            b.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '+' or '-' or '_' ? c : '_');
        }

        return b.Length == 0 ? "_" : b.ToString();
    }

    /// <summary>A seed from the inputs and settings (below 2^48, so it prints and parses exactly).</summary>
    private static long DeriveSeed(RenderInput content, RenderInput style, StyleTransferOptions o)
    {
        string key = $"seed\n{content.Sha256}\n{style.Sha256}\n{JsonSerializer.Serialize(o with { Seed = null, Device = "", Threads = null }, JobJson.Options)}";
        byte[] hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(key));
        return (long)(BitConverter.ToUInt64(hash, 0) & 0xFFFF_FFFF_FFFFUL);
    }

    /// <summary>
    /// The render's identity: a hash of the input hashes, every setting (the seed included; not the
    /// device or threads, which do not choose the result) and the output name (two copies of one
    /// image under two names are two renders).
    /// </summary>
    private static string RenderId(RenderInput content, RenderInput style, StyleTransferOptions o, string output)
    {
        string key = $"render\n{content.Sha256}\n{style.Sha256}\n{output}\n{JsonSerializer.Serialize(o with { Device = "", Threads = null }, JobJson.Options)}";
        return JobJson.Sha256(key)[..20];
    }
}
