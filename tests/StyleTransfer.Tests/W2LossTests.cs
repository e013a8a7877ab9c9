using StyleTransfer.Losses;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>The W2 style loss: against a closed form, at its minimum, its gradient, and in an optimisation.</summary>
public sealed class W2LossTests
{
    public W2LossTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void TwoChannelDistanceMatchesTheClosedForm()
    {
        // For 2x2 SPD matrices tr sqrtm(M) = sqrt(tr M + 2 sqrt(det M)), so
        // W2² = |Δμ|² + tr C1 + tr C2 − 2 sqrt(tr(C1 C2) + 2 sqrt(det C1 det C2)): no matrix square root.
        using var scope = torch.NewDisposeScope();
        Tensor f1 = torch.randn(new long[] { 1, 2, 5, 6 }, generator: new Generator(11));
        Tensor f2 = (torch.randn(new long[] { 1, 2, 4, 4 }, generator: new Generator(12)) * 2) + 1;
        (Tensor m2, Tensor c2) = GaussianFit.Of(f2);
        using GaussianTarget target = GaussianTarget.Create(m2, c2, epsilon: 0);
        double expected = ClosedForm(Values(f1), Values(f2));
        double got = Wasserstein.Distance(f1, target).ToDouble();
        Assert.Equal(expected, got, expected * 1e-9);
        Assert.InRange(expected, 1.0, 100.0); // a real distance, not a degenerate one

        // Normalisations: ÷N (paper) and ÷(|μ_t|² + tr Σ_t) (relative).
        double energy = Mean(Values(f2)[0]) * Mean(Values(f2)[0]) + Mean(Values(f2)[1]) * Mean(Values(f2)[1]) + Cov(Values(f2), 0, 0) + Cov(Values(f2), 1, 1);
        Assert.Equal(expected / 2, Wasserstein.Layer(f1, target, StyleNormalization.Paper).ToDouble(), expected * 1e-9);
        Assert.Equal(expected / energy, Wasserstein.Layer(f1, target, StyleNormalization.Relative).ToDouble(), expected / energy * 1e-9);
    }

    [Fact]
    public void ABinaryMaskFitsOnlyTheSelectedPositions()
    {
        using var scope = torch.NewDisposeScope();
        Tensor f1 = torch.randn(new long[] { 1, 2, 4, 6 }, generator: new Generator(21));
        Tensor f2 = torch.randn(new long[] { 1, 2, 4, 4 }, generator: new Generator(22)) + 0.5;
        (Tensor m2, Tensor c2) = GaussianFit.Of(f2);
        using GaussianTarget target = GaussianTarget.Create(m2, c2, epsilon: 0);
        Tensor mask = torch.zeros(new long[] { 1, 1, 4, 6 });
        mask[.., .., .., TensorIndex.Slice(0, 2)] = torch.tensor(1f);

        double[][] all = Values(f1);
        double[][] left = [.. all.Select(ch => ch.Where((_, p) => p % 6 < 2).ToArray())];
        double expected = ClosedForm(left, Values(f2));
        Assert.Equal(expected, Wasserstein.Distance(f1, target, mask).ToDouble(), expected * 1e-9);
        Assert.NotEqual(ClosedForm(all, Values(f2)), expected, 3);
    }

    [Fact]
    public void IdenticalFeaturesAreAtDistanceZero()
    {
        using var scope = torch.NewDisposeScope();
        Tensor f = torch.rand(new long[] { 1, 16, 8, 8 }, generator: new Generator(31)) * 3;
        (Tensor m, Tensor c) = GaussianFit.Of(f);
        using GaussianTarget target = GaussianTarget.Create(m, c);
        double d = Wasserstein.Distance(f, target).ToDouble();
        Assert.True(Math.Abs(d) < 1e-10 * target.Energy, $"W2² of a map to its own fit: {d:E3} (energy {target.Energy:E3})");

        // And a shifted copy is at |shift|² per channel, summed: 16 × 0.5².
        Assert.Equal(4.0, Wasserstein.Distance(f + 0.5, target).ToDouble(), 1e-9);
    }

    [Fact]
    public void GradientIsFiniteForRepeatedAndZeroEigenvalues()
    {
        using var scope = torch.NewDisposeScope();

        // Target covariance 2·I (one eigenvalue, 8 times); the generated map has two identical
        // channels, so its covariance is singular. ε keeps the square roots' gradients finite.
        Tensor f = torch.rand(new long[] { 1, 8, 6, 6 }, generator: new Generator(41));
        f[0, 1] = f[0, 0];
        f.requires_grad_(true);
        using GaussianTarget target = GaussianTarget.Create(torch.zeros(8, dtype: ScalarType.Float64) + 0.5, torch.eye(8, dtype: ScalarType.Float64) * 2);
        Tensor d = Wasserstein.Layer(f, target, StyleNormalization.Relative);
        d.backward();
        Tensor g = f.grad!;
        Assert.True(torch.isfinite(g).all().item<bool>(), "non-finite gradient");
        double norm = g.norm().ToDouble();
        Assert.InRange(norm, 1e-6, 1e6);

        // The gradient is the loss's: a small step against it lowers the loss by about |g|² × step.
        using (torch.no_grad())
        {
            double before = d.ToDouble();
            double step = 1e-3 / (norm * norm);
            double after = Wasserstein.Layer(f - (g * step), target, StyleNormalization.Relative).ToDouble();
            Assert.Equal(1e-3, before - after, 1e-4);
        }
    }

    [Fact]
    public void TenLbfgsIterationsCutTheW2StyleLossSixfold()
    {
        using StylizeResult r = StylizerTests.Run(new StyleTransferOptions { Size = 64, Iterations = 10, Seed = 7, Threads = 2, StyleLoss = StyleLossKind.W2 }.Validate());
        double first = r.History[0].Style, last = r.History[^1].Style;
        Assert.True(last < first / 6, $"W2 style loss {first:E3} -> {last:E3}");
        Assert.True(r.History[^1].Content < r.History[0].Content);
    }

    [Fact]
    public void BlendedGaussianIsTheFitOfThePooledFeatures()
    {
        // Blending with weights proportional to the positions is the fit of both maps' positions together.
        TorchRuntime.SetThreads(2);
        using var scope = torch.NewDisposeScope();
        using Vgg19 net = Vgg19.Load(TestPaths.NarrowPth, PoolingMode.Avg);
        Tensor a = TestImages.StripesTensor(32, 32), b = TestImages.SceneTensor(48, 32);
        using Targets t = Targets.Compute(net, null, [], [a, b], ["relu2_1"]);
        using GaussianTarget blended = t.BlendGaussian("relu2_1", [(0, 0.4), (1, 0.6)], epsilon: 0);
        Tensor fa = net.Extract(a, ["relu2_1"])["relu2_1"], fb = net.Extract(b, ["relu2_1"])["relu2_1"];
        Assert.Equal(0.4, fa.shape[2] * fa.shape[3] / (double)((fa.shape[2] * fa.shape[3]) + (fb.shape[2] * fb.shape[3])), 12);
        Tensor pooled = torch.cat([fa.reshape(1, fa.shape[1], 1, -1), fb.reshape(1, fb.shape[1], 1, -1)], 3);
        (Tensor mean, Tensor cov) = GaussianFit.Of(pooled);
        Assert.True((blended.Mean - mean).abs().max().ToDouble() < 1e-5 * mean.abs().max().ToDouble());
        Assert.True((blended.Covariance - cov).abs().max().ToDouble() < 1e-5 * cov.abs().max().ToDouble());
    }

    private static double[][] Values(Tensor f)
    {
        using Tensor flat = f.reshape(f.shape[1], -1).to(ScalarType.Float64).contiguous();
        double[] v = flat.data<double>().ToArray();
        int m = (int)flat.shape[1];
        return [.. Enumerable.Range(0, (int)flat.shape[0]).Select(c => v[(c * m)..((c + 1) * m)])];
    }

    private static double Mean(double[] x) => x.Average();

    private static double Cov(double[][] f, int i, int j)
    {
        double mi = Mean(f[i]), mj = Mean(f[j]);
        return f[i].Zip(f[j], (a, b) => (a - mi) * (b - mj)).Sum() / f[i].Length;
    }

    private static double ClosedForm(double[][] x, double[][] y)
    {
        double dm = Math.Pow(Mean(x[0]) - Mean(y[0]), 2) + Math.Pow(Mean(x[1]) - Mean(y[1]), 2);
        double a = Cov(x, 0, 0), b = Cov(x, 0, 1), d = Cov(x, 1, 1);
        double p = Cov(y, 0, 0), q = Cov(y, 0, 1), s = Cov(y, 1, 1);
        double trProduct = (a * p) + (2 * b * q) + (d * s);
        double dets = ((a * d) - (b * b)) * ((p * s) - (q * q));
        return dm + a + d + p + s - (2 * Math.Sqrt(trProduct + (2 * Math.Sqrt(dets))));
    }
}
