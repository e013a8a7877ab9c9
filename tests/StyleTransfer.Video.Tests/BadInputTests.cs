using System.Diagnostics;
using StyleTransfer.Cli;
using static TorchSharp.torch;

namespace StyleTransfer.Video.Tests;

/// <summary>Bad inputs and outputs: one line on stderr, exit code 2, nothing written.</summary>
public class BadInputTests
{
    [Fact]
    public void NotAVideo_OneLineAndNothingWritten()
    {
        using var dir = new TempDir();
        string style = VideoRunTests.Style(dir);
        File.WriteAllText(dir.File("clip.mp4"), "this is not a video\n");
        string stderr = Refused(dir, [dir.File("clip.mp4"), style, "-o", dir.File("out.mp4")]);
        Assert.StartsWith($"error: '{dir.File("clip.mp4")}' is not a video ffmpeg can read (", stderr);
    }

    [Fact]
    public void ZeroFrames_EmptyFolderAndAudioOnlyFile_AreRefused()
    {
        using var dir = new TempDir();
        string style = VideoRunTests.Style(dir);
        Directory.CreateDirectory(dir.File("empty"));
        Assert.Equal($"error: the frame folder '{dir.File("empty")}' holds no numbered frames (.png, .jpg: frame-0001.png, ...)", Refused(dir, [dir.File("empty"), style, "-o", dir.File("out.mp4")]));

        var start = new ProcessStartInfo("ffmpeg") { UseShellExecute = false, RedirectStandardError = true };
        foreach (string a in (string[])["-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", dir.File("sound.mp4")])
        {
            start.ArgumentList.Add(a);
        }

        using (Process p = Process.Start(start)!)
        {
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
        }

        Assert.Equal($"error: '{dir.File("sound.mp4")}' holds no video stream", Refused(dir, [dir.File("sound.mp4"), style, "-o", dir.File("out.mp4")]));
    }

    [Fact]
    public void UnreadableFrame_InTheFrameFolder_OneLineAndNothingWritten()
    {
        using var dir = new TempDir();
        string style = VideoRunTests.Style(dir);
        Directory.CreateDirectory(dir.File("frames"));
        File.WriteAllBytes(dir.File("frames/f001.png"), [0x89, (byte)'P', (byte)'N', (byte)'G', 0, 1, 2]);
        string stderr = Refused(dir, [dir.File("frames"), style, "-o", dir.File("out")]);
        Assert.StartsWith("error: ", stderr);
        Assert.Contains("f001.png", stderr);
    }

    [Fact]
    public void UnwritableOutput_MissingFolderReadOnlyPlaceAndUnknownType_AreRefusedBeforeAnyWork()
    {
        using var dir = new TempDir();
        string style = VideoRunTests.Style(dir);
        using (Tensor frame = Clips.Texture(32, 32, 1))
        {
            Clips.WriteFolder(dir.File("in"), [frame]);
        }

        Assert.Equal($"error: output folder '{dir.File("nowhere")}' does not exist", Refused(dir, [dir.File("in"), style, "-o", dir.File("nowhere/out.mp4")]));
        Assert.StartsWith("error: output folder '/proc' is not writable (", Refused(dir, [dir.File("in"), style, "-o", "/proc/stylize-video-test.mp4"]));
        Assert.Equal($"error: output '{dir.File("out.avi")}': unsupported type '.avi' (a video: .mp4, .webm, .gif; or a folder for PNG frames)", Refused(dir, [dir.File("in"), style, "-o", dir.File("out.avi")]));
    }

    [Fact]
    public void FramesFolderOfAnotherRun_IsRefused()
    {
        using var dir = new TempDir();
        string style = VideoRunTests.Style(dir);
        using (Tensor frame = Clips.Texture(32, 32, 1))
        {
            Clips.WriteFolder(dir.File("in"), [frame]);
        }

        Directory.CreateDirectory(dir.File("out"));
        File.WriteAllText(dir.File("out/notes.txt"), "mine");
        Assert.Equal($"error: '{dir.File("out")}' exists and is not a frames folder of stylize video (no .stylize-video.json); choose another -o", Refused(dir, [dir.File("in"), style, "-o", dir.File("out")]));
    }

    [Fact]
    public void FfmpegMissingFromPath_NamesTheDebianPackage()
    {
        using var dir = new TempDir();
        string style = VideoRunTests.Style(dir);
        File.WriteAllText(dir.File("clip.mp4"), "x");
        Directory.CreateDirectory(dir.File("bin"));
        string[] before = dir.Entries();

        // The CLI as its own process, with a PATH that has no ffmpeg.
        string host = Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "/usr/bin/dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])[Path.Combine(AppContext.BaseDirectory, "stylize.dll"), "video", dir.File("clip.mp4"), style, "-o", dir.File("out.mp4")])
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["PATH"] = dir.File("bin");
        using Process p = Process.Start(start)!;
        p.StandardOutput.BaseStream.CopyTo(Stream.Null);
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(("error: " + Ffmpeg.MissingMessage + "\n", CliApp.ExitBadInput), (stderr, p.ExitCode));
        Assert.Equal(before, dir.Entries());
    }

    /// <summary>Runs `stylize video ARGS`; asserts exit code 2, one line on stderr and no new file under the test folder; returns that line.</summary>
    private static string Refused(TempDir dir, string[] args)
    {
        string[] before = dir.Entries();
        var stderr = new StringWriter();
        int code = CliApp.Run(["video", .. args, "--size", "32", "--threads", "1"], new StringWriter(), stderr);
        string text = stderr.ToString();
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Single(text.TrimEnd('\n').Split('\n'));
        Assert.Equal(before, dir.Entries());
        return text.TrimEnd('\n');
    }
}
