using System.Diagnostics;
using StyleTransfer.Networks;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>Loads the bundled ResNet-18 once for all of <see cref="ResNet18Tests"/>.</summary>
public sealed class ResNet18Fixture : IDisposable
{
    public ResNet18Fixture()
    {
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
        (ModelPath, PreprocessPath) = ResNet18.ResolvePaths(null);
        Network = ResNet18.Load(ModelPath, PreprocessPath);
        ModelBytes = File.ReadAllBytes(ModelPath);
        PreprocessBytes = File.ReadAllBytes(PreprocessPath);
    }

    public string ModelPath { get; }

    public string PreprocessPath { get; }

    internal ResNet18 Network { get; }

    public byte[] ModelBytes { get; }

    public byte[] PreprocessBytes { get; }

    public void Dispose() => Network.Dispose();
}

/// <summary>
/// The ResNet-18 feature network against ONNX Runtime running the same two ONNX files (graph
/// optimisations off, so its batch norms are not folded). Stated tolerance: 1e-4 of the largest
/// magnitude of each reference tensor (float32 against float32; the folding of batch norms into
/// the convolutions and libtorch's other summation order are the only differences).
/// </summary>
public sealed class ResNet18Tests : IClassFixture<ResNet18Fixture>
{
    private const double Tolerance = 1e-4;
    private readonly ResNet18Fixture fixture;
    private readonly ITestOutputHelper output;

    public ResNet18Tests(ResNet18Fixture fixture, ITestOutputHelper output)
    {
        this.fixture = fixture;
        this.output = output;
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
    }

    private ResNet18 Net => fixture.Network;

    [Fact]
    public void LayoutAndTapsAreReadFromTheGraph()
    {
        Assert.Equal([2, 2, 2, 3], Net.StageBlocks);
        Assert.Equal([2L, 1, 0], Net.ChannelSource);
        string[] expected =
        [
            "conv1", "relu1", "pool1",
            "layer1_0_relu1", "layer1_0", "layer1_1_relu1", "layer1_1", "layer1",
            "layer2_0_relu1", "layer2_0", "layer2_1_relu1", "layer2_1", "layer2",
            "layer3_0_relu1", "layer3_0", "layer3_1_relu1", "layer3_1", "layer3",
            "layer4_0_relu1", "layer4_0", "layer4_1_relu1", "layer4_1", "layer4_2_relu1", "layer4_2", "layer4",
        ];
        Assert.Equal(expected, Net.TapNames);

        // Spot checks against the CNTK export's node names (seen in the graph).
        Assert.Equal("BatchNormalization251_Output_0", Net.OnnxValues["conv1"]);
        Assert.Equal("Pooling255_Output_0", Net.OnnxValues["pool1"]);
        Assert.Equal("ReLU269_Output_0", Net.OnnxValues["layer1_0"]);
        Assert.Equal("ReLU393_Output_0", Net.OnnxValues["layer4"]);
        Assert.Equal(Net.OnnxValues["layer4_2"], Net.OnnxValues["layer4"]);
        Assert.Equal("ReLU289_Output_0", Net.OnnxValues["layer2_0_relu1"]);
    }

    [Fact]
    public void PreprocessingMatchesResNetPreprocessOnnx()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Tensor image = Image(224, 224, seed: 1);
        using var reference = new OnnxRuntimeReference(fixture.PreprocessBytes, ["PreprocessedInput"], freeSize: false);
        (long[] shape, float[] data) = reference.Run(Scaled255(image), [1, 3, 224, 224])["PreprocessedInput"];
        Tensor ours = Net.Preprocess(image);
        Tensor theirs = torch.tensor(data, shape);

        // Both are 255·x with channels reversed minus the same float32 mean image: bit for bit.
        double err = (ours - theirs).abs().max().item<float>();
        output.WriteLine($"preprocessing max abs difference {err:E2}");
        Assert.Equal(0.0, err);
    }

    [Fact]
    public void EveryTapMatchesOnnxRuntimeAt224()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Tensor image = Image(224, 224, seed: 2);

        using var prep = new OnnxRuntimeReference(fixture.PreprocessBytes, ["PreprocessedInput"], freeSize: false);
        (long[] prepShape, float[] prepData) = prep.Run(Scaled255(image), [1, 3, 224, 224])["PreprocessedInput"];

        const string Pooled = "Pooling395_Output_0";
        string[] names = [.. Net.TapNames.Select(t => Net.OnnxValues[t]).Distinct(), Pooled];
        using var reference = new OnnxRuntimeReference(fixture.ModelBytes, names, freeSize: false);
        var clock = Stopwatch.StartNew();
        Dictionary<string, (long[] Shape, float[] Data)> expected = reference.Run(prepData, prepShape);
        output.WriteLine($"onnx runtime {clock.ElapsedMilliseconds} ms");

        clock.Restart();
        Dictionary<string, Tensor> feats = Net.Extract(image, Net.TapNames.ToList());
        output.WriteLine($"resnet18 (all taps) {clock.ElapsedMilliseconds} ms");
        foreach (string tap in Net.TapNames)
        {
            (long[] shape, float[] data) = expected[Net.OnnxValues[tap]];
            AssertClose(torch.tensor(data, shape), feats[tap], tap);
        }

        // The graph's own output: layer4 averaged over its 7×7 positions (AveragePool 7×7).
        (long[] pooledShape, float[] pooled) = expected[Pooled];
        Assert.Equal([1L, 512, 1, 1], pooledShape);
        AssertClose(torch.tensor(pooled, pooledShape), feats["layer4"].mean([2, 3], keepdim: true), "pooled output");
    }

    [Fact]
    public void ConvolutionalPartMatchesOnnxRuntimeAt160x96()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Tensor image = Image(96, 160, seed: 3);

        // ONNX Runtime gets our preprocessed input: the preprocessing graph has a fixed 224×224 mean image.
        Tensor pre = Net.Preprocess(image).contiguous();
        string[] taps = ["conv1", "pool1", "layer1", "layer2_0_relu1", "layer2", "layer3", "layer4_0", "layer4"];
        using var reference = new OnnxRuntimeReference(fixture.ModelBytes, [.. taps.Select(t => Net.OnnxValues[t])], freeSize: true);
        Dictionary<string, (long[] Shape, float[] Data)> expected = reference.Run(pre.data<float>().ToArray(), pre.shape);
        Dictionary<string, Tensor> feats = Net.Extract(image, taps);
        foreach (string tap in taps)
        {
            (long[] shape, float[] data) = expected[Net.OnnxValues[tap]];
            AssertClose(torch.tensor(data, shape), feats[tap], tap);
        }

        Assert.Equal([1L, 512, 3, 5], feats["layer4"].shape);
    }

    [Fact]
    public void OddSizesRunAndGradientsFlowThroughInPlaceOps()
    {
        using var scope = torch.NewDisposeScope();
        Tensor image = Image(75, 101, seed: 4).requires_grad_(true);
        string[] taps = ["conv1", "layer1_0_relu1", "layer2", "layer3_1", "layer4"];
        Dictionary<string, Tensor> feats = Net.Extract(image, taps);

        // 75×101 → stem 37×50 → pool 18×25 → stages 18×25, 9×12, 4×6, 2×3 (odd stage inputs drop a row/column).
        Assert.Equal([1L, 64, 37, 50], feats["conv1"].shape);
        Assert.Equal([1L, 128, 9, 12], feats["layer2"].shape);
        Assert.Equal([1L, 512, 2, 3], feats["layer4"].shape);
        Tensor loss = taps.Select(t => feats[t].square().mean()).Aggregate((a, b) => a + b);
        loss.backward();
        Tensor grad = image.grad!;
        Assert.True(grad.isfinite().all().item<bool>(), "gradient has NaN or infinity");
        Assert.True(grad.abs().max().item<float>() > 0, "gradient is zero");
    }

    [Theory]
    [InlineData(75, 101, FirstConvPadding.Zero)]
    [InlineData(64, 96, FirstConvPadding.Zero)]
    [InlineData(75, 101, FirstConvPadding.Replicate)]
    [InlineData(64, 96, FirstConvPadding.Replicate)]
    public void TheFoldedStemGivesTheStridedConvolutionsValuesAndGradient(int height, int width, FirstConvPadding padding)
    {
        // The stem folded 2×2 into channels (the CPU default) against libtorch's stride-2 convolution:
        // the same sums in another order, so float32 rounding apart (1e-5 of the largest magnitude).
        using var scope = torch.NewDisposeScope();
        FirstConvPadding before = Net.Padding;
        try
        {
            Net.Padding = padding;
            (Tensor Conv1, Tensor Layer1, Tensor Grad) Run(bool folded)
            {
                Net.FoldedStem = folded;
                Tensor image = Image(height, width, seed: 9).requires_grad_(true);
                Dictionary<string, Tensor> feats = Net.Extract(image, ["conv1", "layer1_1"]);
                (feats["conv1"].square().mean() + feats["layer1_1"].mean()).backward();
                return (feats["conv1"].detach(), feats["layer1_1"].detach(), image.grad!);
            }

            var strided = Run(false);
            var folded = Run(true);
            Assert.Equal(strided.Conv1.shape, folded.Conv1.shape);
            foreach ((Tensor a, Tensor b, string what) in new[] { (strided.Conv1, folded.Conv1, "conv1"), (strided.Layer1, folded.Layer1, "layer1_1"), (strided.Grad, folded.Grad, "image gradient") })
            {
                double scale = a.abs().max().ToDouble();
                double diff = (a - b).abs().max().ToDouble();
                Assert.True(scale > 0 && diff <= 1e-5 * scale, $"{what}: differs by {diff:E2} of {scale:E2}");
            }
        }
        finally
        {
            Net.FoldedStem = true;
            Net.Padding = before;
        }
    }

    [Fact]
    public void ExtractRunsOnlyAsDeepAsAskedAndRejectsUnknownTaps()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Tensor image = Image(64, 64, seed: 5);
        Dictionary<string, Tensor> feats = Net.Extract(image, ["relu1", "layer2_0"]);
        Assert.Equal(2, feats.Count);
        Assert.Equal([1L, 64, 32, 32], feats["relu1"].shape);
        var ex = Assert.Throws<StyleTransferException>(() => Net.Extract(image, ["relu4_2"]));
        Assert.Contains("unknown layer 'relu4_2' for resnet18", ex.Message);
    }

    [Fact]
    public void BadFilesGiveErrorsThatNameThem()
    {
        using var dir = new TempDir();
        string truncated = dir.File("truncated.onnx");
        File.WriteAllBytes(truncated, fixture.ModelBytes.AsSpan(0, 1 << 20).ToArray());
        var ex = Assert.Throws<StyleTransferException>(() => ResNet18.Load(truncated, fixture.PreprocessPath));
        output.WriteLine(ex.Message);
        Assert.Contains($"'{truncated}'", ex.Message);
        Assert.Contains("could not be parsed", ex.Message);

        string garbage = dir.File("garbage.onnx");
        File.WriteAllText(garbage, "this is not an ONNX model\n");
        ex = Assert.Throws<StyleTransferException>(() => ResNet18.Load(garbage, fixture.PreprocessPath));
        output.WriteLine(ex.Message);
        Assert.Contains($"'{garbage}'", ex.Message);

        // A valid ONNX file of another shape: the preprocessing graph as the network.
        ex = Assert.Throws<StyleTransferException>(() => ResNet18.Load(fixture.PreprocessPath, fixture.PreprocessPath));
        output.WriteLine(ex.Message);
        Assert.Contains($"'{fixture.PreprocessPath}' is not a ResNet of the expected layout", ex.Message);

        string missing = dir.File("missing.onnx");
        ex = Assert.Throws<StyleTransferException>(() => ResNet18.ResolvePaths(missing));
        Assert.Contains($"'{missing}' does not exist", ex.Message);
    }

    [Fact]
    public void FactoryCreatesResNet18WithBundledOrGivenWeights()
    {
        Assert.Contains("resnet18", NetworkFactory.Names);
        Assert.Equal($"weights {fixture.ModelPath}", NetworkFactory.Describe(new StyleTransferOptions { Network = "resnet18" }));
        using var dir = new TempDir();
        string copy = dir.File("resnet-copy.onnx");
        File.WriteAllBytes(copy, fixture.ModelBytes);
        var options = new StyleTransferOptions { Network = "resnet18", WeightsPath = copy };
        using IFeatureNetwork net = NetworkFactory.Create(options, torch.CPU);
        Assert.Equal("resnet18", net.Name);
        Assert.Equal(Net.TapNames, net.TapNames);
        Assert.True(NetworkFactory.EstimateWorkingBytes("resnet18", 1000) < NetworkFactory.EstimateWorkingBytes("vgg19", 1000));
    }

    /// <summary>A smooth colour pattern with some noise, [1,3,H,W] in [0,1].</summary>
    private static Tensor Image(int height, int width, long seed)
    {
        using var gen = new Generator((ulong)seed);
        Tensor y = torch.linspace(0, 1, height).reshape(1, 1, height, 1);
        Tensor x = torch.linspace(0, 1, width).reshape(1, 1, 1, width);
        Tensor r = (((x * 6) + (y * 2)).sin() * 0.3) + 0.5;
        Tensor g = (y * 0.8) + 0.1 + (x * 0);
        Tensor b = (((x - 0.5).square() + (y - 0.5).square()) * -4).exp();
        Tensor noise = torch.rand(new long[] { 1, 3, height, width }, generator: gen) * 0.2;
        return ((torch.cat([r, g, b], 1) * 0.8) + noise).clamp(0, 1).contiguous();
    }

    private static float[] Scaled255(Tensor image) => (image * ResNet18.InputRange).contiguous().data<float>().ToArray();

    private void AssertClose(Tensor expected, Tensor actual, string what)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape), $"{what}: shape [{string.Join(",", actual.shape)}] != [{string.Join(",", expected.shape)}]");
        double scale = Math.Max(expected.abs().max().item<float>(), 1e-12);
        double err = (expected - actual.detach()).abs().max().item<float>() / scale;
        output.WriteLine($"{what,-16} max |ref| {scale,10:G5}  max rel error {err:E2}");
        Assert.True(err <= Tolerance, $"{what}: max relative error {err:E2} > {Tolerance:E0}");
    }
}
