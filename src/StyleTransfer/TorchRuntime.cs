using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer;

/// <summary>Starts libtorch once, sets threads and resolves devices, turning failures into one-line errors.</summary>
public static class TorchRuntime
{
    private static readonly Lock Gate = new();
    private static string? version;

    /// <summary>Loads the native engine; returns its libtorch version.</summary>
    public static string EnsureLoaded()
    {
        lock (Gate)
        {
            if (version != null)
            {
                return version;
            }

            try
            {
                QuietNativeLogging();
                MemoryTuning.ApplyHeapReuse();
                version = LoadNative();
                DisableNnpack();
                return version;
            }
            catch (Exception e) when (e is not StyleTransferException)
            {
                string first = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? e.GetType().Name;
                throw new StyleTransferException(
                    $"the libtorch engine could not be loaded ({first.Trim()}); rebuild with 'dotnet build' so the native library is prepared for this host (README: 'The native library on Debian 12')",
                    e,
                    FailureKind.Engine);
            }
        }
    }

    /// <summary>
    /// libtorch prints deprecation warnings of its own C++ API (e.g. "Optimizer::parameters() will
    /// be removed") that say nothing to our users. c10 reads TORCH_CPP_LOG_LEVEL when it loads;
    /// .NET's Environment.SetEnvironmentVariable does not reach the native environment, so setenv.
    /// A level the user set is kept.
    /// </summary>
    private static void QuietNativeLogging()
    {
        if (OperatingSystem.IsWindows() || Environment.GetEnvironmentVariable("TORCH_CPP_LOG_LEVEL") != null)
        {
            return;
        }

        _ = NativeMethods.setenv("TORCH_CPP_LOG_LEVEL", "ERROR", 0);
    }

    /// <summary>
    /// Turns NNPACK off, as <c>torch.backends.nnpack.set_flags(False)</c> does in Python. On CPUs
    /// (or VMs) where NNPACK cannot initialise (AMD EPYC VMs: "Unsupported hardware"), libtorch
    /// 2.10 retries and logs "Could not initialize NNPACK! Reason: Unsupported hardware." at every
    /// convolution that asks whether NNPACK is available, up to about 1500 stderr lines per run,
    /// through a logger TORCH_CPP_LOG_LEVEL does not reach. Convolutions ask
    /// <c>at::globalContext().userEnabledNNPACK()</c> first, so with the flag off NNPACK is never
    /// initialised and nothing is printed. Nothing else changes: libtorch uses NNPACK only for
    /// batches of 16 or more without a gradient, and ours are batches of 1 (one image, or a
    /// few style images one by one). TorchSharp has no binding for the flag, so the C++
    /// functions are called by their Itanium-mangled names (a member function takes <c>this</c>
    /// first). Where they are missing (another libtorch, Windows), nothing changes: a warning we
    /// cannot silence is better than a failure to start. Redirecting fd 2 through a filter would
    /// also work but would sit between every native message and the terminal for the whole run.
    /// </summary>
    private static void DisableNnpack()
    {
        if (!OperatingSystem.IsLinux() || LibTorchCpu() is not { } lib)
        {
            return;
        }

        if (NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out IntPtr globalContext)
            && NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledNNPACKEb", out IntPtr setNnpack))
        {
            IntPtr context = Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(globalContext)();
            Marshal.GetDelegateForFunctionPointer<SetFlagFn>(setNnpack)(context, false);
        }
    }

    /// <summary>Whether libtorch's NNPACK flag is on (null where it cannot be read); for tests.</summary>
    internal static bool? NnpackEnabled()
    {
        if (!OperatingSystem.IsLinux() || LibTorchCpu() is not { } lib
            || !NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out IntPtr globalContext)
            || !NativeLibrary.TryGetExport(lib, "_ZNK2at7Context17userEnabledNNPACKEv", out IntPtr getNnpack))
        {
            return null;
        }

        return Marshal.GetDelegateForFunctionPointer<GetFlagFn>(getNnpack)(Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(globalContext)());
    }

    /// <summary>The loaded libtorch_cpu (the one TorchSharp loaded: same file, same handle), or null.</summary>
    private static IntPtr? LibTorchCpu() =>
        NativeLibrary.TryLoad("libtorch_cpu.so", typeof(torch).Assembly, null, out IntPtr handle) || NativeLibrary.TryLoad("libtorch_cpu.so", out handle)
            ? handle
            : null;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContextFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetFlagFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    private delegate bool GetFlagFn(IntPtr context);

    /// <summary>Kept out of line so that touching <c>torch</c> (whose static constructor loads the natives) happens after <see cref="QuietNativeLogging"/>.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static string LoadNative() => torch.__version__;

    /// <summary>Sets libtorch's intra-op thread count; null means one per core. At most <see cref="StyleTransferOptions.MaxThreads"/>.</summary>
    public static void SetThreads(int? threads)
    {
        if (threads is { } n && (n < 1 || n > StyleTransferOptions.MaxThreads))
        {
            throw StyleTransferException.Named(n < 1 ? $"{Opt.Threads} must be at least 1, not {n}" : StyleTransferOptions.ThreadsTooMany(n));
        }

        EnsureLoaded();
        int wanted = threads ?? Environment.ProcessorCount;

        // Only when it changes, and one caller at a time: libtorch rebuilds its thread pools on
        // every call, which is not safe while another thread of this process computes with them
        // (the tests, the web app and batch run stylisations on several threads).
        lock (ThreadsLock)
        {
            if (torch.get_num_threads() != wanted)
            {
                torch.set_num_threads(wanted);
            }
        }
    }

    private static readonly object ThreadsLock = new();

    /// <summary>
    /// Hands memory that is no longer used back to the operating system. First a full garbage
    /// collection with its finalizers: TorchSharp leaves hundreds of finalizable objects per
    /// iteration to the GC (pinned shape arrays, native Scalars made from double arguments), and on
    /// a machine with a large L3 cache .NET's first-generation budget is so large that it rarely runs:
    /// measured at 256 px (ResNet-18), glibc's in-use bytes grew by 60 MB over 300 iterations with
    /// the live tensor count flat, and the start-up garbage (150 MB of parsed model) was never
    /// collected. Then glibc's malloc_trim, which returns freed pages of its heaps; without it the
    /// resident size creeps up by hundreds of MB over a long run (docs/performance.md). Called every
    /// 10 iterations it cost nothing measurable (ResNet-18, 256 px: 116–121 ms per iteration with
    /// it, 113–134 ms without). malloc_trim is a no-op off Linux.
    /// </summary>
    public static void ReleaseFreedMemory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        if (OperatingSystem.IsLinux())
        {
            try
            {
                _ = NativeMethods.malloc_trim(0);
            }
            catch (EntryPointNotFoundException)
            {
                // Not glibc (musl has no malloc_trim): nothing to do.
            }
        }
    }

    /// <summary>The CUDA ordinal of "cuda" (0) or "cuda:N" (any case, surrounding spaces ignored); false for any other name. Loads nothing.</summary>
    public static bool TryCudaIndex(string name, out int index)
    {
        string n = name.Trim().ToLowerInvariant();
        index = 0;
        return n == "cuda" || (n.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(n.AsSpan(5), out index) && index >= 0);
    }

    /// <summary>Parses "cpu", "cuda" or "cuda:N" and checks that the device exists.</summary>
    public static Device ResolveDevice(string name)
    {
        EnsureLoaded();
        string n = name.Trim().ToLowerInvariant();
        if (n == "cpu")
        {
            return torch.CPU;
        }

        if (!TryCudaIndex(n, out int index))
        {
            throw StyleTransferException.Named($"{Opt.Device} must be cpu, cuda or cuda:N, not '{name}'");
        }

        if (!torch.cuda.is_available())
        {
            throw StyleTransferException.Named(
                $"{Opt.Device.Is(name)} was asked for, but CUDA is not available: this build uses the CPU libtorch package (see README 'GPU')");
        }

        int count = torch.cuda.device_count();
        if (index >= count)
        {
            throw StyleTransferException.Named($"{Opt.Device.Is(name)} was asked for, but this machine has {count} CUDA device(s)");
        }

        return torch.device(DeviceType.CUDA, index);
    }
}

internal static partial class NativeMethods
{
    [System.Runtime.InteropServices.LibraryImport("libc", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    internal static partial int setenv(string name, string value, int overwrite);

    [System.Runtime.InteropServices.LibraryImport("libc")]
    internal static partial int malloc_trim(nuint pad);

    [System.Runtime.InteropServices.LibraryImport("libc")]
    internal static partial int mallopt(int param, int value);
}
