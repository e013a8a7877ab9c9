using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using static TorchSharp.torch;

namespace StyleTransfer.Diagnostics;

/// <summary>
/// The style loss Σ_l w_l E_l of finished images against one style image, as a run reports it at
/// its first iteration when the image is its content image and start point (<c>-n 1 --init
/// content</c>): the network and style image loaded once, as <see cref="Stylizer.StylizeFiles(string, string, string, StyleTransferOptions, IProgress{IterationReport}?, CancellationToken, Checkpoint?, string?)"/>
/// loads them (style long edge = --size × --style-scale, a small style image at its own size with
/// <see cref="SmallStyleMode.Native"/>, and the style layers it keeps), the loss from <see cref="Stylizer.MeasureStyleLoss"/>.
/// </summary>
internal sealed class StyleLossMeter : IDisposable
{
    private readonly IFeatureNetwork network;
    private readonly Tensor style;
    private readonly StyleTransferOptions options;

    /// <summary>Loads <paramref name="stylePath"/> and the network the (validated) <paramref name="options"/> name.</summary>
    public StyleLossMeter(string stylePath, StyleTransferOptions options)
    {
        TorchRuntime.SetThreads(options.Threads);
        Device device = TorchRuntime.ResolveDevice(options.Device);
        style = ImageIO.LoadTensor(stylePath, "style image", Stylizer.StyleEdge(options, stylePath, "style image"));
        try
        {
            network = NetworkFactory.Create(options, device);
            this.options = SmallStyles.Fit(options, network.Name, [style], options.Size);
        }
        catch
        {
            style.Dispose();
            throw;
        }
    }

    /// <summary>The style image as loaded: [1,3,H,W].</summary>
    public (int Width, int Height) StyleSize => ((int)style.shape[3], (int)style.shape[2]);

    /// <summary>The style loss of a [1,3,H,W] RGB image in [0,1] at its own size.</summary>
    public double Measure(Tensor image) => Stylizer.MeasureStyleLoss(network, image, style, options);

    public void Dispose()
    {
        network.Dispose();
        style.Dispose();
    }
}
