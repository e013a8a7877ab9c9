using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StyleTransfer.Cli;

namespace StyleTransfer.Tests;

/// <summary>
/// The CLI side of colour preservation, scales, padding and checkpoints: end to end on tiny images
/// with the narrow VGG-19 fixture, and each bad input with its exact one-line message, exit code 2
/// and an existing output left untouched.
/// </summary>
public sealed class PipelineCliTests : CliImagesTest
{
    [Fact]
    public void MultiScaleLuminanceReplicateRunEndToEnd()
    {
        string output = dir.File("out.png");
        (int code, string stdout, string stderr) = Run(content, style, "-o", output, "--size", "48", "-n", "2", "--scales", "2", "--preserve-color", "luminance", "--padding", "replicate", "--seed", "1");
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("scales: 34, 48 px (long edge); iterations 1, 2", stdout);
        Assert.Contains("scale 2/2 iter 3/3  loss ", stdout);
        using Image<Rgb24> img = Image.Load<Rgb24>(output);
        Assert.Equal((48, 32), (img.Width, img.Height));
    }

    [Fact]
    public void SaveEveryWritesACheckpointAndResumeFinishesTheSameImage()
    {
        string whole = dir.File("whole.png"), part = dir.File("part.png"), resumed = dir.File("resumed.png");
        Assert.Equal(CliApp.ExitOk, Run(content, style, "-o", whole, "-n", "4", "--seed", "2").Code);
        (int code, _, string stderr) = Run(content, style, "-o", part, "-n", "4", "--seed", "2", "--save-every", "2");
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        Assert.True(File.Exists(dir.File("part.ckpt")));

        // Resuming takes the options from the checkpoint (the seed too).
        (code, string stdout, stderr) = Run(content, style, "-o", resumed, "--resume", dir.File("part.ckpt"));
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains($"resuming from {dir.File("part.ckpt")} at iteration 2 (scale 1), seed 2", stdout);
        Assert.Contains("iter 4/4  loss ", stdout);
        Assert.DoesNotContain("iter 1/4 ", stdout);
        Assert.Equal(File.ReadAllBytes(whole), File.ReadAllBytes(resumed));
    }

    [Theory]
    [InlineData("error: Argument 'red' not recognized. Must be one of: 'none' 'luminance' 'histogram' (see 'stylize --help')", "--preserve-color", "red")]
    [InlineData("error: Argument 'mirror' not recognized. Must be one of: 'zero' 'replicate' (see 'stylize --help')", "--padding", "mirror")]
    [InlineData("error: --scales must be auto or a whole number of 1 or more, not 'x'", "--scales", "x")]
    [InlineData("error: --scales must be auto or a whole number of 1 or more, not '0'", "--scales", "0")]
    [InlineData("error: --scales 3 starts at 16 px, below 32; at most 1 scale(s) fit --size 32", "--scales", "3")]
    public void InvalidValues(string expected, string option, string value) =>
        AssertBad(expected, content, style, option, value);

    [Fact]
    public void ResumeFromAMissingCheckpoint() =>
        AssertBad($"error: --resume: checkpoint '{dir.File("none.ckpt")}' does not exist", content, style, "--resume", dir.File("none.ckpt"));

    [Fact]
    public void ResumeFromACorruptCheckpoint()
    {
        File.WriteAllBytes(dir.File("bad.ckpt"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        AssertBad($"error: --resume: '{dir.File("bad.ckpt")}' is not a readable stylize checkpoint (no safetensors header)", content, style, "--resume", dir.File("bad.ckpt"));
    }

    [Fact]
    public void ResumeFromATruncatedCheckpoint()
    {
        Assert.Equal(CliApp.ExitOk, Run(content, style, "-o", dir.File("a.png"), "-n", "3", "--save-every", "2").Code);
        byte[] bytes = File.ReadAllBytes(dir.File("a.ckpt"));
        File.WriteAllBytes(dir.File("cut.ckpt"), bytes[..(bytes.Length - 100)]);
        string line = AssertBadLine(content, style, "--resume", dir.File("cut.ckpt"));
        Assert.StartsWith($"error: --resume: '{dir.File("cut.ckpt")}' is not a readable stylize checkpoint (tensor '", line);
        Assert.EndsWith("' is truncated or its offsets are wrong)", line);
    }

    [Fact]
    public void ResumeWithOtherOptionsOrImages()
    {
        Assert.Equal(CliApp.ExitOk, Run(content, style, "-o", dir.File("a.png"), "-n", "3", "--save-every", "2").Code);
        string ckpt = dir.File("a.ckpt");
        AssertBad($"error: --resume: checkpoint '{ckpt}' was made with --size 32, not 40 (only -n, --save-every, --line-search, --lbfgs-history, --learning-rate, --precision, --device and --threads may change)", content, style, "--resume", ckpt, "--size", "40");
        AssertBad($"error: --resume: checkpoint '{ckpt}' was made from another style image (SHA-256 differs)", content, content, "--resume", ckpt);
    }

    private (int Code, string Stdout, string Stderr) Run(params string[] args) =>
        args.Contains("--resume")
            ? CliRun.WithDefaults(args, ("-o", dir.File("out.png")), ("--threads", "2"))
            : CliRun.WithDefaults(args, ("-o", dir.File("out.png")), ("--weights", TestPaths.NarrowPth), ("--size", "32"), ("-n", "2"), ("--threads", "2"));

    private void AssertBad(string expectedLine, params string[] args) => Assert.Equal(expectedLine, AssertBadLine(args));

    private string AssertBadLine(params string[] args)
    {
        string output = dir.File("existing.png");
        File.WriteAllBytes(output, [9, 9, 9]);
        (int code, _, string stderr) = Run([.. args, "-o", output]);
        Assert.Equal(CliApp.ExitBadInput, code);
        string[] lines = stderr.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Equal(new byte[] { 9, 9, 9 }, File.ReadAllBytes(output));
        Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
        return lines[0];
    }
}
