using System.Globalization;
using System.Runtime.InteropServices;

namespace StyleTransfer;

/// <summary>
/// A CUDA device's free and total memory, read from NVIDIA's management library (libnvidia-ml,
/// installed with the driver), so that the memory budget's default on a GPU is a share of that
/// GPU's memory. Nothing here touches libtorch; where the library or the device cannot be read
/// (no NVIDIA driver, a CPU-only machine) the answer is null.
/// </summary>
internal static partial class GpuMemory
{
    private const string Library = "libnvidia-ml.so.1";
    private static readonly Lock Gate = new();
    private static bool initialised;

    /// <summary>Free and total bytes of <paramref name="device"/> ("cuda" or "cuda:N"), or null where they cannot be read.</summary>
    public static (long Free, long Total)? Query(string device)
    {
        if (!TorchRuntime.TryCudaIndex(device, out int index))
        {
            return null;
        }

        try
        {
            lock (Gate)
            {
                if (!initialised)
                {
                    if (NvmlInit() != 0)
                    {
                        return null;
                    }

                    initialised = true;
                }

                string? visible = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES");
                string? physical = Physical(visible, index);
                int status;
                nint handle;
                if (physical is null)
                {
                    status = NvmlDeviceByIndex((uint)index, out handle);
                }
                else if (uint.TryParse(physical, NumberStyles.None, CultureInfo.InvariantCulture, out uint n))
                {
                    status = NvmlDeviceByIndex(n, out handle);
                }
                else
                {
                    status = NvmlDeviceByUuid(physical, out handle);
                }

                if (status != 0 || NvmlMemoryInfo(handle, out NvmlMemory memory) != 0)
                {
                    return null;
                }

                return ((long)memory.Free, (long)memory.Total);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// The physical device behind CUDA ordinal <paramref name="index"/> under CUDA_VISIBLE_DEVICES
    /// (a number or a GPU UUID), or null when the variable is unset or does not name it: NVML
    /// numbers devices physically and ignores the variable.
    /// </summary>
    internal static string? Physical(string? visible, int index)
    {
        if (string.IsNullOrWhiteSpace(visible))
        {
            return null;
        }

        string[] parts = visible.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return index < parts.Length ? parts[index] : null;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct NvmlMemory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    [LibraryImport(Library, EntryPoint = "nvmlInit_v2")]
    private static partial int NvmlInit();

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")]
    private static partial int NvmlDeviceByIndex(uint index, out nint device);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetHandleByUUID", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NvmlDeviceByUuid(string uuid, out nint device);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetMemoryInfo")]
    private static partial int NvmlMemoryInfo(nint device, out NvmlMemory memory);
}
