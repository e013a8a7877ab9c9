using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StyleTransfer.Networks;
using Xunit.Abstractions;

namespace StyleTransfer.Tests;

/// <summary>
/// The public entry point (<see cref="StyleTransferEngine"/>) end to end on small images: inputs
/// as paths, streams and images, progress, previews, cancellation, per-network defaults, errors
/// that name properties, and the public surface.
/// </summary>
public sealed class PublicApiTests(ITestOutputHelper output) : IDisposable
{
    private static readonly StyleTransferOptions Small = new() { Network = "resnet18", Size = 64, Iterations = 5, Seed = 1, Threads = 1 };

    private readonly TempDir dir = new();
    private readonly StyleTransferEngine engine = new();

    public void Dispose()
    {
        engine.Dispose();
        dir.Dispose();
    }

    [Fact]
    public async Task PathsStreamsAndImagesGiveTheSameImage()
    {
        string content = TestImages.Save(TestImages.Scene(60, 40), dir.File("content.png"));
        string style = TestImages.Save(TestImages.Stripes(48, 48), dir.File("style.png"));

        using StyleTransferResult fromPaths = await engine.StylizeAsync(content, style, Small);
        using (Stream c = File.OpenRead(content), s = File.OpenRead(style))
        using (StyleTransferResult fromStreams = await engine.StylizeAsync(c, s, Small))
        using (Image<Rgb24> ci = TestImages.Scene(60, 40), si = TestImages.Stripes(48, 48))
        using (StyleTransferResult fromImages = await engine.StylizeAsync(ci, si, Small))
        {
            Assert.Equal(Pixels(fromPaths.Image), Pixels(fromStreams.Image));
            Assert.Equal(Pixels(fromPaths.Image), Pixels(fromImages.Image));
        }

        // 60×40 at a long edge of 64: 64×43.
        Assert.Equal((64, 43), (fromPaths.Image.Width, fromPaths.Image.Height));
        StyleTransferReport report = fromPaths.Report;
        output.WriteLine($"losses {string.Join(", ", report.History.Select(r => r.Total.ToString("G4", System.Globalization.CultureInfo.InvariantCulture)))}, {report.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(1, report.Seed);
        Assert.Equal("resnet18", report.Network);
        Assert.Equal("cpu", report.Device);
        Assert.Equal([1, 2, 3, 4, 5], report.History.Select(r => r.Iteration));
        Assert.False(report.Cancelled);
        Assert.True(report.Final!.Total < report.History[0].Total, $"the loss did not fall: {report.History[0].Total} → {report.Final.Total}");
        Assert.True(report.Elapsed > report.Final.Elapsed);

        string saved = dir.File("out.jpg");
        fromPaths.Save(saved);
        using Image<Rgb24> back = Image.Load<Rgb24>(saved);
        Assert.Equal((64, 43), (back.Width, back.Height));
        Assert.Equal(["content.png", "out.jpg", "style.png"], Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task ProgressReportsEveryIterationAndPreviewsEveryN()
    {
        using Image<Rgb24> content = TestImages.Scene(60, 40), style = TestImages.Stripes(48, 48);
        var reports = new List<StyleTransferProgress>();
        using StyleTransferResult result = await engine.StylizeAsync(content, style, Small with { SaveEvery = 2 }, new Sync(reports.Add));

        Assert.Equal(["1", "2", "2 preview", "3", "4", "4 preview", "5"], reports.Select(r => r.Iteration.Iteration + (r.Preview is null ? "" : " preview")));
        Assert.All(reports.Where(r => r.Preview is not null), r => Assert.Equal((64, 43), (r.Preview!.Width, r.Preview.Height)));
        Assert.Equal(result.Report.History, reports.Where(r => r.Preview is null).Select(r => r.Iteration));
        reports.ForEach(r => r.Preview?.Dispose());
    }

    [Fact]
    public async Task CancellationStopsBetweenIterations()
    {
        using Image<Rgb24> content = TestImages.Scene(60, 40), style = TestImages.Stripes(48, 48);
        using var cts = new CancellationTokenSource();
        var seen = new List<int>();
        var progress = new Sync(r =>
        {
            seen.Add(r.Iteration.Iteration);
            if (r.Iteration.Iteration == 2)
            {
                cts.Cancel();
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => engine.StylizeAsync(content, style, Small, progress, cts.Token));
        Assert.Equal([1, 2], seen);

        // Cancelled before it starts: no iteration at all.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => engine.StylizeAsync(content, style, Small, progress, cts.Token));
        Assert.Equal([1, 2], seen);

        // The engine still works afterwards.
        using StyleTransferResult again = await engine.StylizeAsync(content, style, Small with { Iterations = 1 });
        Assert.Single(again.Report.History);
    }

    [Fact]
    public async Task ResNet18NeedsNoOtherSetting()
    {
        StyleTransferOptions plain = new StyleTransferOptions { Network = "resnet18" }.Validate();
        Assert.Equal(["layer2_1"], plain.ContentLayers);
        Assert.Equal(7, plain.StyleLayers.Count);
        Assert.Equal((150, 16.0, 1e8, InitMode.Noise, 1.5, true), (plain.Iterations, plain.ContentWeight, plain.StyleWeight, plain.Init, plain.StyleScale, plain.AntiAlias));

        // A setting given stays; the ones not given follow the network.
        StyleTransferOptions vggThenResNet = new StyleTransferOptions { StyleWeight = 5 } with { Network = "resnet18" };
        Assert.Equal((5.0, "layer2_1"), (vggThenResNet.StyleWeight, vggThenResNet.ContentLayers[0]));
        Assert.Equal(NetworkFactory.DefaultOptions("resnet18").StyleLayers, vggThenResNet.StyleLayers);

        using Image<Rgb24> content = TestImages.Scene(60, 40), style = TestImages.Stripes(48, 48);
        using StyleTransferResult result = await engine.StylizeAsync(content, style, new StyleTransferOptions { Network = "resnet18", Size = 64, Iterations = 2, Threads = 1 });
        Assert.Equal(2, result.Report.Iterations);
        Assert.Equal(["layer2_1"], result.Report.Options.ContentLayers);
        Assert.True(double.IsFinite(result.Report.Final!.Total));
    }

    [Fact]
    public async Task Vgg19NeedsNoOtherSettingThanItsWeights()
    {
        StyleTransferOptions plain = new StyleTransferOptions { Network = "vgg19" }.Validate();
        Assert.Equal(StyleTransferOptions.PaperContentLayers, plain.ContentLayers);
        Assert.Equal(StyleTransferOptions.PaperStyleLayers, plain.StyleLayers);
        Assert.Equal((500, 1e3, InitMode.Noise, 1.0, false), (plain.Iterations, plain.StyleWeight, plain.Init, plain.StyleScale, plain.AntiAlias));

        using Image<Rgb24> content = TestImages.Scene(60, 40), style = TestImages.Stripes(48, 48);
        var options = new StyleTransferOptions { Network = "vgg19", WeightsPath = TestPaths.NarrowPth, Size = 64, Iterations = 3, Seed = 7, Threads = 1 };
        using StyleTransferResult result = await engine.StylizeAsync(content, [style], options);
        Assert.Equal([1, 2, 3], result.Report.History.Select(r => r.Iteration));
        Assert.Equal((7L, "vgg19"), (result.Report.Seed, result.Report.Network));
        Assert.Equal(StyleTransferOptions.PaperStyleLayers, result.Report.Options.StyleLayers);
        Assert.All(result.Report.History, r => Assert.True(double.IsFinite(r.Total) && r.Total > 0));
    }

    [Fact]
    public async Task BadStreamIsNamedByItsNameNotATemporaryFile()
    {
        byte[] png;
        using (var ms = new MemoryStream())
        {
            using Image<Rgb24> img = TestImages.Scene(60, 40);
            img.SaveAsPng(ms);
            png = ms.ToArray();
        }

        using var truncated = new MemoryStream(png[..(png.Length / 2)]);
        using Image<Rgb24> style = TestImages.Stripes(48, 48);
        var e = await Assert.ThrowsAsync<StyleTransferException>(() => engine.StylizeAsync(ImageInput.FromStream(truncated, "upload.png"), style, Small));
        output.WriteLine(e.Message);
        Assert.StartsWith("content image 'upload.png' is ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Path.GetTempPath(), e.Message, StringComparison.Ordinal);
        Assert.Equal(FailureKind.BadInput, e.Kind);
    }

    [Fact]
    public async Task ErrorsNamePropertiesAndTheCliRendersItsFlags()
    {
        // The issue's example: a layer of another network, named by its property.
        using Image<Rgb24> content = TestImages.Scene(60, 40), style = TestImages.Stripes(48, 48);
        var e = await Assert.ThrowsAsync<StyleTransferException>(() => engine.StylizeAsync(content, style, Small with { ContentLayers = ["relu4_2"] }));
        Assert.StartsWith("ContentLayers: unknown layer 'relu4_2' for resnet18 (known: ", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("--content-layers: unknown layer 'relu4_2' for resnet18 (known: ", Cli.OptionFlags.Message(e), StringComparison.Ordinal);

        (StyleTransferOptions Options, string Library, string Cli)[] cases =
        [
            (new() { Size = 8 }, "Size must be at least 16, not 8", "--size must be at least 16, not 8"),
            (new() { StyleWeight = double.NaN }, "StyleWeight must be a finite number of 0 or more, not NaN", "--style-weight must be a finite number of 0 or more, not NaN"),
            (new() { StyleLayers = ["relu1_1"], StyleLayerWeights = [1, 2] }, "StyleLayerWeights has 2 value(s) but StyleLayers has 1", "--style-layer-weights has 2 value(s) but --style-layers has 1"),
            (new() { Precision = Precision.Fp16 }, "Precision = fp16 needs Device = cuda (libtorch has no fast fp16 convolutions on the CPU); use Precision = bf16", "--precision fp16 needs --device cuda (libtorch has no fast fp16 convolutions on the CPU); use --precision bf16"),
            (new() { Size = 64, Scales = 4 }, "Scales = 4 starts at 23 px, below 32; at most 3 scale(s) fit Size = 64", "--scales 4 starts at 23 px, below 32; at most 3 scale(s) fit --size 64"),
        ];
        foreach ((StyleTransferOptions options, string library, string cli) in cases)
        {
            e = Assert.Throws<StyleTransferException>(() => options.Validate());
            Assert.Equal((library, cli), (e.Message, Cli.OptionFlags.Message(e)));
        }

        TorchRuntime.EnsureLoaded();
        using var checkpoint = new Optimization.Checkpoint { Options = new StyleTransferOptions { Network = "resnet18" }, Image = TorchSharp.torch.zeros(1, 3, 16, 16) };
        e = Assert.Throws<StyleTransferException>(() => checkpoint.CheckCompatible(new StyleTransferOptions { Network = "resnet18", StyleWeight = 5 }, null, null, "run.ckpt"));
        Assert.Equal(
            "resume: checkpoint 'run.ckpt' was made with StyleWeight = 100000000, not 5 (only Iterations, SaveEvery, LineSearch, LbfgsHistory, LearningRate, Precision, Device and Threads may change)",
            e.Message);
        Assert.Equal(
            "--resume: checkpoint 'run.ckpt' was made with --style-weight 100000000, not 5 (only -n, --save-every, --line-search, --lbfgs-history, --learning-rate, --precision, --device and --threads may change)",
            Cli.OptionFlags.Message(e));

        // A message with no property in it is the same for both.
        var plain = new StyleTransferException("content image 'x.png' does not exist");
        Assert.Equal(plain.Message, plain.FormatMessage(Cli.OptionFlags.Of));
    }

    [Fact]
    public void TheCliHasAFlagForEverySettingTheLibraryNames()
    {
        string[] keys = [.. typeof(Opt).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static).Select(f => (Opt)f.GetValue(null)!).Select(o => o.Key ?? o.Name), "Iterations.Short"];
        Assert.True(keys.Length > 30, $"{keys.Length} names");
        Assert.All(keys, k => Assert.NotNull(Cli.OptionFlags.Of(k)));
        Assert.All(Optimization.Checkpoint.MustMatch, k => Assert.NotNull(Cli.OptionFlags.Of(k)));
    }

    /// <summary>
    /// The public surface, pinned: a type added to it (or made public by accident) fails here until
    /// this list, docs/library.md and its XML docs are updated on purpose. Everything else is
    /// internal (visible to the CLI, the tests and the front ends named in the project file).
    /// </summary>
    [Fact]
    public void ThePublicTypesAreTheApi()
    {
        string[] expected =
        [
            "StyleTransfer.ColorPreservationMode",
            "StyleTransfer.FailureKind",
            "StyleTransfer.FirstConvPadding",
            "StyleTransfer.ImageInput",
            "StyleTransfer.Imaging.ImageIO",
            "StyleTransfer.InitMode",
            "StyleTransfer.Losses.FeatureTransformKind",
            "StyleTransfer.Losses.StyleLossKind",
            "StyleTransfer.MaskFit",
            "StyleTransfer.Models.DownloadProgress",
            "StyleTransfer.Models.DownloadResult",
            "StyleTransfer.Models.ModelDownloader",
            "StyleTransfer.Models.ModelFile",
            "StyleTransfer.Networks.IFeatureNetwork",
            "StyleTransfer.Networks.NetworkFactory",
            "StyleTransfer.Networks.PoolingMode",
            "StyleTransfer.Networks.Precision",
            "StyleTransfer.Optimization.IterationReport",
            "StyleTransfer.OptimizerKind",
            "StyleTransfer.SmallStyleMode",
            "StyleTransfer.StyleMask",
            "StyleTransfer.StyleNormalization",
            "StyleTransfer.StyleTransferEngine",
            "StyleTransfer.StyleTransferException",
            "StyleTransfer.StyleTransferOptions",
            "StyleTransfer.StyleTransferProgress",
            "StyleTransfer.StyleTransferReport",
            "StyleTransfer.StyleTransferResult",
            "StyleTransfer.TorchRuntime",
        ];
        Assert.Equal(expected, typeof(StyleTransferEngine).Assembly.GetExportedTypes().Select(t => t.FullName!).Order(StringComparer.Ordinal));
    }

    private static byte[] Pixels(Image<Rgb24> image)
    {
        var bytes = new byte[image.Width * image.Height * 3];
        image.CopyPixelDataTo(bytes);
        return bytes;
    }

    private sealed class Sync(Action<StyleTransferProgress> report) : IProgress<StyleTransferProgress>
    {
        public void Report(StyleTransferProgress value) => report(value);
    }
}
