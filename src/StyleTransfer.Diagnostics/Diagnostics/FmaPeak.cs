using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace StyleTransfer.Diagnostics;

/// <summary>A measured fp32 arithmetic peak: what this CPU's FMA units deliver, all threads busy.</summary>
/// <param name="Threads">Threads that ran the kernel at once.</param>
/// <param name="VectorBits">FMA width used: 512 (AVX-512), 256 (AVX2+FMA) or 0 when neither is available.</param>
/// <param name="Gflops">fp32 GFLOP/s of all threads together (one FMA = 2 FLOPs).</param>
/// <param name="SingleThreadGflops">The same with one thread, which may run at a higher (turbo) clock.</param>
internal sealed record FmaPeakResult(int Threads, int VectorBits, double Gflops, double SingleThreadGflops)
{
    /// <inheritdoc/>
    public override string ToString() => VectorBits == 0
        ? "no AVX2/AVX-512 FMA: peak not measured"
        : string.Create(CultureInfo.InvariantCulture, $"{Gflops:F0} GFLOP/s measured ({VectorBits}-bit FMA, {Threads} thread(s); one thread {SingleThreadGflops:F0})");
}

/// <summary>
/// Measures the fp32 peak instead of assuming one: each thread runs 16 independent chains of
/// vector FMAs (enough to cover the FMA latency on two units) on registers only, no memory traffic,
/// for a fixed time. This is the ceiling no convolution can pass, at the clock the CPU really holds
/// under wide vector load (which is often below the base clock /proc/cpuinfo reports, or above it
/// with turbo).
/// </summary>
internal static class FmaPeak
{
    private const int InnerIterations = 1 << 16;

    /// <summary>
    /// Runs the kernel on <paramref name="threads"/> threads, then on one, each in five rounds of
    /// <paramref name="seconds"/>/5, and keeps each one's median round. The median, not the best:
    /// short rounds catch turbo bursts (measured here: up to 169 GFLOP/s per core in 0.2 s rounds,
    /// 138–144 sustained over 3.6 s), and a convolution runs for seconds; a single round would take
    /// whatever a JIT thread or a neighbour on the host left it.
    /// </summary>
    public static FmaPeakResult Measure(int threads, double seconds = 2.0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        int bits = Avx512F.IsSupported ? 512 : Fma.IsSupported && Avx2.IsSupported ? 256 : 0;
        if (bits == 0)
        {
            return new FmaPeakResult(threads, 0, double.NaN, double.NaN);
        }

        Run(1, bits, 0.05); // JIT and wake the vector units
        double all = MedianOfFive(() => Run(threads, bits, seconds / 5));
        double one = threads == 1 ? all : MedianOfFive(() => Run(1, bits, seconds / 5));
        return new FmaPeakResult(threads, bits, all, one);
    }

    private static double MedianOfFive(Func<double> round)
    {
        double[] rounds = [round(), round(), round(), round(), round()];
        Array.Sort(rounds);
        return rounds[2];
    }

    private static double Run(int threads, int bits, double seconds)
    {
        long[] rounds = new long[threads];
        using var start = new Barrier(threads + 1);
        long deadline = 0;
        var workers = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            int index = i;
            workers[i] = new Thread(() =>
            {
                start.SignalAndWait();
                long n = 0;
                float sink = 0;
                while (Stopwatch.GetTimestamp() < Volatile.Read(ref deadline))
                {
                    sink += bits == 512 ? Kernel512(InnerIterations) : Kernel256(InnerIterations);
                    n++;
                }

                rounds[index] = n;
                GC.KeepAlive(sink);
            })
            { IsBackground = true };
            workers[i].Start();
        }

        long t0 = Stopwatch.GetTimestamp();
        Volatile.Write(ref deadline, t0 + (long)(seconds * Stopwatch.Frequency));
        start.SignalAndWait();
        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        double elapsed = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        double flopsPerRound = (double)InnerIterations * 16 * (bits / 32) * 2;
        return rounds.Sum() * flopsPerRound / elapsed / 1e9;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Kernel512(int n)
    {
        Vector512<float> m = Vector512.Create(0.9999f), c = Vector512.Create(1e-6f);
        Vector512<float> a0 = Vector512.Create(0f), a1 = Vector512.Create(1f), a2 = Vector512.Create(2f), a3 = Vector512.Create(3f);
        Vector512<float> a4 = Vector512.Create(4f), a5 = Vector512.Create(5f), a6 = Vector512.Create(6f), a7 = Vector512.Create(7f);
        Vector512<float> a8 = Vector512.Create(8f), a9 = Vector512.Create(9f), a10 = Vector512.Create(10f), a11 = Vector512.Create(11f);
        Vector512<float> a12 = Vector512.Create(12f), a13 = Vector512.Create(13f), a14 = Vector512.Create(14f), a15 = Vector512.Create(15f);
        for (int i = 0; i < n; i++)
        {
            a0 = Avx512F.FusedMultiplyAdd(a0, m, c);
            a1 = Avx512F.FusedMultiplyAdd(a1, m, c);
            a2 = Avx512F.FusedMultiplyAdd(a2, m, c);
            a3 = Avx512F.FusedMultiplyAdd(a3, m, c);
            a4 = Avx512F.FusedMultiplyAdd(a4, m, c);
            a5 = Avx512F.FusedMultiplyAdd(a5, m, c);
            a6 = Avx512F.FusedMultiplyAdd(a6, m, c);
            a7 = Avx512F.FusedMultiplyAdd(a7, m, c);
            a8 = Avx512F.FusedMultiplyAdd(a8, m, c);
            a9 = Avx512F.FusedMultiplyAdd(a9, m, c);
            a10 = Avx512F.FusedMultiplyAdd(a10, m, c);
            a11 = Avx512F.FusedMultiplyAdd(a11, m, c);
            a12 = Avx512F.FusedMultiplyAdd(a12, m, c);
            a13 = Avx512F.FusedMultiplyAdd(a13, m, c);
            a14 = Avx512F.FusedMultiplyAdd(a14, m, c);
            a15 = Avx512F.FusedMultiplyAdd(a15, m, c);
        }

        Vector512<float> sum = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15;
        return Vector512.Sum(sum);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Kernel256(int n)
    {
        Vector256<float> m = Vector256.Create(0.9999f), c = Vector256.Create(1e-6f);
        Vector256<float> a0 = Vector256.Create(0f), a1 = Vector256.Create(1f), a2 = Vector256.Create(2f), a3 = Vector256.Create(3f);
        Vector256<float> a4 = Vector256.Create(4f), a5 = Vector256.Create(5f), a6 = Vector256.Create(6f), a7 = Vector256.Create(7f);
        Vector256<float> a8 = Vector256.Create(8f), a9 = Vector256.Create(9f), a10 = Vector256.Create(10f), a11 = Vector256.Create(11f);
        Vector256<float> a12 = Vector256.Create(12f), a13 = Vector256.Create(13f), a14 = Vector256.Create(14f), a15 = Vector256.Create(15f);
        for (int i = 0; i < n; i++)
        {
            a0 = Fma.MultiplyAdd(a0, m, c);
            a1 = Fma.MultiplyAdd(a1, m, c);
            a2 = Fma.MultiplyAdd(a2, m, c);
            a3 = Fma.MultiplyAdd(a3, m, c);
            a4 = Fma.MultiplyAdd(a4, m, c);
            a5 = Fma.MultiplyAdd(a5, m, c);
            a6 = Fma.MultiplyAdd(a6, m, c);
            a7 = Fma.MultiplyAdd(a7, m, c);
            a8 = Fma.MultiplyAdd(a8, m, c);
            a9 = Fma.MultiplyAdd(a9, m, c);
            a10 = Fma.MultiplyAdd(a10, m, c);
            a11 = Fma.MultiplyAdd(a11, m, c);
            a12 = Fma.MultiplyAdd(a12, m, c);
            a13 = Fma.MultiplyAdd(a13, m, c);
            a14 = Fma.MultiplyAdd(a14, m, c);
            a15 = Fma.MultiplyAdd(a15, m, c);
        }

        Vector256<float> sum = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15;
        return Vector256.Sum(sum);
    }
}
