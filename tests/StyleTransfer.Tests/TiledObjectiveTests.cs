using StyleTransfer.Losses;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>
/// Tiled evaluation (<see cref="TiledObjective"/>) against the untiled loss and pixel gradient:
/// equal to 1e-4 relative where the halo covers the receptive field (forced small tiles, so the
/// image has interior borders in both directions), and measurably different where it does not.
/// </summary>
public sealed class TiledObjectiveTests
{
    private readonly ITestOutputHelper output;

    public TiledObjectiveTests(ITestOutputHelper output)
    {
        this.output = output;
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
    }

    [Fact]
    public void ResNet18DefaultRecipeTiledEqualsUntiled()
    {
        // The default recipe: softmax features, relative style terms, anti-aliased input,
        // size-invariant content and TV, chroma TV, the style image at another size.
        StyleTransferOptions options = NetworkFactory.DefaultOptions("resnet18") with { Size = 352, Threads = 2 };
        using IFeatureNetwork network = NetworkFactory.Create(options, torch.CPU);
        (int align, int halo) = TileGeometry.For("resnet18", options.ContentLayers.Union(options.StyleLayers), antiAlias: true);
        Assert.Equal((16, 128), (align, halo));

        using Tensor content = TestImages.SceneTensor(352, 288);
        using Tensor style = TestImages.StripesTensor(400, 320);
        using Tensor start = MakeStart(content);
        var (untiledLoss, untiledGrad, targets) = Untiled(network, options, content, style, start);
        using (targets)
        using (untiledGrad)
        {
            // Targets computed in tiles equal the untiled ones.
            using (Targets tiledTargets = TiledObjective.ComputeTargets(network, options, 160, halo, content, options.ContentLayers, [style], options.StyleLayers))
            {
                AssertClose(targets.Content["layer2_1"], tiledTargets.Content["layer2_1"], 1e-4, "content target");
                foreach (string layer in options.StyleLayers)
                {
                    AssertClose(targets.Styles[0][layer].Gram, tiledTargets.Styles[0][layer].Gram, 1e-4, $"style Gram {layer}");
                }
            }

            (double loss, Tensor grad, int tiles) = Tiled(network, options, targets, start, 160, halo);
            using (grad)
            {
                Assert.Equal(6, tiles);
                output.WriteLine($"resnet18 halo {halo}: loss {untiledLoss:E6} vs {loss:E6}, gradient {RelativeDifference(untiledGrad, grad):E2}");
                Assert.Equal(untiledLoss, loss, untiledLoss * 1e-4);
                AssertClose(untiledGrad, grad, 1e-4, "pixel gradient");
            }

            // A halo well below the receptive radius (105 px at layer3_1) is measurably off.
            (double shortLoss, Tensor shortGrad, _) = Tiled(network, options, targets, start, 160, 32);
            using (shortGrad)
            {
                double gradDiff = RelativeDifference(untiledGrad, shortGrad);
                output.WriteLine($"resnet18 halo 32: loss {shortLoss:E6} ({Math.Abs(shortLoss - untiledLoss) / untiledLoss:E2} relative), gradient {gradDiff:E2}");
                Assert.InRange(gradDiff, 1e-3, 1.0);
            }
        }
    }

    [Fact]
    public void Vgg19PaperRecipeTiledEqualsUntiled()
    {
        StyleTransferOptions options = NetworkFactory.DefaultOptions("vgg19") with { Size = 224, WeightsPath = TestPaths.NarrowPth, Threads = 2, TvWeight = 1 };
        using IFeatureNetwork network = NetworkFactory.Create(options, torch.CPU);
        (int align, int halo) = TileGeometry.For("vgg19", options.ContentLayers.Union(options.StyleLayers), antiAlias: false);
        Assert.Equal((16, 80), (align, halo));
        using Tensor content = TestImages.SceneTensor(224, 200);
        using Tensor style = TestImages.StripesTensor(224, 200);
        using Tensor start = MakeStart(content);
        var (untiledLoss, untiledGrad, targets) = Untiled(network, options, content, style, start);
        using (targets)
        using (untiledGrad)
        {
            (double loss, Tensor grad, int tiles) = Tiled(network, options, targets, start, 64, halo);
            using (grad)
            {
                Assert.True(tiles >= 9, $"{tiles} tiles");
                output.WriteLine($"vgg19 halo {halo}: loss {untiledLoss:E6} vs {loss:E6}, gradient {RelativeDifference(untiledGrad, grad):E2}");
                Assert.Equal(untiledLoss, loss, untiledLoss * 1e-4);
                AssertClose(untiledGrad, grad, 1e-4, "pixel gradient");
            }
        }
    }

    [Fact]
    public void SmallerHalosTradeGradientErrorForSpeed()
    {
        // The gradient error of halos below the receptive radius (docs/high-resolution.md's table).
        StyleTransferOptions options = NetworkFactory.DefaultOptions("resnet18") with { Size = 352, Threads = 2 };
        using IFeatureNetwork network = NetworkFactory.Create(options, torch.CPU);
        using Tensor content = TestImages.SceneTensor(352, 288);
        using Tensor style = TestImages.StripesTensor(400, 320);
        using Tensor start = MakeStart(content);
        var (untiledLoss, untiledGrad, targets) = Untiled(network, options, content, style, start);
        using (targets)
        using (untiledGrad)
        {
            var errors = new List<double>();
            foreach (int halo in new[] { 0, 16, 32, 48, 64, 80, 96, 112, 128 })
            {
                (double loss, Tensor grad, _) = Tiled(network, options, targets, start, 160, halo);
                using (grad)
                using (Tensor diff = (untiledGrad - grad).abs())
                using (Tensor rms = diff.square().mean().sqrt())
                using (Tensor scale = untiledGrad.square().mean().sqrt())
                {
                    errors.Add(RelativeDifference(untiledGrad, grad));
                    output.WriteLine($"halo {halo,3}: loss {Math.Abs(loss - untiledLoss) / untiledLoss:E2} relative, gradient max {errors[^1]:E2} of the largest, rms {rms.ToDouble() / scale.ToDouble():E2} of the rms");
                }
            }

            Assert.True(errors[^1] <= 1e-4, $"halo 128: {errors[^1]:E2}");
            Assert.True(errors[0] > errors[4] && errors[4] > errors[^1], string.Join(", ", errors.Select(e => e.ToString("E2", System.Globalization.CultureInfo.InvariantCulture))));
        }
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(128, false)] // Stylizer keeps the style anchor on a tiled scale
    [InlineData(0, true)] // --content-luminance: the content taps on the grey image, tile by tile
    public void TiledRunFollowsTheUntiledRun(int styleAnchor, bool contentLuminance)
    {
        // The pipeline (tiled targets, L-BFGS, size-invariant weights) with forced tiles: two
        // iterations without a line search, where float rounding cannot change the path. From the
        // content image itself: the default's half-noise start has gradients large enough that the
        // tiled and untiled sums' rounding moves pixels by up to 3e-3 in two steps (same loss to 1e-7).
        // Every style layer: the 224 px stripes are a small style image to the default's
        // SmallStyleMode.Native, whose layer choice comes before tiling (SmallStyleTests).
        StyleTransferOptions options = NetworkFactory.DefaultOptions("resnet18") with { Size = 224, Iterations = 2, Scales = 1, LineSearch = false, Seed = 1, Threads = 2, StyleAnchor = styleAnchor, Init = InitMode.Content, InitNoise = 0, ContentLuminance = contentLuminance, SmallStyle = SmallStyleMode.Enlarge };
        using IFeatureNetwork network = NetworkFactory.Create(options, torch.CPU);
        using Tensor content = TestImages.SceneTensor(224, 192);
        using Tensor style = TestImages.StripesTensor(224, 192);
        using StylizeResult whole = Stylizer.Run(content, style, network, options with { Tile = 0 });
        using StylizeResult tiled = Stylizer.Run(content, style, network, options with { Tile = 64 });
        double diff = (whole.Image - tiled.Image).abs().max().ToDouble();
        output.WriteLine($"anchor {styleAnchor}, content luminance {contentLuminance}: max pixel difference after 2 iterations {diff:E2}; final loss {whole.History[^1].Total:E6} vs {tiled.History[^1].Total:E6}");
        Assert.InRange(diff, 0, 1e-4);
        Assert.Equal(whole.History[^1].Total, tiled.History[^1].Total, whole.History[^1].Total * 1e-4);
    }

    [Fact]
    public void StyleAnchorTiledEqualsUntiled()
    {
        // The style anchor (its taps on the whole image scaled down inside the graph) beside the
        // tiles: the anchored terms are taken untiled, their gradient flows back to the full image.
        StyleTransferOptions plain = NetworkFactory.DefaultOptions("resnet18") with { Size = 352, Threads = 2, StyleAnchor = 160 };
        using IFeatureNetwork network = NetworkFactory.Create(plain, torch.CPU);
        (IFeatureNetwork stageNetwork, StyleTransferOptions options) = Stylizer.Anchor(network, plain, 352);
        using var anchored = Assert.IsType<AnchoredTaps>(stageNetwork);
        Assert.Equal(2 * plain.StyleLayers.Count, options.StyleLayers.Count);
        using Tensor content = TestImages.SceneTensor(352, 288);
        using Tensor style = TestImages.StripesTensor(400, 320);
        using Tensor start = MakeStart(content);
        var (untiledLoss, untiledGrad, targets) = Untiled(stageNetwork, options, content, style, start);
        using (targets)
        using (untiledGrad)
        {
            using (Targets tiledTargets = TiledObjective.ComputeTargets(stageNetwork, options, 160, 128, content, options.ContentLayers, [style], options.StyleLayers))
            {
                foreach (string layer in options.StyleLayers)
                {
                    AssertClose(targets.Styles[0][layer].Gram, tiledTargets.Styles[0][layer].Gram, 1e-4, $"style Gram {layer}");
                }
            }

            (double loss, Tensor grad, int tiles) = Tiled(stageNetwork, options, targets, start, 160, 128);
            using (grad)
            {
                Assert.Equal(6, tiles);
                output.WriteLine($"anchored, halo 128: loss {untiledLoss:E6} vs {loss:E6}, gradient {RelativeDifference(untiledGrad, grad):E2}");
                Assert.Equal(untiledLoss, loss, untiledLoss * 1e-4);
                AssertClose(untiledGrad, grad, 1e-4, "pixel gradient");
            }

            // The anchor is not a rounding error: without its terms the gradient is another one.
            (double plainLoss, Tensor plainGrad, int _) = Tiled(network, plain, targets, start, 160, 128);
            using (plainGrad)
            {
                double d = RelativeDifference(untiledGrad, plainGrad);
                output.WriteLine($"without the anchor: loss {plainLoss:E6}, gradient {d:E2} away");
                Assert.InRange(d, 1e-2, 10);
            }
        }
    }

    [Fact]
    public void TilesCoverTheImageOnAlignedBorders()
    {
        List<Tile> tiles = TileGeometry.Plan(1000, 700, 256, 32, 128);
        Assert.Equal(4 * 3, tiles.Count);
        Assert.All(tiles, t => Assert.True(t.Y0 % 32 == 0 && t.X0 % 32 == 0 && t.CropY0 % 32 == 0 && t.CropX0 % 32 == 0));
        Assert.Equal(1000L * 700, tiles.Sum(t => (long)(t.Y1 - t.Y0) * (t.X1 - t.X0)));
        Assert.Equal([0, 256, 512, 736], tiles.Where(t => t.Col == 0).Select(t => t.Y0));
        Assert.Equal((105, 16), (TileGeometry.Taps("resnet18")!["layer3_1"].Radius, TileGeometry.Taps("resnet18")!["layer3_1"].Stride));
        Assert.Equal((70, 16), (TileGeometry.Taps("vgg19")!["relu5_1"].Radius, TileGeometry.Taps("vgg19")!["relu5_1"].Stride));
        Assert.Equal("tiled evaluation does not support --style-loss w2 (its Gaussian fits are not accumulated over tiles yet)", TiledObjective.Unsupported(NetworkFactory.DefaultOptions("resnet18") with { StyleLoss = StyleLossKind.W2 }, false));
        Assert.Equal("tiled evaluation supports resnet18 and vgg19, not alexnet", TiledObjective.Unsupported(NetworkFactory.DefaultOptions("alexnet"), false));
    }

    private static Tensor MakeStart(Tensor content)
    {
        using var gen = new Generator(7);
        using Tensor noise = torch.rand(content.shape, generator: gen);
        return (content * 0.7) + (noise * 0.3);
    }

    /// <summary>The untiled closure of <see cref="Stylizer"/>: loss and pixel gradient at <paramref name="start"/>.</summary>
    private static (double Loss, Tensor Grad, Targets Targets) Untiled(IFeatureNetwork network, StyleTransferOptions options, Tensor content, Tensor style, Tensor start)
    {
        Targets targets = Targets.Compute(network, content, options.ContentLayers, [style], options.StyleLayers, options.FeatureTransform, options.SoftmaxTemperature);
        using var scope = torch.NewDisposeScope();
        var size = ((int)start.shape[2], (int)start.shape[3]);
        using StyleTerms terms = StyleTerms.Build(targets, [.. options.StyleLayers], options, size, null, torch.CPU);
        using Parameter x = new(start.clone(), requires_grad: true);
        string[] taps = [.. options.ContentLayers.Union(options.StyleLayers)];
        Dictionary<string, Tensor> feats = network.Extract(x, taps);
        foreach (string tap in taps)
        {
            feats[tap] = FeatureTransform.Apply(feats[tap], options.FeatureTransform, options.SoftmaxTemperature);
        }

        double pixelScale = options.PixelLossScale(size.Item1, size.Item2);
        Tensor lc = torch.zeros(1);
        foreach (string layer in options.ContentLayers)
        {
            lc = lc + ContentLoss.Compute(feats[layer], targets.Content[layer]);
        }

        Tensor loss = (lc * (options.ContentWeight * pixelScale)) + (terms.Loss(feats, torch.CPU) * options.StyleWeight)
            + (TotalVariation.Compute(x) * (options.TvWeight * pixelScale)) + (TotalVariation.ComputeChroma(x) * (options.TvChromaWeight * pixelScale));
        loss.backward();
        return (loss.to(ScalarType.Float64).ToDouble(), x.grad!.clone().MoveToOuterDisposeScope(), targets);
    }

    private static (double Loss, Tensor Grad, int Tiles) Tiled(IFeatureNetwork network, StyleTransferOptions options, Targets targets, Tensor start, int tile, int halo)
    {
        using var objective = new TiledObjective(network, options, targets, ((int)start.shape[2], (int)start.shape[3]), tile, halo);
        using Parameter x = new(start.clone(), requires_grad: true);
        (double total, _, _, _) = objective.Evaluate(x);
        return (total, x.grad!.clone(), objective.Tiles.Count);
    }

    private static double RelativeDifference(Tensor expected, Tensor actual)
    {
        using Tensor diff = (expected - actual).abs().max();
        using Tensor scale = expected.abs().max();
        return diff.ToDouble() / scale.ToDouble();
    }

    private static void AssertClose(Tensor expected, Tensor actual, double tolerance, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double d = RelativeDifference(expected, actual);
        Assert.True(d <= tolerance, $"{what}: max difference {d:E2} of the largest magnitude, above {tolerance:E0}");
    }
}
