using StyleTransfer.Networks;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Tests;

/// <summary>The networks' max pooling (winners from the channels-last kernel, values gathered) against libtorch's <c>max_pool2d</c>.</summary>
public sealed class MaxPoolingTests
{
    public MaxPoolingTests() => TorchRuntime.EnsureLoaded();

    [Theory]
    [InlineData(3, 2, 1, false, 33, 40)] // ResNet-18/50's stem pooling, odd and even sides
    [InlineData(3, 2, 0, false, 27, 27)] // AlexNet
    [InlineData(3, 2, 0, true, 28, 21)]  // GoogLeNet's stage pooling (ceil mode: the last window hangs over)
    [InlineData(3, 1, 1, true, 14, 9)]   // GoogLeNet's inception branch
    [InlineData(2, 2, 0, false, 16, 12)] // VGG-19 --pooling max (NCHW)
    public void ValuesAndGradientsAreMaxPoolingsExactly(int kernel, int stride, int padding, bool ceilMode, int height, int width)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(5);
        // Rounded to a coarse grid so that windows hold ties, and ReLU-like zeros; one NaN.
        Tensor input = (torch.randn(new long[] { 1, 6, height, width }, generator: gen) * 2).round_().clamp_min_(0);
        input[0, 2, 3, 4] = float.NaN;
        Tensor upstream = torch.randn(F.max_pool2d(input, [kernel, kernel], [stride, stride], [padding, padding], ceil_mode: ceilMode).shape, generator: gen);

        Tensor a = input.clone().requires_grad_(true);
        Tensor expected = F.max_pool2d(a, [kernel, kernel], [stride, stride], [padding, padding], ceil_mode: ceilMode);
        Tensor b = input.clone().requires_grad_(true);
        Tensor pooled = MaxPooling.Pool2d(b, [kernel, kernel], [stride, stride], [padding, padding], ceilMode);

        Assert.Equal(expected.shape, pooled.shape);
        Assert.True(pooled.is_contiguous());
        Assert.True(Same(expected.isnan(), pooled.isnan()));
        Assert.True(Same(expected.nan_to_num(-1), pooled.nan_to_num(-1)));
        (expected * upstream).nansum().backward();
        (pooled * upstream).nansum().backward();
        Assert.True(Same(a.grad!, b.grad!), $"largest gradient difference {(a.grad! - b.grad!).abs().max().ToDouble()}");
    }

    [Fact]
    public void ANonContiguousMapAndAChannelsLastMapPoolAlike()
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(6);
        Tensor wide = torch.randn(new long[] { 1, 4, 20, 30 }, generator: gen);
        Tensor narrowed = wide.narrow(3, 3, 21); // a crop: strided rows
        Tensor expected = F.max_pool2d(narrowed, [3, 3], [2, 2], [1, 1]);
        Assert.True(Same(expected, MaxPooling.Pool2d(narrowed, [3, 3], [2, 2], [1, 1])));
        Tensor channelsLast = narrowed.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        Assert.True(Same(expected, MaxPooling.Pool2d(channelsLast, [3, 3], [2, 2], [1, 1])));
    }

    private static bool Same(Tensor x, Tensor y) => x.shape.SequenceEqual(y.shape) && x.eq(y).all().ToBoolean();
}
