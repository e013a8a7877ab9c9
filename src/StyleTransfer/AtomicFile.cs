using System.Security.Cryptography;

namespace StyleTransfer;

/// <summary>
/// Writes a file through a temporary file in the same folder and a rename, so a reader never sees
/// half a file. The temporary file is named <c>.NAME.PID.RANDOM.tmp</c> (16 random hex digits)
/// and created with create-new semantics (O_CREAT|O_EXCL): it is never an existing file or a
/// link planted in the folder, which is followed nowhere and left as it was.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Attempts at a fresh temporary name before giving up (a collision of 64 random bits means something planted it).</summary>
    private const int Attempts = 8;

    /// <summary>Tests only: the random part of the next temporary names (per async flow), to plant files at them.</summary>
    internal static readonly AsyncLocal<Func<string>?> TokenForTests = new();

    /// <summary>Tests only: a fault to raise instead of writing a path (per async flow), e.g. a full disk.</summary>
    internal static readonly AsyncLocal<Func<string, Exception?>?> FaultForTests = new();

    /// <summary>Writes <paramref name="path"/> with <paramref name="write"/>; on failure the temporary file is removed and any old file is left as it was.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        using var batch = new FileBatch();
        batch.Add(path, write);
        batch.Commit();
    }

    /// <summary>Writes <paramref name="write"/>'s bytes to a new temporary file beside <paramref name="path"/>; returns its name.</summary>
    internal static string WriteTemp(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string? temp = null;
        RemoveStale(full);
        try
        {
            using (FileStream stream = CreateTemp(full, out temp))
            {
                if (FaultForTests.Value?.Invoke(full) is { } fault)
                {
                    throw fault;
                }

                write(stream);
            }

            return temp;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw CannotWrite(path, e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Renames a temporary file of <see cref="WriteTemp"/> into place (replacing a file or link there, following none).</summary>
    internal static void Rename(string temp, string path)
    {
        try
        {
            File.Move(temp, Path.GetFullPath(path), overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw CannotWrite(path, e);
        }
    }

    private static StyleTransferException CannotWrite(string path, Exception e) => new($"cannot write '{path}' ({FirstLine(e)})");

    /// <summary>
    /// Checks that <paramref name="path"/> can name a new file: its folder exists, it is not a
    /// folder itself, and a file can be created in that folder (a temporary file is created, with
    /// the same create-new discipline as <see cref="Write"/>, and deleted), so that a read-only
    /// folder is found before the work, not after it.
    /// </summary>
    public static void CheckPath(string path, string what)
    {
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (dir != null && !Directory.Exists(dir))
        {
            throw new StyleTransferException($"{what} folder '{dir}' does not exist");
        }

        if (Directory.Exists(path))
        {
            throw new StyleTransferException($"{what} '{path}' is a folder");
        }

        string? probe = null;
        try
        {
            CreateTemp(full, out probe).Dispose();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The reason without the probe's random name: "permission denied", "Read-only file system", ...
            string reason = e is UnauthorizedAccessException ? "permission denied" : System.Text.RegularExpressions.Regex.Replace(FirstLine(e), @"\s*:?\s*'[^']*'", "").TrimEnd('.', ' ');
            throw new StyleTransferException($"{what} folder '{dir}' is not writable ({reason})");
        }
        finally
        {
            TryDelete(probe);
        }
    }

    /// <summary>
    /// Creates a new, empty temporary file beside <paramref name="full"/> (an absolute path) with
    /// create-new semantics, trying fresh random names while the name is taken.
    /// </summary>
    internal static FileStream CreateTemp(string full, out string temp)
    {
        string dir = Path.GetDirectoryName(full)!;
        string name = Path.GetFileName(full);
        for (int attempt = 1; ; attempt++)
        {
            string token = TokenForTests.Value?.Invoke() ?? RandomNumberGenerator.GetHexString(16, lowercase: true);
            string candidate = Path.Combine(dir, $".{name}.{Environment.ProcessId}.{token}.tmp");
            try
            {
                // CreateNew is O_CREAT|O_EXCL: it fails on any existing entry, a dangling link included, and follows none.
                var stream = new FileStream(candidate, FileMode.CreateNew, FileAccess.Write, FileShare.None);
                temp = candidate;
                return stream;
            }
            catch (IOException) when (attempt < Attempts && Exists(candidate))
            {
                // Taken (planted?): never touched, try another name.
            }
        }
    }

    /// <summary>
    /// Deletes temporary files of <paramref name="full"/> left by killed runs (SIGKILL, power loss):
    /// regular files (never links) named <c>.NAME.PID.RANDOM.tmp</c> (or the older
    /// <c>.NAME.PID.tmp</c>) whose process is no longer running and that nobody has written for
    /// <see cref="StaleAfterDeadOwner"/>, or that nobody has written for <see cref="StaleAfter"/>
    /// whatever their pid says (a pid can be reused). A write takes seconds, so a live writer's
    /// file is never taken, even one of a process in another pid namespace sharing the folder.
    /// </summary>
    internal static void RemoveStale(string full)
    {
        string dir = Path.GetDirectoryName(full)!;
        string prefix = $".{Path.GetFileName(full)}.";
        IEnumerable<FileInfo> candidates;
        try
        {
            candidates = [.. new DirectoryInfo(dir).EnumerateFiles(".*.tmp").Where(f => f.Name.StartsWith(prefix, StringComparison.Ordinal))];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }

        DateTime now = DateTime.UtcNow;
        foreach (FileInfo f in candidates)
        {
            string[] rest = f.Name[prefix.Length..^".tmp".Length].Split('.');
            bool ours = rest.Length is 1 or 2 && rest[0].Length > 0 && rest[0].All(char.IsAsciiDigit)
                && (rest.Length == 1 || (rest[1].Length == 16 && rest[1].All(char.IsAsciiHexDigitLower)));
            if (!ours || f.LinkTarget != null || !int.TryParse(rest[0], out int pid))
            {
                continue;
            }

            TimeSpan idle = now - f.LastWriteTimeUtc;
            if (idle >= StaleAfter || (idle >= StaleAfterDeadOwner && !IsRunning(pid)))
            {
                TryDelete(f.FullName);
            }
        }
    }

    /// <summary>A temporary file untouched this long, whose process is gone, is left over by a killed run.</summary>
    internal static readonly TimeSpan StaleAfterDeadOwner = TimeSpan.FromMinutes(1);

    /// <summary>A temporary file untouched this long is left over, whatever its pid.</summary>
    internal static readonly TimeSpan StaleAfter = TimeSpan.FromDays(1);

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId)
        {
            return true;
        }

        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Whether anything, a dangling link included, has this name.</summary>
    private static bool Exists(string path)
    {
        var info = new FileInfo(path);
        return info.Exists || info.LinkTarget != null || Directory.Exists(path);
    }

    private static string FirstLine(Exception e) => e.Message.Split('\n')[0].Trim();

    internal static void TryDelete(string? path)
    {
        if (path is null)
        {
            return;
        }

        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>
/// Files written together, all or none: each is written to its own temporary file when added (a
/// failure, such as a full disk, deletes the temporary files written so far and leaves every old
/// file as it was); <see cref="Commit"/> then renames them all into place, in the order added. A
/// rename within a folder needs no space, so once every file is written the renames succeed.
/// </summary>
internal sealed class FileBatch : IDisposable
{
    private readonly List<(string Temp, string Path)> staged = [];
    private bool committed;

    /// <summary>Writes <paramref name="path"/>'s content to a temporary file now; it appears under its name at <see cref="Commit"/>.</summary>
    public void Add(string path, Action<Stream> write)
    {
        ObjectDisposedException.ThrowIf(committed, this);
        staged.Add((AtomicFile.WriteTemp(path, write), path));
    }

    /// <summary>Renames every file into place.</summary>
    public void Commit()
    {
        committed = true;
        for (int i = 0; i < staged.Count; i++)
        {
            try
            {
                AtomicFile.Rename(staged[i].Temp, staged[i].Path);
            }
            catch
            {
                foreach ((string temp, _) in staged.Skip(i + 1))
                {
                    AtomicFile.TryDelete(temp);
                }

                throw;
            }
        }

        staged.Clear();
    }

    /// <summary>Deletes the temporary files of an uncommitted batch.</summary>
    public void Dispose()
    {
        foreach ((string temp, _) in staged)
        {
            AtomicFile.TryDelete(temp);
        }

        staged.Clear();
        committed = true;
    }
}
