using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using StyleTransfer.Networks;

namespace StyleTransfer.Cli;

/// <summary>
/// Puts glibc's huge-page tunable in place where <see cref="MemoryTuning.Recommended"/> says so. glibc
/// reads GLIBC_TUNABLES only when a process starts, so the CLI re-executes itself, once, as the first
/// thing it does: the same program (/proc/self/exe), the same argv (/proc/self/cmdline, byte for
/// byte), the same environment (/proc/self/environ) with glibc.malloc.hugetlb=1 appended to
/// GLIBC_TUNABLES and a marker that stops a second round. execve keeps the process id. Any failure
/// leaves the run going without it.
/// </summary>
internal static partial class HugePages
{
    /// <summary>Set in the re-executed process; its presence stops another re-execution.</summary>
    public const string Marker = "STYLIZE_HUGE_PAGES_REEXEC";

    /// <summary>Hidden diagnostic for the tests: one line per process start on stderr.</summary>
    public const string Trace = "STYLIZE_HUGE_PAGES_TRACE";

    /// <summary>Re-executes this process with the tunable when it is recommended and not yet set; otherwise returns.</summary>
    public static void ReExecIfRecommended(string[] args)
    {
        try
        {
            if (!OperatingSystem.IsLinux())
            {
                return;
            }

            bool trace = Environment.GetEnvironmentVariable(Trace) == "1";
            byte[][] argv = NulSeparated(File.ReadAllBytes("/proc/self/cmdline"));
            string? tunables = Environment.GetEnvironmentVariable("GLIBC_TUNABLES");
            if (trace)
            {
                string[] text = [.. argv.Select(a => Encoding.UTF8.GetString(a))];
                Console.Error.WriteLine($"huge-pages-trace: pid={Environment.ProcessId} marker={Environment.GetEnvironmentVariable(Marker) ?? "unset"} tunables={tunables ?? "unset"} argv={JsonSerializer.Serialize(text)}");
            }

            // Re-executed already, or the user set the tunable (either way) themselves.
            if (Environment.GetEnvironmentVariable(Marker) != null || (tunables ?? "").Contains("glibc.malloc.hugetlb=", StringComparison.Ordinal))
            {
                return;
            }

            if (!Wanted(args))
            {
                return;
            }

            byte[][] env = NulSeparated(File.ReadAllBytes("/proc/self/environ"));
            byte[] prefix = "GLIBC_TUNABLES="u8.ToArray();
            var list = new List<byte[]>();
            bool replaced = false;
            foreach (byte[] e in env)
            {
                if (e.AsSpan().StartsWith(prefix) && !replaced)
                {
                    list.Add(Encoding.UTF8.GetBytes("GLIBC_TUNABLES=" + MemoryTuning.WithTunable(tunables)));
                    replaced = true;
                }
                else if (!e.AsSpan().StartsWith(prefix))
                {
                    list.Add(e);
                }
            }

            if (!replaced)
            {
                list.Add(Encoding.UTF8.GetBytes("GLIBC_TUNABLES=" + MemoryTuning.HugePagesTunable));
            }

            list.Add(Encoding.UTF8.GetBytes(Marker + "=1"));
            Exec("/proc/self/exe"u8.ToArray(), argv, [.. list]);
        }
        catch (Exception)
        {
            // Run on without huge pages.
        }
    }

    /// <summary>
    /// A cheap look at the arguments, before parsing: --network, --precision, --device and --weights
    /// where given, else the defaults (bench times VGG-19; the rest use vgg19 when its weights are
    /// found, else resnet18). Help, version and the model list do not need it.
    /// </summary>
    /// <remarks>
    /// Not the command line's parser: this runs first in every start, in a process that execve may
    /// replace at once, and the full command tree builds every command with its help defaults (cold,
    /// 4 to 6 times this scan's time, measured under load). A command line this scan misreads only
    /// costs the tunable: the parser still refuses a bad one with its one line, before libtorch loads.
    /// </remarks>
    internal static bool Wanted(string[] args)
    {
        if (args.Length == 0 || args.Any(a => a is "--help" or "-h" or "-?" or "--version") || args[0] == "models")
        {
            return false;
        }

        string? network = Value(args, "--network");
        string? weights = Value(args, "--weights");
        network ??= args[0] == "bench" ? "vgg19" : NetworkFactory.ChooseDefault(weights);
        Precision precision = Value(args, "--precision") switch
        {
            "bf16" => Precision.Bf16,
            "fp16" => Precision.Fp16,
            _ => Precision.Fp32,
        };
        return MemoryTuning.Recommended(network, precision, Value(args, "--device") ?? "cpu").On;
    }

    /// <summary>The value of the last "--name value", "--name=value" or "--name:value" in <paramref name="args"/>.</summary>
    internal static string? Value(string[] args, string name)
    {
        string? value = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == name && i + 1 < args.Length)
            {
                value = args[i + 1];
            }
            else if (args[i].Length > name.Length + 1 && args[i].StartsWith(name, StringComparison.Ordinal) && args[i][name.Length] is '=' or ':')
            {
                value = args[i][(name.Length + 1)..];
            }
        }

        return value;
    }

    /// <summary>Splits a NUL-terminated list (/proc/self/cmdline, /proc/self/environ); empty entries in the middle are kept.</summary>
    internal static byte[][] NulSeparated(byte[] data)
    {
        var items = new List<byte[]>();
        int start = 0;
        for (int i = 0; i < data.Length; i++)
        {
            if (data[i] == 0)
            {
                items.Add(data[start..i]);
                start = i + 1;
            }
        }

        if (start < data.Length)
        {
            items.Add(data[start..]);
        }

        return [.. items];
    }

    /// <summary>execve; returns only when it failed.</summary>
    private static unsafe void Exec(byte[] path, byte[][] argv, byte[][] env)
    {
        var blocks = new List<nint>();
        try
        {
            nint Copy(byte[] s)
            {
                byte* p = (byte*)NativeMemory.Alloc((nuint)s.Length + 1);
                s.CopyTo(new Span<byte>(p, s.Length));
                p[s.Length] = 0;
                blocks.Add((nint)p);
                return (nint)p;
            }

            nint[] a = [.. argv.Select(Copy), 0];
            nint[] e = [.. env.Select(Copy), 0];
            byte[] terminated = [.. path, 0];
            fixed (byte* t = terminated)
            fixed (nint* aPtr = a)
            fixed (nint* ePtr = e)
            {
                _ = execve(t, (byte**)aPtr, (byte**)ePtr);
            }
        }
        finally
        {
            foreach (nint b in blocks)
            {
                NativeMemory.Free((void*)b);
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int execve(byte* path, byte** argv, byte** envp);
}
