using StyleTransfer.Formats;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>
/// GoogLeNet (Inception v1, Szegedy et al. 2015) as torchvision builds it, without its classifier
/// and auxiliary heads: stem (7×7/2 conv, 3×3/2 max pool, 1×1 conv, 3×3 conv, 3×3/2 max pool), nine
/// inception modules with a 3×3/2 max pool after 3b and a 2×2/2 one after 4e. Each inception module
/// concatenates four branches: 1×1; 1×1 reduction then 3×3; 1×1 reduction then 3×3 (torchvision's
/// "5×5" branch is 3×3, a known quirk its weights were trained with); 3×3/1 max pool then 1×1. Every
/// convolution is torchvision's BasicConv2d (bias-free conv, batch norm with ε = 0.001, ReLU); the batch
/// norms are folded into the convolutions (running statistics). Max pools use ceil mode, as torchvision.
/// Weights follow torchvision's state-dict layout (<c>conv1.conv.weight</c>, <c>conv1.bn.*</c>,
/// <c>inception3a.branch2.1.conv.weight</c> …, the file <c>googlenet-1378be20.pth</c>); <c>aux1.*</c>,
/// <c>aux2.*</c> and <c>fc.*</c> are skipped; widths are read from the tensors.
/// Taps (all after ReLU): <c>conv1</c>, <c>maxpool1</c>, <c>conv2</c>, <c>conv3</c>, <c>maxpool2</c>,
/// <c>inception3a</c>, <c>inception3b</c>, <c>maxpool3</c>, <c>inception4a</c> … <c>inception4e</c>,
/// <c>maxpool4</c>, <c>inception5a</c>, <c>inception5b</c>.
/// </summary>
/// <remarks>
/// Preprocessing: torchvision feeds ImageNet-normalised input, and when it loads the pretrained
/// googlenet file it sets <c>transform_input=True</c>, which maps each normalised channel back with
/// x·σ_c/0.5 + (μ_c − 0.5)/0.5: the composition is (x − 0.5)/0.5, i.e. RGB [0,1] → [−1,1] (the
/// weights were ported from a network trained on that range). This network applies that map.
/// </remarks>
internal sealed class GoogLeNet : IFeatureNetwork
{
    /// <summary>torchvision's file name for the ImageNet weights.</summary>
    public const string WeightsFileName = "googlenet-1378be20.pth";

    /// <summary>torchvision's BasicConv2d batch-norm ε.</summary>
    public const double BatchNormEps = 0.001;

    private const string Layout = "torchvision's GoogLeNet layout, e.g. " + WeightsFileName;

    /// <summary>Inception modules with torchvision's widths (1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool proj).</summary>
    private static readonly (string Name, int[] Widths)[] Inceptions =
    [
        ("inception3a", [64, 96, 128, 16, 32, 32]),
        ("inception3b", [128, 128, 192, 32, 96, 64]),
        ("inception4a", [192, 96, 208, 16, 48, 64]),
        ("inception4b", [160, 112, 224, 24, 64, 64]),
        ("inception4c", [128, 128, 256, 24, 64, 64]),
        ("inception4d", [112, 144, 288, 32, 64, 64]),
        ("inception4e", [256, 160, 320, 32, 128, 128]),
        ("inception5a", [256, 160, 320, 32, 128, 128]),
        ("inception5b", [384, 192, 384, 48, 128, 128]),
    ];

    /// <summary>Forward order of the stages; each is a tap.</summary>
    private static readonly string[] Stages =
    [
        "conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
        "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4", "inception5a", "inception5b",
    ];

    private readonly FoldedConv conv1;
    private readonly FoldedConv conv2;
    private readonly FoldedConv conv3;
    private readonly Dictionary<string, Inception> inceptions;
    private readonly Dictionary<string, int> tapIndex;
    private Tensor mean;
    private Tensor std;

    private GoogLeNet(FoldedConv conv1, FoldedConv conv2, FoldedConv conv3, Dictionary<string, Inception> inceptions)
    {
        this.conv1 = conv1;
        this.conv2 = conv2;
        this.conv3 = conv3;
        this.inceptions = inceptions;
        mean = torch.full(new long[] { 1, 3, 1, 1 }, 0.5f).DetachFromDisposeScope();
        std = torch.full(new long[] { 1, 3, 1, 1 }, 0.5f).DetachFromDisposeScope();
        tapIndex = Stages.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i, StringComparer.Ordinal);
    }

    public string Name => "googlenet";

    public FirstConvPadding Padding { get; set; }

    public IReadOnlyList<string> TapNames => Stages;

    public Device Device => conv1.Weight.device;

    /// <summary>Output channels of every tap's feature map, in tap order.</summary>
    public IReadOnlyList<long> Widths
    {
        get
        {
            var widths = new List<long>();
            long last = 0;
            foreach (string stage in Stages)
            {
                last = stage switch
                {
                    "conv1" => conv1.OutChannels,
                    "conv2" => conv2.OutChannels,
                    "conv3" => conv3.OutChannels,
                    _ when inceptions.TryGetValue(stage, out Inception? m) => m.OutChannels,
                    _ => last,
                };
                widths.Add(last);
            }

            return widths;
        }
    }

    /// <summary>Loads a torchvision-layout GoogLeNet state dict from a .pth or .safetensors file.</summary>
    public static GoogLeNet Load(string path) =>
        StateDictFile.Build(path, dict => FromStateDict(dict, path));

    /// <summary>Builds the network from state-dict tensors (copied), checking the layout; <paramref name="source"/> names the file in errors.</summary>
    public static GoogLeNet FromStateDict(IReadOnlyDictionary<string, Tensor> dict, string source)
    {
        var reader = new TorchvisionStateDict(dict, source, Layout);
        var owned = new List<FoldedConv>();
        FoldedConv Basic(string name, long inChannels, long kernel)
        {
            FoldedConv c = new(reader.ConvBn(name + ".conv", name + ".bn", inChannels, kernel, BatchNormEps));
            owned.Add(c);
            return c;
        }

        try
        {
            FoldedConv c1 = Basic("conv1", 3, 7);
            FoldedConv c2 = Basic("conv2", c1.OutChannels, 1);
            FoldedConv c3 = Basic("conv3", c2.OutChannels, 3);
            long channels = c3.OutChannels;
            var modules = new Dictionary<string, Inception>(StringComparer.Ordinal);
            foreach ((string name, _) in Inceptions)
            {
                FoldedConv b1 = Basic($"{name}.branch1", channels, 1);
                FoldedConv b2a = Basic($"{name}.branch2.0", channels, 1);
                FoldedConv b2b = Basic($"{name}.branch2.1", b2a.OutChannels, 3);
                FoldedConv b3a = Basic($"{name}.branch3.0", channels, 1);
                FoldedConv b3b = Basic($"{name}.branch3.1", b3a.OutChannels, 3);
                FoldedConv b4 = Basic($"{name}.branch4.1", channels, 1);
                var m = new Inception(b1, b2a, b2b, b3a, b3b, b4);
                owned.Add(m.Reductions);
                modules[name] = m;
                channels = m.OutChannels;
            }

            reader.CheckNothingElse(["aux1.", "aux2.", "fc."], "not torchvision's GoogLeNet layout");

            // The three 1×1 convolutions that read a module's input now live in its fused Reductions.
            foreach (Inception m in modules.Values)
            {
                m.DisposeParts();
            }

            return new GoogLeNet(c1, c2, c3, modules);
        }
        catch
        {
            owned.ForEach(c => c.Dispose());
            throw;
        }
    }

    /// <summary>A network with random weights (He initialisation, zero bias); <paramref name="widthDivisor"/> narrows every layer.</summary>
    public static GoogLeNet CreateRandom(int widthDivisor = 1, long seed = 0)
    {
        using var gen = new Generator((ulong)seed);
        long W(int w) => Math.Max(1, w / widthDivisor);
        FoldedConv c1 = FoldedConv.Random(W(64), 3, 7, gen);
        FoldedConv c2 = FoldedConv.Random(W(64), c1.OutChannels, 1, gen);
        FoldedConv c3 = FoldedConv.Random(W(192), c2.OutChannels, 3, gen);
        long channels = c3.OutChannels;
        var modules = new Dictionary<string, Inception>(StringComparer.Ordinal);
        foreach ((string name, int[] w) in Inceptions)
        {
            var m = new Inception(
                FoldedConv.Random(W(w[0]), channels, 1, gen),
                FoldedConv.Random(W(w[1]), channels, 1, gen),
                FoldedConv.Random(W(w[2]), W(w[1]), 3, gen),
                FoldedConv.Random(W(w[3]), channels, 1, gen),
                FoldedConv.Random(W(w[4]), W(w[3]), 3, gen),
                FoldedConv.Random(W(w[5]), channels, 1, gen));
            m.DisposeParts();
            modules[name] = m;
            channels = m.OutChannels;
        }

        return new GoogLeNet(c1, c2, c3, modules);
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
        int deepest = NetworkTensors.Deepest(requested, tapIndex, Name, Stages);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Tensor x = (image.to(mean.dtype) - mean) / std;
        for (int i = 0; i <= deepest; i++)
        {
            string stage = Stages[i];
            x = stage switch
            {
                "conv1" => Basic(conv1, x, stride: 2, padding: 3, stage, Padding),
                "conv2" => Basic(conv2, x, stride: 1, padding: 0, stage),
                "conv3" => Basic(conv3, x, stride: 1, padding: 1, stage),
                "maxpool4" => MaxPool(x, 2, stage),
                _ when stage.StartsWith("maxpool", StringComparison.Ordinal) => MaxPool(x, 3, stage),
                _ => inceptions[stage].Apply(x, Name, stage),
            };
            if (requested.Contains(stage))
            {
                result[stage] = x;
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

    private IEnumerable<FoldedConv> AllConvs() => inceptions.Values.SelectMany(m => m.Convs).Prepend(conv3).Prepend(conv2).Prepend(conv1);

    /// <summary>Conv + folded batch norm, then ReLU in place (no pre-activation tap).</summary>
    private Tensor Basic(FoldedConv c, Tensor x, long stride, long padding, string stage, FirstConvPadding mode = FirstConvPadding.Zero)
    {
        NetworkTensors.RequireFits(x, c.Kernel, padding, Name, stage);
        return c.Apply(x, stride, padding, mode).relu_();
    }

    /// <summary>torchvision's MaxPool2d(k, stride=2, ceil_mode=True).</summary>
    private Tensor MaxPool(Tensor x, long kernel, string stage)
    {
        NetworkTensors.RequireFits(x, kernel, 0, Name, stage);
        return MaxPooling.Pool2d(x, [kernel, kernel], [2, 2], [0, 0], ceilMode: true);
    }

    /// <summary>
    /// One inception module. The three 1×1 convolutions that read the module's input (branch 1 and
    /// the two reductions) run as one convolution, whose output is split by channel.
    /// </summary>
    private sealed class Inception
    {
        private readonly long[] splits;
        private FoldedConv[]? parts;

        public Inception(FoldedConv b1, FoldedConv b2a, FoldedConv b2b, FoldedConv b3a, FoldedConv b3b, FoldedConv b4)
        {
            parts = [b1, b2a, b3a];
            Reductions = FoldedConv.Concat(parts);
            splits = [b1.OutChannels, b2a.OutChannels, b3a.OutChannels];
            Branch2 = b2b;
            Branch3 = b3b;
            Branch4 = b4;
        }

        /// <summary>branch1, branch2.0 and branch3.0 as one 1×1 convolution.</summary>
        public FoldedConv Reductions { get; }

        public FoldedConv Branch2 { get; }

        public FoldedConv Branch3 { get; }

        public FoldedConv Branch4 { get; }

        public long OutChannels => splits[0] + Branch2.OutChannels + Branch3.OutChannels + Branch4.OutChannels;

        public IEnumerable<FoldedConv> Convs => [Reductions, Branch2, Branch3, Branch4];

        /// <summary>Frees the separate 1×1 convolutions once they are fused into <see cref="Reductions"/>.</summary>
        public void DisposeParts()
        {
            foreach (FoldedConv c in parts ?? [])
            {
                c.Dispose();
            }

            parts = null;
        }

        public Tensor Apply(Tensor x, string network, string stage)
        {
            NetworkTensors.RequireFits(x, 3, 1, network, stage);
            Tensor reduced = Reductions.Apply(x).relu_();
            Tensor[] r = reduced.split(splits, 1);
            Tensor b2 = Branch2.Apply(r[1], padding: 1).relu_();
            Tensor b3 = Branch3.Apply(r[2], padding: 1).relu_();
            Tensor pooled = MaxPooling.Pool2d(x, [3, 3], [1, 1], [1, 1], ceilMode: true);
            Tensor b4 = Branch4.Apply(pooled).relu_();
            return torch.cat([r[0], b2, b3, b4], 1);
        }
    }
}
