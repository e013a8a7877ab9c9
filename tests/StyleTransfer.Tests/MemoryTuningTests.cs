using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using StyleTransfer.Cli;
using StyleTransfer.Networks;

namespace StyleTransfer.Tests;

/// <summary>
/// Issue 19: the huge-page policy (a table, tested row by row), the CLI's one re-execution with
/// GLIBC_TUNABLES set (run as a child process, checked through its hidden trace), and the CPU
/// model and oneDNN ISA on the bench header.
/// </summary>
public class MemoryTuningTests
{
    private const string EmeraldRapidsFlags = "fpu sse4_1 sse4_2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx_vnni avx512_bf16 avx512vbmi avx512_vnni avx512_fp16";

    [Theory]
    [InlineData(CpuVendor.Amd, false, "resnet18", Precision.Fp32, true)]
    [InlineData(CpuVendor.Amd, false, "resnet18", Precision.Bf16, true)]
    [InlineData(CpuVendor.Amd, false, "vgg19", Precision.Fp32, true)]
    [InlineData(CpuVendor.Amd, false, "vgg19", Precision.Bf16, true)]
    [InlineData(CpuVendor.Amd, false, "alexnet", Precision.Fp32, true)]
    [InlineData(CpuVendor.Intel, false, "resnet18", Precision.Fp32, false)]
    [InlineData(CpuVendor.Intel, false, "resnet18", Precision.Bf16, false)]
    [InlineData(CpuVendor.Intel, false, "vgg19", Precision.Fp32, false)]
    [InlineData(CpuVendor.Intel, false, "vgg19", Precision.Bf16, false)]
    [InlineData(CpuVendor.Intel, true, "vgg19", Precision.Bf16, true)]
    [InlineData(CpuVendor.Intel, true, "vgg19", Precision.Fp32, false)]
    [InlineData(CpuVendor.Intel, true, "resnet18", Precision.Fp32, false)]
    [InlineData(CpuVendor.Amd, true, "resnet18", Precision.Fp32, true)]
    [InlineData(CpuVendor.Intel, false, "resnet50", Precision.Fp32, false)]
    [InlineData(CpuVendor.Other, false, "resnet18", Precision.Fp32, false)]
    [InlineData(CpuVendor.Other, false, "vgg19", Precision.Bf16, false)]
    public void AutoDecidesByCpuMakerNetworkAndPrecision(object vendor, bool amx, string network, Precision precision, bool on)
    {
        // object: CpuVendor is internal, and a public test method cannot take it.
        Assert.Equal(on, MemoryTuning.Decide(HugePagesMode.Auto, (CpuVendor)vendor, amx, "madvise", network, precision, onCpu: true).On);
    }

    [Fact]
    public void AutoSaysWhy()
    {
        Assert.Equal(new HugePagesDecision(true, "auto: AMD, measured 1.8-2x faster"), MemoryTuning.Decide(HugePagesMode.Auto, CpuVendor.Amd, false, "madvise", "resnet18", Precision.Fp32, true));
        Assert.Equal(new HugePagesDecision(false, "auto: not measured on this CPU"), MemoryTuning.Decide(HugePagesMode.Auto, CpuVendor.Other, false, "madvise", "resnet18", Precision.Fp32, true));
        Assert.Equal(new HugePagesDecision(true, "auto: Intel with AMX, vgg19 bf16 measured faster with it"), MemoryTuning.Decide(HugePagesMode.Auto, CpuVendor.Intel, true, "madvise", "vgg19", Precision.Bf16, true));
        Assert.Equal(new HugePagesDecision(false, "auto: Intel without AMX, resnet18 fp32 measured no faster with it"), MemoryTuning.Decide(HugePagesMode.Auto, CpuVendor.Intel, false, "madvise", "resnet18", Precision.Fp32, true));
        Assert.Equal(new HugePagesDecision(false, "auto: Intel, alexnet fp32 not measured"), MemoryTuning.Decide(HugePagesMode.Auto, CpuVendor.Intel, false, "madvise", "alexnet", Precision.Fp32, true));
    }

    [Theory]
    [InlineData("always")]
    [InlineData("never")]
    [InlineData("unknown")]
    public void AutoIsOffUnlessTheKernelsThpModeIsMadvise(string thp)
    {
        Assert.Equal(
            new HugePagesDecision(false, $"auto: transparent huge pages are '{thp}', not madvise"),
            MemoryTuning.Decide(HugePagesMode.Auto, CpuVendor.Amd, false, thp, "resnet18", Precision.Fp32, onCpu: true));
    }

    [Fact]
    public void AutoIsOffOnCudaAndTheSwitchOverridesEverything()
    {
        Assert.Equal(new HugePagesDecision(false, "auto: not on the CPU"), MemoryTuning.Decide(HugePagesMode.Auto, CpuVendor.Amd, false, "madvise", "resnet18", Precision.Fp32, onCpu: false));
        Assert.Equal(new HugePagesDecision(false, "STYLIZE_HUGE_PAGES=off"), MemoryTuning.Decide(HugePagesMode.Off, CpuVendor.Amd, false, "madvise", "vgg19", Precision.Fp32, onCpu: true));
        Assert.Equal(new HugePagesDecision(true, "STYLIZE_HUGE_PAGES=on"), MemoryTuning.Decide(HugePagesMode.On, CpuVendor.Other, false, "never", "alexnet", Precision.Fp32, onCpu: false));
    }

    [Theory]
    [InlineData(null, HugePagesMode.Auto)]
    [InlineData("auto", HugePagesMode.Auto)]
    [InlineData("yes", HugePagesMode.Auto)]
    [InlineData("on", HugePagesMode.On)]
    [InlineData(" ON ", HugePagesMode.On)]
    [InlineData("1", HugePagesMode.On)]
    [InlineData("off", HugePagesMode.Off)]
    [InlineData("0", HugePagesMode.Off)]
    public void TheSwitchReadsAutoOnOff(string? value, object mode) => Assert.Equal((HugePagesMode)mode, MemoryTuning.ParseMode(value));

    [Theory]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("glibc.malloc.hugetlb=1", true)]
    [InlineData("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", true)]
    [InlineData("glibc.malloc.hugetlb=1:glibc.malloc.hugetlb=0", false)]
    [InlineData("glibc.malloc.hugetlb=0", false)]
    [InlineData("glibc.malloc.arena_max=2", false)]
    public void TheTunableIsReadLikeGlibcDoes(string? tunables, bool active) => Assert.Equal(active, MemoryTuning.IsActive(tunables));

    [Fact]
    public void TheTunableIsAppendedToAnExistingValue()
    {
        Assert.Equal("glibc.malloc.hugetlb=1", MemoryTuning.WithTunable(null));
        Assert.Equal("glibc.malloc.hugetlb=1", MemoryTuning.WithTunable(""));
        Assert.Equal("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", MemoryTuning.WithTunable("glibc.malloc.arena_max=2"));
    }

    [Fact]
    public void CpuInfoReadsTheFirstProcessor()
    {
        string text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  9R14 96-Core Processor\nflags\t\t: avx2 avx512f\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: other\n";
        CpuInfo cpu = CpuInfo.Parse(text);
        Assert.Equal(CpuVendor.Amd, cpu.Vendor);
        Assert.Equal("AMD EPYC 9R14 96-Core Processor", cpu.Model);
        Assert.Equal(["avx2", "avx512f"], cpu.Flags.Order());
        Assert.Equal(CpuVendor.Intel, CpuInfo.Parse("vendor_id : GenuineIntel").Vendor);
        Assert.Equal(new CpuInfo(CpuVendor.Other, "unknown", new HashSet<string>()).Model, CpuInfo.Parse("").Model);
    }

    [Theory]
    [InlineData(EmeraldRapidsFlags, "avx512_core_fp16")] // this project's Xeon: no AMX in the VM; ONEDNN_VERBOSE says "AVX-512 with float16, DL Boost and bfloat16"
    [InlineData(EmeraldRapidsFlags + " amx_tile amx_int8 amx_bf16", "avx512_core_amx")]
    [InlineData(EmeraldRapidsFlags + " amx_tile amx_int8 amx_bf16 amx_fp16", "avx512_core_amx_fp16")]
    [InlineData("avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16", "avx512_core_bf16")] // Zen 4: issue 19's "AVX-512 with DL Boost and bfloat16"
    [InlineData("avx avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni", "avx512_core_vnni")]
    [InlineData("avx avx2 avx512f avx512dq avx512bw avx512vl", "avx512_core")]
    [InlineData("avx avx2 avx512f", "avx2")]
    [InlineData("avx avx2 avx_vnni", "avx2_vnni")]
    [InlineData("sse4_1 avx", "avx")]
    [InlineData("", "none")]
    public void OneDnnIsaFollowsTheCpuFlags(string flags, string isa)
    {
        Assert.Equal(isa, CpuInfo.Parse($"vendor_id\t: GenuineIntel\nflags\t\t: {flags}\n").OneDnnIsa());
    }

    [Fact]
    public void PreParseFindsOptionValuesAndKeepsEmptyArguments()
    {
        Assert.Equal("bf16", HugePages.Value(["a.png", "--precision", "fp32", "--precision=bf16"], "--precision"));
        Assert.Equal("vgg19", HugePages.Value(["--network:vgg19"], "--network"));
        Assert.Null(HugePages.Value(["--network"], "--network"));
        Assert.Null(HugePages.Value(["--networks", "x"], "--network"));
        Assert.Equal(["a", "", "b"], HugePages.NulSeparated("a\0\0b\0"u8.ToArray()).Select(b => System.Text.Encoding.UTF8.GetString(b)));
        Assert.False(HugePages.Wanted(["--help"]));
        Assert.False(HugePages.Wanted([]));
    }

    [Fact]
    public void TheCliReExecutesItselfOnceWithTheTunableInTheSameProcess()
    {
        (int code, int pid, string stderr, List<Trace> traces) = RunCli(("STYLIZE_HUGE_PAGES", "on"), ("GLIBC_TUNABLES", null));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.EndsWith("error: --sizes must list at least one size from 16 to 4096 (e.g. --sizes 256,512)" + Environment.NewLine, stderr);
        Assert.Equal(2, traces.Count);
        Assert.All(traces, t => Assert.Equal(pid, t.Pid));
        Assert.Equal(("unset", "unset"), (traces[0].Marker, traces[0].Tunables));
        Assert.Equal(("1", "glibc.malloc.hugetlb=1"), (traces[1].Marker, traces[1].Tunables));
        Assert.Equal(traces[0].Argv, traces[1].Argv);
        Assert.Equal(["bench", "--network", "resnet18", "--sizes", "", "-n", "1"], traces[1].Argv[^7..]);
    }

    [Fact]
    public void TheCliAppendsTheTunableToTheUsersGlibcTunables()
    {
        (int code, int pid, _, List<Trace> traces) = RunCli(("STYLIZE_HUGE_PAGES", "on"), ("GLIBC_TUNABLES", "glibc.malloc.arena_max=2"));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal(2, traces.Count);
        Assert.Equal(pid, traces[1].Pid);
        Assert.Equal("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", traces[1].Tunables);
    }

    [Fact]
    public void WithTheSwitchOffTheCliRunsOnceWithoutTheTunable()
    {
        (int code, int pid, _, List<Trace> traces) = RunCli(("STYLIZE_HUGE_PAGES", "off"), ("GLIBC_TUNABLES", null));
        Assert.Equal(CliApp.ExitBadInput, code);
        Trace only = Assert.Single(traces);
        Assert.Equal((pid, "unset", "unset"), (only.Pid, only.Marker, only.Tunables));
    }

    [Fact]
    public void BenchHeaderNamesTheCpuTheOneDnnIsaAndHugePages()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["bench", "--network", "resnet18", "--sizes", "32", "-n", "1", "--peak-gflops", "100"], stdout, stderr);
        Assert.Equal("", stderr.ToString());
        Assert.Equal(CliApp.ExitOk, code);
        string header = stdout.ToString().Split(Environment.NewLine)[0];
        CpuInfo cpu = CpuInfo.ThisMachine;
        bool active = MemoryTuning.IsActive(Environment.GetEnvironmentVariable("GLIBC_TUNABLES"));
        Assert.Matches(
            $"^# libtorch .*; fp32 peak 100 GFLOP/s given; cpu {Regex.Escape(cpu.Model)}, onednn isa {Regex.Escape(cpu.OneDnnIsaNote())}; huge pages {(active ? "on" : "off")} \\(.+\\); {Regex.Escape(MemoryTuning.HeapReuseStatus)}$",
            header);

        // What this process decided, and mallopt accepted it ("heap reuse off (mallopt refused)" otherwise).
        Assert.Equal(MemoryTuning.HeapReuseDecision(), MemoryTuning.HeapReuseStatus);
    }

    [Fact]
    public void HeapReuseIsOnUnlessSwitchedOffOrTheUserSetAThreshold()
    {
        Assert.Equal("heap reuse on", MemoryTuning.HeapReuseDecision(true, null, null, null));
        Assert.Equal("heap reuse on", MemoryTuning.HeapReuseDecision(true, "on", "glibc.malloc.hugetlb=1", null));
        Assert.Equal("heap reuse off (STYLIZE_HEAP_REUSE=off)", MemoryTuning.HeapReuseDecision(true, " off ", null, null));
        Assert.Equal("heap reuse off (STYLIZE_HEAP_REUSE=0)", MemoryTuning.HeapReuseDecision(true, "0", null, null));
        Assert.Equal("heap reuse off (the thresholds set by the user are kept)", MemoryTuning.HeapReuseDecision(true, null, "glibc.malloc.hugetlb=1:glibc.malloc.trim_threshold=0", null));
        Assert.Equal("heap reuse off (the thresholds set by the user are kept)", MemoryTuning.HeapReuseDecision(true, null, "glibc.malloc.mmap_threshold=1048576", null));
        Assert.Equal("heap reuse off (the thresholds set by the user are kept)", MemoryTuning.HeapReuseDecision(true, null, null, "131072"));
        Assert.Equal("heap reuse off (not Linux)", MemoryTuning.HeapReuseDecision(false, null, null, null));
    }

    private sealed record Trace(int Pid, string Marker, string Tunables, string[] Argv);

    /// <summary>
    /// Runs the built CLI (stylize.dll beside the tests) as a child process with the trace on, on an
    /// input that fails before libtorch loads (an empty --sizes, which also checks that an empty
    /// argument survives the re-execution), and returns its exit code, pid, stderr and trace lines.
    /// </summary>
    private static (int Code, int Pid, string Stderr, List<Trace> Traces) RunCli(params (string Name, string? Value)[] env)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string a in (string[])[Path.Combine(AppContext.BaseDirectory, "stylize.dll"), "bench", "--network", "resnet18", "--sizes", "", "-n", "1"])
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["STYLIZE_HUGE_PAGES_TRACE"] = "1";
        start.Environment.Remove(HugePages.Marker);
        foreach ((string name, string? value) in env)
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(120_000))
        {
            process.Kill();
            Assert.Fail("the CLI did not exit within 2 minutes (a re-execution loop?)");
        }

        process.WaitForExit();
        var traces = new List<Trace>();
        foreach (Match m in Regex.Matches(stderr.Result, @"(?m)^huge-pages-trace: pid=(\d+) marker=(\S+) tunables=(\S+) argv=(.*)$"))
        {
            traces.Add(new Trace(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), m.Groups[2].Value, m.Groups[3].Value, JsonSerializer.Deserialize<string[]>(m.Groups[4].Value)!));
        }

        Assert.Equal("", stdout.Result);
        return (process.ExitCode, process.Id, stderr.Result, traces);
    }
}
