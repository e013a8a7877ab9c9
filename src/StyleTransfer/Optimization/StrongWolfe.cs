using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// Line search satisfying the strong Wolfe conditions: a port of PyTorch's
/// <c>torch.optim.lbfgs._strong_wolfe</c> and <c>_cubic_interpolate</c> (bracketing, then zoom by
/// safeguarded cubic interpolation), so results match PyTorch users' expectations.
/// </summary>
internal static class StrongWolfe
{
    /// <summary>
    /// Searches along <paramref name="d"/> from the point with loss <paramref name="f"/> and
    /// gradient <paramref name="g"/>. <paramref name="evaluate"/> gives (loss, gradient) at step t,
    /// owning nothing: the returned gradient belongs to the caller.
    /// Returns the loss and gradient at the accepted step, and the step.
    /// </summary>
    public static (double Loss, Tensor Grad, double Step) Search(
        Func<double, (double Loss, Tensor Grad)> evaluate,
        double t,
        Tensor d,
        double f,
        Tensor g,
        double gtd,
        double toleranceChange = 1e-9,
        double c1 = 1e-4,
        double c2 = 0.9,
        int maxLs = 25)
    {
        double dNorm = d.abs().max().ToDouble();
        var owned = new List<Tensor>();
        try
        {
            (double fNew, Tensor gNew) = evaluate(t);
            owned.Add(gNew);
            double gtdNew = gNew.dot(d).ToDouble();
            double tPrev = 0, fPrev = f, gtdPrev = gtd;
            Tensor gPrev = g;
            bool done = false;
            int lsIter = 0;
            double[] bracket, bracketF, bracketGtd = [];
            Tensor[] bracketG;
            while (true)
            {
                if (lsIter >= maxLs)
                {
                    bracket = [0, t];
                    bracketF = [f, fNew];
                    bracketG = [g, gNew];
                    break;
                }

                if (fNew > f + (c1 * t * gtd) || (lsIter > 1 && fNew >= fPrev))
                {
                    (bracket, bracketF, bracketG, bracketGtd) = ([tPrev, t], [fPrev, fNew], [gPrev, gNew], [gtdPrev, gtdNew]);
                    break;
                }

                if (Math.Abs(gtdNew) <= -c2 * gtd)
                {
                    (bracket, bracketF, bracketG) = ([t], [fNew], [gNew]);
                    done = true;
                    break;
                }

                if (gtdNew >= 0)
                {
                    (bracket, bracketF, bracketG, bracketGtd) = ([tPrev, t], [fPrev, fNew], [gPrev, gNew], [gtdPrev, gtdNew]);
                    break;
                }

                double minStep = t + (0.01 * (t - tPrev));
                double maxStep = t * 10;
                double tmp = t;
                t = CubicInterpolate(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, minStep, maxStep);
                tPrev = tmp;
                fPrev = fNew;
                gPrev = gNew;
                gtdPrev = gtdNew;
                (fNew, gNew) = evaluate(t);
                owned.Add(gNew);
                gtdNew = gNew.dot(d).ToDouble();
                lsIter++;
            }

            // Zoom: shrink the bracket until the strong Wolfe conditions hold.
            bool insufficientProgress = false;
            (int low, int high) = bracketF[0] <= bracketF[^1] ? (0, 1) : (1, 0);
            while (!done && lsIter < maxLs)
            {
                if (Math.Abs(bracket[1] - bracket[0]) * dNorm < toleranceChange)
                {
                    break;
                }

                double lo = Math.Min(bracket[0], bracket[1]), hi = Math.Max(bracket[0], bracket[1]);
                t = CubicInterpolate(bracket[0], bracketF[0], bracketGtd[0], bracket[1], bracketF[1], bracketGtd[1], lo, hi);
                double eps = 0.1 * (hi - lo);
                if (Math.Min(hi - t, t - lo) < eps)
                {
                    if (insufficientProgress || t >= hi || t <= lo)
                    {
                        t = Math.Abs(t - hi) < Math.Abs(t - lo) ? hi - eps : lo + eps;
                        insufficientProgress = false;
                    }
                    else
                    {
                        insufficientProgress = true;
                    }
                }
                else
                {
                    insufficientProgress = false;
                }

                (fNew, gNew) = evaluate(t);
                owned.Add(gNew);
                gtdNew = gNew.dot(d).ToDouble();
                lsIter++;
                if (fNew > f + (c1 * t * gtd) || fNew >= bracketF[low])
                {
                    (bracket[high], bracketF[high], bracketG[high], bracketGtd[high]) = (t, fNew, gNew, gtdNew);
                    (low, high) = bracketF[0] <= bracketF[1] ? (0, 1) : (1, 0);
                }
                else
                {
                    if (Math.Abs(gtdNew) <= -c2 * gtd)
                    {
                        done = true;
                    }
                    else if (gtdNew * (bracket[high] - bracket[low]) >= 0)
                    {
                        (bracket[high], bracketF[high], bracketG[high], bracketGtd[high]) = (bracket[low], bracketF[low], bracketG[low], bracketGtd[low]);
                    }

                    (bracket[low], bracketF[low], bracketG[low], bracketGtd[low]) = (t, fNew, gNew, gtdNew);
                }
            }

            // Hand back a gradient the caller owns: a clone when it is the caller's own g, kept out
            // of any dispose scope (the caller holds it across iterations).
            Tensor best = bracketG[low];
            Tensor result = ReferenceEquals(best, g) ? g.clone().DetachFromDisposeScope() : best;
            owned.RemoveAll(t2 => ReferenceEquals(t2, result));
            return (bracketF[low], result, bracket[low]);
        }
        finally
        {
            foreach (Tensor t2 in owned)
            {
                t2.Dispose();
            }
        }
    }

    /// <summary>Minimiser of the cubic through (x1,f1,g1) and (x2,f2,g2), clamped to [lo,hi]; the midpoint when it has none.</summary>
    internal static double CubicInterpolate(double x1, double f1, double g1, double x2, double f2, double g2, double lo, double hi)
    {
        double d1 = g1 + g2 - (3 * (f1 - f2) / (x1 - x2));
        double d2Square = (d1 * d1) - (g1 * g2);
        if (d2Square >= 0)
        {
            double d2 = Math.Sqrt(d2Square);
            double minPos = x1 <= x2
                ? x2 - ((x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + (2 * d2))))
                : x1 - ((x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + (2 * d2))));
            return Math.Min(Math.Max(minPos, lo), hi);
        }

        return (lo + hi) / 2;
    }
}
