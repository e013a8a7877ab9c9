using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StyleTransfer.Cli;

namespace StyleTransfer.Tests;

/// <summary>
/// `stylize` end to end on tiny images with the fixture weights, and one test per class of bad
/// input: exit code 2 (3 for a diverged loss), exactly one line on stderr, nothing written, an
/// existing output untouched.
/// </summary>
public sealed class CliTests : CliImagesTest
{
    [Fact]
    public void StylizesEndToEnd()
    {
        string output = dir.File("out.png");
        (int code, string stdout, string stderr) = Run(content, style, "-o", output, "--size", "40", "-n", "4", "--seed", "3", "--save-every", "2");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Equal("", stderr);
        using (Image<Rgb24> img = Image.Load<Rgb24>(output))
        {
            Assert.Equal((40, 27), (img.Width, img.Height));
        }

        Assert.True(File.Exists(dir.File("out-0002.png")));
        Assert.False(File.Exists(dir.File("out-0004.png")));
        Assert.StartsWith("stylize: vgg19 (weights ", stdout);
        Assert.Contains("iter 1/4  loss ", stdout);
        Assert.Contains("iter 4/4  loss ", stdout);
        Assert.Contains($"wrote {output} (40x27); final loss ", stdout);
        Assert.Contains("; seed 3", stdout);
    }

    [Fact]
    public void JpegOutputAndRatioAndAdamWork()
    {
        string output = dir.File("out.jpg");
        (int code, _, string stderr) = Run(content, style, "-o", output, "--size", "32", "-n", "2", "--ratio", "1e-2", "--optimizer", "adam", "--pooling", "max", "--init", "content");
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Equal(new byte[] { 0xFF, 0xD8 }, File.ReadAllBytes(output)[..2]);
    }

    [Fact]
    public void BenchPrintsOneMachineReadableLinePerSize()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["bench", "--sizes", "32,48", "-n", "1", "--peak-gflops", "100"], stdout, stderr);
        Assert.Equal("", stderr.ToString());
        Assert.Equal(CliApp.ExitOk, code);
        string[] lines = stdout.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Matches(@"^bench vgg19 32 ms=[0-9.]+ min_ms=[0-9.]+ gflop_per_iter=[0-9.]+ gflops=[0-9.]+ peak_frac=[0-9.]+ peak_gflops=100 rss_mb=\d+ iters=1 device=cpu precision=fp32$", lines[1]);
        Assert.StartsWith("bench vgg19 48 ", lines[2]);
    }

    [Fact]
    public void BenchTimesResNet18InBf16()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["bench", "--network", "resnet18", "--sizes", "64", "-n", "1", "--precision", "bf16"], stdout, stderr);
        Assert.Equal("", stderr.ToString());
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Matches(@"(?m)^bench resnet18 64 ms=[0-9.]+ .* iters=1 device=cpu precision=bf16$", stdout.ToString());
    }

    [Fact]
    public void TheConvolutionFlopsCountedFromRealShapesEqualTheVgg19Arithmetic()
    {
        using var net = Networks.Vgg19.CreateRandom(Networks.PoolingMode.Avg, seed: 1);
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var noGrad = TorchSharp.torch.no_grad();
        using var image = TorchSharp.torch.zeros(1, 3, 64, 48);
        double counted = 2 * Diagnostics.ConvFlopCounter.Measure(() => net.Extract(image, ["relu4_2", "relu5_1"])) / 1e9;
        Assert.Equal(Vgg19Arithmetic.ConvGflop(net.Widths, 64, 48, ["relu4_2", "relu5_1"]), counted, 9);
    }

    [Fact]
    public void BenchGflopCountMatchesTheArithmetic()
    {
        // conv1_1 only: 2 (fwd+bwd) x 2 FLOP x 3 x 64 x 9 x 32 x 32.
        long[] widths = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512];
        Assert.Equal(2.0 * 2 * 3 * 64 * 9 * 32 * 32 / 1e9, Vgg19Arithmetic.ConvGflop(widths, 32, 32, ["relu1_1"]), 12);

        // Up to conv5_1: 18.1 G multiply-adds at 224 px (VGG-19's 19.6 G less conv5_2-5_4), x (512/224)^2,
        // x 2 FLOP per multiply-add, x 2 for forward and input-gradient: about 379 GFLOP.
        Assert.InRange(Vgg19Arithmetic.ConvGflop(widths, 512, 512, ["relu1_1", "relu5_1", "relu4_2"]), 375, 383);
    }

    [Fact]
    public void ModelsListsEveryNetworkWithItsWeightsAndTaps()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(CliApp.ExitOk, CliApp.Run(["models"], stdout, stderr));
        Assert.Equal("", stderr.ToString());
        string text = stdout.ToString();
        foreach (string name in Networks.NetworkFactory.Names)
        {
            Assert.Matches($"(?m)^{name}( \\(default here\\))?: weights (found: .+|not found)$", text);
        }

        Assert.Contains("  taps: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1,", text);
        Assert.Contains("  taps: conv1, relu1, pool1, layer1_0_relu1, layer1_0,", text);
        Assert.Matches("(?m)^resnet18( \\(default here\\))?: weights found: .+models/ResNet18.onnx$", text);
        Assert.Contains("vgg19-dcbb9e9d.pth in ", text);
    }

    [Fact]
    public void HelpListsTheOptions()
    {
        var stdout = new StringWriter();
        int code = CliApp.Run(["--help"], stdout, new StringWriter());
        Assert.Equal(0, code);
        foreach (string option in new[] { "--size", "--iterations", "--content-weight", "--style-weight", "--ratio", "--content-layers", "--style-layers", "--style-layer-weights", "--init", "--optimizer", "--pooling", "--network", "--weights", "--seed", "--save-every", "--device", "--threads", "--style-scale", "--normalize-weights", "--tv-weight" })
        {
            Assert.Contains(option, stdout.ToString());
        }
    }

    [Fact]
    public void MissingImage() =>
        AssertBad($"error: content image '{dir.File("nope.jpg")}' does not exist", dir.File("nope.jpg"), style);

    [Fact]
    public void NotAnImage()
    {
        File.WriteAllText(dir.File("text.png"), "hello");
        AssertBad($"error: style image '{dir.File("text.png")}' is not an image in a supported format (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP)", content, dir.File("text.png"));
    }

    [Fact]
    public void TruncatedImage()
    {
        byte[] png = File.ReadAllBytes(content);
        File.WriteAllBytes(dir.File("cut.png"), png[..(png.Length / 2)]);
        string expectedStart = $"error: style image '{dir.File("cut.png")}' ";
        string line = AssertBadLine(content, dir.File("cut.png"));
        Assert.StartsWith(expectedStart, line);
        Assert.True(line.Contains("truncated", StringComparison.Ordinal) || line.Contains("corrupt", StringComparison.Ordinal), line);
    }

    [Fact]
    public void TooSmallImage() =>
        AssertBad(
            $"error: content image '{TestImages.Save(TestImages.Scene(10, 40), dir.File("tiny.png"))}' is too small (10x40; both sides must be at least 16 px)",
            dir.File("tiny.png"),
            style);

    [Fact]
    public void TooLargeForMemory()
    {
        string line = AssertBadLine(content, style, "--size", "16000");
        Assert.Matches(@"^error: --size 16000 needs about \d+ GB of memory with vgg19, and this machine has \d+ GB; use a smaller --size$", line);
    }

    [Fact]
    public void UnsupportedOutputFormat() =>
        AssertBad($"error: output '{dir.File("out.gif")}' must end in .png, .jpg, .jpeg, .tif or .tiff", content, style, "-o", dir.File("out.gif"));

    [Fact]
    public void UnknownLayer()
    {
        string line = AssertBadLine(content, style, "--content-layers", "relu9_9");
        Assert.StartsWith("error: --content-layers: unknown layer 'relu9_9' for vgg19 (known: conv1_1, relu1_1,", line);
    }

    [Theory]
    [InlineData("error: --iterations must be at least 1, not 0", "--iterations", "0")]
    [InlineData("error: --size must be at least 16, not 8", "--size", "8")]
    [InlineData("error: --content-weight must be a finite number of 0 or more, not -1", "--content-weight", "-1")]
    [InlineData("error: --style-weight must be a finite number of 0 or more, not NaN", "--style-weight", "NaN")]
    [InlineData("error: --style-layer-weights has 2 value(s) but --style-layers has 5", "--style-layer-weights", "1,2")]
    [InlineData("error: --style-layer-weights: 'x' is not a number", "--style-layer-weights", "1,x,1,1,1")]
    [InlineData("error: --ratio must be a number above 0, not -1", "--ratio", "-1")]
    [InlineData("error: --style-scale must be above 0 and at most 8, not 0", "--style-scale", "0")]
    [InlineData("error: --init-noise must be from 0 to 1, not 1.5", "--init-noise", "1.5")]
    [InlineData("error: --init-noise must be from 0 to 1, not NaN", "--init-noise", "NaN")]
    [InlineData("error: --init-noise mixes noise into a photograph or painting start, and --init noise starts from noise already: add --init content or leave --init-noise out", "--init-noise", "0.5")]
    [InlineData("error: --palette-transfer must be from 0 to 1, not 1.5", "--palette-transfer", "1.5")]
    [InlineData("error: --palette-transfer must be from 0 to 1, not -0.5", "--palette-transfer", "-0.5")]
    [InlineData("error: --size: 'abc' is not an integer (see 'stylize --help')", "--size", "abc")]
    [InlineData("error: Argument 'banana' not recognized. Must be one of: 'noise' 'content' 'style' (see 'stylize --help')", "--init", "banana")]
    [InlineData("error: --device must be cpu, cuda or cuda:N, not 'tpu'", "--device", "tpu")]
    public void InvalidValues(string expected, string option, string value) =>
        AssertBad(expected, content, style, option, value);

    [Fact]
    public void UnknownNetwork() =>
        AssertBad($"error: unknown network 'alexnet9' (known: {string.Join(", ", Networks.NetworkFactory.Names)})", content, style, "--network", "alexnet9");

    [Fact]
    public void RatioAndContentWeightTogether() =>
        AssertBad("error: --ratio and --content-weight cannot be given together", content, style, "--ratio", "1e-3", "--content-weight", "2");

    [Fact]
    public void CudaWithoutCuda() =>
        AssertBad("error: --device cuda was asked for, but CUDA is not available: this build uses the CPU libtorch package (see README 'GPU')", content, style, "--device", "cuda");

    [Fact]
    public void MissingWeightsFile() =>
        AssertBad($"error: weights file '{dir.File("none.pth")}' does not exist", content, style, "--weights", dir.File("none.pth"));

    [Fact]
    public void TruncatedWeightsFile()
    {
        byte[] pth = File.ReadAllBytes(TestPaths.NarrowPth);
        File.WriteAllBytes(dir.File("cut.pth"), pth[..(pth.Length / 2)]);
        string line = AssertBadLine(content, style, "--weights", dir.File("cut.pth"));
        Assert.StartsWith($"error: weights file '{dir.File("cut.pth")}' could not be read as a PyTorch .pth state dict (", line);
    }

    [Fact]
    public void WeightsOfAnotherLayout() =>
        AssertBad(
            $"error: weights file '{TestPaths.Reference}' has no tensor 'features.0.weight' (expected torchvision's VGG-19 layout, e.g. vgg19-dcbb9e9d.pth)",
            content,
            style,
            "--weights",
            TestPaths.Reference);

    [Fact]
    public void WeightsNotFoundInTheHubCache()
    {
        if (Formats.WeightLocator.Find(null, Networks.Vgg19.WeightsFileName) != null)
        {
            return; // This machine has real VGG-19 weights: the not-found path cannot be exercised here.
        }

        var stderr = new StringWriter();
        int code = CliApp.Run([content, style, "-o", dir.File("out.png"), "--size", "32", "-n", "1", "--network", "vgg19"], new StringWriter(), stderr);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.StartsWith("error: VGG-19 weights not found: pass --weights PATH, or put torchvision's vgg19-dcbb9e9d.pth in one of: ", stderr.ToString());
    }

    [Fact]
    public void DivergedLossExitsWithThreeAndWritesNothing()
    {
        string output = dir.File("out.png");
        File.WriteAllBytes(output, [1, 2, 3]);
        (int code, _, string stderr) = Run(content, style, "-o", output, "--size", "32", "-n", "3", "--content-weight", "1e300");
        Assert.Equal(CliApp.ExitDiverged, code);
        Assert.Equal("error: the loss became Infinity at iteration 1; no image was written (try a smaller --style-weight or --learning-rate, or --optimizer adam)" + Environment.NewLine, stderr);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(output));
    }

    /// <summary>Runs with the fixture weights and small defaults unless the arguments say otherwise.</summary>
    private (int Code, string Stdout, string Stderr) Run(params string[] args) =>
        CliRun.WithDefaults(args, ("-o", dir.File("out.png")), ("--weights", TestPaths.NarrowPth), ("--size", "32"), ("-n|--iterations", "2"), ("--threads", "2"));

    private void AssertBad(string expectedLine, params string[] args) => Assert.Equal(expectedLine, AssertBadLine(args));

    /// <summary>Runs expecting exit code 2, a single stderr line and an untouched existing output; returns the line.</summary>
    private string AssertBadLine(params string[] args)
    {
        string output = args.Contains("-o") ? args[Array.IndexOf(args, "-o") + 1] : dir.File("existing.png");
        bool canPreexist = output.EndsWith(".png", StringComparison.Ordinal);
        if (canPreexist)
        {
            File.WriteAllBytes(output, [9, 9, 9]);
        }

        (int code, _, string stderr) = Run(args.Contains("-o") ? args : [.. args, "-o", output]);
        Assert.Equal(CliApp.ExitBadInput, code);
        string[] lines = stderr.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        if (canPreexist)
        {
            Assert.Equal(new byte[] { 9, 9, 9 }, File.ReadAllBytes(output));
        }

        Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
        return lines[0];
    }
}

/// <summary>The VGG-19 FLOP arithmetic the bench's counter is checked against.</summary>
internal static class Vgg19Arithmetic
{
    /// <summary>
    /// VGG-19's convolution GFLOP per iteration, by hand: the reference that the bench's
    /// counted FLOPs (<see cref="Diagnostics.ConvFlopCounter"/>) are checked against: 2·Cin·Cout·9·H·W per conv for the forward pass, the same
    /// again for the gradient with respect to the input (weights need no gradient), up to the
    /// deepest tap used. Pooling, ReLU, Grams and the optimiser are not counted.
    /// </summary>
    public static double ConvGflop(IReadOnlyList<long> widths, int height, int width, IEnumerable<string> taps)
    {
        int deepestBlock = 0, deepestConv = 0;
        foreach (string tap in taps)
        {
            // relu4_2 → block 4, conv 2.
            string[] parts = tap[4..].Split('_');
            (int b, int k) = (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
            if (b > deepestBlock || (b == deepestBlock && k > deepestConv))
            {
                (deepestBlock, deepestConv) = (b, k);
            }
        }

        int[] blockSizes = [2, 2, 4, 4, 4];
        double flop = 0;
        long inChannels = 3;
        int conv = 0;
        long h = height, w = width;
        for (int b = 1; b <= deepestBlock; b++)
        {
            for (int k = 1; k <= blockSizes[b - 1]; k++, conv++)
            {
                if (b == deepestBlock && k > deepestConv)
                {
                    break;
                }

                flop += 2.0 * 2.0 * inChannels * widths[conv] * 9 * h * w;
                inChannels = widths[conv];
            }

            h /= 2;
            w /= 2;
        }

        return flop / 1e9;
    }
}
