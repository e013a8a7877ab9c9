using System.Diagnostics;
using System.Runtime.InteropServices;
using StyleTransfer.Cli;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>
/// Issue 18's reliability defects of the command line: resource bounds, outputs that would
/// overwrite inputs, unwritable folders, parse errors and cancellation. Each bad case: exit 2, one
/// line on stderr, nothing written and an existing output untouched.
/// </summary>
public sealed class CliSafetyTests : CliImagesTest
{
    private static string TooManyThreads(int n) =>
        $"error: --threads must be at most {4 * Environment.ProcessorCount} (4 × this machine's {Environment.ProcessorCount} cores), not {n}";

    [Fact]
    public void ThreadsAboveFourTimesTheCoresAreRefused() =>
        AssertBad(TooManyThreads(100000), content, style, "--threads", "100000");

    [Fact]
    public void BenchThreadsAreBoundedToo()
    {
        (int code, string stdout, string stderr) = CliRun.WithDefaults(["bench", "--sizes", "32", "-n", "1", "--peak-gflops", "1", "--threads", "100000"]);
        Assert.Equal((CliApp.ExitBadInput, "", TooManyThreads(100000) + Environment.NewLine), (code, stdout, stderr));
    }

    [Fact]
    public void ThreadsFromACheckpointsMetadataAreBoundedToo()
    {
        TorchRuntime.EnsureLoaded();
        string ckpt = dir.File("old.ckpt");
        using (Tensor image = torch.rand(1, 3, 21, 32))
        {
            var options = Networks.NetworkFactory.DefaultOptions("vgg19") with { Size = 32, Iterations = 2, Threads = 100000, WeightsPath = TestPaths.NarrowPth };
            new Checkpoint { Options = options, Image = image, Seed = 1 }.Save(ckpt);
        }

        AssertBad(TooManyThreads(100000), content, style, "--resume", ckpt, "--threads", null);
    }

    [Theory]
    [InlineData("error: unknown option '--frobnicate' (see 'stylize --help')", "CONTENT", "STYLE", "--frobnicate")]
    [InlineData("error: unknown option '--frobnicate' (see 'stylize --help')", "--frobnicate", "CONTENT", "STYLE")]
    [InlineData("error: unknown option '-x' (see 'stylize --help')", "CONTENT", "-x", "STYLE")]
    [InlineData("error: unknown option '--frobnicate' (see 'stylize reconstruct --help')", "reconstruct", "--frobnicate", "CONTENT")]
    [InlineData("error: unknown option '--frobnicate' (see 'stylize texture --help')", "texture", "STYLE", "--frobnicate")]
    [InlineData("error: unknown option '--frobnicate' (see 'stylize figure1 --help')", "figure1", "CONTENT", "--frobnicate", "STYLE")]
    [InlineData("error: unknown option '--frobnicate' (see 'stylize grid --help')", "grid", "CONTENT", "STYLE", "--frobnicate")]
    [InlineData("error: unknown option '--frobnicate' (see 'stylize models --help')", "models", "--frobnicate")]
    [InlineData("error: unknown option '--frobnicate' (see 'stylize bench --help')", "bench", "--frobnicate")]
    [InlineData("error: --size: 'abc' is not an integer (see 'stylize reconstruct --help')", "reconstruct", "CONTENT", "--size", "abc")]
    [InlineData("error: --size: 99999999999 is out of range (at most 2147483647) (see 'stylize --help')", "CONTENT", "STYLE", "--size", "99999999999")]
    [InlineData("error: --learning-rate: 'fast' is not a number (see 'stylize --help')", "CONTENT", "STYLE", "--lr", "fast")]
    [InlineData("error: --tv-weight: '1e-3x' is not a number (see 'stylize grid --help')", "grid", "CONTENT", "STYLE", "--tv-weight", "1e-3x")]
    [InlineData("error: unknown option '--ratio' (see 'stylize grid --help')", "grid", "CONTENT", "STYLE", "--ratio", "1e-3")]
    [InlineData("error: --seed: 'x' is not an integer (see 'stylize texture --help')", "texture", "STYLE", "--seed", "x")]
    [InlineData("error: --peak-gflops: 'lots' is not a number (see 'stylize bench --help')", "bench", "--peak-gflops", "lots")]
    public void UnknownOptionsAndValuesOfTheWrongTypeAreNamedInWords(string expected, params string[] args)
    {
        string[] argv = [.. args.Select(a => a switch { "CONTENT" => content, "STYLE" => style, _ => a })];
        bool images = args[0] is not ("models" or "bench");
        (int code, string stdout, string stderr) = CliRun.WithDefaults(images ? [.. argv, "-o", dir.File("out.png")] : argv);
        Assert.Equal((CliApp.ExitBadInput, "", expected + Environment.NewLine), (code, stdout, stderr));
        Assert.False(File.Exists(dir.File("out.png")));
    }

    /// <summary>
    /// /sys simulates a folder this user cannot write: sysfs refuses to create files even for root
    /// (the tests run as root, where chmod would not stop a write). Before, the whole optimisation
    /// ran before the write failed (for --log and --plot, after the image was written).
    /// </summary>
    [Theory]
    [InlineData("output", "-o", "out.png")]
    [InlineData("--log", "--log", "run.json")]
    [InlineData("--plot", "--plot", "loss.png")]
    [InlineData("output", "reconstruct", "out.png")]
    [InlineData("--log", "texture", "run.json")]
    public void AnUnwritableOutputFolderIsFoundBeforeTheNetworkLoads(string what, string flag, string name)
    {
        Assert.True(Directory.Exists("/sys"), "this test needs sysfs at /sys");
        string unwritable = Path.Combine("/sys", name);
        string[] args = flag switch
        {
            "reconstruct" => ["reconstruct", content, "-o", unwritable],
            "texture" => ["texture", style, "-o", dir.File("out.png"), "--log", unwritable],
            _ => [content, style, flag, unwritable],
        };
        (int code, string stdout, string stderr) = Run(args);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal("", stdout);
        Assert.Matches($@"^error: {what} folder '/sys' is not writable \([^\n]+\)\r?\n$", stderr);
        Assert.False(File.Exists(dir.File("out.png")));
        Assert.False(File.Exists(unwritable));
    }

    [Fact]
    public void TheOutputCannotBeTheContentImage()
    {
        byte[] before = File.ReadAllBytes(content);
        AssertBad($"error: -o '{content}' would overwrite the content image '{content}'", content, style, "-o", content);
        Assert.Equal(before, File.ReadAllBytes(content));
    }

    [Fact]
    public void TheLogCannotBeAStyleImage() =>
        AssertBad($"error: --log '{style}' would overwrite the style image '{style}'", content, style, "--log", style);

    [Fact]
    public void AnOutputIsComparedAfterLinks()
    {
        string link = dir.File("link.png");
        File.CreateSymbolicLink(link, "style.png");
        Directory.CreateSymbolicLink(dir.File("again"), dir.Path);
        AssertBad($"error: -o '{link}' would overwrite the style image '{style}'", content, style, "-o", link);
        string viaFolder = Path.Combine(dir.File("again"), "content.png");
        AssertBad($"error: --plot '{viaFolder}' would overwrite the content image '{content}'", content, style, "--plot", viaFolder);
        string toOut = dir.File("to-out.png");
        File.CreateSymbolicLink(toOut, dir.File("out.png")); // dangling until the output exists
        AssertBad($"error: --plot and -o name the same file '{toOut}'", content, style, "-o", dir.File("out.png"), "--plot", toOut);
    }

    [Fact]
    public void TheLogCannotBeTheWeightsOrTheResumedCheckpoint()
    {
        string weights = dir.File("w.pth");
        File.Copy(TestPaths.NarrowPth, weights);
        AssertBad($"error: --log '{weights}' would overwrite the weights file '{weights}'", content, style, "--weights", weights, "--log", weights);
        Assert.Equal(File.ReadAllBytes(TestPaths.NarrowPth), File.ReadAllBytes(weights));

        TorchRuntime.EnsureLoaded();
        string ckpt = dir.File("old.ckpt");
        using (Tensor image = torch.rand(1, 3, 21, 32))
        {
            var options = Networks.NetworkFactory.DefaultOptions("vgg19") with { Size = 32, Iterations = 2, WeightsPath = TestPaths.NarrowPth };
            new Checkpoint { Options = options, Image = image, Seed = 1 }.Save(ckpt);
        }

        byte[] saved = File.ReadAllBytes(ckpt);
        AssertBad($"error: --log '{ckpt}' would overwrite the --resume checkpoint '{ckpt}'", content, style, "--resume", ckpt, "--log", ckpt);
        Assert.Equal(saved, File.ReadAllBytes(ckpt));
    }

    [Fact]
    public void ResumingIntoTheSameOutputMayRewriteItsCheckpoint()
    {
        string output = dir.File("out.png"), ckpt = dir.File("out.ckpt");
        Assert.Equal((CliApp.ExitOk, ""), Run(content, style, "-o", output, "-n", "3", "--save-every", "2") is var first ? (first.Code, first.Stderr) : default);
        Assert.Equal((CliApp.ExitOk, ""), Run(content, style, "-o", output, "-n", "5", "--resume", ckpt) is var again ? (again.Code, again.Stderr) : default);
        using Checkpoint rewritten = Checkpoint.Load(ckpt);
        Assert.Equal(4, rewritten.Iteration);
    }

    [Fact]
    public void TheCheckpointCannotBeAnInputOrAnotherOutput()
    {
        string styleCkpt = dir.File("out.ckpt");
        File.Copy(style, styleCkpt);
        AssertBad($"error: the --save-every checkpoint '{styleCkpt}' would overwrite the style image '{styleCkpt}'", content, styleCkpt, "--save-every", "1");
        File.Delete(styleCkpt);
        AssertBad($"error: the --save-every checkpoint and --log name the same file '{styleCkpt}'", content, style, "--save-every", "1", "--log", styleCkpt);
    }

    [Fact]
    public void MasksAndExperimentInputsAreInputsToo()
    {
        string mask = dir.File("mask.png");
        File.Copy(content, mask);
        AssertBad($"error: --plot '{mask}' would overwrite the mask for style image 1 '{mask}'", content, style, "--mask", $"1={mask}", "--plot", mask);
        AssertBad($"error: -o '{content}' would overwrite the content image '{content}'", "reconstruct", content, "-o", content);
        AssertBad($"error: --log '{style}' would overwrite the style image '{style}'", "grid", content, style, "--log", style);
    }

    [Fact]
    public void AMaskOfAnotherAspectRatioIsRefusedUnlessStretchingIsAskedFor()
    {
        string square = TestImages.Save(TestImages.Stripes(48, 48), dir.File("square.png"));
        AssertBad(
            $"error: mask for style image 1 '{square}' is 32x32 at this size, the content image 32x21: another aspect ratio, it would be stretched; give a mask of the content's proportions, or --mask-fit stretch",
            content, style, style, "--mask", $"1={square}");

        // Half the content's size, the same proportions: accepted; and the square one when asked.
        string half = TestImages.Save(TestImages.Stripes(30, 20), dir.File("half.png"));
        Assert.Equal((CliApp.ExitOk, ""), Run(content, style, style, "--mask", $"1={half}", "-n", "1") is var r ? (r.Code, r.Stderr) : default);
        Assert.Equal((CliApp.ExitOk, ""), Run(content, style, style, "--mask", $"1={square}", "--mask-fit", "stretch", "-n", "1") is var s ? (s.Code, s.Stderr) : default);
    }

    /// <summary>
    /// A plot that cannot be written (a full disk, injected) after the image and the log were
    /// rendered: all three are written to temporary files first and renamed together, so none
    /// appears, the old ones stay, and the exit code is 2. Before, the image and the log were
    /// already in place when the plot failed.
    /// </summary>
    [Theory]
    [InlineData("STYLIZE")]
    [InlineData("reconstruct")]
    [InlineData("grid")]
    public void APlotThatCannotBeWrittenLeavesEveryOutputAsItWas(string command)
    {
        string output = dir.File("out.png"), log = dir.File("run.json"), plot = dir.File("loss.png");
        File.WriteAllBytes(output, [9, 9, 9]);
        File.WriteAllBytes(log, [7, 7]);
        string[] args = command switch
        {
            "STYLIZE" => [content, style],
            "reconstruct" => ["reconstruct", content],
            _ => ["grid", content, style, "--depths", "1", "--ratios", "1e-3"],
        };
        AtomicFile.FaultForTests.Value = path => path == plot ? new IOException("No space left on device") : null;
        (int Code, string Stdout, string Stderr) r;
        try
        {
            r = Run([.. args, "-o", output, "--log", log, "--plot", plot]);
        }
        finally
        {
            AtomicFile.FaultForTests.Value = null;
        }

        Assert.Equal((CliApp.ExitBadInput, $"error: cannot write '{plot}' (No space left on device){Environment.NewLine}"), (r.Code, r.Stderr));
        Assert.DoesNotContain("wrote", r.Stdout, StringComparison.Ordinal);
        Assert.Equal(new byte[] { 9, 9, 9 }, File.ReadAllBytes(output));
        Assert.Equal(new byte[] { 7, 7 }, File.ReadAllBytes(log));
        Assert.False(File.Exists(plot));
        Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("STYLIZE")]
    [InlineData("reconstruct")]
    [InlineData("grid")]
    public void CtrlCBeforeTheFirstIterationWritesNothing(string command)
    {
        string output = dir.File("out.png"), log = dir.File("run.json"), ckpt = dir.File("out.ckpt");
        File.WriteAllBytes(output, [9, 9, 9]);
        File.WriteAllBytes(ckpt, [8, 8]);
        string[] args = command switch
        {
            "STYLIZE" => [content, style, "--save-every", "1"],
            "reconstruct" => ["reconstruct", content],
            _ => ["grid", content, style, "--depths", "1", "--ratios", "1e-3"],
        };
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run([.. args, "-o", output, "--log", log, "--weights", TestPaths.NarrowPth, "--size", "32", "-n", "2"], stdout, stderr, cancellation: new CancellationToken(canceled: true));
        Assert.Equal(CliApp.ExitCancelled, code);
        Assert.Equal("", stderr.ToString());
        Assert.EndsWith(Environment.NewLine + "stopped before the first iteration (Ctrl-C): nothing was written" + Environment.NewLine, stdout.ToString());
        Assert.DoesNotContain("wrote", stdout.ToString(), StringComparison.Ordinal);
        Assert.Equal(new byte[] { 9, 9, 9 }, File.ReadAllBytes(output));
        Assert.Equal(new byte[] { 8, 8 }, File.ReadAllBytes(ckpt));
        Assert.False(File.Exists(log));
        Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }

    /// <summary>
    /// The real process, sent a real SIGTERM after its first iteration: it finishes the iteration,
    /// writes the image and the checkpoint, and exits 143. Before, it died with nothing written.
    /// No timing is asserted; the wait is a guard against a hang.
    /// </summary>
    [Fact]
    public async Task SigtermFinishesTheIterationWritesTheImageAndTheCheckpointAndExits143()
    {
        string output = dir.File("out.png");
        File.WriteAllBytes(output, [9, 9, 9]);
        using Process p = StartStylize(content, style, "-o", output, "--weights", TestPaths.NarrowPth, "--size", "32", "-n", "1000000", "--threads", "1", "--save-every", "500000");
        try
        {
            Task<string> stderr = p.StandardError.ReadToEndAsync();
            string? line;
            while ((line = await p.StandardOutput.ReadLineAsync()) != null && !line.StartsWith("iter 1/", StringComparison.Ordinal))
            {
            }

            Assert.NotNull(line);
            Assert.Equal(0, Kill(p.Id, 15));
            string rest = await p.StandardOutput.ReadToEndAsync();
            Assert.True(p.WaitForExit(120_000));
            Assert.Equal((CliApp.ExitTerminated, ""), (p.ExitCode, await stderr));
            Assert.Contains($"stopped early (SIGTERM): the image so far was written, and a checkpoint: continue with --resume {dir.File("out.ckpt")}", rest, StringComparison.Ordinal);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(output)[..4]);
            Assert.True(new FileInfo(dir.File("out.ckpt")).Length > 0);
            Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
        }
        finally
        {
            if (!p.HasExited)
            {
                p.Kill();
            }
        }
    }

    /// <summary>
    /// NNPACK is off once the engine is loaded, so on CPUs where it cannot initialise (AMD EPYC VMs)
    /// libtorch never prints "Could not initialize NNPACK!" (this Intel machine initialises it, so the
    /// flag is what can be checked here).
    /// </summary>
    [Fact]
    public void NnpackIsTurnedOffWhenTheEngineLoads()
    {
        TorchRuntime.EnsureLoaded();
        Assert.False(TorchRuntime.NnpackEnabled());
    }

    /// <summary>A run that fails late, after many convolutions (a diverged loss), prints exactly one line on the process's own stderr.</summary>
    [Fact]
    public async Task ALateFailurePrintsExactlyOneStderrLineFromTheWholeProcess()
    {
        string output = dir.File("out.png");
        File.WriteAllBytes(output, [9, 9, 9]);
        using Process p = StartStylize(content, style, "-o", output, "--weights", TestPaths.NarrowPth, "--size", "32", "-n", "3", "--threads", "1", "--content-weight", "1e300");
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        _ = await stdout;
        Assert.Equal(CliApp.ExitDiverged, p.ExitCode);
        Assert.Equal("error: the loss became Infinity at iteration 1; no image was written (try a smaller --style-weight or --learning-rate, or --optimizer adam)\n", stderr);
        Assert.Equal(new byte[] { 9, 9, 9 }, File.ReadAllBytes(output));
    }

    /// <summary>`stylize` as its own process (the build's stylize.dll beside the tests), stdout and stderr redirected.</summary>
    internal static Process StartStylize(params string[] args)
    {
        string host = Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "stylize.dll"));
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        return Process.Start(start)!;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>Runs with the fixture weights and small defaults unless the arguments say otherwise; a null value drops its flag.</summary>
    private (int Code, string Stdout, string Stderr) Run(params string?[] args)
    {
        var given = new List<string>();
        var dropped = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (i + 1 < args.Length && args[i + 1] is null)
            {
                dropped.Add(args[i]!);
                i++;
            }
            else
            {
                given.Add(args[i]!);
            }
        }

        (string, string)[] defaults = [("-o", dir.File("out.png")), ("--weights", TestPaths.NarrowPth), ("--size", "32"), ("-n|--iterations", "2"), ("--threads", "2")];
        return CliRun.WithDefaults(given, [.. defaults.Where(d => !dropped.Contains(d.Item1))]);
    }

    private void AssertBad(string expectedLine, params string?[] args) => Assert.Equal(expectedLine, AssertBadLine(args));

    /// <summary>Runs expecting exit code 2, a single stderr line, nothing on stdout and an untouched existing output; returns the line.</summary>
    private string AssertBadLine(params string?[] args)
    {
        int o = Array.IndexOf(args, "-o");
        string output = o >= 0 ? args[o + 1]! : dir.File("out.png");
        bool canPreexist = output.EndsWith(".png", StringComparison.Ordinal) && !File.Exists(output) && Directory.Exists(Path.GetDirectoryName(output));
        if (canPreexist)
        {
            File.WriteAllBytes(output, [9, 9, 9]);
        }

        string[] before = Directory.GetFiles(dir.Path);
        (int code, string stdout, string stderr) = Run(args);
        Assert.Equal(CliApp.ExitBadInput, code);
        string[] lines = stderr.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        if (canPreexist)
        {
            Assert.Equal(new byte[] { 9, 9, 9 }, File.ReadAllBytes(output));
        }

        Assert.Equal(before, Directory.GetFiles(dir.Path));
        Assert.DoesNotContain("iter ", stdout, StringComparison.Ordinal);
        return lines[0];
    }
}
