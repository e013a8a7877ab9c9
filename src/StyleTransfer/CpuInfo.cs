namespace StyleTransfer;

/// <summary>CPU makers that the memory policy (<see cref="MemoryTuning"/>) tells apart.</summary>
internal enum CpuVendor
{
    /// <summary>Neither of the two below, or not known (no /proc/cpuinfo).</summary>
    Other,

    /// <summary>vendor_id GenuineIntel.</summary>
    Intel,

    /// <summary>vendor_id AuthenticAMD.</summary>
    Amd,
}

/// <summary>
/// The first processor of /proc/cpuinfo: maker, model name and feature flags. Reading it needs no
/// native library, so the CLI can decide things before libtorch loads.
/// </summary>
internal sealed record CpuInfo(CpuVendor Vendor, string Model, IReadOnlySet<string> Flags)
{
    private static readonly Lazy<CpuInfo> Machine = new(ReadMachine);

    /// <summary>This machine's CPU; vendor Other, model "unknown" and no flags where /proc/cpuinfo cannot be read.</summary>
    public static CpuInfo ThisMachine => Machine.Value;

    /// <summary>Parses the text of /proc/cpuinfo (x86 layout: "key&lt;TAB&gt;: value" lines); only the first processor is read.</summary>
    public static CpuInfo Parse(string text)
    {
        var vendor = CpuVendor.Other;
        string model = "unknown";
        var flags = new HashSet<string>(StringComparer.Ordinal);
        bool seenVendor = false, seenModel = false, seenFlags = false;
        foreach (string line in text.Split('\n'))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                continue;
            }

            string key = line[..colon].Trim();
            string value = line[(colon + 1)..].Trim();
            if (key == "vendor_id" && !seenVendor)
            {
                seenVendor = true;
                vendor = value switch
                {
                    "GenuineIntel" => CpuVendor.Intel,
                    "AuthenticAMD" => CpuVendor.Amd,
                    _ => CpuVendor.Other,
                };
            }
            else if (key == "model name" && !seenModel && value.Length > 0)
            {
                seenModel = true;
                model = string.Join(' ', value.Split(' ', StringSplitOptions.RemoveEmptyEntries));
            }
            else if (key == "flags" && !seenFlags)
            {
                seenFlags = true;
                flags.UnionWith(value.Split(' ', StringSplitOptions.RemoveEmptyEntries));
            }
        }

        return new CpuInfo(vendor, model, flags);
    }

    /// <summary>
    /// The instruction set oneDNN (libtorch's CPU convolution library) will use, in oneDNN's own
    /// names, derived from the CPU flags by the rules of oneDNN 3.7's <c>mayiuse</c> (its
    /// <c>ONEDNN_VERBOSE</c> "isa:" line says the same in words: checked against it on this project's
    /// Xeon, avx512_core_fp16, and against the Zen 4 report of issue 19, avx512_core_bf16). libtorch does not export oneDNN's own query, and its verbose output goes to the
    /// process's stdout, so the flags are read instead. An ONEDNN_MAX_CPU_ISA cap is not applied
    /// here; <see cref="OneDnnIsaNote"/> mentions it.
    /// </summary>
    public string OneDnnIsa()
    {
        bool Has(params string[] names) => names.All(Flags.Contains);
        bool avx2Vnni = Has("avx2", "avx_vnni");
        bool avx512Core = Has("avx512f", "avx512bw", "avx512vl", "avx512dq");
        bool vnni = avx512Core && Has("avx512_vnni");
        bool bf16 = vnni && Has("avx512_bf16");
        bool fp16 = bf16 && avx2Vnni && Has("avx512_fp16");
        bool amx = fp16 && Has("amx_tile", "amx_int8", "amx_bf16");
        return amx && Has("amx_fp16") ? "avx512_core_amx_fp16"
            : amx ? "avx512_core_amx"
            : fp16 ? "avx512_core_fp16"
            : bf16 ? "avx512_core_bf16"
            : vnni ? "avx512_core_vnni"
            : avx512Core ? "avx512_core"
            : avx2Vnni && Has("avx_vnni_int8", "avx_ne_convert") ? "avx2_vnni_2"
            : avx2Vnni ? "avx2_vnni"
            : Has("avx2") ? "avx2"
            : Has("avx") ? "avx"
            : Has("sse4_1") ? "sse41"
            : "none";
    }

    /// <summary><see cref="OneDnnIsa"/>, followed by the ONEDNN_MAX_CPU_ISA cap when one is set.</summary>
    public string OneDnnIsaNote()
    {
        string? cap = Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") ?? Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA");
        return string.IsNullOrEmpty(cap) ? OneDnnIsa() : $"{OneDnnIsa()} (capped by ONEDNN_MAX_CPU_ISA={cap})";
    }

    private static CpuInfo ReadMachine()
    {
        try
        {
            return Parse(File.ReadAllText("/proc/cpuinfo"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new CpuInfo(CpuVendor.Other, "unknown", new HashSet<string>());
        }
    }
}
