using System.Globalization;
using StyleTransfer.Cli;
using StyleTransfer.Diagnostics;
using StyleTransfer.Networks;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>`stylize metrics`: one machine-readable line per image, the library's numbers, one error line and exit 2 on bad input.</summary>
public sealed class MetricsCliTests : CliImagesTest
{
    [Fact]
    public void PrintsOneLinePerImageWithTheLibrarysNumbers()
    {
        (int code, string stdout, string stderr) = Run("metrics", content, style, "--size", "48");
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        ImageMetricsResult c = ImageMetrics.MeasureFile(content, 48), s = ImageMetrics.MeasureFile(style, 48);
        Assert.Equal((48, 32), (c.Width, c.Height));
        Assert.Equal(
            string.Create(CultureInfo.InvariantCulture, $"metrics {content} size=48x32 checkerboard={c.Checkerboard:F3} speckle={c.Speckle:F3}{Environment.NewLine}metrics {style} size=48x48 checkerboard={s.Checkerboard:F3} speckle={s.Speckle:F3}{Environment.NewLine}"),
            stdout);
        Assert.True(c.Checkerboard > 0 && s.Speckle > 0);
    }

    [Fact]
    public void WithAStyleAddsTheStyleLossOfTheImageAtTheMetricsSize()
    {
        (int code, string stdout, string stderr) = Run("metrics", content, "--style", style, "--size", "40", "--network", "vgg19", "--weights", TestPaths.NarrowPth, "--threads", "2");
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        string[] lines = stdout.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith($"# style loss against {style} (40x40): vgg19 (weights ", lines[0]);

        StyleTransferOptions options = (NetworkFactory.DefaultOptions("vgg19") with { WeightsPath = TestPaths.NarrowPth, Size = 40 }).Validate();
        using var meter = new StyleLossMeter(style, options);
        using Tensor image = Imaging.ImageIO.LoadTensor(content, "image", 40);
        string expected = meter.Measure(image).ToString("0.000e+00", CultureInfo.InvariantCulture);
        Assert.Matches($@"^metrics {System.Text.RegularExpressions.Regex.Escape(content)} size=40x27 checkerboard=\d+\.\d{{3}} speckle=\d+\.\d{{3}} style_loss={System.Text.RegularExpressions.Regex.Escape(expected)}$", lines[1]);
    }

    [Fact]
    public void AMissingImageIsOneErrorLineAndNothingPrinted()
    {
        (int code, string stdout, string stderr) = Run("metrics", content, dir.File("nope.png"));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal("", stdout);
        Assert.Equal($"error: image '{dir.File("nope.png")}' does not exist{Environment.NewLine}", stderr);
    }

    [Fact]
    public void AMissingStyleImageIsOneErrorLine()
    {
        (int code, string stdout, string stderr) = Run("metrics", content, "--style", dir.File("nope.jpg"), "--network", "vgg19", "--weights", TestPaths.NarrowPth);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal("", stdout);
        Assert.Equal($"error: style image '{dir.File("nope.jpg")}' does not exist{Environment.NewLine}", stderr);
    }

    [Theory]
    [InlineData("8", "--size must be at least 16, not 8")]
    [InlineData("4097", "--size must be at most 4096, not 4097")]
    public void ASizeOutOfRangeIsRefused(string size, string message)
    {
        (int code, string stdout, string stderr) = Run("metrics", content, "--size", size);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal("", stdout);
        Assert.Equal($"error: {message}{Environment.NewLine}", stderr);
    }

    [Fact]
    public void ABadImageAfterGoodOnesPrintsNothingButTheError()
    {
        File.WriteAllText(dir.File("text.png"), "hello");
        (int code, string stdout, string stderr) = Run("metrics", content, style, dir.File("text.png"));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal("", stdout);
        Assert.Equal($"error: image '{dir.File("text.png")}' is not an image in a supported format (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP){Environment.NewLine}", stderr);
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args) => CliRun.WithDefaults(args);
}
