using System.Globalization;
using StyleTransfer.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Video;

/// <summary>Encodes finished frames into a video file with ffmpeg, frames piped as raw RGB, the file written atomically.</summary>
internal static class VideoWriter
{
    public static readonly string[] Extensions = [".mp4", ".webm", ".gif"];

    /// <summary>
    /// Writes <paramref name="output"/> from <paramref name="frames"/> (PNG paths, in order) at
    /// <paramref name="frameRate"/>, with the first audio stream of <paramref name="audioFrom"/>
    /// (copied when the container takes its codec, re-encoded otherwise; none in a GIF).
    /// </summary>
    public static void Write(Ffmpeg tools, IReadOnlyList<string> frames, int width, int height, string frameRate, string output, string? audioFrom, string? audioCodec)
    {
        string ext = Path.GetExtension(output).ToLowerInvariant();
        var args = new List<string>
        {
            "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", string.Create(CultureInfo.InvariantCulture, $"{width}x{height}"),
            "-framerate", frameRate, "-i", "pipe:0",
        };
        bool audio = audioFrom != null && audioCodec != null && ext != ".gif";
        if (audio)
        {
            args.AddRange(["-i", Ffmpeg.ProtocolSafe(audioFrom!)]);
        }

        args.AddRange(["-map", "0:v:0"]);
        if (audio)
        {
            bool copy = ext == ".mp4" ? audioCodec is "aac" or "mp3" or "alac" or "ac3" or "eac3" or "opus" or "flac" : audioCodec is "opus" or "vorbis";
            args.AddRange(["-map", "1:a:0", "-c:a", copy ? "copy" : ext == ".mp4" ? "aac" : "libopus", "-shortest"]);
        }

        args.AddRange(ext switch
        {
            // Fragmented MP4: the muxer writes to a pipe (into the atomic temporary file) without seeking back.
            ".mp4" => ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-preset", "medium", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"],
            ".webm" => ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-crf", "32", "-b:v", "0", "-row-mt", "1", "-f", "webm"],
            ".gif" => ["-vf", "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer", "-f", "gif"],
            _ => throw new StyleTransferException($"output '{output}': unsupported video type (use {string.Join(", ", Extensions)}, or a folder for PNG frames)"),
        });
        args.Add("pipe:1");

        AtomicFile.Write(output, stream =>
        {
            (System.Diagnostics.Process process, Task<string> stderr) = Ffmpeg.Start(tools.FfmpegPath, args, stdin: true, stdout: true);
            using (process)
            {
                Task copy = process.StandardOutput.BaseStream.CopyToAsync(stream);
                try
                {
                    Stream input = process.StandardInput.BaseStream;
                    foreach (string frame in frames)
                    {
                        using Tensor t = ImageIO.LoadTensor(frame, "frame", Math.Max(width, height));
                        if (t.shape[2] != height || t.shape[3] != width)
                        {
                            throw new StyleTransferException($"frame '{frame}' is {t.shape[3]}x{t.shape[2]}, not {width}x{height}: remove the frames folder and start again");
                        }

                        input.Write(FrameTensor.ToRgb24(t));
                    }
                }
                catch (IOException)
                {
                    // ffmpeg stopped reading: its exit code and stderr say why.
                }

                try
                {
                    process.StandardInput.Close();
                }
                catch (IOException)
                {
                }

                process.WaitForExit();
                copy.Wait();
                if (process.ExitCode != 0)
                {
                    throw new StyleTransferException($"ffmpeg could not encode '{output}' ({Ffmpeg.FirstLine(stderr.Result, $"exit code {process.ExitCode}")})");
                }
            }
        });
    }
}
