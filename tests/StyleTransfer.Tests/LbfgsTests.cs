using System.Text.Json;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>
/// The C# L-BFGS against PyTorch 1.13's torch.optim.LBFGS (Fixtures/make_lbfgs_reference.py):
/// 40 iterations on a 48-variable Rosenbrock function in float64, plain steps and strong Wolfe,
/// with a history of 100 pairs (never full) and of 5 (full after 6 steps, then wrapping around
/// its storage). Tolerance: 1e-6 relative per loss, 1e-6 absolute on the final point.
/// </summary>
public sealed class LbfgsTests
{
    [Theory]
    [InlineData("plain", false, false, 100, null)]
    [InlineData("strong_wolfe", true, false, 100, null)]
    [InlineData("plain", false, true, 100, null)]
    [InlineData("strong_wolfe", true, true, 100, null)]
    [InlineData("plain", false, false, 100, 40)]
    [InlineData("plain_h5", false, false, 5, null)]
    [InlineData("strong_wolfe_h5", true, false, 5, null)]
    [InlineData("plain_h5", false, true, 5, null)]

    // Storage sized for one pair at first: it must grow (1, 2, 4, 5 rows) keeping the pairs in order.
    [InlineData("plain_h5", false, false, 5, 1)]
    [InlineData("strong_wolfe_h5", true, false, 5, 1)]
    public void TrajectoryMatchesPyTorch(string mode, bool strongWolfe, bool deviceResident, int historySize, int? expectedIterations)
    {
        TorchRuntime.EnsureLoaded();
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("lbfgs_reference.json")));
        double[] start = doc.RootElement.GetProperty("start").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        double[] expectedLosses = doc.RootElement.GetProperty(mode).GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        double[] expectedFinal = doc.RootElement.GetProperty(mode).GetProperty("final").EnumerateArray().Select(e => e.GetDouble()).ToArray();

        using var scope = torch.NewDisposeScope();
        Tensor x = torch.tensor(start, new long[] { 1, 3, 4, 4 }, dtype: ScalarType.Float64).requires_grad_(true);
        using var lbfgs = new Lbfgs(x, lr: 1, historySize: historySize, strongWolfe: strongWolfe, expectedIterations: expectedIterations) { DeviceResidentTwoLoop = deviceResident };
        double Closure()
        {
            using var s = torch.NewDisposeScope();
            x.grad?.zero_();
            Tensor v = x.reshape(-1);
            Tensor a = v.narrow(0, 1, v.shape[0] - 1), b = v.narrow(0, 0, v.shape[0] - 1);
            Tensor loss = ((a - b.square()).square() * 100.0 + (1.0 - b).square()).sum();
            loss.backward();
            return loss.ToDouble();
        }

        for (int i = 0; i < expectedLosses.Length; i++)
        {
            double loss = lbfgs.Step(Closure);
            Assert.True(
                Math.Abs(loss - expectedLosses[i]) <= 1e-6 * Math.Abs(expectedLosses[i]),
                $"{mode} step {i}: loss {loss:R} vs PyTorch {expectedLosses[i]:R}");
        }

        double[] final = x.detach().reshape(-1).data<double>().ToArray();
        for (int i = 0; i < final.Length; i++)
        {
            Assert.True(Math.Abs(final[i] - expectedFinal[i]) <= 1e-6, $"{mode} final[{i}] {final[i]:R} vs {expectedFinal[i]:R}");
        }

        if (strongWolfe)
        {
            Assert.True(lbfgs.Evaluations > expectedLosses.Length, "a line search evaluates more than once per step at least sometimes");
        }
        else
        {
            Assert.Equal(expectedLosses.Length, lbfgs.Evaluations);
        }
    }

    [Fact]
    public void ALineSearchThatFindsNothingBetterHandsBackAGradientThatOutlivesTheCallersScope()
    {
        // Every trial is worse than the start, so the search settles on step 0 and must return a
        // copy of the start gradient. That copy once belonged to the caller's dispose scope and
        // was freed with it, crashing the next L-BFGS iteration ("Tensor invalid -- empty handle").
        TorchRuntime.EnsureLoaded();
        Tensor result;
        double step;
        using (torch.NewDisposeScope())
        {
            Tensor g = torch.tensor(new float[] { -1, -1 });
            Tensor d = torch.tensor(new float[] { 1, 1 });
            (double loss, result, step) = StrongWolfe.Search(t => (10 + t, torch.tensor(new float[] { 1, 1 }).DetachFromDisposeScope()), 1.0, d, 10, g, -2);
            Assert.Equal(10, loss);
        }

        Assert.Equal(0, step);
        Assert.Equal(new float[] { -1, -1 }, result.data<float>().ToArray());
        result.Dispose();
    }

    [Fact]
    public void ALossWithANoiseFloorDoesNotStallTheLineSearch()
    {
        // Σx² over 100,000 variables from x = 3, seen through a loss rounded to hundreds (as a
        // float32 sum of millions of terms blurs small changes). PyTorch's first step, 1/‖g‖₁,
        // lowers the loss by about 6: invisible, so every strong-Wolfe trial "fails" and the
        // optimiser stood still for good. It must now retry from a larger step and make progress.
        TorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        Tensor x = torch.full(new long[] { 1, 1, 100, 1000 }, 3.0f).requires_grad_(true);
        using var lbfgs = new Lbfgs(x, lr: 1, historySize: 10, strongWolfe: true);
        double Closure()
        {
            using var s = torch.NewDisposeScope();
            x.grad?.zero_();
            Tensor loss = x.square().sum();
            loss.backward();
            return Math.Round(loss.ToDouble() / 100) * 100;
        }

        double first = lbfgs.Step(Closure);
        for (int i = 0; i < 4; i++)
        {
            lbfgs.Step(Closure);
        }

        double last = x.detach().square().sum().ToDouble();
        Assert.Equal(900_000, first);
        Assert.True(last < first / 2, $"loss {first} -> {last}: the line search stalled");
        Assert.True(lbfgs.Stalls >= 1);

        // Down at the rounding floor a search finds nothing: the optimiser stops evaluating and
        // leaves the pixels where they are instead of repeating the same failed search.
        for (int i = 0; i < 60 && !lbfgs.Converged; i++)
        {
            lbfgs.Step(Closure);
        }

        Assert.True(lbfgs.Converged);
        int evaluations = lbfgs.Evaluations;
        Tensor before = x.detach().clone();
        double reported = lbfgs.Step(Closure);
        Assert.Equal(evaluations, lbfgs.Evaluations);
        Assert.Equal(0.0, (x.detach() - before).abs().max().ToDouble());
        Assert.True(reported < 100, $"converged at {reported}");
    }

    [Fact]
    public void CubicInterpolationFindsTheMinimumOfACubic()
    {
        // f(t) = (t - 1)^2 (t + 2) has a local minimum at t = 1 and f'(t) = 3t^2 - 3.
        static double F(double t) => (t - 1) * (t - 1) * (t + 2);
        static double G(double t) => (3 * t * t) - 3;
        Assert.Equal(1.0, StrongWolfe.CubicInterpolate(0, F(0), G(0), 2, F(2), G(2), 0, 2), 12);

        // No real minimiser (d2² < 0): the midpoint of the bounds.
        Assert.Equal(0.75, StrongWolfe.CubicInterpolate(0, 0, 3, 1, 2, 3, 0.5, 1.0), 12);
    }
}
