namespace StyleTransfer;

/// <summary>
/// Checks on a run's output paths before any work is done: none may be (after links) one of the
/// inputs or another output. Comparisons use <see cref="Resolve(string)"/>, realpath's semantics.
/// </summary>
internal static class OutputPaths
{
    /// <summary>Links followed before giving up (Linux's own limit is 40).</summary>
    private const int MaxLinks = 40;

    /// <summary>
    /// The absolute path with every symbolic link among its existing components resolved (the
    /// components that do not exist yet are appended as they are), like realpath(3).
    /// </summary>
    public static string Resolve(string path)
    {
        int links = 0;
        return Resolve(Path.GetFullPath(path), ref links);
    }

    /// <summary>
    /// Throws a one-line <see cref="StyleTransferException"/> when two of <paramref name="outputs"/>
    /// (name as the user knows it, e.g. "-o" or "--log", and path) resolve to the same file, or one
    /// resolves to one of <paramref name="inputs"/> (what it is, e.g. "content image", and path).
    /// </summary>
    public static void CheckDistinct(IReadOnlyList<(string Name, string Path)> outputs, IReadOnlyList<(string What, string Path)> inputs)
    {
        var seen = new List<(string Name, string Resolved)>();
        foreach ((string name, string path) in outputs)
        {
            string resolved = Resolve(path);
            if (seen.FirstOrDefault(s => s.Resolved == resolved) is { Name: { } other })
            {
                throw new StyleTransferException($"{name} and {other} name the same file '{path}'");
            }

            foreach ((string what, string input) in inputs)
            {
                if (Resolve(input) == resolved)
                {
                    throw new StyleTransferException($"{name} '{path}' would overwrite the {what} '{input}'");
                }
            }

            seen.Add((name, resolved));
        }
    }

    private static string Resolve(string full, ref int links)
    {
        string root = Path.GetPathRoot(full) ?? "/";
        string current = root;
        string[] parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < parts.Length; i++)
        {
            string next = Path.Combine(current, parts[i]);
            string? target;
            try
            {
                target = new FileInfo(next).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                target = null;
            }

            if (target is null)
            {
                current = next;
                continue;
            }

            if (++links > MaxLinks)
            {
                throw new StyleTransferException($"'{full}' has too many levels of symbolic links");
            }

            // A relative target is relative to the link's folder; the target may hold links of its own.
            current = Resolve(Path.GetFullPath(target, current), ref links);
        }

        return current;
    }
}
