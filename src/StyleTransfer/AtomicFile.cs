namespace StyleTransfer;

/// <summary>Writes a file through a temporary file in the same folder and a rename, so a reader never sees half a file.</summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> with <paramref name="write"/>; on failure the temporary file is removed and any old file is left as it was.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (FileStream stream = File.Create(temp))
            {
                write(stream);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new StyleTransferException($"cannot write '{path}' ({e.Message.Split('\n')[0].Trim()})");
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Checks that <paramref name="path"/> can name a new file: its folder exists and it is not a folder itself.</summary>
    public static void CheckPath(string path, string what)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir != null && !Directory.Exists(dir))
        {
            throw new StyleTransferException($"{what} folder '{dir}' does not exist");
        }

        if (Directory.Exists(path))
        {
            throw new StyleTransferException($"{what} '{path}' is a folder");
        }
    }

    private static void TryDelete(string path)
    {
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
