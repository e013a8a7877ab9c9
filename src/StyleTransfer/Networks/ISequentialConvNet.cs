using static TorchSharp.torch;

namespace StyleTransfer.Networks;

/// <summary>
/// A chain of convolutions in which only ReLUs and pooling stand between one convolution and the
/// next: the shape the paper's weight normalisation needs (VGG, AlexNet's feature stack).
/// </summary>
internal interface ISequentialConvNet
{
    int ConvCount { get; }

    /// <summary>The weight [out,in,kh,kw] and bias [out] of convolution <paramref name="index"/>, modified in place by normalisation.</summary>
    (Tensor Weight, Tensor Bias) Conv(int index);

    /// <summary>The rectified output of convolution <paramref name="index"/> for an RGB [0,1] image.</summary>
    Tensor ActivationAfterConv(Tensor image, int index);
}
