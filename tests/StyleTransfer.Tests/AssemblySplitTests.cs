using StyleTransfer.Diagnostics;
using StyleTransfer.Experiments;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>
/// The core library (the StyleTransfer package) depends on TorchSharp and ImageSharp only:
/// experiments, diagnostics, contact sheets and loss plots live in StyleTransfer.Diagnostics, and
/// the networks report their convolutions through <see cref="ConvHook"/> instead of calling the
/// FLOP counter.
/// </summary>
public class AssemblySplitTests
{
    [Fact]
    public void TheCoreAssemblyReferencesNeitherScottPlotNorSkiaSharp()
    {
        System.Reflection.Assembly core = typeof(StyleTransferEngine).Assembly;
        System.Reflection.Assembly diagnostics = typeof(LossPlot).Assembly;
        Assert.Equal("StyleTransfer", core.GetName().Name);
        Assert.Equal("StyleTransfer.Diagnostics", diagnostics.GetName().Name);

        string[] coreReferences = [.. core.GetReferencedAssemblies().Select(a => a.Name!)];
        Assert.Contains("TorchSharp", coreReferences);
        Assert.Contains("SixLabors.ImageSharp", coreReferences);
        Assert.DoesNotContain("ScottPlot", coreReferences);
        Assert.DoesNotContain("SkiaSharp", coreReferences);
        Assert.DoesNotContain("StyleTransfer.Diagnostics", coreReferences);

        // The moved code is what uses them.
        string[] diagnosticsReferences = [.. diagnostics.GetReferencedAssemblies().Select(a => a.Name!)];
        Assert.Contains("ScottPlot", diagnosticsReferences);
        Assert.Contains("SkiaSharp", diagnosticsReferences);
        Assert.Contains("StyleTransfer", diagnosticsReferences);
    }

    [Fact]
    public void ExperimentsDiagnosticsAndSheetsLiveInTheDiagnosticsAssemblyAndAreInternal()
    {
        System.Reflection.Assembly diagnostics = typeof(LossPlot).Assembly;
        Assert.All(
            new[] { typeof(ConvFlopCounter), typeof(Benchmark), typeof(ConvProfile), typeof(FmaPeak), typeof(ImageMetrics), typeof(StyleLossMeter), typeof(Experiment), typeof(RunLog), typeof(ContactSheet) },
            t => Assert.Same(diagnostics, t.Assembly));
        Assert.Empty(diagnostics.GetExportedTypes());
        Assert.Empty(typeof(StyleTransferEngine).Assembly.GetTypes().Where(t => t.Namespace is "StyleTransfer.Diagnostics" or "StyleTransfer.Experiments").Select(t => t.FullName));
    }

    [Fact]
    public void TheConvHookSeesEachConvolutionOnlyWhileInstalled()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var gen = new Generator(3);
        var conv = new FoldedConv(torch.randn(new long[] { 4, 3, 3, 3 }, generator: gen), torch.zeros(4));
        Tensor x = torch.randn(new long[] { 1, 3, 8, 8 }, generator: gen);

        var seen = new Recorder();
        conv.Apply(x, padding: 1); // nothing installed: no one sees it
        using (ConvHook.Install(seen))
        {
            conv.Apply(x, stride: 2, padding: 1);

            // A measurement inside takes the hook over and gives it back: 2 FLOP × 4·8·8 outputs × 3·3·3.
            Assert.Equal(2.0 * 4 * 8 * 8 * 27, ConvFlopCounter.Measure(() => conv.Apply(x, padding: 1)));
            conv.Apply(x, padding: 0);
        }

        conv.Apply(x, padding: 1);
        Assert.Equal(["1x4x4x4 w4x3x3x3", "1x4x6x6 w4x3x3x3"], seen.Calls);
        Assert.Equal(0.0, ConvFlopCounter.Measure(() => { }));
    }

    private sealed class Recorder : IConvObserver
    {
        public List<string> Calls { get; } = [];

        public void OnConv(Tensor output, Tensor weight) =>
            Calls.Add($"{string.Join('x', output.shape)} w{string.Join('x', weight.shape)}");
    }
}
