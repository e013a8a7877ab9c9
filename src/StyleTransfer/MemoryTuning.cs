using StyleTransfer.Networks;

namespace StyleTransfer;

/// <summary>What STYLIZE_HUGE_PAGES asks for.</summary>
internal enum HugePagesMode
{
    /// <summary>Decide by CPU, network and precision (<see cref="MemoryTuning.Decide"/>); also any unrecognised value.</summary>
    Auto,

    /// <summary>Always run with the tunable.</summary>
    On,

    /// <summary>Never add it.</summary>
    Off,
}

/// <summary>Whether a run should have glibc's huge-page tunable, and why, in a few words.</summary>
internal sealed record HugePagesDecision(bool On, string Reason);

/// <summary>
/// Transparent huge pages for glibc's large allocations. Every iteration allocates its full-resolution
/// feature maps and gradients afresh; above glibc's mmap threshold each is a fresh mapping whose 4 KB
/// pages are faulted in and zeroed one by one, and returned on free. With
/// <c>GLIBC_TUNABLES=glibc.malloc.hugetlb=1</c> glibc asks for transparent huge pages on those mappings
/// (madvise), and a 2 MB page costs one fault instead of 512. Measured (docs/performance.md, issue 19):
/// on AMD EPYC (Zen 4) the default ResNet-18 512 px iteration went from 538–561 ms to 301–315 ms and
/// VGG-19's from 4.0 s to 2.0 s; on this project's Intel Xeon the effect depends on network and
/// precision (<see cref="Decide"/>).
/// <para>
/// <b>Library hosts:</b> glibc reads the tunable once, in the dynamic loader, when the process starts;
/// setting it from inside a running process (Environment.SetEnvironmentVariable, setenv) does nothing.
/// The <c>stylize</c> CLI therefore re-executes itself once with it set. A program that uses this
/// library sets it in the environment that starts it (a launch script, systemd's Environment=, a
/// container's ENV), for example when <see cref="Recommended(string, Precision, string)"/> says so
/// for its network and precision:
/// <code>GLIBC_TUNABLES=glibc.malloc.hugetlb=1 dotnet MyHost.dll</code>
/// (append it with ':' to an existing GLIBC_TUNABLES; <see cref="WithTunable"/> does that). It needs
/// glibc 2.35 or later and the kernel's transparent huge pages in <c>madvise</c> mode
/// (/sys/kernel/mm/transparent_hugepage/enabled); elsewhere it does nothing.
/// </para>
/// </summary>
internal static class MemoryTuning
{
    /// <summary>The glibc tunable, as it goes into GLIBC_TUNABLES.</summary>
    public const string HugePagesTunable = "glibc.malloc.hugetlb=1";

    /// <summary>The environment variable that overrides the policy: auto (default), on or off.</summary>
    public const string SwitchVariable = "STYLIZE_HUGE_PAGES";

    /// <summary>Reads STYLIZE_HUGE_PAGES: "on"/"1", "off"/"0", anything else (or unset) is auto.</summary>
    public static HugePagesMode ParseMode(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "on" or "1" => HugePagesMode.On,
        "off" or "0" => HugePagesMode.Off,
        _ => HugePagesMode.Auto,
    };

    /// <summary>
    /// The policy, one row per measured case (docs/performance.md, "Huge pages"). Off wherever it was not
    /// measured: another CPU maker, CUDA (its feature maps are not in host memory), a transparent-huge-page
    /// mode other than madvise ("always" already gives large mappings huge pages; "never" makes the
    /// tunable do nothing).
    /// </summary>
    public static HugePagesDecision Decide(HugePagesMode mode, CpuVendor vendor, bool amx, string thpMode, string network, Precision precision, bool onCpu)
    {
        if (mode == HugePagesMode.Off)
        {
            return new(false, $"{SwitchVariable}=off");
        }

        if (mode == HugePagesMode.On)
        {
            return new(true, $"{SwitchVariable}=on");
        }

        if (!onCpu)
        {
            return new(false, "auto: not on the CPU");
        }

        if (thpMode != "madvise")
        {
            return new(false, $"auto: transparent huge pages are '{thpMode}', not madvise");
        }

        string p = precision.ToString().ToLowerInvariant();
        return vendor switch
        {
            CpuVendor.Amd => new(true, "auto: AMD, measured 1.8-2x faster"),
            CpuVendor.Intel => IntelRow(network, precision, amx) is { } on
                ? new(on, $"auto: Intel{(amx ? " with AMX" : " without AMX")}, {network} {p} measured {(on ? "faster" : "no faster")} with it")
                : new(false, $"auto: Intel, {network} {p} not measured"),
            _ => new(false, "auto: not measured on this CPU"),
        };
    }

    /// <summary>
    /// <see cref="Decide"/> for this machine and process: STYLIZE_HUGE_PAGES, the CPU maker from
    /// /proc/cpuinfo, the kernel's THP mode. <paramref name="device"/> is "cpu", "cuda" or "cuda:N".
    /// Off outside Linux.
    /// </summary>
    public static HugePagesDecision Recommended(string network, Precision precision, string device = "cpu")
    {
        HugePagesMode mode = ParseMode(Environment.GetEnvironmentVariable(SwitchVariable));
        if (!OperatingSystem.IsLinux())
        {
            return new(false, "not Linux");
        }

        bool onCpu = device.Trim().Equals("cpu", StringComparison.OrdinalIgnoreCase);
        CpuInfo cpu = CpuInfo.ThisMachine;
        return Decide(mode, cpu.Vendor, cpu.Flags.Contains("amx_bf16"), TransparentHugePageMode(), network, precision, onCpu);
    }

    /// <summary>The kernel's THP mode (the bracketed word of /sys/kernel/mm/transparent_hugepage/enabled), or "unknown".</summary>
    public static string TransparentHugePageMode()
    {
        try
        {
            string text = File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled");
            int open = text.IndexOf('[', StringComparison.Ordinal);
            int close = open < 0 ? -1 : text.IndexOf(']', open);
            return close > open + 1 ? text[(open + 1)..close] : "unknown";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unknown";
        }
    }

    /// <summary>Whether a GLIBC_TUNABLES value turns glibc.malloc.hugetlb on (its last setting, not 0).</summary>
    public static bool IsActive(string? glibcTunables)
    {
        string? value = null;
        foreach (string item in (glibcTunables ?? "").Split(':'))
        {
            if (item.StartsWith("glibc.malloc.hugetlb=", StringComparison.Ordinal))
            {
                value = item["glibc.malloc.hugetlb=".Length..];
            }
        }

        return value is not null and not "0" and not "";
    }

    /// <summary>GLIBC_TUNABLES with the huge-page tunable appended (after a ':' when there is a value already).</summary>
    public static string WithTunable(string? glibcTunables) =>
        string.IsNullOrEmpty(glibcTunables) ? HugePagesTunable : $"{glibcTunables}:{HugePagesTunable}";

    /// <summary>
    /// One phrase for a start-up or bench line: whether this process runs with huge pages, and why
    /// ("huge pages on (auto: AMD, ...)", "huge pages off (STYLIZE_HUGE_PAGES=off)").
    /// </summary>
    public static string Status(string network, Precision precision, string device)
    {
        bool active = IsActive(Environment.GetEnvironmentVariable("GLIBC_TUNABLES"));
        HugePagesDecision decision = Recommended(network, precision, device);
        string why = active == decision.On ? decision.Reason
            : active ? "GLIBC_TUNABLES set before start"
            : "recommended, but not in GLIBC_TUNABLES at start";
        return $"huge pages {(active ? "on" : "off")} ({why})";
    }

    /// <summary>The switch for <see cref="ApplyHeapReuse"/>: "off" or "0" leaves glibc's allocator as it is.</summary>
    public const string HeapReuseVariable = "STYLIZE_HEAP_REUSE";

    /// <summary>glibc's largest accepted mmap threshold on 64-bit (half its 64 MiB arena heap size).</summary>
    internal const int MmapThreshold = 32 * 1024 * 1024;

    private const string HeapReuseOn = "heap reuse on";

    private static string? heapReuse;

    /// <summary>What <see cref="ApplyHeapReuse"/> did in this process, as a phrase for the start-up and bench lines.</summary>
    public static string HeapReuseStatus => heapReuse ?? "heap reuse off (not applied)";

    /// <summary>
    /// Keeps freed heap memory for the next iteration instead of handing it back to the kernel and
    /// faulting it in again, page by page. glibc serves a block above its mmap threshold with a fresh
    /// mapping and unmaps it on free, and trims the top of its heap when more than the trim threshold
    /// is free there; every iteration frees and reallocates its feature maps and gradients, so each
    /// page of them was zero-filled by a page fault again (about 40 000 per ResNet-18 iteration at
    /// 512 px). This sets, through mallopt, the mmap threshold to its maximum (32 MiB, so every map of
    /// a 512 px ResNet-18 run comes from the heap) and the trim threshold out of reach. The resident size
    /// still stays flat: <see cref="TorchRuntime.ReleaseFreedMemory"/> trims explicitly every 10
    /// iterations. Measured in docs/performance.md ("Heap reuse"): page faults of a ResNet-18 512 px
    /// bench 1.0–1.2 M → 0.6 M, kernel time −35 %, wall time −6 %, peak memory unchanged.
    /// </summary>
    /// <remarks>
    /// Called once by <see cref="TorchRuntime.EnsureLoaded"/>. Skipped off Linux/glibc, with
    /// STYLIZE_HEAP_REUSE=off, and where the user set either threshold (GLIBC_TUNABLES or the
    /// MALLOC_*_ variables): theirs wins.
    /// </remarks>
    internal static void ApplyHeapReuse()
    {
        if (heapReuse is not null)
        {
            return;
        }

        heapReuse = HeapReuseDecision();
        if (heapReuse != HeapReuseOn)
        {
            return;
        }

        try
        {
            bool ok = NativeMethods.mallopt(MalloptMmapThreshold, MmapThreshold) == 1
                & NativeMethods.mallopt(MalloptTrimThreshold, int.MaxValue) == 1;
            heapReuse = ok ? HeapReuseOn : "heap reuse off (mallopt refused)";
        }
        catch (EntryPointNotFoundException)
        {
            heapReuse = "heap reuse off (not glibc)";
        }
    }

    /// <summary><see cref="HeapReuseDecision(bool, string?, string?, string?)"/> for this process: Linux or not, STYLIZE_HEAP_REUSE, GLIBC_TUNABLES and glibc's MALLOC_*_THRESHOLD_ variables.</summary>
    internal static string HeapReuseDecision() => HeapReuseDecision(
        OperatingSystem.IsLinux(),
        Environment.GetEnvironmentVariable(HeapReuseVariable),
        Environment.GetEnvironmentVariable("GLIBC_TUNABLES"),
        Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") ?? Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_"));

    /// <summary>The decision of <see cref="ApplyHeapReuse"/> from its inputs: "heap reuse on" or "heap reuse off (why)".</summary>
    internal static string HeapReuseDecision(bool linux, string? switchValue, string? glibcTunables, string? mallocVariable)
    {
        if (!linux)
        {
            return "heap reuse off (not Linux)";
        }

        if (switchValue?.Trim().ToLowerInvariant() is "off" or "0")
        {
            return $"heap reuse off ({HeapReuseVariable}={switchValue.Trim()})";
        }

        if (mallocVariable is not null || (glibcTunables ?? "").Split(':').Any(t => t.StartsWith("glibc.malloc.mmap_threshold=", StringComparison.Ordinal) || t.StartsWith("glibc.malloc.trim_threshold=", StringComparison.Ordinal)))
        {
            return "heap reuse off (the thresholds set by the user are kept)";
        }

        return HeapReuseOn;
    }

    // mallopt parameters (malloc.h).
    private const int MalloptTrimThreshold = -1;
    private const int MalloptMmapThreshold = -3;

    /// <summary>
    /// The Intel rows: true or false where measured, null where not (docs/performance.md, "Huge pages
    /// by CPU"). VGG-19 in bf16 was 13-15 % faster with huge pages on the Xeon with AMX (quiet, two
    /// interleaved rounds) and slower on the Xeon without AMX (loaded, two rounds, 3.3 s more kernel
    /// time per run); ResNet-18 was slower or no faster on both; VGG-19 fp32 no faster on either.
    /// </summary>
    private static bool? IntelRow(string network, Precision precision, bool amx) => (network, precision) switch
    {
        ("vgg19", Precision.Bf16) => amx,
        ("vgg19", Precision.Fp32) => false,
        ("resnet18", Precision.Bf16) => false,
        ("resnet18", Precision.Fp32) => false,
        _ => null,
    };
}
