using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>
/// <see cref="SmallStyleMode.Native"/>: a small style image is never enlarged beyond its own pixels at
/// the reference size, and loses the style layers that would see it whole (docs/quality.md, "Small style images").
/// </summary>
public sealed class SmallStyleTests
{
    public SmallStyleTests() => TorchRuntime.EnsureLoaded();

    private static StyleTransferOptions ResNet18 => NetworkFactory.DefaultOptions("resnet18");

    [Fact]
    public void ResNet18UsesSmallStylesNativeAndTheOtherNetworksEnlargeThem()
    {
        Assert.Equal(SmallStyleMode.Native, ResNet18.SmallStyle);
        foreach (string network in new[] { "vgg19", "alexnet", "googlenet", "resnet50" })
        {
            Assert.Equal(SmallStyleMode.Enlarge, NetworkFactory.DefaultOptions(network).SmallStyle);
        }
    }

    [Theory]
    [InlineData(512, 300, 300, 300)] // the 300 px sketch: its own size, not 768
    [InlineData(512, 600, 380, 600)] // the red-chalk study
    [InlineData(512, 1024, 640, 768)] // The Starry Night: larger than 1.5 × 512, scaled down as before
    [InlineData(1024, 300, 300, 600)] // above the anchor: the sketch as the 512 px output sees it, scaled with the output
    [InlineData(256, 300, 300, 150)]
    public void NativeNeverEnlargesAStyleImageBeyondItsOwnPixelsAtTheAnchor(int size, int width, int height, int expected) =>
        Assert.Equal(expected, (ResNet18 with { Size = size }).StyleEdge(width, height));

    [Fact]
    public void WithoutAnAnchorTheReferenceIsTheOutputAndEnlargeKeepsTheStyleScale()
    {
        Assert.Equal(300, (ResNet18 with { Size = 1024, StyleAnchor = 0 }).StyleEdge(300, 300));
        Assert.Equal(1536, (ResNet18 with { Size = 1024, SmallStyle = SmallStyleMode.Enlarge }).StyleEdge(300, 300));
        Assert.Equal(512, NetworkFactory.DefaultOptions("vgg19").StyleEdge(300, 300));
        Assert.Equal(ImageIO.MinSide, (ResNet18 with { Size = 64 }).StyleEdge(20, 20));
    }

    [Theory]
    [InlineData("layer1_1", 43)]
    [InlineData("layer2_1", 99)]
    [InlineData("layer3_0", 147)]
    [InlineData("layer3_1", 211)]
    public void ResNet18sReceptiveFieldsAreTheStemPoolAndThreeByThreeConvolutionsComposed(string tap, int pixels) =>
        Assert.Equal(pixels, SmallStyles.ReceptiveField("resnet18", tap));

    [Theory]
    [InlineData(300, 512, "layer3_0,layer3_1")] // a third of 300 is 100: layer2_1 (99 px) stays
    [InlineData(600, 512, "layer3_1")] // a third of 600 is 200: layer3_0 (147 px) stays
    [InlineData(727, 512, "")]
    [InlineData(768, 512, "")]
    [InlineData(600, 1024, "layer3_0,layer3_1")] // 600 px at a 1024 px output is 300 px at the anchor
    public void NativeLeavesOutTheLayersWhoseReceptiveFieldCoversMoreThanAThird(int styleEdge, int outputEdge, string expected) =>
        Assert.Equal(expected, string.Join(",", SmallStyles.Dropped(ResNet18, "resnet18", styleEdge, outputEdge)));

    [Fact]
    public void EnlargeLeavesOutNothingAndATinyStyleKeepsItsShallowestLayer()
    {
        Assert.Empty(SmallStyles.Dropped(ResNet18 with { SmallStyle = SmallStyleMode.Enlarge }, "resnet18", 64, 512));
        IReadOnlyList<string> dropped = SmallStyles.Dropped(ResNet18, "resnet18", 16, 512);
        Assert.Equal(ResNet18.StyleLayers.Skip(1), dropped);
    }

    [Fact]
    public void FitKeepsTheSumOfExplicitWeightsAndEqualWeightsStayEqual()
    {
        using var scope = torch.NewDisposeScope();
        Tensor small = torch.zeros(1, 3, 300, 200), large = torch.zeros(1, 3, 500, 768);
        StyleTransferOptions o = ResNet18 with { StyleLayers = ["relu1", "layer2_1", "layer3_1"], StyleLayerWeights = [0.2, 0.3, 0.5] };

        StyleTransferOptions fitted = SmallStyles.Fit(o, "resnet18", [large, small], 512);
        Assert.Equal(["relu1", "layer2_1"], fitted.StyleLayers);
        Assert.Equal(0.4, fitted.StyleLayerWeights![0], 12);
        Assert.Equal(0.6, fitted.StyleLayerWeights[1], 12);

        StyleTransferOptions equal = SmallStyles.Fit(ResNet18, "resnet18", [small], 512);
        Assert.Null(equal.StyleLayerWeights);
        Assert.Equal(["relu1", "layer1_0", "layer1_1", "layer2_0", "layer2_1"], equal.StyleLayers);
        Assert.Same(o, SmallStyles.Fit(o, "resnet18", [large], 512));
    }

    [Fact]
    public void NativeNeedsANetworkWhoseReceptiveFieldsAreKnown()
    {
        var e = Assert.Throws<StyleTransferException>(() => (NetworkFactory.DefaultOptions("alexnet") with { SmallStyle = SmallStyleMode.Native }).Validate());
        Assert.Equal("SmallStyle = native needs the receptive fields of the network's layers, known for resnet18 and vgg19, not alexnet; use SmallStyle = enlarge", e.Message);
    }

    [Fact]
    public void TheStartUpNoteSaysWhatChangedAndOnlyWhenSomethingDid()
    {
        Assert.Equal(
            "the style image is used at 300 px, its own size at the 512 px style anchor, not enlarged to 768 px; without style layers layer3_0, layer3_1 (receptive fields 147, 211 px: more than a third of it)",
            SmallStyles.Describe(ResNet18, [(300, 300)]));
        Assert.Equal("style image 2 is used at 600 px, its own size at the 512 px style anchor, not enlarged to 768 px; without style layer layer3_1 (receptive field 211 px: more than a third of the smallest)", SmallStyles.Describe(ResNet18, [(1024, 640), (600, 380)]));
        Assert.Null(SmallStyles.Describe(ResNet18, [(1024, 640)]));
        Assert.Null(SmallStyles.Describe(ResNet18 with { SmallStyle = SmallStyleMode.Enlarge }, [(300, 300)]));
    }

    [Fact]
    public void ARunTakesTheSmallStylesLayersAndTheCheckpointKeepsTheOptionsAsGiven()
    {
        using var scope = torch.NewDisposeScope();
        StyleTransferOptions o = ResNet18 with { Size = 96, Scales = 1, Iterations = 2, StyleAnchor = 0, LineSearch = false, Seed = 1, Threads = 2, SaveEvery = 1 };
        using IFeatureNetwork inner = NetworkFactory.Create(o, torch.CPU);
        var net = new TapRecorder(inner);
        Tensor content = torch.rand(1, 3, 64, 96, generator: new torch.Generator(1));

        // 90 px at a 96 px output: a third is 30 px, so relu1 (7 px) and layer1_0 (27 px) stay.
        Tensor style = torch.rand(1, 3, 90, 90, generator: new torch.Generator(2));
        StyleTransferOptions? saved = null;
        using StylizeResult r = Stylizer.Run(content, [style], net, o, null, checkpoint: c => saved ??= c.Options);
        Assert.Equal(["layer1_0", "layer2_1", "relu1"], net.Taps.Order());
        Assert.Equal(o.StyleLayers, saved!.StyleLayers);
    }

    [Fact]
    public void ACheckpointFromBeforeTheSettingResumesWithTheStyleImageStretched()
    {
        var o = ResNet18;
        var json = (System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse("""{ "Network": "resnet18", "Size": 512 }""")!;
        Assert.Equal(SmallStyleMode.Enlarge, Checkpoint.Upgrade(o, json).SmallStyle);
        json["SmallStyle"] = "Native";
        Assert.Equal(SmallStyleMode.Native, Checkpoint.Upgrade(o, json).SmallStyle);
    }

    /// <summary>Records every tap the run asks for.</summary>
    private sealed class TapRecorder(IFeatureNetwork inner) : IFeatureNetwork
    {
        public HashSet<string> Taps { get; } = [];

        public string Name => inner.Name;

        public IReadOnlyList<string> TapNames => inner.TapNames;

        public Device Device => inner.Device;

        public void MoveTo(Device device, ScalarType? dtype = null) => inner.MoveTo(device, dtype);

        public Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> taps)
        {
            Taps.UnionWith(taps);
            return inner.Extract(image, taps);
        }

        public void Dispose() => inner.Dispose();
    }
}
