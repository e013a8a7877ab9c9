using StyleTransfer.Imaging;
using StyleTransfer.Optimization;

namespace StyleTransfer.Batch;

/// <summary>What one render made: the output's bytes (PNG), the last losses, and the time in the optimiser.</summary>
public sealed record EngineOutcome(byte[] Png, int Iterations, double Total, double Content, double Style, double Tv, double OptimizeSeconds);

/// <summary>
/// The batch system's only door into the engine: everything it asks of the style-transfer library
/// (one render from two files to PNG bytes) goes through here, so a change of the library's entry
/// point is a change of this class alone.
/// </summary>
public static class EngineAdapter
{
    /// <summary>
    /// The process's engine: it loads each network once and keeps it, so a worker's renders after the
    /// first skip the network load (renders with the same network take turns).
    /// </summary>
    private static readonly StyleTransferEngine Engine = new();

    /// <summary>
    /// Renders <paramref name="contentPath"/> in the style of <paramref name="stylePath"/> with
    /// <paramref name="options"/> and returns the PNG bytes. Bad input and engine faults come out as
    /// <see cref="StyleTransferException"/> (one line); cancellation as <see cref="OperationCanceledException"/>.
    /// <paramref name="scratchDir"/> receives a temporary output, deleted before returning.
    /// </summary>
    public static EngineOutcome Render(string contentPath, string stylePath, StyleTransferOptions options, string scratchDir, CancellationToken cancellation)
    {
        TorchRuntime.EnsureLoaded();
        string output = Path.Combine(scratchDir, $"render-{Environment.ProcessId}-{Guid.NewGuid():N}.png");
        try
        {
            options = options with { SaveEvery = 0 };
            PrintOutput.CheckOutputPath(output, options.BitDepth);
            using StylizeResult result = Engine.RunAsync(contentPath, [stylePath], options, null, null, cancellation).GetAwaiter().GetResult();
            if (result.Cancelled)
            {
                throw new OperationCanceledException("render cancelled");
            }

            // As the CLI writes it: the bit depth asked for, the content's metadata.
            PrintOutput.Save(result.Image, output, options.BitDepth, contentPath);

            IterationReport? last = result.History.LastOrDefault();
            return new EngineOutcome(
                File.ReadAllBytes(output),
                last?.Iteration ?? 0,
                last?.Total ?? double.NaN,
                last?.Content ?? double.NaN,
                last?.Style ?? double.NaN,
                last?.Tv ?? double.NaN,
                result.History.Count == 0 ? 0 : last!.Elapsed.TotalSeconds);
        }
        finally
        {
            try
            {
                File.Delete(output);
            }
            catch (IOException)
            {
            }
        }
    }
}
