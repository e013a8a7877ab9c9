using System.Diagnostics;
using System.Globalization;
using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Diagnostics;

/// <summary>One VGG-19 convolution timed alone, at the shape it has in a style-transfer iteration.</summary>
/// <param name="Layer">conv1_1 … conv5_1.</param>
/// <param name="InChannels">Input channels.</param>
/// <param name="OutChannels">Output channels.</param>
/// <param name="Height">Height of the feature map.</param>
/// <param name="Width">Width of the feature map.</param>
/// <param name="Gflop">Forward multiply-adds × 2 (the input-gradient backward costs the same).</param>
/// <param name="ForwardMs">Median forward time.</param>
/// <param name="BackwardMs">Median input-gradient time (the backward pass alone).</param>
/// <param name="BackwardAsForwardMs">The same gradient computed as a forward convolution of the output gradient with the flipped, transposed weights.</param>
/// <param name="ReluMs">The ReLU after the convolution: forward (in place, as the network runs it) plus backward.</param>
/// <param name="PoolMs">The 2×2 average pooling before the convolution, forward plus backward; 0 where there is none.</param>
/// <param name="ElementBytes">Bytes per value in the profiled precision (4 for fp32, 2 for bf16).</param>
/// <param name="Memory">The measured memory bandwidth the ReLU and pooling are held against; null leaves the multiples out.</param>
internal sealed record ConvProfileRow(string Layer, long InChannels, long OutChannels, long Height, long Width, double Gflop, double ForwardMs, double BackwardMs, double BackwardAsForwardMs, double ReluMs, double PoolMs, int ElementBytes = 4, MemoryBandwidthResult? Memory = null)
{
    /// <summary>
    /// Bytes the ReLU must move at the least: in place forward (read and write the N values) and its
    /// backward (read the output gradient and the output, write the input gradient), 5N values.
    /// </summary>
    public double ReluBytes => 5.0 * OutChannels * Height * Width * ElementBytes;

    /// <summary>
    /// Bytes the 2×2 pooling must move at the least, with M output values: forward reads 4M and writes
    /// M, backward reads M and writes 4M, 10M values; 0 where there is no pooling.
    /// </summary>
    public double PoolBytes => PoolMs > 0 ? 10.0 * InChannels * Height * Width * ElementBytes : 0;

    /// <summary>The ReLU's time over its bytes' time at the measured bandwidth (issue 19's target: at most 3); NaN without a measurement.</summary>
    public double ReluMemoryMultiple => Memory?.Multiple(ReluMs, ReluBytes) ?? double.NaN;

    /// <summary>The same for the pooling; 0 where there is none.</summary>
    public double PoolMemoryMultiple => PoolMs > 0 ? Memory?.Multiple(PoolMs, PoolBytes) ?? double.NaN : 0;

    /// <summary>Forward GFLOP/s.</summary>
    public double ForwardGflops => Gflop / (ForwardMs / 1000);

    /// <summary>Backward GFLOP/s.</summary>
    public double BackwardGflops => Gflop / (BackwardMs / 1000);

    /// <inheritdoc/>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"profile {Layer} {InChannels}->{OutChannels} {Height}x{Width} gflop={Gflop:F2} fwd_ms={ForwardMs:F1} fwd_gflops={ForwardGflops:F0} bwd_ms={BackwardMs:F1} bwd_gflops={BackwardGflops:F0} bwd_as_fwd_ms={BackwardAsForwardMs:F1} relu_ms={ReluMs:F1} pool_ms={PoolMs:F1}{(Memory is null ? "" : $" relu_x_mem={ReluMemoryMultiple:F1} pool_x_mem={PoolMemoryMultiple:F1}")}");
}

/// <summary>
/// A per-layer profile of VGG-19's convolutions, which TorchSharp has no profiler for: each
/// convolution up to conv5_1 (the paper's deepest tap) runs alone on random data of the shape it
/// sees at the given image size, in the given precision and layout, forward and input-gradient
/// backward, each the median of several runs; so do the ReLU after it and the pooling before it.
/// Comparing their sum with a full iteration's time (<see cref="Benchmark"/>) says how much of an
/// iteration is convolution and how far each layer is from the arithmetic peak; given a measured
/// memory bandwidth, how far the ReLU and pooling are from streaming their bytes once.
/// </summary>
internal static class ConvProfile
{
    /// <summary>The paper's deepest tap: the profile stops there.</summary>
    private const string Deepest = "conv5_1";

    /// <summary>Profiles every layer at <paramref name="size"/> px; <paramref name="repeats"/> timed runs each after one warm-up.</summary>
    public static IReadOnlyList<ConvProfileRow> Run(int size, Precision precision, bool channelsLast, int repeats = 5, MemoryBandwidthResult? memory = null)
    {
        TorchRuntime.EnsureLoaded();
        ScalarType dtype = MixedPrecisionNetwork.TypeOf(precision);
        var rows = new List<ConvProfileRow>();
        long h = size, w = size;
        using var gen = new Generator(5);
        foreach ((string name, long cin, long cout, bool poolBefore) in Vgg19.ConvLayers())
        {
            if (poolBefore)
            {
                h /= 2;
                w /= 2;
            }

            using var scope = torch.NewDisposeScope();
            Tensor weight = torch.randn(new[] { cout, cin, 3, 3 }, generator: gen).mul_(Math.Sqrt(2.0 / (cin * 9))).to(dtype);
            Tensor bias = torch.zeros(cout, dtype: dtype);
            Tensor x = Layout(torch.randn(new[] { 1, cin, h, w }, generator: gen).to(dtype), channelsLast).requires_grad_();
            Tensor gy = Layout(torch.randn(new[] { 1, cout, h, w }, generator: gen).to(dtype), channelsLast);
            Tensor flipped = weight.flip(2, 3).transpose(0, 1).contiguous();

            double fwd = Median(repeats, () =>
            {
                using var noGrad = torch.no_grad();
                F.conv2d(x, weight, bias, padding: [1, 1]).Dispose();
            });
            double bwd = Median(repeats, () =>
            {
                using var inner = torch.NewDisposeScope();
                Tensor y = F.conv2d(x, weight, bias, padding: [1, 1]);
                long t0 = Stopwatch.GetTimestamp();
                torch.autograd.grad([y], [x], [gy]);
                return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            });
            double asForward = Median(repeats, () =>
            {
                using var noGrad = torch.no_grad();
                F.conv2d(gy, flipped, padding: [1, 1]).Dispose();
            });
            Tensor activation = Layout(torch.randn(new[] { 1, cout, h, w }, generator: gen).to(dtype), channelsLast);
            double relu = Median(repeats, () =>
            {
                // In place on a non-leaf, as the network runs it on the convolution's output; the
                // copy that makes the non-leaf is not timed, and its backward passes the gradient on.
                using var inner = torch.NewDisposeScope();
                Tensor leaf = activation.detach().requires_grad_();
                Tensor a = leaf.clone();
                long t0 = Stopwatch.GetTimestamp();
                torch.autograd.grad([F.relu(a, inplace: true)], [leaf], [gy]);
                return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            });
            double pool = 0;
            if (poolBefore)
            {
                Tensor before = Layout(torch.randn(new[] { 1, cin, 2 * h, 2 * w }, generator: gen).to(dtype), channelsLast).requires_grad_();
                Tensor gPool = Layout(torch.randn(new[] { 1, cin, h, w }, generator: gen).to(dtype), channelsLast);
                pool = Median(repeats, () =>
                {
                    using var inner = torch.NewDisposeScope();
                    torch.autograd.grad([F.avg_pool2d(before, kernel_size: 2, stride: 2)], [before], [gPool]);
                });
            }

            double gflop = 2.0 * cout * cin * 9 * h * w / 1e9;
            rows.Add(new ConvProfileRow(name, cin, cout, h, w, gflop, fwd, bwd, asForward, relu, pool, (int)activation.element_size(), memory));
            if (name == Deepest)
            {
                break;
            }
        }

        return rows;
    }

    /// <summary>
    /// One summary line: convolution time (forward + backward) and its GFLOP/s against
    /// <paramref name="peakGflops"/>, and the ReLU and pooling times, summed over the layers; with a
    /// measured bandwidth, the largest multiple of its memory time any of them took.
    /// </summary>
    public static string Total(IReadOnlyList<ConvProfileRow> rows, int size, double peakGflops, bool channelsLast, Precision precision)
    {
        double convMs = rows.Sum(r => r.ForwardMs + r.BackwardMs);
        double gflops = rows.Sum(r => 2 * r.Gflop) / (convMs / 1000);
        return string.Create(
            CultureInfo.InvariantCulture,
            $"profile total {size} conv_ms={convMs:F1} conv_gflops={gflops:F0} peak_frac={gflops / peakGflops:F2} relu_ms={rows.Sum(r => r.ReluMs):F1} pool_ms={rows.Sum(r => r.PoolMs):F1}{(rows.Any(r => r.Memory is not null) ? $" elementwise_x_mem_max={rows.Max(r => Math.Max(r.ReluMemoryMultiple, r.PoolMemoryMultiple)):F1}" : "")} channels_last={(channelsLast ? 1 : 0)} precision={precision.ToString().ToLowerInvariant()}");
    }

    private static Tensor Layout(Tensor t, bool channelsLast) => channelsLast ? TensorLayout.ToChannelsLast(t) : t;

    private static double Median(int repeats, Action action) => Median(repeats, () =>
    {
        long t0 = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    });

    /// <summary>The median of <paramref name="repeats"/> runs after one warm-up; each run reports the milliseconds it timed.</summary>
    private static double Median(int repeats, Func<double> timedRun)
    {
        timedRun();
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            times[i] = timedRun();
        }

        Array.Sort(times);
        return times[repeats / 2];
    }
}
