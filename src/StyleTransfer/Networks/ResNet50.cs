using System.Globalization;
using StyleTransfer.Formats;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>
/// ResNet-50 (He et al. 2016) as torchvision builds it, without global pooling and classifier:
/// stem (7×7/2 conv, batch norm, ReLU, 3×3/2 max pool with padding 1), then 3, 4, 6 and 3 bottleneck
/// blocks (1×1 conv, 3×3 conv, 1×1 conv to 4× the width, each with a batch norm, ReLUs after the
/// first two; a 1×1 conv + batch norm projection shortcut where the shape changes; the residual add,
/// then a ReLU). Stages 2–4 halve the resolution in the first block's 3×3 convolution and its
/// projection (torchvision's "v1.5"). Batch norms (ε = 1e-5) are folded into the convolutions (running
/// statistics). Weights follow torchvision's state-dict layout (<c>conv1.weight</c>, <c>bn1.*</c>,
/// <c>layer1.0.conv1.weight</c>, <c>layer1.0.downsample.0.weight</c> …, the file
/// <c>resnet50-0676ba61.pth</c>); <c>fc.*</c> is skipped; widths are read from the tensors.
/// Taps, in forward order: <c>conv1</c> (stem conv + bn, before its ReLU), <c>relu1</c>,
/// <c>pool1</c>, then for stage s = 1…4 and block b (from 0) <c>layer{s}_{b}_relu1</c>,
/// <c>layer{s}_{b}_relu2</c> (the block's inner ReLUs) and <c>layer{s}_{b}</c> (after the add and
/// ReLU); <c>layer{s}</c> is the stage's last block output again. Input: ImageNet mean/std on RGB [0,1].
/// </summary>
internal sealed class ResNet50 : IFeatureNetwork
{
    /// <summary>torchvision's file name for the ImageNet weights (IMAGENET1K_V1).</summary>
    public const string WeightsFileName = "resnet50-0676ba61.pth";

    /// <summary>torchvision's BatchNorm2d ε.</summary>
    public const double BatchNormEps = 1e-5;

    private const string Layout = "torchvision's ResNet-50 layout, e.g. " + WeightsFileName;

    /// <summary>Bottleneck blocks per stage.</summary>
    public static readonly IReadOnlyList<int> StageBlocks = [3, 4, 6, 3];

    private static readonly int[] ImageNetPlanes = [64, 128, 256, 512];

    private readonly FoldedConv stem;
    private readonly Block[] blocks;
    private readonly List<string> taps;
    private readonly Dictionary<string, int> tapIndex;
    private Tensor mean;
    private Tensor std;

    private ResNet50(FoldedConv stem, Block[] blocks)
    {
        this.stem = stem;
        this.blocks = blocks;
        mean = torch.tensor(NetworkTensors.ImageNetMean, new long[] { 1, 3, 1, 1 }).DetachFromDisposeScope();
        std = torch.tensor(NetworkTensors.ImageNetStd, new long[] { 1, 3, 1, 1 }).DetachFromDisposeScope();
        taps = ["conv1", "relu1", "pool1"];
        foreach (Block b in blocks)
        {
            taps.Add(b.Name + "_relu1");
            taps.Add(b.Name + "_relu2");
            taps.Add(b.Name);
            if (b.LastOfStage)
            {
                taps.Add(b.StageName);
            }
        }

        tapIndex = taps.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i, StringComparer.Ordinal);
    }

    public string Name => "resnet50";

    public FirstConvPadding Padding { get; set; }

    public IReadOnlyList<string> TapNames => taps;

    public Device Device => stem.Weight.device;

    /// <summary>Output channels of the stem and of each stage (64, 256, 512, 1024, 2048 for ImageNet's).</summary>
    public IReadOnlyList<long> Widths =>
        [stem.OutChannels, .. blocks.Where(b => b.LastOfStage).Select(b => b.Conv3.OutChannels)];

    /// <summary>Loads a torchvision-layout ResNet-50 state dict from a .pth or .safetensors file.</summary>
    public static ResNet50 Load(string path) =>
        StateDictFile.Build(path, dict => FromStateDict(dict, path));

    /// <summary>Builds the network from state-dict tensors (copied), checking the layout; <paramref name="source"/> names the file in errors.</summary>
    public static ResNet50 FromStateDict(IReadOnlyDictionary<string, Tensor> dict, string source)
    {
        var reader = new TorchvisionStateDict(dict, source, Layout);
        var owned = new List<FoldedConv>();
        FoldedConv ConvBn(string conv, string bn, long inChannels, long kernel)
        {
            FoldedConv c = new(reader.ConvBn(conv, bn, inChannels, kernel, BatchNormEps));
            owned.Add(c);
            return c;
        }

        try
        {
            if (!reader.Has("layer1.0.conv3.weight") && reader.Has("layer1.0.conv2.weight"))
            {
                throw new StyleTransferException(
                    $"weights file '{source}' has no tensor 'layer1.0.conv3.weight' (basic blocks, not bottlenecks: is it a ResNet-18 or -34? expected {Layout})");
            }

            FoldedConv stem = ConvBn("conv1", "bn1", 3, 7);
            long channels = stem.OutChannels;
            var blocks = new List<Block>();
            for (int s = 0; s < StageBlocks.Count; s++)
            {
                for (int b = 0; b < StageBlocks[s]; b++)
                {
                    string p = string.Create(CultureInfo.InvariantCulture, $"layer{s + 1}.{b}");
                    long stride = s > 0 && b == 0 ? 2 : 1;
                    FoldedConv c1 = ConvBn(p + ".conv1", p + ".bn1", channels, 1);
                    FoldedConv c2 = ConvBn(p + ".conv2", p + ".bn2", c1.OutChannels, 3);
                    FoldedConv c3 = ConvBn(p + ".conv3", p + ".bn3", c2.OutChannels, 1);
                    FoldedConv? down = null;
                    if (stride != 1 || c3.OutChannels != channels || reader.Has(p + ".downsample.0.weight"))
                    {
                        down = ConvBn(p + ".downsample.0", p + ".downsample.1", channels, 1);
                        if (down.OutChannels != c3.OutChannels)
                        {
                            throw new StyleTransferException(
                                $"weights file '{source}': tensor '{p}.downsample.0.weight' has {down.OutChannels} output channels, but '{p}.conv3.weight' has {c3.OutChannels}");
                        }
                    }

                    blocks.Add(new Block(c1, c2, c3, down, stride, s + 1, b, b == StageBlocks[s] - 1));
                    channels = c3.OutChannels;
                }
            }

            reader.CheckNothingElse(["fc."], "not torchvision's ResNet-50 layout; is it a deeper ResNet?");
            return new ResNet50(stem, [.. blocks]);
        }
        catch
        {
            owned.ForEach(c => c.Dispose());
            throw;
        }
    }

    /// <summary>A network with random weights (He initialisation, zero bias); <paramref name="widthDivisor"/> narrows every layer.</summary>
    public static ResNet50 CreateRandom(int widthDivisor = 1, long seed = 0)
    {
        using var gen = new Generator((ulong)seed);
        FoldedConv stem = FoldedConv.Random(Math.Max(1, 64 / widthDivisor), 3, 7, gen);
        long channels = stem.OutChannels;
        var blocks = new List<Block>();
        for (int s = 0; s < StageBlocks.Count; s++)
        {
            long planes = Math.Max(1, ImageNetPlanes[s] / widthDivisor);
            for (int b = 0; b < StageBlocks[s]; b++)
            {
                long stride = s > 0 && b == 0 ? 2 : 1;
                FoldedConv c1 = FoldedConv.Random(planes, channels, 1, gen);
                FoldedConv c2 = FoldedConv.Random(planes, planes, 3, gen);
                FoldedConv c3 = FoldedConv.Random(planes * 4, planes, 1, gen);
                FoldedConv? down = b == 0 ? FoldedConv.Random(planes * 4, channels, 1, gen) : null;
                blocks.Add(new Block(c1, c2, c3, down, stride, s + 1, b, b == StageBlocks[s] - 1));
                channels = planes * 4;
            }
        }

        return new ResNet50(stem, [.. blocks]);
    }

    public void MoveTo(Device device, ScalarType? dtype = null)
    {
        foreach (FoldedConv c in AllConvs())
        {
            c.MoveTo(device, dtype);
        }

        mean = NetworkTensors.Move(mean, device, dtype);
        std = NetworkTensors.Move(std, device, dtype);
    }

    public Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> requested)
    {
        int deepest = NetworkTensors.Deepest(requested, tapIndex, Name, taps);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        if (deepest < 0)
        {
            return result;
        }

        // Returns true once the deepest requested tap has been produced.
        bool Emit(string name, Tensor t)
        {
            if (requested.Contains(name))
            {
                result[name] = t;
            }

            return tapIndex[name] >= deepest;
        }

        Tensor x = (image.to(mean.dtype) - mean) / std;
        NetworkTensors.RequireFits(x, 7, 3, Name, "conv1");
        x = stem.Apply(x, stride: 2, padding: 3, Padding);
        bool keepConv = requested.Contains("conv1");
        if (Emit("conv1", x))
        {
            return result;
        }

        // In place when the pre-activation is not a tap: saves one activation.
        x = F.relu(x, inplace: !keepConv);
        if (Emit("relu1", x))
        {
            return result;
        }

        x = MaxPooling.Pool2d(x, [3, 3], [2, 2], [1, 1]);
        if (Emit("pool1", x))
        {
            return result;
        }

        foreach (Block b in blocks)
        {
            Tensor y = b.Conv1.Apply(x).relu_();
            if (Emit(b.Name + "_relu1", y))
            {
                return result;
            }

            y = b.Conv2.Apply(y, b.Stride, padding: 1).relu_();
            if (Emit(b.Name + "_relu2", y))
            {
                return result;
            }

            Tensor z = b.Conv3.Apply(y);
            Tensor shortcut = b.Downsample?.Apply(x, b.Stride) ?? x;
            x = z.add_(shortcut).relu_();
            if (Emit(b.Name, x) || (b.LastOfStage && Emit(b.StageName, x)))
            {
                return result;
            }
        }

        return result;
    }

    public void Dispose()
    {
        foreach (FoldedConv c in AllConvs())
        {
            c.Dispose();
        }

        mean.Dispose();
        std.Dispose();
    }

    private IEnumerable<FoldedConv> AllConvs() => blocks.SelectMany(b => b.Convs).Prepend(stem);

    private sealed class Block(FoldedConv conv1, FoldedConv conv2, FoldedConv conv3, FoldedConv? downsample, long stride, int stage, int index, bool lastOfStage)
    {
        public FoldedConv Conv1 { get; } = conv1;

        public FoldedConv Conv2 { get; } = conv2;

        public FoldedConv Conv3 { get; } = conv3;

        public FoldedConv? Downsample { get; } = downsample;

        public long Stride { get; } = stride;

        public string Name { get; } = string.Create(CultureInfo.InvariantCulture, $"layer{stage}_{index}");

        public string StageName { get; } = string.Create(CultureInfo.InvariantCulture, $"layer{stage}");

        public bool LastOfStage { get; } = lastOfStage;

        public IEnumerable<FoldedConv> Convs => Downsample == null ? [Conv1, Conv2, Conv3] : [Conv1, Conv2, Conv3, Downsample];
    }
}
