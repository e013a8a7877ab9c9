using System.Runtime.Intrinsics.X86;
using StyleTransfer.Cli;
using StyleTransfer.Diagnostics;
using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Tests;

public class BenchDiagnosticsTests
{
    [Fact]
    public void FmaPeakMeasuresAPlausibleRate()
    {
        FmaPeakResult peak = FmaPeak.Measure(threads: 2, seconds: 0.2);
        Assert.Equal(Avx512F.IsSupported ? 512 : Fma.IsSupported ? 256 : 0, peak.VectorBits);
        if (peak.VectorBits == 0)
        {
            return;
        }

        // Above 1 GFLOP/s per thread (a kernel that spilled to memory or stopped early would not be),
        // and below what two FMA units could do at 6 GHz (a FLOP-counting error would not be).
        double ceiling = 2 * (peak.VectorBits / 32) * 2 * 6.0;
        Assert.InRange(peak.SingleThreadGflops, 1, ceiling);
        Assert.InRange(peak.Gflops, 1, 2 * ceiling);
    }

    [Fact]
    public void MemoryBandwidthMeasuresAPlausibleRate()
    {
        // Small buffers keep the test light; they may sit in a cache, so only the bounds are checked:
        // above 0.5 GB/s (a pass that faulted pages or ran scalar code byte by byte would not be) and
        // below 10 TB/s (a byte-counting error would not be).
        MemoryBandwidthResult memory = MemoryBandwidth.Measure(threads: 2, bufferMiB: 8);
        Assert.Equal((2, 8), (memory.Threads, memory.BufferMiB));
        Assert.InRange(memory.GBps, 0.5, 10_000);
    }

    [Fact]
    public void TheBandwidthPassIsAReluOverEveryValue()
    {
        // 37 values: whole vectors and a scalar tail at any vector width.
        float[] source = Enumerable.Range(0, 37).Select(i => (i % 3 == 0 ? -1f : 1f) * i).ToArray();
        float[] target = new float[37];
        MemoryBandwidth.Relu(source, target);
        Assert.Equal(source.Select(v => Math.Max(v, 0f)), target);
    }

    [Fact]
    public void ElementwiseMultiplesCountTheBytesTheOperationMustMove()
    {
        // conv2_1 at 512 px: its ReLU over 128 × 256² fp32 values moves 5 × 33.5 MB = 167.8 MB; at
        // 16.78 GB/s that streams in 10 ms, so 30 ms is 3×. The pooling before it has 64 × 256²
        // outputs and moves 10 × 16.8 MB = 167.8 MB: 20 ms is 2×.
        var memory = new MemoryBandwidthResult(2, 256, 16.777216);
        var row = new ConvProfileRow("conv2_1", 64, 128, 256, 256, 9.66, 40, 30, 30, ReluMs: 30, PoolMs: 20, ElementBytes: 4, Memory: memory);
        Assert.Equal(5.0 * 128 * 256 * 256 * 4, row.ReluBytes);
        Assert.Equal(10.0 * 64 * 256 * 256 * 4, row.PoolBytes);
        Assert.Equal(3.0, row.ReluMemoryMultiple, 9);
        Assert.Equal(2.0, row.PoolMemoryMultiple, 9);
        Assert.EndsWith(" relu_ms=30.0 pool_ms=20.0 relu_x_mem=3.0 pool_x_mem=2.0", row.ToString());

        // bf16 halves the bytes, so the same times are twice the multiple; no pooling reads 0; no
        // measurement leaves the multiples out of the line.
        ConvProfileRow bf16 = row with { ElementBytes = 2, PoolMs = 0 };
        Assert.Equal((6.0, 0.0), (bf16.ReluMemoryMultiple, bf16.PoolMemoryMultiple));
        Assert.EndsWith(" relu_ms=30.0 pool_ms=20.0", (row with { Memory = null }).ToString());
        Assert.Contains(" elementwise_x_mem_max=3.0 ", ConvProfile.Total([row, bf16 with { ReluMs = 10 }], 512, 300, true, Precision.Fp32));
    }

    [Fact]
    public void ConvProfileCoversVgg19ToConv51WithItsShapes()
    {
        TorchRuntime.EnsureLoaded();
        IReadOnlyList<ConvProfileRow> rows = ConvProfile.Run(32, Precision.Fp32, channelsLast: true, repeats: 1);
        Assert.Equal(13, rows.Count);
        Assert.Equal(("conv1_1", 3L, 64L, 32L), (rows[0].Layer, rows[0].InChannels, rows[0].OutChannels, rows[0].Height));
        Assert.Equal(("conv5_1", 512L, 512L, 2L), (rows[12].Layer, rows[12].InChannels, rows[12].OutChannels, rows[12].Height));

        // 2 × 64 × 3 × 9 × 32² multiply-adds for conv1_1; the 13 layers sum to the counter's figure
        // for the same network up to conv5_1 (forward only).
        Assert.Equal(2.0 * 64 * 3 * 9 * 32 * 32 / 1e9, rows[0].Gflop, 12);
        using Vgg19 vgg = Vgg19.CreateRandom(PoolingMode.Avg);
        using var noGrad = torch.no_grad();
        using Tensor probe = torch.zeros(1, 3, 32, 32);
        double counted = ConvFlopCounter.Measure(() => vgg.Extract(probe, ["conv5_1"])) / 1e9;
        Assert.Equal(counted, rows.Sum(r => r.Gflop), 9);
        Assert.All(rows, r => Assert.True(r.ForwardMs > 0 && r.BackwardAsForwardMs > 0 && r.ReluMs > 0, r.ToString()));

        // Pooling comes before conv2_1, conv3_1, conv4_1 and conv5_1 only.
        Assert.Equal(["conv2_1", "conv3_1", "conv4_1", "conv5_1"], rows.Where(r => r.PoolMs > 0).Select(r => r.Layer));
    }

    [Fact]
    public void InputGradientOfAPaddedConvIsTheForwardConvWithFlippedTransposedWeights()
    {
        // What the profile's bwd_as_fwd column times must be the same gradient autograd computes.
        TorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(9);
        Tensor w = torch.randn(new long[] { 8, 5, 3, 3 }, dtype: ScalarType.Float64, generator: gen);
        Tensor x = torch.randn(new long[] { 1, 5, 12, 10 }, dtype: ScalarType.Float64, generator: gen).requires_grad_();
        Tensor gy = torch.randn(new long[] { 1, 8, 12, 10 }, dtype: ScalarType.Float64, generator: gen);
        Tensor expected = torch.autograd.grad([F.conv2d(x, w, padding: [1, 1])], [x], [gy])[0];
        Tensor actual = F.conv2d(gy, w.flip(2, 3).transpose(0, 1), padding: [1, 1]);
        Assert.True(TensorCompare.MaxRelativeError(expected, actual) < 1e-12);
    }

    [Fact]
    public void BenchLineCarriesTheMemoryReadingsItHas()
    {
        var r = new BenchResult("resnet18", 256, 500, 120.84, 84.6, 7.3, 60.7, 0.178, 340, 669, RssAt50Mb: 669, RssAt150Mb: 669, RssAt500Mb: 670);
        Assert.Equal("bench resnet18 256 ms=120.8 min_ms=84.6 gflop_per_iter=7.3 gflops=60.7 peak_frac=0.18 peak_gflops=340 rss_mb=669 rss50_mb=669 rss150_mb=669 rss500_mb=670 iters=500 device=cpu precision=fp32", r.ToString());
        Assert.Equal("bench resnet18 256 ms=120.8 min_ms=84.6 gflop_per_iter=7.3 gflops=60.7 peak_frac=0.18 peak_gflops=340 rss_mb=669 rss50_mb=669 iters=500 device=cpu precision=fp32", (r with { RssAt150Mb = null, RssAt500Mb = null }).ToString());
    }

    [Fact]
    public void ProfileIsRefusedOffVgg19()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["bench", "--network", "resnet18", "--profile", "--sizes", "32", "-n", "1"], stdout, stderr);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal("error: --profile times VGG-19's convolutions on the CPU only" + Environment.NewLine, stderr.ToString());
    }

    [Fact]
    public void BenchProfilePrintsOneLinePerConvolutionAndATotal()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["bench", "--profile", "--sizes", "32", "-n", "1", "--peak-gflops", "100"], stdout, stderr);
        Assert.Equal("", stderr.ToString());
        Assert.Equal(CliApp.ExitOk, code);
        string output = stdout.ToString();
        Assert.Matches(@"^# libtorch .*; fp32 peak 100 GFLOP/s given; memory [0-9.]+ GB/s measured \(read\+write, \d+ thread\(s\), 256 MiB buffers\); cpu ", output);
        Assert.Equal(13, System.Text.RegularExpressions.Regex.Matches(output, @"(?m)^profile conv\d_\d \d+->\d+ \d+x\d+ gflop=[0-9.]+ fwd_ms=[0-9.]+ fwd_gflops=\d+ bwd_ms=[0-9.]+ bwd_gflops=\d+ bwd_as_fwd_ms=[0-9.]+ relu_ms=[0-9.]+ pool_ms=[0-9.]+ relu_x_mem=[0-9.]+ pool_x_mem=[0-9.]+\r?$").Count);
        Assert.Matches(@"(?m)^profile total 32 conv_ms=[0-9.]+ conv_gflops=\d+ peak_frac=[0-9.]+ relu_ms=[0-9.]+ pool_ms=[0-9.]+ elementwise_x_mem_max=[0-9.]+ channels_last=1 precision=fp32\r?$", output);
        Assert.Matches(@"(?m)^bench vgg19 32 ", output);
    }

    [Fact]
    public void BenchTimesOneScaleAtTheSizeItNames()
    {
        // ResNet-18's default recipe runs coarse to fine (256, 362 and 512 px for a 512 px image); the
        // bench line names 512 px, so it times 512 px iterations only.
        Assert.True(NetworkFactory.DefaultOptions("resnet18").Scales != 1);
        StyleTransferOptions o = Benchmark.OptionsFor("resnet18", 512, 10);
        Assert.Equal((1, 11, false), (o.Scales, o.Iterations, o.LineSearch));
        Assert.Equal([512], o.ScaleSizes);
        Assert.Equal(3, NetworkFactory.DefaultOptions("resnet18").ScaleSizes.Count);
        Assert.Equal(NetworkFactory.DefaultOptions("resnet18").StyleLayers, o.StyleLayers);
    }

    [Fact]
    public void BenchPhasesPrintsWhereOneEvaluationGoes()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["bench", "--network", "resnet18", "--phases", "--sizes", "64", "-n", "1", "--peak-gflops", "100"], stdout, stderr);
        Assert.Equal("", stderr.ToString());
        Assert.Equal(CliApp.ExitOk, code);
        var m = System.Text.RegularExpressions.Regex.Match(stdout.ToString(), @"(?m)^phases resnet18 64 forward_ms=([0-9.]+) transform_ms=([0-9.]+) content_ms=([0-9.]+) style_ms=([0-9.]+) tv_ms=([0-9.]+) loss_backward_ms=([0-9.]+) network_backward_ms=([0-9.]+) evaluate_ms=([0-9.]+) precision=fp32\r?$");
        Assert.True(m.Success, stdout.ToString());
        double[] v = [.. m.Groups.Values.Skip(1).Select(g => double.Parse(g.Value, System.Globalization.CultureInfo.InvariantCulture))];
        Assert.True(v[0] > 0 && v[6] > 0, "the network's passes took no time");
        Assert.Equal(v[..7].Sum(), v[7], 0.05 * 8);
        Assert.Matches(@"(?m)^bench resnet18 64 ", stdout.ToString());
    }

    [Fact]
    public void PhasesAreRefusedOffTheCpu()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["bench", "--phases", "--device", "cuda", "--sizes", "32", "-n", "1"], stdout, stderr);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal("error: --phases times an evaluation on the CPU only" + Environment.NewLine, stderr.ToString());
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("-1")]
    [InlineData("0")]
    [InlineData("Infinity")]
    public void BenchRefusesAPeakThatIsNotAPositiveNumber(string peak)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["bench", "--sizes", "32", "-n", "1", "--peak-gflops", peak], stdout, stderr);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal($"error: --peak-gflops must be a positive number of GFLOP/s, not {peak}" + Environment.NewLine, stderr.ToString());
        Assert.Equal("", stdout.ToString());
    }

    [Theory]
    [InlineData("5000", null, "error: --sizes: '5000' is not a size from 16 to 4096 (16384 with --tiles)")]
    [InlineData("8", "off", "error: --sizes: '8' is not a size from 16 to 4096 (16384 with --tiles)")]
    [InlineData("20000", "auto", "error: --sizes: '20000' is not a size from 16 to 16384")]
    public void BenchSizesAboveFourKNeedTiles(string sizes, string? tiles, string expected)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        string[] args = tiles is null ? ["bench", "--sizes", sizes, "-n", "1", "--peak-gflops", "100"] : ["bench", "--sizes", sizes, "-n", "1", "--peak-gflops", "100", "--tiles", tiles];
        int code = CliApp.Run(args, stdout, stderr);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal(expected + Environment.NewLine, stderr.ToString());
        Assert.Equal("", stdout.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData(",")]
    [InlineData(" , ")]
    public void BenchRefusesAnEmptySizeList(string sizes)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["bench", "--sizes", sizes, "-n", "1", "--peak-gflops", "100"], stdout, stderr);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal("error: --sizes must list at least one size from 16 to 4096 (e.g. --sizes 256,512)" + Environment.NewLine, stderr.ToString());
        Assert.Equal("", stdout.ToString());
    }
}
