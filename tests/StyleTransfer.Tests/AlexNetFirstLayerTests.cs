using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Tests;

/// <summary>
/// AlexNet's first layer alone (3 input channels, 11×11, stride 4, padding 2): the unfold + matmul
/// the network computes it with, forward and input gradient, against conv2d in float64 (which
/// libtorch runs with its own slow_conv2d, not oneDNN, whose avx512_core backward_data kernel for
/// this shape is wrong on AMD Zen 4). Widths: the fixture's 8 and the real network's 64.
/// </summary>
public sealed class AlexNetFirstLayerTests
{
    public AlexNetFirstLayerTests()
    {
        TorchRuntime.EnsureLoaded();
        TorchRuntime.SetThreads(2);
    }

    [Theory]
    [InlineData(8, FirstConvPadding.Zero)]
    [InlineData(64, FirstConvPadding.Zero)]
    [InlineData(64, FirstConvPadding.Replicate)]
    public void ForwardAndInputGradientMatchAFloat64Convolution(long width, FirstConvPadding mode)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(7);
        Tensor w = torch.randn(new long[] { width, 3, 11, 11 }, generator: gen).mul_(0.05);
        Tensor b = torch.randn(new long[] { width }, generator: gen);
        Tensor x0 = torch.randn(new long[] { 2, 3, 67, 90 }, generator: gen);
        var conv = new FoldedConv(w, b);

        Tensor x = x0.clone().requires_grad_(true);
        Tensor y = AlexNet.FirstConv(conv, x, mode);
        Tensor r = torch.randn(y.shape, generator: gen);
        (y * r).sum().backward();

        Tensor x64 = x0.to_type(ScalarType.Float64).requires_grad_(true);
        Tensor padded = mode == FirstConvPadding.Replicate ? F.pad(x64, [2, 2, 2, 2], PaddingModes.Replicate) : x64;
        Tensor y64 = F.conv2d(padded, w.to_type(ScalarType.Float64), b.to_type(ScalarType.Float64), strides: [4, 4], padding: mode == FirstConvPadding.Replicate ? [0, 0] : [2, 2]);
        (y64 * r.to_type(ScalarType.Float64)).sum().backward();

        Assert.Equal(new long[] { 2, width, 16, 21 }, y.shape);
        Assert.InRange(TensorCompare.MaxRelativeError(y64, y), 0, 1e-5);
        Assert.InRange(TensorCompare.MaxRelativeError(x64.grad!, x.grad!), 0, 1e-5);
    }
}
