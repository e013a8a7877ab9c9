using StyleTransfer.Losses;
using StyleTransfer.Networks;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>
/// Numeric parity with PyTorch 1.13 (Fixtures/make_reference.py): a VGG-19 of torchvision's layout
/// with widths divided by 16, fixed weights and inputs. Stated tolerance: 1e-4 relative to the
/// largest magnitude of each reference tensor (float32 against float32; the script measured its
/// own float32-vs-float64 error at under 1e-6).
/// </summary>
public sealed class ParityTests : IDisposable
{
    private const double Tolerance = 1e-4;
    private static readonly string[] StyleTaps = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];
    private readonly Dictionary<string, Tensor> reference;

    public ParityTests()
    {
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
        reference = Safetensors.LoadStateDict(TestPaths.Reference);
    }

    public void Dispose()
    {
        foreach (Tensor t in reference.Values)
        {
            t.Dispose();
        }
    }

    [Theory]
    [InlineData("pth", PoolingMode.Avg)]
    [InlineData("pth", PoolingMode.Max)]
    [InlineData("safetensors", PoolingMode.Avg)]
    public void EveryTapMatchesPyTorch(string format, PoolingMode pooling)
    {
        using Vgg19 net = Vgg19.Load(format == "pth" ? TestPaths.NarrowPth : TestPaths.NarrowSafetensors, pooling);
        Assert.Equal(37, net.TapNames.Count);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Dictionary<string, Tensor> feats = net.Extract(reference["x"], net.TapNames.ToList());
        string prefix = pooling == PoolingMode.Avg ? "avg" : "max";
        foreach (string tap in net.TapNames)
        {
            AssertClose(reference[$"{prefix}.features.{tap}"], feats[tap], tap);
        }
    }

    [Fact]
    public void GramsAndLossesAndGradientMatchPyTorch()
    {
        using Vgg19 net = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        using var scope = torch.NewDisposeScope();
        Dictionary<string, Tensor> contentFeats, styleFeats;
        using (torch.no_grad())
        {
            contentFeats = net.Extract(reference["content"], ["relu4_2"]);
            styleFeats = net.Extract(reference["style"], StyleTaps);
        }

        Tensor x = reference["x"].clone().requires_grad_(true);
        Dictionary<string, Tensor> feats = net.Extract(x, [.. StyleTaps, "relu4_2"]);
        foreach (string tap in StyleTaps)
        {
            AssertClose(reference[$"gram.{tap}"], Gram.Compute(feats[tap]), $"gram.{tap}");
        }

        Tensor lc = ContentLoss.Compute(feats["relu4_2"], contentFeats["relu4_2"]);
        AssertClose(reference["loss.content"], lc.reshape(1), "loss.content");
        Tensor ls = torch.zeros(1);
        foreach (string tap in StyleTaps)
        {
            Tensor el = StyleLoss.Layer(feats[tap], Gram.Compute(styleFeats[tap]), styleFeats[tap].shape[2] * styleFeats[tap].shape[3]);
            AssertClose(reference[$"loss.style.{tap}"], el.reshape(1), $"loss.style.{tap}");
            ls = ls + (el * 0.2);
        }

        AssertClose(reference["loss.style"], ls, "loss.style");
        double alpha = reference["meta.alpha"].item<float>(), beta = reference["meta.beta"].item<float>();
        Tensor total = (lc * alpha) + (ls * beta);
        AssertClose(reference["loss.total"], total.reshape(1), "loss.total");
        total.backward();
        AssertClose(reference["grad.x"], x.grad!, "grad.x");
    }

    [Fact]
    public void TotalVariationMatchesPyTorch()
    {
        using var scope = torch.NewDisposeScope();
        AssertClose(reference["loss.tv"], TotalVariation.Compute(reference["tv.x"]).reshape(1), "loss.tv");
    }

    [Fact]
    public void PthAndSafetensorsLoadTheSameWeightsAndWidthsAreInferred()
    {
        using Vgg19 a = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        using Vgg19 b = Vgg19.Load(TestPaths.NarrowSafetensors, PoolingMode.Avg);
        Assert.Equal([4L, 4, 8, 8, 16, 16, 16, 16, 32, 32, 32, 32, 32, 32, 32, 32], a.Widths);
        Assert.Equal(a.Widths, b.Widths);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Tensor fa = a.Extract(reference["x"], ["relu5_4"])["relu5_4"];
        Tensor fb = b.Extract(reference["x"], ["relu5_4"])["relu5_4"];
        Assert.Equal(0.0, (fa - fb).abs().max().item<float>());
    }

    internal static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape), $"{what}: shape [{string.Join(",", actual.shape)}] != [{string.Join(",", expected.shape)}]");
        double err = TensorCompare.MaxRelativeError(expected, actual);
        Assert.True(err <= Tolerance, $"{what}: max relative error {err:E2} > {Tolerance:E0}");
    }
}
