using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>The paper's normalisation: each filter's mean activation becomes 1, and the function is unchanged up to per-channel scale.</summary>
public sealed class NormalizationTests
{
    public NormalizationTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void MeanActivationOfEveryFilterBecomesOneAndTapsOnlyChangeScale()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using Vgg19 original = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        using Vgg19 normalized = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        Tensor images = WeightNormalization.CalibrationImages(torch.CPU, count: 4, size: 64);
        List<float[]> factors = WeightNormalization.Compute(normalized, images);
        Assert.Equal(16, factors.Count);

        string[] relus = [.. normalized.TapNames.Where(t => t.StartsWith("relu", StringComparison.Ordinal))];
        Dictionary<string, Tensor> after = normalized.Extract(images, relus);
        Dictionary<string, Tensor> before = original.Extract(images, relus);
        for (int i = 0; i < relus.Length; i++)
        {
            Tensor means = after[relus[i]].mean([0L, 2L, 3L]);
            Tensor fired = before[relus[i]].mean([0L, 2L, 3L]) > 1e-12;
            double worst = (means.masked_select(fired) - 1).abs().max().ToDouble();
            Assert.True(worst < 1e-3, $"{relus[i]}: mean activation off by {worst:E2}");

            // Same function: the original tap equals the normalised one times the factor, channel by channel.
            Tensor rescaled = after[relus[i]] * torch.tensor(factors[i]).reshape(1, -1, 1, 1);
            double err = TensorCompare.MaxRelativeError(before[relus[i]], rescaled);
            Assert.True(err < 1e-4, $"{relus[i]}: relative error {err:E2}");
        }
    }

    [Fact]
    public void FactorsAreCachedByWeightsHashAndReused()
    {
        using var dir = new TempDir();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using Vgg19 a = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        IReadOnlyList<float[]> first = WeightNormalization.Apply(a, TestPaths.NarrowPth, dir.Path);
        string cache = Assert.Single(Directory.GetFiles(dir.Path));
        Assert.Matches(@"vgg19-[0-9a-f]{16}-avg-v1\.json$", cache);

        using Vgg19 b = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        IReadOnlyList<float[]> second = WeightNormalization.Apply(b, TestPaths.NarrowPth, dir.Path);
        Assert.Equal(first.Select(f => f.ToArray()), second.Select(f => f.ToArray()));
        Tensor x = WeightNormalization.CalibrationImages(torch.CPU, count: 1, size: 32);
        Tensor fa = a.Extract(x, ["relu5_1"])["relu5_1"], fb = b.Extract(x, ["relu5_1"])["relu5_1"];
        Assert.True((fa - fb).abs().max().ToDouble() < 1e-5);
    }
}
