using System.Globalization;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// Refuses, before any image is decoded or any large tensor allocated, a run this machine's memory
/// cannot hold: from the images' headers (their stored size, and the size they are scaled to) it
/// estimates the decoding and the network's working memory. One place for every command.
/// </summary>
internal static class MemoryGuard
{
    /// <summary>
    /// <paramref name="inputs"/>: each image to load, with what it is called and the long edge it is
    /// scaled to; <paramref name="outputPixels"/>: pixels of an output whose size is given directly (texture).
    /// </summary>
    /// <remarks>
    /// With <paramref name="budget"/> (the stylize pipeline, which can tile) the network's working
    /// memory is checked through <see cref="MemoryBudget"/> instead: the output is refused only when
    /// no tile size and L-BFGS history fit the budget (--max-memory, or the default share).
    /// </remarks>
    public static void Check(StyleTransferOptions options, Device device, IEnumerable<(string Path, string What, int LongEdge)> inputs, long outputPixels = 0, bool budget = false)
    {
        long have = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        long pixels = outputPixels, stylePixels = 0;
        (int Height, int Width)? output = null;
        foreach ((string path, string what, int edge) in inputs)
        {
            (int w, int h) = ImageIO.Probe(path, what);
            (int sw, int sh) = ImageIO.ScaledSize(w, h, edge);
            pixels = Math.Max(pixels, (long)sw * sh);
            output ??= what == "content image" ? (sh, sw) : null;
            stylePixels += what.StartsWith("style image", StringComparison.Ordinal) ? (long)sw * sh : 0;
            long decode = ((long)w * h + ((long)sw * sh)) * ImageIO.DecodeBytesPerPixel;
            if (have > 0 && decode > have * 0.9)
            {
                throw new StyleTransferException(
                    $"{what} '{path}' ({w}x{h}) needs about {decode / 1e9:F0} GB of memory to decode and scale, and this machine has {have / 1e9:F0} GB");
            }
        }

        if (device.type != DeviceType.CPU)
        {
            return;
        }

        if (budget && output is { } o)
        {
            MemoryBudget.Require(options, o.Height, o.Width, stylePixels, TiledObjective.Unsupported(options, options.StyleMasks is not null) is null);
            return;
        }

        long need = NetworkFactory.EstimateWorkingBytes(options.Network, pixels);
        if (have > 0 && need > have * 0.9)
        {
            throw StyleTransferException.Named(
                $"{Opt.Size.Is(options.Size.ToString(CultureInfo.InvariantCulture))} needs about {need / 1e9:F0} GB of memory with {options.Network}, and this machine has {have / 1e9:F0} GB; use a smaller {Opt.Size}");
        }
    }
}
