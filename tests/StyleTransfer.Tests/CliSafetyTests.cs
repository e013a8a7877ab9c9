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
