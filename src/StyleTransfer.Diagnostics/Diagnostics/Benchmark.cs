using System.Diagnostics;
using System.Globalization;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Diagnostics;

/// <summary>One measured case: median time per optimiser iteration and what it achieves.</summary>
/// <param name="Network">The network timed.</param>
/// <param name="Size">Side of the square image, in pixels.</param>
/// <param name="Iterations">Timed iterations (after one warm-up).</param>
/// <param name="MedianMs">Median time of one iteration.</param>
/// <param name="MinMs">Fastest iteration.</param>
/// <param name="Gflop">Convolution work of one iteration (forward and input-gradient backward), in GFLOP.</param>
/// <param name="Gflops">That work over the median time.</param>
/// <param name="PeakFraction">Gflops over the machine's fp32 peak.</param>
/// <param name="PeakGflops">The peak compared against.</param>
/// <param name="Device">Where it ran.</param>
/// <param name="Precision">The network's arithmetic.</param>
/// <param name="RssMb">Peak resident memory of the process at the end.</param>
/// <param name="RssAt50Mb">Peak resident memory after timed iteration 50 (runs of 50 or more), to check that memory stays flat.</param>
/// <param name="RssAt150Mb">The same after iteration 150 (runs of 150 or more).</param>
/// <param name="RssAt500Mb">The same after iteration 500 (runs of 500 or more): issue 6's "flat" compares it with <paramref name="RssAt50Mb"/>.</param>
internal sealed record BenchResult(string Network, int Size, int Iterations, double MedianMs, double MinMs, double Gflop, double Gflops, double PeakFraction, double PeakGflops, long RssMb, string Device = "cpu", Precision Precision = Precision.Fp32, long? RssAt50Mb = null, long? RssAt150Mb = null, long? RssAt500Mb = null)
{
    /// <summary>With --tiles: the memory plan at this size, " tile=768+128 history=10" or " tile=off history=100".</summary>
    public string? Tiling { get; init; }

    /// <summary>On a GPU: the device memory in use after the run (libtorch's caching allocator keeps its peak reserved), in MB; null elsewhere.</summary>
    public long? GpuMb { get; init; }

    /// <summary>One machine-readable line: <c>bench vgg19 512 ms=… gflops=… peak_frac=… rss_mb=…</c>.</summary>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"bench {Network} {Size} ms={MedianMs:F1} min_ms={MinMs:F1} gflop_per_iter={Gflop:F1} gflops={Gflops:F1} peak_frac={PeakFraction:F2} peak_gflops={PeakGflops:F0} rss_mb={RssMb}{(RssAt50Mb is { } r50 ? $" rss50_mb={r50}" : "")}{(RssAt150Mb is { } r150 ? $" rss150_mb={r150}" : "")}{(RssAt500Mb is { } r500 ? $" rss500_mb={r500}" : "")} iters={Iterations} device={Device} precision={Precision.ToString().ToLowerInvariant()}{Tiling}{(GpuMb is { } g ? $" gpu_mb={g}" : "")}");
}

/// <summary>
/// Times full style-transfer iterations (forward to the deepest tap, the network's default losses,
/// backward to the pixels, one L-BFGS step without line search, so one evaluation per iteration)
/// on a square random image: VGG-19 with random full-width weights (the paper's layers), ResNet-18
/// with its bundled weights (its default recipe, SWAG softmax included).
/// </summary>
internal static class Benchmark
{
    /// <summary>The networks <see cref="Run"/> knows.</summary>
    public static readonly IReadOnlyList<string> Networks = ["vgg19", "resnet18"];

    /// <summary>Runs one case; the first iteration is a warm-up and is not counted.</summary>
    /// <remarks>
    /// <paramref name="tile"/>: 0 (the default) evaluates the whole image; null lets the memory
    /// budget (<paramref name="maxMemory"/>, or the default share) choose tiles and the L-BFGS
    /// history, as a stylize run does; a number forces that tile size. The line then says what ran.
    /// <paramref name="weightsPath"/>: another weights file for a network with real weights (VGG-19 is always random).
    /// </remarks>
    public static BenchResult Run(string network, int size, int iterations, double? peakGflops = null, string device = "cpu", Precision precision = Precision.Fp32, int? tile = 0, long? maxMemory = null, string? weightsPath = null)
    {
        StyleTransferOptions options = OptionsFor(network, size, iterations, device, precision, tile, maxMemory, weightsPath);
        TorchRuntime.EnsureLoaded();
        Device dev = TorchRuntime.ResolveDevice(device);
        options.Validate();
        MemoryPlan? plan = tile == 0 && maxMemory is null ? null : MemoryBudget.Require(options, size, size, (long)size * size, TiledObjective.Unsupported(options, false) is null);
        using var scope = torch.NewDisposeScope();
        using IFeatureNetwork net = CreateNetwork(options, dev);
        using var gen = new Generator(2);
        Tensor content = torch.rand(new long[] { 1, 3, size, size }, generator: gen);
        Tensor style = torch.rand(new long[] { 1, 3, size, size }, generator: gen);
        var times = new List<double>();
        TimeSpan last = TimeSpan.Zero;
        var clock = Stopwatch.StartNew();
        long? rssAt50 = null, rssAt150 = null, rssAt500 = null;
        var progress = new Recorder(r =>
        {
            // CUDA runs asynchronously: an iteration has ended only when the device has finished its work.
            if (dev.type == DeviceType.CUDA)
            {
                torch.cuda.synchronize(dev);
            }

            TimeSpan now = clock.Elapsed;
            if (r.Iteration > 1)
            {
                times.Add((now - last).TotalMilliseconds);
            }

            if (r.Iteration is 51 or 151 or 501)
            {
                using var self = Process.GetCurrentProcess();
                long peakMb = self.PeakWorkingSet64 / (1024 * 1024);
                _ = r.Iteration switch
                {
                    51 => rssAt50 = peakMb,
                    151 => rssAt150 = peakMb,
                    _ => rssAt500 = peakMb,
                };
            }

            last = now;
        });
        using (Stylizer.Run(content, style, net, options, progress))
        {
        }

        times.Sort();
        double median = times[times.Count / 2];
        string[] taps = [.. Stylizer.ActiveContentLayers(options).Union(Stylizer.ActiveStyleLayers(options))];
        double gflop;
        using (torch.no_grad())
        {
            using Tensor probe = torch.zeros(new long[] { 1, 3, size, size }, device: dev);
            gflop = 2 * ConvFlopCounter.Measure(() => net.Extract(probe, taps)) / 1e9;
        }

        double peak = peakGflops ?? (dev.type == DeviceType.CPU ? FmaPeak.Measure(torch.get_num_threads()).Gflops : double.NaN);
        double achieved = gflop / (median / 1000);
        long rss = Process.GetCurrentProcess().PeakWorkingSet64 / (1024 * 1024);
        long? gpuMb = GpuMemory.Query(device) is { } gpu ? (gpu.Total - gpu.Free) / (1024 * 1024) : null;
        return new BenchResult(network, size, iterations, median, times[0], gflop, achieved, achieved / peak, peak, rss, device, precision, rssAt50, rssAt150, rssAt500)
        {
            Tiling = plan is null ? null : string.Create(CultureInfo.InvariantCulture, $" tile={(plan.Tile is int t ? $"{t}+{plan.Halo}" : "off")} history={plan.History}"),
            GpuMb = gpuMb,
        };
    }

    /// <summary>
    /// What a bench case runs: the network's default recipe at one scale of <paramref name="size"/> px
    /// (the line times iterations at the size it names; ResNet-18's default recipe is coarse to fine,
    /// whose early iterations run at a quarter of the pixels), without line search (one evaluation per
    /// iteration), one warm-up iteration more than timed.
    /// </summary>
    /// <remarks>Refuses a network the bench does not know (<see cref="Networks"/>).</remarks>
    internal static StyleTransferOptions OptionsFor(string network, int size, int iterations, string device = "cpu", Precision precision = Precision.Fp32, int? tile = 0, long? maxMemory = null, string? weightsPath = null) =>
        !Networks.Contains(network)
        ? throw new StyleTransferException($"bench: network '{network}' is not benchmarked (known: {string.Join(", ", Networks)})")
        : NetworkFactory.DefaultOptions(network) with
        {
            Size = size,
            Scales = 1,
            Iterations = iterations + 1,
            Seed = 3,
            LineSearch = false,
            Device = device,
            Precision = precision,
            Tile = tile,
            MaxMemory = maxMemory,
            WeightsPath = network == "vgg19" ? null : weightsPath,
        };

    /// <summary>The network a bench case times: VGG-19 with random full-width weights (in the options' precision), the others as stylize loads them.</summary>
    internal static IFeatureNetwork CreateNetwork(StyleTransferOptions options, Device device)
    {
        if (options.Network != "vgg19")
        {
            return NetworkFactory.Create(options, device);
        }

        Vgg19 vgg = Vgg19.CreateRandom(PoolingMode.Avg, seed: 1);
        vgg.MoveTo(device);
        return MixedPrecisionNetwork.Wrap(vgg, options.Precision);
    }

    private sealed class Recorder(Action<IterationReport> action) : IProgress<IterationReport>
    {
        public void Report(IterationReport value) => action(value);
    }
}
