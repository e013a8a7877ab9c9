using static TorchSharp.torch;

namespace StyleTransfer.Optimization;

/// <summary>
/// What a caller may add to one <see cref="Stylizer.Run(Tensor, IReadOnlyList{Tensor}, Networks.IFeatureNetwork, StyleTransferOptions, IReadOnlyList{Tensor?}?, IProgress{IterationReport}?, CancellationToken, Action{int, Tensor}?, Action{Checkpoint}?, Checkpoint?, RunHooks?)"/>
/// (a video frame: the warped previous result and the temporal loss).
/// </summary>
/// <param name="Start">
/// The starting image ([1,3,H,W], values in [0,1]) instead of --init; resized bilinearly to the
/// first scale. In the space that is optimised (the luminance, replicated, with --preserve-color
/// luminance).
/// </param>
/// <param name="PixelLoss">
/// An extra term added to the total at the last scale (the output's size): given the image being
/// optimised ([1,3,H,W] on the network's device), a scalar tensor, already weighted.
/// </param>
internal sealed record RunHooks(Tensor? Start = null, Func<Tensor, Tensor>? PixelLoss = null);
