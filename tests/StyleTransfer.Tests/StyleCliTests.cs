using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StyleTransfer.Cli;

namespace StyleTransfer.Tests;

/// <summary>`stylize CONTENT STYLE1 STYLE2 … --style-blend --mask --style-loss`: end to end, and every bad input with its exact line.</summary>
public sealed class StyleCliTests : IDisposable
{
    private readonly TempDir dir = new();
    private readonly string content, style1, style2, left, black;

    public StyleCliTests()
    {
        content = TestImages.Save(TestImages.Scene(60, 40), dir.File("content.png"));
        style1 = TestImages.Save(TestImages.Stripes(48, 48), dir.File("stripes.png"));
        style2 = TestImages.Save(TestImages.Scene(40, 40), dir.File("scene.jpg"));
        left = Mask(dir.File("left.png"), x => x < 30);
        black = Mask(dir.File("black.png"), _ => false);
    }

    public void Dispose() => dir.Dispose();

    [Fact]
    public void TwoStylesWithABlendAMaskAndW2RunEndToEnd()
    {
        string output = dir.File("out.png");
        (int code, string stdout, string stderr) = Run(content, style1, style2, "-o", output, "--style-blend", "2,1", "--style-loss", "w2", "--size", "40", "-n", "3", "--log", dir.File("log.json"));
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        using (Image<Rgb24> img = Image.Load<Rgb24>(output))
        {
            Assert.Equal((40, 27), (img.Width, img.Height));
        }

        Assert.Contains("iter 3/3  loss ", stdout);
        string log = File.ReadAllText(dir.File("log.json"));
        Assert.Contains($"\"style2\": \"{style2}\"", log);
        Assert.Matches("\"styleBlend\": \\[\\s*2,\\s*1\\s*\\]", log);

        (code, _, stderr) = Run(content, style1, style2, "-o", output, "--mask", "stripes=" + left, "--size", "40", "-n", "2");
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
    }

    [Fact]
    public void BlendWeightsChangeTheImage()
    {
        // Same seed, other weights: another image; weights 2,1 and 4,2 normalise to the same: the same image.
        Run(content, style1, style2, "-o", dir.File("a.png"), "--style-blend", "2,1", "--seed", "1", "--size", "32", "-n", "3");
        Run(content, style1, style2, "-o", dir.File("b.png"), "--style-blend", "4,2", "--seed", "1", "--size", "32", "-n", "3");
        Run(content, style1, style2, "-o", dir.File("c.png"), "--style-blend", "1,2", "--seed", "1", "--size", "32", "-n", "3");
        Assert.Equal(File.ReadAllBytes(dir.File("a.png")), File.ReadAllBytes(dir.File("b.png")));
        Assert.NotEqual(File.ReadAllBytes(dir.File("a.png")), File.ReadAllBytes(dir.File("c.png")));
    }

    [Theory]
    [InlineData("error: --style-blend must be a finite number of 0 or more, not -1", "--style-blend", "1,-1")]
    [InlineData("error: --style-blend weights are all 0", "--style-blend", "0,0")]
    [InlineData("error: --style-blend has 3 value(s) but there are 2 style images", "--style-blend", "1,2,3")]
    [InlineData("error: --style-blend: 'x' is not a number", "--style-blend", "1,x")]
    [InlineData("error: --mask names style image 3, but there are 2", "--mask", "3=MASK")]
    [InlineData("error: --mask names style image 0, but there are 2", "--mask", "0=MASK")]
    [InlineData("error: --mask: 'starry' is neither the number nor the file name of a style image (1: stripes.png, 2: scene.jpg)", "--mask", "starry=MASK")]
    [InlineData("error: --mask must be STYLE=FILE (STYLE: a style image's number from 1, or its file name), not 'left.png'", "--mask", "left.png")]
    [InlineData("error: Argument 'w3' not recognized. Must be one of: 'gram' 'w2' (see 'stylize --help')", "--style-loss", "w3")]
    public void BadBlendsAndMasks(string expected, string option, string value) =>
        AssertBad(expected, content, style1, style2, option, value.Replace("MASK", left, StringComparison.Ordinal));

    [Fact]
    public void AStyleNamedTwiceOrEveryStyleMaskedWithABlend()
    {
        AssertBad("error: --mask: style image 1 has two masks", content, style1, style2, "--mask", "1=" + left, "--mask", "stripes.png=" + left);
        AssertBad("error: --style-blend cannot be used when every style image has a --mask (the masks place the styles)", content, style1, style2, "--mask", "1=" + left, "--mask", "scene=" + left, "--style-blend", "1,1");
    }

    [Fact]
    public void BadMaskFiles()
    {
        AssertBad($"error: mask for style image 2 '{black}' is all black: it places that style nowhere", content, style1, style2, "--mask", "2=" + black);
        AssertBad($"error: mask for style image 1 '{dir.File("none.png")}' does not exist", content, style1, style2, "--mask", "1=" + dir.File("none.png"));
        File.WriteAllText(dir.File("text.png"), "not a png");
        AssertBad($"error: mask for style image 1 '{dir.File("text.png")}' is not an image in a supported format (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP)", content, style1, style2, "--mask", "1=" + dir.File("text.png"));
    }

    [Fact]
    public void AMissingSecondStyleImage() =>
        AssertBad($"error: style image 2 '{dir.File("none.jpg")}' does not exist", content, style1, dir.File("none.jpg"));

    [Fact]
    public void HelpListsTheNewOptions()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, CliApp.Run(["--help"], stdout, new StringWriter()));
        foreach (string option in new[] { "--style-blend", "--mask", "--style-loss", "<STYLE>..." })
        {
            Assert.Contains(option, stdout.ToString());
        }
    }

    [Fact]
    public void ASmallStyleImageIsUsedAtItsOwnSizeAndTheStartUpLineSaysSo()
    {
        // VGG-19 (narrow weights) with --small-style native, no anchor: the 40 px style image at 40 px
        // for a 48 px output, not 48; a third of 40 px is 13 px, so relu1_1 (3 px) and relu2_1 (9 px) stay.
        string output = dir.File("small.png");
        (int code, string stdout, string stderr) = Run(content, style2, "-o", output, "--size", "48", "--small-style", "native");
        Assert.Equal("", stderr);
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains(
            "small style: the style image is used at 40 px, its own size at the output size, not enlarged to 48 px; without style layers relu3_1, relu4_1, relu5_1 (receptive fields 21, 61, 141 px: more than a third of it) (--small-style enlarge stretches it, with every layer)" + Environment.NewLine,
            stdout);
        (code, stdout, _) = Run(content, style2, "-o", output, "--size", "48", "--small-style", "enlarge");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.DoesNotContain("small style:", stdout);
    }

    [Fact]
    public void SmallStyleNativeIsRefusedForANetworkWithoutKnownReceptiveFields() =>
        AssertBad("error: --small-style native needs the receptive fields of the network's layers, known for resnet18 and vgg19, not alexnet; use --small-style enlarge", content, style1, "--network", "alexnet", "--small-style", "native");

    private static string Mask(string path, Func<int, bool> white)
    {
        var img = new Image<L8>(60, 40);
        for (int y = 0; y < 40; y++)
        {
            for (int x = 0; x < 60; x++)
            {
                img[x, y] = new L8(white(x) ? (byte)255 : (byte)0);
            }
        }

        img.Save(path);
        img.Dispose();
        return path;
    }

    private (int Code, string Stdout, string Stderr) Run(params string[] args) =>
        CliRun.WithDefaults(args, ("-o", dir.File("out.png")), ("--weights", TestPaths.NarrowPth), ("--threads", "2"), ("--size", "32"), ("-n", "2"));

    /// <summary>Exit code 2, exactly <paramref name="expectedLine"/> on stderr, an existing output untouched, no temporary file left.</summary>
    private void AssertBad(string expectedLine, params string[] args)
    {
        string output = dir.File("existing.png");
        File.WriteAllBytes(output, [9, 9, 9]);
        (int code, _, string stderr) = Run([.. args, "-o", output]);
        Assert.Equal(expectedLine + Environment.NewLine, stderr);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal(new byte[] { 9, 9, 9 }, File.ReadAllBytes(output));
        Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }
}
