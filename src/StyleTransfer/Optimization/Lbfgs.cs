using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// L-BFGS over one tensor of parameters (the image), one iteration per <see cref="Step"/>, the same
/// algorithm as PyTorch's <c>torch.optim.LBFGS</c> (two-loop recursion, first step scaled by
/// min(1, 1/‖g‖₁), optional strong-Wolfe line search ported from PyTorch's <c>_strong_wolfe</c>).
/// Written here rather than using TorchSharp's native wrapper because that one has no line search,
/// cannot report per-iteration state, and prints a libtorch deprecation warning on every run.
/// Each step costs one evaluation without line search; the gradient at the new point is reused.
/// </summary>
internal sealed class Lbfgs : IDisposable
{
    private readonly Tensor x;
    private readonly double lr;
    private readonly int historySize;
    private readonly bool strongWolfe;
    private readonly double toleranceGrad;
    private readonly double toleranceChange;
    private readonly int expectedPairs;

    /// <summary>The stored pairs, oldest first; Y and S are rows of <see cref="ySlab"/> and <see cref="sSlab"/>.</summary>
    private readonly List<(Tensor Y, Tensor S, double Rho, int Row)> history = [];

    /// <summary>
    /// The pairs' storage, allocated (zero-filled, so resident) once when the first pair is stored:
    /// the memory the history will ever take is taken at the start, and each later pair is copied
    /// into a free or the oldest row instead of allocating two new vectors. With a growing list the
    /// process grew by the history's size (160 MB at 256 px, 2.5 GB at 1024 px) over the first
    /// hundred iterations, and the allocator's heap churned with every pair.
    /// </summary>
    private Tensor? ySlab;
    private Tensor? sSlab;
    private Tensor? direction;
    private Tensor? prevGrad;
    private double t;
    private double hDiag = 1;
    private int iteration;

    /// <summary>Loss and gradient at the current point, if already known (from the last line search).</summary>
    private (double Loss, Tensor Grad, int Ordinal)? current;

    /// <param name="parameters">A leaf tensor with requires_grad; updated in place.</param>
    /// <param name="lr">Initial step scale (torch.optim.LBFGS's lr).</param>
    /// <param name="historySize">Pairs kept.</param>
    /// <param name="strongWolfe">Strong-Wolfe line search instead of fixed steps.</param>
    /// <param name="toleranceGrad">Stop when the largest gradient entry is at most this.</param>
    /// <param name="toleranceChange">Stop when a step or loss change is at most this.</param>
    /// <param name="expectedIterations">
    /// How many steps the caller means to take, if known: each step stores at most one pair, so the
    /// history's storage is sized to the smaller of this and <paramref name="historySize"/> (it
    /// grows if more pairs come after all).
    /// </param>
    public Lbfgs(Tensor parameters, double lr = 1, int historySize = 100, bool strongWolfe = false, double toleranceGrad = 1e-7, double toleranceChange = 1e-9, int? expectedIterations = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(historySize, 1);
        x = parameters;
        this.lr = lr;
        this.historySize = historySize;
        expectedPairs = Math.Clamp(expectedIterations ?? historySize, 1, historySize);
        this.strongWolfe = strongWolfe;
        this.toleranceGrad = toleranceGrad;
        this.toleranceChange = toleranceChange;
        DeviceResidentTwoLoop = parameters.device.type != DeviceType.CPU;
    }

    /// <summary>
    /// Keeps the two-loop recursion's scalars in 0-dim tensors on the parameters' device instead of
    /// reading each back to the host: two fewer host round trips per stored pair (200 per iteration
    /// with the default memory), which on a GPU cost more than the arithmetic. Float32 scalars, as in
    /// PyTorch; on by default off the CPU. On the CPU the double-precision form is kept.
    /// </summary>
    internal bool DeviceResidentTwoLoop { get; init; }

    /// <summary>Objective evaluations so far (line-search trials included).</summary>
    public int Evaluations { get; private set; }

    /// <summary>Line searches that found no decrease.</summary>
    public int Stalls { get; private set; }

    /// <summary>
    /// True once even a search along −g from a fresh start found no decrease: the loss is flat to
    /// float32 precision. Further steps return the loss without evaluating.
    /// </summary>
    public bool Converged { get; private set; }

    /// <summary>Which evaluation (1-based, counting every closure call) gave the point the last step started from.</summary>
    public int StartEvaluation { get; private set; }

    /// <summary>
    /// One L-BFGS iteration. <paramref name="closure"/> must compute the loss at the current
    /// parameters, fill their <c>.grad</c> (backward) and return the loss. Returns the loss at the
    /// point the iteration started from.
    /// </summary>
    public double Step(Func<double> closure)
    {
        using var noGrad = torch.no_grad();
        if (Converged && current is { } last)
        {
            StartEvaluation = last.Ordinal;
            return last.Loss;
        }

        (double loss, Tensor g, int ordinal) = current ?? Evaluate(closure);
        current = null;
        StartEvaluation = ordinal;
        try
        {
            if (g.abs().max().ToDouble() <= toleranceGrad || !double.IsFinite(loss))
            {
                return loss;
            }

            iteration++;
            Tensor d;
            if (iteration == 1)
            {
                d = g.neg();
                hDiag = 1;
            }
            else
            {
                using (var scope = torch.NewDisposeScope())
                {
                    Tensor y = g - prevGrad!;
                    Tensor s = direction! * t;
                    double ys = y.dot(s).ToDouble();
                    if (ys > 1e-10)
                    {
                        hDiag = ys / y.dot(y).ToDouble();
                        StorePair(y, s, 1.0 / ys);
                    }
                }

                d = TwoLoop(g);
            }

            Replace(ref direction, d);
            Replace(ref prevGrad, g.clone());
            t = iteration == 1 ? Math.Min(1.0, 1.0 / g.abs().sum().ToDouble()) * lr : lr;
            double gtd = g.dot(direction!).ToDouble();
            if (gtd > -toleranceChange)
            {
                return loss;
            }

            if (strongWolfe)
            {
                using Tensor xInit = x.detach().clone();
                (double fNew, Tensor gNew, double tNew, int o) = Search(closure, xInit, t, loss, g, gtd, ordinal);
                if (!(fNew < loss))
                {
                    // No decrease found. Either the step was below the loss's float32 noise
                    // (PyTorch's first step, min(1, 1/‖g‖₁), can be, on large images whose loss
                    // sums millions of terms), or the curvature pairs point badly. Forget the
                    // pairs and search once more along −g from a step that moves the largest
                    // pixel by 0.05.
                    gNew.Dispose();
                    Stalls++;
                    ClearHistory();
                    Replace(ref direction, g.neg());
                    gtd = -g.dot(g).ToDouble();
                    double tRetry = 0.05 / g.abs().max().ToDouble();
                    (fNew, gNew, tNew, o) = Search(closure, xInit, tRetry, loss, g, gtd, ordinal);
                    if (!(fNew < loss))
                    {
                        // Flat to float32 precision even along the gradient: every further search
                        // would repeat this one, so stop evaluating (PyTorch stops here too).
                        gNew.Dispose();
                        Converged = true;
                        x.copy_(xInit);
                        current = (loss, g.clone().DetachFromDisposeScope(), ordinal);
                        return loss;
                    }
                }

                t = tNew;
                x.copy_(xInit).add_(direction!.view_as(x), alpha: t);
                current = (fNew, gNew, o);
            }
            else
            {
                x.add_(direction!.view_as(x), alpha: t);
            }

            return loss;
        }
        finally
        {
            g.Dispose();
        }
    }

    /// <summary>
    /// Everything the next <see cref="Step"/> depends on, copied to the CPU: the curvature pairs
    /// (PyTorch's old_dirs = y, old_stps = s, ro), H_diag, the previous direction d and step t, the
    /// previous flat gradient, the iteration count and, after a line search, the loss and gradient
    /// already known at the current point. <see cref="ImportState"/> on a new optimiser over the
    /// same parameters continues exactly where this one stands.
    /// </summary>
    public LbfgsState ExportState()
    {
        static Tensor Cpu(Tensor t) => t.detach().to(torch.CPU).clone().DetachFromDisposeScope();
        return new LbfgsState
        {
            Ys = [.. history.Select(h => Cpu(h.Y))],
            Ss = [.. history.Select(h => Cpu(h.S))],
            Rhos = [.. history.Select(h => h.Rho)],
            HDiag = hDiag,
            Direction = direction is null ? null : Cpu(direction),
            PrevGrad = prevGrad is null ? null : Cpu(prevGrad),
            T = t,
            Iteration = iteration,
            Evaluations = Evaluations,
            Stalls = Stalls,
            Converged = Converged,
            StartEvaluation = StartEvaluation,
            CurrentLoss = current?.Loss,
            CurrentGrad = current is { } c ? Cpu(c.Grad) : null,
            CurrentOrdinal = current?.Ordinal,
        };
    }

    /// <summary>Restores a state from <see cref="ExportState"/> (tensors are copied to the parameters' device); keeps the newest pairs when the history is shorter here.</summary>
    public void ImportState(LbfgsState state)
    {
        long n = x.numel();
        foreach (Tensor? t in state.Ys.Concat(state.Ss).Append(state.Direction).Append(state.PrevGrad).Append(state.CurrentGrad))
        {
            if (t is not null && t.numel() != n)
            {
                throw new StyleTransferException($"the L-BFGS state holds vectors of {t.numel()} values, the image has {n}");
            }
        }

        Tensor Dev(Tensor t) => t.to(x.device).reshape(-1).clone().DetachFromDisposeScope();
        ClearHistory();
        int skip = Math.Max(0, state.Ys.Count - historySize);
        for (int i = skip; i < state.Ys.Count; i++)
        {
            using Tensor y = state.Ys[i].reshape(-1), s = state.Ss[i].reshape(-1);
            StorePair(y, s, state.Rhos[i]);
        }

        hDiag = state.HDiag;
        direction?.Dispose();
        direction = state.Direction is null ? null : Dev(state.Direction);
        prevGrad?.Dispose();
        prevGrad = state.PrevGrad is null ? null : Dev(state.PrevGrad);
        t = state.T;
        iteration = state.Iteration;
        Evaluations = state.Evaluations;
        Stalls = state.Stalls;
        Converged = state.Converged;
        StartEvaluation = state.StartEvaluation;
        current?.Grad.Dispose();
        current = state.CurrentGrad is { } g && state.CurrentLoss is { } loss && state.CurrentOrdinal is { } o ? (loss, Dev(g), o) : null;
    }

    public void Dispose()
    {
        ClearHistory();
        ySlab?.Dispose();
        sSlab?.Dispose();
        direction?.Dispose();
        prevGrad?.Dispose();
        current?.Grad.Dispose();
    }

    /// <summary>Swaps a long-lived tensor, keeping the new one out of any dispose scope of the caller.</summary>
    private static void Replace(ref Tensor? field, Tensor value)
    {
        field?.Dispose();
        field = value.DetachFromDisposeScope();
    }

    private (double Loss, Tensor Grad, double Step, int Ordinal) Search(Func<double> closure, Tensor xInit, double t0, double loss, Tensor g, double gtd, int ordinal)
    {
        var ordinals = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        (double fNew, Tensor gNew, double tNew) = StrongWolfe.Search(
            (step) =>
            {
                (double f, Tensor gr, int o) = DirectionalEvaluate(closure, xInit, step, direction!);
                ordinals[gr] = o;
                return (f, gr);
            },
            t0,
            direction!,
            loss,
            g,
            gtd,
            toleranceChange);
        return (fNew, gNew, tNew, ordinals.GetValueOrDefault(gNew, ordinal));
    }

    /// <summary>Copies a pair into the history's storage, over the oldest pair once the history is full.</summary>
    private void StorePair(Tensor y, Tensor s, double rho)
    {
        int row;
        if (history.Count == historySize)
        {
            row = history[0].Row;
            history[0].Y.Dispose();
            history[0].S.Dispose();
            history.RemoveAt(0);
        }
        else
        {
            // Until the history is full the pairs sit in rows 0 … Count−1: it only ever loses
            // pairs all at once (ClearHistory), or its oldest when full, whose row is reused above.
            EnsureRows(history.Count + 1);
            row = history.Count;
        }

        Tensor yRow = ySlab![row];
        Tensor sRow = sSlab![row];
        yRow.copy_(y); // copy_ moves across devices itself (a checkpoint's pairs are on the CPU)
        sRow.copy_(s);
        history.Add((yRow.DetachFromDisposeScope(), sRow.DetachFromDisposeScope(), rho, row));
    }

    /// <summary>Makes the storage hold at least <paramref name="rows"/> pairs (at first <see cref="expectedPairs"/>), keeping the stored ones.</summary>
    private void EnsureRows(int rows)
    {
        long have = ySlab?.shape[0] ?? 0;
        if (rows <= have)
        {
            return;
        }

        long size = Math.Min(historySize, Math.Max(Math.Max(rows, expectedPairs), 2 * have));
        long n = x.numel();
        Tensor ys = torch.zeros(new[] { size, n }, dtype: x.dtype, device: x.device).DetachFromDisposeScope();
        Tensor ss = torch.zeros(new[] { size, n }, dtype: x.dtype, device: x.device).DetachFromDisposeScope();
        if (ySlab is not null)
        {
            ys.narrow(0, 0, have).copy_(ySlab);
            ss.narrow(0, 0, have).copy_(sSlab!);
            ySlab.Dispose();
            sSlab!.Dispose();
        }

        ySlab = ys;
        sSlab = ss;
        for (int i = 0; i < history.Count; i++)
        {
            (Tensor oldY, Tensor oldS, double rho, int row) = history[i];
            oldY.Dispose();
            oldS.Dispose();
            history[i] = (ySlab[row].DetachFromDisposeScope(), sSlab[row].DetachFromDisposeScope(), rho, row);
        }
    }

    private void ClearHistory()
    {
        foreach ((Tensor y, Tensor s, _, _) in history)
        {
            y.Dispose();
            s.Dispose();
        }

        history.Clear();
        hDiag = 1;
    }

    /// <summary>The two-loop recursion: an approximation of −H⁻¹g from the stored pairs.</summary>
    private Tensor TwoLoop(Tensor g)
    {
        if (DeviceResidentTwoLoop)
        {
            return TwoLoopOnDevice(g);
        }

        using var scope = torch.NewDisposeScope();
        var al = new double[history.Count];
        Tensor q = g.neg();
        for (int i = history.Count - 1; i >= 0; i--)
        {
            al[i] = history[i].S.dot(q).ToDouble() * history[i].Rho;
            q.add_(history[i].Y, alpha: -al[i]);
        }

        Tensor r = q.mul_(hDiag);
        for (int i = 0; i < history.Count; i++)
        {
            double be = history[i].Y.dot(r).ToDouble() * history[i].Rho;
            r.add_(history[i].S, alpha: al[i] - be);
        }

        return r.MoveToOuterDisposeScope();
    }

    /// <summary><see cref="TwoLoop"/> without host synchronisation (see <see cref="DeviceResidentTwoLoop"/>).</summary>
    private Tensor TwoLoopOnDevice(Tensor g)
    {
        using var scope = torch.NewDisposeScope();
        var al = new Tensor[history.Count];
        Tensor q = g.neg();
        for (int i = history.Count - 1; i >= 0; i--)
        {
            al[i] = history[i].S.dot(q).mul_(history[i].Rho);
            q.addcmul_(history[i].Y, al[i], value: -1);
        }

        Tensor r = q.mul_(hDiag);
        for (int i = 0; i < history.Count; i++)
        {
            Tensor be = history[i].Y.dot(r).mul_(history[i].Rho);
            r.addcmul_(history[i].S, al[i] - be, value: 1);
        }

        return r.MoveToOuterDisposeScope();
    }

    private (double Loss, Tensor Grad, int Ordinal) Evaluate(Func<double> closure)
    {
        Evaluations++;
        double loss;
        using (torch.enable_grad())
        {
            loss = closure();
        }

        Tensor grad = x.grad is { } gr ? gr.detach().reshape(-1).clone() : torch.zeros(x.numel(), device: x.device);
        return (loss, grad.DetachFromDisposeScope(), Evaluations);
    }

    private (double Loss, Tensor Grad, int Ordinal) DirectionalEvaluate(Func<double> closure, Tensor from, double step, Tensor d)
    {
        x.copy_(from).add_(d.view_as(x), alpha: step);
        return Evaluate(closure);
    }
}

/// <summary>A snapshot of an <see cref="Lbfgs"/> optimiser's state, on the CPU (see <see cref="Lbfgs.ExportState"/>).</summary>
internal sealed class LbfgsState : IDisposable
{
    /// <summary>Gradient changes y_k (PyTorch's old_dirs), oldest first, flat.</summary>
    public IReadOnlyList<Tensor> Ys { get; init; } = [];

    /// <summary>Steps s_k (PyTorch's old_stps), oldest first, flat.</summary>
    public IReadOnlyList<Tensor> Ss { get; init; } = [];

    /// <summary>ρ_k = 1 / (y_k · s_k) (PyTorch's ro).</summary>
    public IReadOnlyList<double> Rhos { get; init; } = [];

    public double HDiag { get; init; } = 1;

    /// <summary>The last search direction d, flat; null before the first step.</summary>
    public Tensor? Direction { get; init; }

    /// <summary>The gradient the last step started from (PyTorch's prev_flat_grad).</summary>
    public Tensor? PrevGrad { get; init; }

    /// <summary>The last step length t.</summary>
    public double T { get; init; }

    public int Iteration { get; init; }

    public int Evaluations { get; init; }

    public int Stalls { get; init; }

    public bool Converged { get; init; }

    public int StartEvaluation { get; init; }

    /// <summary>After a line search: the loss at the current point, already evaluated.</summary>
    public double? CurrentLoss { get; init; }

    /// <summary>After a line search: the gradient at the current point, flat.</summary>
    public Tensor? CurrentGrad { get; init; }

    public int? CurrentOrdinal { get; init; }

    public void Dispose()
    {
        foreach (Tensor? t in Ys.Concat(Ss).Append(Direction).Append(PrevGrad).Append(CurrentGrad))
        {
            t?.Dispose();
        }
    }
}
