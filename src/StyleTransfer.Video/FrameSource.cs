using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using StyleTransfer.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Video;

/// <summary>Content frames, one at a time, at the output size: [1,3,H,W] RGB float32 in [0,1] on the CPU.</summary>
public interface IFrameSource : IDisposable
{
    int Width { get; }

    int Height { get; }

    /// <summary>Frames expected (a decoder may deliver fewer).</summary>
    int Count { get; }

    /// <summary>The next frame, or null at the end.</summary>
    Tensor? Next();
}

/// <summary>A video file decoded by ffmpeg, scaled to the output size, piped as raw RGB (no temporary files).</summary>
internal sealed class FfmpegFrameSource : IFrameSource
{
    private readonly Process process;
    private readonly Task<string> stderr;
    private readonly Stream pipe;
    private readonly byte[] buffer;
    private readonly string path;
    private int delivered;

    public FfmpegFrameSource(Ffmpeg tools, string path, int width, int height, int count)
    {
        (this.path, Width, Height, Count) = (path, width, height, count);
        buffer = new byte[checked(width * height * 3)];
        (process, stderr) = Ffmpeg.Start(tools.FfmpegPath, [
            "-nostdin", "-v", "error", "-i", Ffmpeg.ProtocolSafe(path), "-map", "0:v:0", "-fps_mode", "passthrough",
            "-vf", string.Create(CultureInfo.InvariantCulture, $"scale={width}:{height}:flags=lanczos"), "-frames:v", count.ToString(CultureInfo.InvariantCulture),
            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], stdin: false, stdout: true);
        pipe = process.StandardOutput.BaseStream;
    }

    public int Width { get; }

    public int Height { get; }

    public int Count { get; }

    public Tensor? Next()
    {
        if (delivered >= Count)
        {
            return null;
        }

        int read = 0;
        while (read < buffer.Length)
        {
            int n = pipe.Read(buffer, read, buffer.Length - read);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        if (read < buffer.Length)
        {
            process.WaitForExit();
            if (process.ExitCode != 0 && delivered == 0)
            {
                throw new StyleTransferException($"ffmpeg cannot decode '{path}' ({Ffmpeg.FirstLine(stderr.Result, "no frames")})");
            }

            return null;
        }

        delivered++;
        return FrameTensor.FromRgb24(buffer, Height, Width);
    }

    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            process.WaitForExit();
        }
        catch (InvalidOperationException)
        {
        }

        process.Dispose();
    }
}

/// <summary>A folder of numbered frames (PNG or JPEG), in the order of the last number in their names.</summary>
internal sealed partial class FolderFrameSource : IFrameSource
{
    private readonly string[] files;
    private readonly int size;
    private int next;

    private FolderFrameSource(string[] files, int size, int width, int height) => (this.files, this.size, Width, Height) = (files, size, width, height);

    public int Width { get; }

    public int Height { get; }

    public int Count => files.Length;

    /// <summary>Lists and checks the folder (its first frame's header); nothing is decoded yet.</summary>
    public static FolderFrameSource Open(string folder, int size, int? maxFrames)
    {
        string[] all;
        try
        {
            all = [.. Directory.EnumerateFiles(folder)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StyleTransferException($"cannot read the frame folder '{folder}' ({(e is UnauthorizedAccessException ? "permission denied" : e.Message.Split('\n')[0])})");
        }

        string[] frames = [.. all.Where(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg" && !Path.GetFileName(f).StartsWith('.'))
            .Select(f => (File: f, Number: Number(Path.GetFileNameWithoutExtension(f))))
            .Where(x => x.Number >= 0)
            .OrderBy(x => x.Number).ThenBy(x => x.File, StringComparer.Ordinal)
            .Select(x => x.File)];
        if (frames.Length == 0)
        {
            throw new StyleTransferException($"the frame folder '{folder}' holds no numbered frames (.png, .jpg: frame-0001.png, ...)");
        }

        if (maxFrames is int m && m < frames.Length)
        {
            frames = frames[..m];
        }

        (int w0, int h0) = ImageIO.Probe(frames[0], "frame");
        (int w, int h) = ImageIO.ScaledSize(w0, h0, size);
        return new FolderFrameSource(frames, size, w, h);
    }

    public Tensor? Next()
    {
        if (next >= files.Length)
        {
            return null;
        }

        string file = files[next++];
        Tensor t = ImageIO.LoadTensor(file, "frame", size);
        if (t.shape[2] != Height || t.shape[3] != Width)
        {
            string message = $"frame '{file}' is {t.shape[3]}x{t.shape[2]} at this size, the first frame {Width}x{Height}: all frames must have one size";
            t.Dispose();
            throw new StyleTransferException(message);
        }

        return t;
    }

    public void Dispose()
    {
    }

    private static long Number(string name)
    {
        MatchCollection m = Digits().Matches(name);
        return m.Count > 0 && long.TryParse(m[^1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : -1;
    }

    [GeneratedRegex("[0-9]+")]
    private static partial Regex Digits();
}

/// <summary>Raw RGB24 bytes ↔ [1,3,H,W] float tensors.</summary>
internal static class FrameTensor
{
    public static Tensor FromRgb24(byte[] bytes, int height, int width)
    {
        using var scope = torch.NewDisposeScope();
        Tensor hwc = torch.tensor(bytes, [height, width, 3]);
        return hwc.permute(2, 0, 1).unsqueeze(0).to(ScalarType.Float32).div(255).contiguous().MoveToOuterDisposeScope();
    }

    public static byte[] ToRgb24(Tensor image)
    {
        using var scope = torch.NewDisposeScope();
        return image.detach().to(torch.CPU).squeeze(0).permute(1, 2, 0).mul(255).round().clamp(0, 255).to(ScalarType.Byte).contiguous().data<byte>().ToArray();
    }

    /// <summary>The image as an 8-bit PNG would store it (what a resumed run reads back).</summary>
    public static Tensor Quantize(Tensor image)
    {
        using var scope = torch.NewDisposeScope();
        return image.detach().to(torch.CPU).mul(255).round().clamp(0, 255).div(255).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}
