using System.Diagnostics;
using System.Globalization;
using StyleTransfer.Imaging;
using TorchSharp;
using static TorchSharp.torch;
using Fn = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Video.Tests;

/// <summary>Test clips made at test time, so their motion is known exactly.</summary>
internal static class Clips
{
    /// <summary>A deterministic colour texture with detail at several scales (sums of upsampled noise), [1,3,H,W] in [0,1].</summary>
    public static Tensor Texture(int height, int width, long seed)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator((ulong)seed);
        Tensor sum = torch.zeros(1, 3, height, width);
        foreach ((int cell, double weight) in new[] { (16, 0.5), (8, 0.3), (4, 0.2) })
        {
            Tensor coarse = torch.rand(new long[] { 1, 3, (height / cell) + 2, (width / cell) + 2 }, generator: gen);
            Tensor up = Fn.interpolate(coarse, size: [((height / cell) + 2) * cell, ((width / cell) + 2) * cell], mode: InterpolationMode.Bicubic, align_corners: false);
            sum = sum + (up.narrow(2, cell, height).narrow(3, cell, width) * weight);
        }

        return sum.clamp(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>A window of <paramref name="w"/>×<paramref name="h"/> at (x, y) of a larger image.</summary>
    public static Tensor Crop(Tensor image, int x, int y, int w, int h) => image.narrow(2, y, h).narrow(3, x, w).contiguous();

    /// <summary>A <paramref name="size"/>-pixel square sprite of another texture pasted at (x, y) on a copy of <paramref name="background"/>.</summary>
    public static Tensor WithSprite(Tensor background, Tensor sprite, int x, int y)
    {
        Tensor frame = background.clone();
        using Tensor region = frame.narrow(2, y, sprite.shape[2]).narrow(3, x, sprite.shape[3]);
        region.copy_(sprite);
        return frame;
    }

    /// <summary>A pan: frame t is the window at x = x0 + step·t of a wider texture.</summary>
    public static List<Tensor> Pan(int frames, int width, int height, int step, long seed = 1)
    {
        using Tensor wide = Texture(height + 8, width + (step * frames) + 8, seed);
        return [.. Enumerable.Range(0, frames).Select(t => Crop(wide, 4 + (step * t), 4, width, height))];
    }

    /// <summary>Writes frames as numbered PNGs into <paramref name="folder"/>.</summary>
    public static void WriteFolder(string folder, IReadOnlyList<Tensor> frames)
    {
        Directory.CreateDirectory(folder);
        for (int i = 0; i < frames.Count; i++)
        {
            ImageIO.Save(frames[i], Path.Combine(folder, $"f{i + 1:D3}.png"));
        }
    }

    /// <summary>Encodes frames into a video file with ffmpeg (lossless H.264 for .mp4), optionally with a sine tone as audio.</summary>
    public static void WriteVideo(string path, IReadOnlyList<Tensor> frames, string rate, bool audio = false)
    {
        (int h, int w) = ((int)frames[0].shape[2], (int)frames[0].shape[3]);
        var args = new List<string> { "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", $"{w}x{h}", "-framerate", rate, "-i", "pipe:0" };
        if (audio)
        {
            args.AddRange(["-f", "lavfi", "-i", "sine=frequency=440:duration=5", "-c:a", "aac", "-shortest"]);
        }

        args.AddRange(path.EndsWith(".mp4", StringComparison.Ordinal) ? ["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p"] : []);
        args.Add(path);
        Run("ffmpeg", args, frames.Select(f => FrameTensor.ToRgb24(f)));
    }

    /// <summary>ffprobe's fields of the first stream of <paramref name="kind"/> ("v" or "a"), counting packets.</summary>
    public static Dictionary<string, string> Probe(string path, string kind)
    {
        string output = Run("ffprobe", ["-v", "error", "-select_streams", kind + ":0", "-count_packets", "-show_entries", "stream=codec_name,width,height,r_frame_rate,nb_read_packets", "-of", "default=noprint_wrappers=1", path], []);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim().Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);
    }

    private static string Run(string exe, IEnumerable<string> args, IEnumerable<byte[]> stdin)
    {
        var start = new ProcessStartInfo(exe) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        using Process p = Process.Start(start)!;
        Task<string> output = p.StandardOutput.ReadToEndAsync();
        Task<string> error = p.StandardError.ReadToEndAsync();
        foreach (byte[] frame in stdin)
        {
            p.StandardInput.BaseStream.Write(frame);
        }

        p.StandardInput.Close();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{exe} failed: {error.Result}");
        return output.Result;
    }

    public static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}

/// <summary>A temporary folder deleted with the test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "stylize-video-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Every entry under the folder (recursive, relative names, hidden ones included), sorted.</summary>
    public string[] Entries() => [.. Directory.EnumerateFileSystemEntries(Path, "*", SearchOption.AllDirectories).Select(e => System.IO.Path.GetRelativePath(Path, e)).Order(StringComparer.Ordinal)];

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
