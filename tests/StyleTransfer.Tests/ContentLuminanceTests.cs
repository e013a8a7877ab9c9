using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>--content-luminance: the content loss on grey versions of the photograph and the image (<see cref="LuminanceTaps"/>).</summary>
public sealed class ContentLuminanceTests
{
    public ContentLuminanceTests() => TorchRuntime.EnsureLoaded();

    /// <summary>A colour change at constant BT.601 luminance: (ΔR, ΔG, ΔB) with 0.299 ΔR + 0.587 ΔG + 0.114 ΔB = 0.</summary>
    private static Tensor Recoloured(Tensor image)
    {
        Tensor delta = torch.tensor(new float[] { 0.587f * 0.15f, -0.299f * 0.15f, 0f }).reshape(1, 3, 1, 1);
        return image + delta;
    }

    [Fact]
    public void LuminanceTapsAreTheLayerOnTheGreyImage()
    {
        using var scope = torch.NewDisposeScope();
        using var net = new LuminanceTaps(Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg));
        Assert.Contains("relu2_1@luma", net.TapNames);
        Tensor image = TestImages.SceneTensor(32, 24);
        Tensor y = (0.299f * image[.., 0..1]) + (0.587f * image[.., 1..2]) + (0.114f * image[.., 2..3]);
        Tensor grey = torch.cat([y, y, y], 1);
        Assert.True((LuminanceTaps.Grey(image) - grey).abs().max().ToDouble() < 1e-6);

        Dictionary<string, Tensor> both = net.Extract(image, ["relu2_1", "relu2_1@luma"]);
        Dictionary<string, Tensor> direct = net.Extract(grey, ["relu2_1"]);
        Assert.Equal(0.0, (both["relu2_1@luma"] - direct["relu2_1"]).abs().max().ToDouble(), 5);
        Assert.Equal(0.0, (both["relu2_1"] - net.Extract(image, ["relu2_1"])["relu2_1"]).abs().max().ToDouble());
        Assert.True((both["relu2_1"] - both["relu2_1@luma"]).abs().max().ToDouble() > 1e-3, "the colour image's features equal the grey image's");
    }

    [Fact]
    public void TheContentTermCannotSeeAColourChangeAtConstantLuminance()
    {
        using var scope = torch.NewDisposeScope();
        Tensor photo = TestImages.SceneTensor(64, 48) * 0.7f + 0.1f;
        Tensor recoloured = Recoloured(photo);
        foreach (bool luminance in new[] { true, false })
        {
            StyleTransferOptions options = StylizerTests.Base with { WeightsPath = TestPaths.NarrowPth, ContentLuminance = luminance, StyleWeight = 0, TvWeight = 0 };
            using IFeatureNetwork net = NetworkFactory.Create(options, torch.CPU);
            Assert.Equal(luminance, net is LuminanceTaps);
            IReadOnlyList<string> taps = Stylizer.ActiveContentLayers(options);
            Assert.Equal(options.ContentLayers.Select(l => luminance ? l + "@luma" : l), taps);
            using Targets targets = Targets.Compute(net, photo, taps, [], [], options.FeatureTransform, options.SoftmaxTemperature);
            using Objective objective = Objective.Create(net, targets, options, (48, 64));
            Tensor x = recoloured.clone().requires_grad_(true);
            double loss = objective.Evaluate(x).Total;
            if (luminance)
            {
                Assert.InRange(loss, 0, 1e-6);
            }
            else
            {
                Assert.True(loss > 1e-2, $"the colour content loss did not see the change: {loss}");
            }
        }
    }

    [Fact]
    public void ItIsOffByDefault()
    {
        // Its tiled run against the untiled one: TiledObjectiveTests.TiledRunFollowsTheUntiledRun.
        Assert.False(new StyleTransferOptions().ContentLuminance);
        Assert.False(new StyleTransferOptions { Network = "resnet18" }.ContentLuminance);
    }
}
