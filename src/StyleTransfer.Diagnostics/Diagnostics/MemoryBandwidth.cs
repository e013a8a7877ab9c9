using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace StyleTransfer.Diagnostics;

/// <summary>A measured memory bandwidth: what a streaming element-wise pass achieves, all threads busy.</summary>
/// <param name="Threads">Threads that streamed at once.</param>
/// <param name="BufferMiB">Size of each of the two buffers, in MiB (chosen above the last-level caches).</param>
/// <param name="GBps">Bytes read plus bytes written per second, in 10⁹ bytes.</param>
internal sealed record MemoryBandwidthResult(int Threads, int BufferMiB, double GBps)
{
    /// <summary>
    /// How many times longer than streaming its bytes once an element-wise operation took:
    /// <paramref name="ms"/> against <paramref name="bytes"/> at <see cref="GBps"/>.
    /// </summary>
    public double Multiple(double ms, double bytes) => ms / (bytes / (GBps * 1e9) * 1000);

    /// <inheritdoc/>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"memory {GBps:F1} GB/s measured (read+write, {Threads} thread(s), {BufferMiB} MiB buffers)");
}

/// <summary>
/// Measures the memory bandwidth an element-wise operation can reach on this machine, the yardstick
/// for issue 19's "no element-wise op above 3× its memory-bandwidth time": each thread applies
/// <c>max(x, 0)</c> (a ReLU) from one buffer into another, its own slice of each, both buffers
/// touched beforehand so no page is faulted while timed. The buffers are larger than any last-level
/// cache of these machines, so the pass streams from and to memory. The median of five rounds.
/// </summary>
internal static class MemoryBandwidth
{
    /// <summary>Two buffers of this many MiB: above the 32–320 MB last-level caches of the AMD and Intel machines.</summary>
    public const int DefaultBufferMiB = 256;

    /// <summary>Runs the pass on <paramref name="threads"/> threads over two buffers of <paramref name="bufferMiB"/> MiB.</summary>
    public static MemoryBandwidthResult Measure(int threads, int bufferMiB = DefaultBufferMiB)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferMiB, 1);
        int length = bufferMiB * (1 << 20) / sizeof(float);
        float[] source = GC.AllocateUninitializedArray<float>(length);
        float[] target = GC.AllocateUninitializedArray<float>(length);
        for (int i = 0; i < length; i++)
        {
            source[i] = (i & 1) == 0 ? i : -i;
        }

        Array.Clear(target);
        Run(source, target, threads); // JIT, and warm the threads
        double[] rounds = [Run(source, target, threads), Run(source, target, threads), Run(source, target, threads), Run(source, target, threads), Run(source, target, threads)];
        Array.Sort(rounds);
        double seconds = rounds[2];
        return new MemoryBandwidthResult(threads, bufferMiB, 2.0 * length * sizeof(float) / seconds / 1e9);
    }

    private static double Run(float[] source, float[] target, int threads)
    {
        int slice = (source.Length + threads - 1) / threads;
        using var start = new Barrier(threads + 1);
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int from = Math.Min(source.Length, t * slice);
            int to = Math.Min(source.Length, from + slice);
            workers[t] = new Thread(() =>
            {
                start.SignalAndWait();
                Relu(source.AsSpan(from, to - from), target.AsSpan(from, to - from));
            })
            { IsBackground = true };
            workers[t].Start();
        }

        long t0 = Stopwatch.GetTimestamp();
        start.SignalAndWait();
        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    /// <summary><c>target = max(source, 0)</c>, vectorised with <see cref="Vector{T}"/> (256-bit here), enough to keep memory busy.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void Relu(ReadOnlySpan<float> source, Span<float> target)
    {
        ReadOnlySpan<Vector<float>> from = MemoryMarshal.Cast<float, Vector<float>>(source);
        Span<Vector<float>> to = MemoryMarshal.Cast<float, Vector<float>>(target);
        for (int v = 0; v < from.Length; v++)
        {
            to[v] = Vector.Max(from[v], Vector<float>.Zero);
        }

        for (int i = from.Length * Vector<float>.Count; i < source.Length; i++)
        {
            target[i] = Math.Max(source[i], 0f);
        }
    }
}
