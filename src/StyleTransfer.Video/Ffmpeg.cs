using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace StyleTransfer.Video;

/// <summary>What ffprobe says about a video file's first video stream (and whether it has audio).</summary>
/// <param name="Width">Coded width in pixels.</param>
/// <param name="Height">Coded height in pixels.</param>
/// <param name="FrameRate">ffprobe's r_frame_rate, e.g. "30000/1001".</param>
/// <param name="Frames">Frames counted by demuxing (nb_read_packets).</param>
/// <param name="AudioCodec">The first audio stream's codec name, or null.</param>
public sealed record VideoInfo(int Width, int Height, string FrameRate, int Frames, string? AudioCodec);

/// <summary>Debian's ffmpeg and ffprobe, found on PATH, run as child processes with arguments (no shell).</summary>
public sealed class Ffmpeg
{
    /// <summary>The one-line error when the tools are missing.</summary>
    public const string MissingMessage = "ffmpeg and ffprobe are needed for video files and were not found on PATH; install Debian's ffmpeg package (apt-get install ffmpeg)";

    private Ffmpeg(string ffmpeg, string ffprobe) => (FfmpegPath, FfprobePath) = (ffmpeg, ffprobe);

    public string FfmpegPath { get; }

    public string FfprobePath { get; }

    /// <summary>Finds both tools in the folders of <paramref name="searchPath"/> (null: $PATH).</summary>
    public static Ffmpeg Find(string? searchPath = null)
    {
        string[] dirs = (searchPath ?? Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        string? Look(string name) => dirs.Select(d => Path.Combine(d, name)).FirstOrDefault(IsExecutable);
        return Look("ffmpeg") is { } f && Look("ffprobe") is { } p ? new Ffmpeg(f, p) : throw new StyleTransferException(MissingMessage);
    }

    /// <summary>Probes a file; a one-line error when it is not a video ffprobe can read or holds no frames.</summary>
    public VideoInfo Probe(string path)
    {
        (int code, string output, string error) = Capture(FfprobePath, ["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=width,height,r_frame_rate,nb_read_packets", "-of", "default=noprint_wrappers=1", "--", ProtocolSafe(path)]);
        if (code != 0)
        {
            throw new StyleTransferException($"'{path}' is not a video ffmpeg can read ({FirstLine(error, "ffprobe failed")})");
        }

        Dictionary<string, string> fields = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('=', 2)).Where(kv => kv.Length == 2).GroupBy(kv => kv[0]).ToDictionary(g => g.Key, g => g.First()[1]);
        if (!fields.TryGetValue("width", out string? ws) || !int.TryParse(ws, CultureInfo.InvariantCulture, out int width) || width < 1
            || !fields.TryGetValue("height", out string? hs) || !int.TryParse(hs, CultureInfo.InvariantCulture, out int height) || height < 1)
        {
            throw new StyleTransferException($"'{path}' holds no video stream");
        }

        int frames = fields.TryGetValue("nb_read_packets", out string? ns) && int.TryParse(ns, CultureInfo.InvariantCulture, out int n) ? n : 0;
        if (frames < 1)
        {
            throw new StyleTransferException($"'{path}' holds no video frames");
        }

        string rate = fields.TryGetValue("r_frame_rate", out string? r) && ParseRate(r) > 0 ? r : "25/1";
        (int acode, string audio, _) = Capture(FfprobePath, ["-v", "error", "-select_streams", "a:0", "-show_entries", "stream=codec_name", "-of", "csv=p=0", "--", ProtocolSafe(path)]);
        string? codec = acode == 0 && audio.Trim() is { Length: > 0 } a ? a.Split('\n')[0].Trim() : null;
        return new VideoInfo(width, height, rate, frames, codec);
    }

    /// <summary>"30000/1001" → 29.97; 0 when it is not a positive rate.</summary>
    public static double ParseRate(string rate)
    {
        string[] parts = rate.Split('/');
        if (!double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double num))
        {
            return 0;
        }

        double den = 1;
        if (parts.Length == 2 && !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out den))
        {
            return 0;
        }

        return den > 0 && num > 0 && double.IsFinite(num / den) ? num / den : 0;
    }

    /// <summary>Starts a tool with redirected pipes; stderr is collected (the first 4 KB) on a background task.</summary>
    internal static (Process Process, Task<string> Stderr) Start(string exe, IEnumerable<string> args, bool stdin, bool stdout)
    {
        var start = new ProcessStartInfo(exe)
        {
            RedirectStandardInput = stdin,
            RedirectStandardOutput = stdout,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        Process process = Process.Start(start) ?? throw new StyleTransferException($"cannot start '{exe}'");
        Task<string> stderr = Task.Run(() => ReadCapped(process.StandardError));
        return (process, stderr);
    }

    /// <summary>A file name as ffmpeg must be given it: "file:" in front, so a name like "pipe:1" or "http:x" is never taken for a protocol.</summary>
    internal static string ProtocolSafe(string path) => "file:" + Path.GetFullPath(path);

    internal static string FirstLine(string text, string fallback) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() is { } line
            ? (line.Length > 200 ? line[..200] : line)
            : fallback;

    private static (int Code, string Output, string Error) Capture(string exe, IEnumerable<string> args)
    {
        (Process process, Task<string> stderr) = Start(exe, args, stdin: false, stdout: true);
        using (process)
        {
            string output = ReadCapped(process.StandardOutput);
            process.WaitForExit();
            return (process.ExitCode, output, stderr.Result);
        }
    }

    /// <summary>Reads a pipe to its end, keeping the first 4 KB (a hostile file cannot make ffprobe's output fill memory).</summary>
    private static string ReadCapped(StreamReader reader)
    {
        var kept = new StringBuilder();
        var buffer = new char[4096];
        int n;
        while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
        {
            kept.Append(buffer, 0, Math.Min(n, Math.Max(0, 4096 - kept.Length)));
        }

        return kept.ToString();
    }

    private static bool IsExecutable(string path)
    {
        try
        {
            return File.Exists(path) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
