using SixLabors.ImageSharp;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using static TorchSharp.torch;

namespace StyleTransfer.Web;

/// <summary>What a finished (or stopped) run left: the output's size, seed and last report.</summary>
public sealed record EngineOutcome(bool Cancelled, int Width, int Height, long Seed, IterationReport? Last);

/// <summary>Defaults the page shows, per network.</summary>
public sealed record NetworkDefaults(string Name, double StyleWeight, double ContentWeight, int Iterations, string Scales, int Size, bool WeightsFound);

/// <summary>
/// The web app's only door into the library: everything the jobs need from the engine goes through
/// here (load, stylise with previews, save), so a switch to another library entry point happens in
/// this one file. Runs go through one <see cref="StyleTransferEngine"/> (its input checks and image
/// names in errors), which loads each network once and keeps it for the jobs after.
/// </summary>
public static class StyleEngine
{
    /// <summary>The server's engine: networks loaded by one job stay loaded for the next.</summary>
    private static readonly StyleTransferEngine Engine = new();

    /// <summary>Loads libtorch; returns its version.</summary>
    public static string EnsureLoaded() => TorchRuntime.EnsureLoaded();

    /// <summary>The network used when a job names none.</summary>
    public static string DefaultNetwork => NetworkFactory.ChooseDefault(null);

    public static IReadOnlyList<string> Networks => NetworkFactory.Names;

    public static IReadOnlyList<NetworkDefaults> Defaults()
    {
        var found = NetworkFactory.Describe().ToDictionary(n => n.Name, n => n.Weights != null);
        return [.. NetworkFactory.Names.Select(n =>
        {
            StyleTransferOptions d = NetworkFactory.DefaultOptions(n);
            string scales = d.Scales == StyleTransferOptions.AutoScales ? "auto" : d.Scales.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return new NetworkDefaults(n, d.StyleWeight, d.ContentWeight, d.Iterations, scales, d.Size, found.GetValueOrDefault(n));
        })];
    }

    /// <summary>The queue a job waits in: one running job per device ("cpu", "cuda:0", …).</summary>
    public static string DeviceKey(StyleTransferOptions options)
    {
        string d = options.Device.Trim().ToLowerInvariant();
        return d == "cuda" ? "cuda:0" : d;
    }

    /// <summary>Reads the header only: the stored width and height, or the library's one-line refusal.</summary>
    public static (int Width, int Height) Probe(string path, string what) => ImageIO.Probe(path, what);

    /// <summary>
    /// Stylises <paramref name="contentPath"/> with <paramref name="stylePaths"/> and writes a PNG to
    /// <paramref name="outputPath"/> (atomically; nothing when cancelled). <paramref name="preview"/>
    /// receives the image (on the CPU) every <paramref name="previewEvery"/> iterations, on the
    /// optimisation thread, for the time of the call only: keep a <see cref="Copy"/> and hand it elsewhere.
    /// </summary>
    public static EngineOutcome Run(
        string contentPath,
        IReadOnlyList<string> stylePaths,
        string outputPath,
        StyleTransferOptions options,
        int previewEvery,
        IProgress<IterationReport> progress,
        Action<int, Tensor> preview,
        CancellationToken cancellation)
    {
        TorchRuntime.EnsureLoaded();

        // The engine's snapshot hook fires every SaveEvery iterations; it writes no checkpoint.
        StyleTransferOptions run = options with { SaveEvery = previewEvery };
        StylizeResult result;
        try
        {
            result = Engine.RunAsync(contentPath, [.. stylePaths.Select(p => (ImageInput)p)], run, progress, preview, cancellation).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Stopped before the first iteration: nothing ran, nothing is written.
            return new EngineOutcome(true, 0, 0, options.Seed ?? 0, null);
        }

        using (result)
        {
            int width = (int)result.Image.shape[3], height = (int)result.Image.shape[2];
            if (result.Cancelled)
            {
                return new EngineOutcome(true, width, height, result.Seed, result.History.LastOrDefault());
            }

            ImageIO.Save(result.Image, outputPath);
            return new EngineOutcome(false, width, height, result.Seed, result.History.LastOrDefault());
        }
    }

    /// <summary>A copy the caller owns: outside any dispose scope of the optimisation loop, which would free it at the end of the scale.</summary>
    public static Tensor Copy(Tensor image)
    {
        using Tensor detached = image.detach();
        return detached.clone().DetachFromDisposeScope();
    }

    /// <summary>A [1,3,H,W] image tensor as JPEG bytes (for previews).</summary>
    public static byte[] EncodeJpeg(Tensor image, int quality = 85)
    {
        using SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24> img = ImageIO.ToImage(image);
        using var stream = new MemoryStream();
        img.Save(stream, new SixLabors.ImageSharp.Formats.Jpeg.JpegEncoder { Quality = quality });
        return stream.ToArray();
    }

    /// <summary>Re-encodes a stored PNG result as JPEG (the Download JPEG button).</summary>
    public static byte[] PngFileToJpeg(string path, int quality = 92)
    {
        using var img = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(path);
        using var stream = new MemoryStream();
        img.Save(stream, new SixLabors.ImageSharp.Formats.Jpeg.JpegEncoder { Quality = quality });
        return stream.ToArray();
    }
}
