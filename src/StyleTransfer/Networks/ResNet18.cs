using System.Globalization;
using StyleTransfer.Formats;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace StyleTransfer.Networks;

/// <summary>
/// ResNet-18 (ImageNet) from the ONNX files of ML.NET's <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>
/// package (a CNTK export): <c>ResNet18.onnx</c> and the preprocessing graph <c>ResNetPreprocess.onnx</c>.
/// Only the convolutional part is used (no global pooling), so any input size works; batch norms are
/// folded into the convolutions (inference statistics). The layout is read from the graph's topology:
/// stem conv+bn, ReLU, max pool, then basic blocks (conv+bn, ReLU, conv+bn, add shortcut, ReLU) whose
/// shortcut is the identity or a conv+bn projection; a projection or a stride starts a new stage.
/// The CNTK model has 2, 2, 2 and 3 blocks per stage (22 convolutions, not torchvision's 20).
/// Taps, in forward order: <c>conv1</c> (stem conv+bn, before its ReLU), <c>relu1</c>, <c>pool1</c>,
/// then for stage s and block b (from 0) <c>layer{s}_{b}_relu1</c> (the block's inner ReLU) and
/// <c>layer{s}_{b}</c> (after the residual add and the final ReLU), and <c>layer{s}</c>, the stage's
/// last block output again.
/// </summary>
/// <remarks>
/// Preprocessing is read from ResNetPreprocess.onnx: RGB in 0..255 reordered to BGR, minus a 224×224
/// mean image (per pixel); at other sizes the mean image is resized bilinearly to the input.
/// Padding is the graph's explicit padding, asymmetric as CNTK exported it (e.g. 3 before and 2 after
/// for the 7×7 stride-2 stem). Where a stride-2 stage gets an odd size, the graph itself cannot run
/// (its Add would see ⌈n/2⌉ shortcut rows against ⌊n/2⌋ main-path rows); there the shortcut's extra
/// last row or column, the only one that the main path's padding leaves out, is dropped.
/// </remarks>
internal sealed class ResNet18 : IFeatureNetwork
{
    /// <summary>The file name of the network graph in the package and in <see cref="ModelsFolder"/>.</summary>
    public const string ModelFileName = "ResNet18.onnx";

    /// <summary>The file name of the preprocessing graph.</summary>
    public const string PreprocessFileName = "ResNetPreprocess.onnx";

    /// <summary>SHA-256 of <see cref="ModelFileName"/> in Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1.</summary>
    public const string ModelSha256 = "e2552f19db2dfdb01b3669537b6a0f1b44da38d18279535492ed5dfc2ef1ff8f";

    /// <summary>SHA-256 of <see cref="PreprocessFileName"/> in the same package.</summary>
    public const string PreprocessSha256 = "84bf8def78d0befaa3f6e73745d57d7016c6a192ead76f79686bd438c1047004";

    /// <summary>The folder beside the StyleTransfer assembly where the build puts both files.</summary>
    public const string ModelsFolder = "models";

    /// <summary>
    /// The range of the preprocessing graph's input: ML.NET's featurizer feeds it pixel values 0..255
    /// (ExtractPixels with its default scale 1), which the magnitude of its mean image (95..130) confirms.
    /// </summary>
    public const float InputRange = 255f;

    private static readonly HashSet<string> HeadOps = new(StringComparer.Ordinal)
    {
        "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Squeeze", "Gemm", "MatMul", "Softmax",
    };

    private readonly Conv stem;
    private readonly Pool pool;
    private readonly Block[] blocks;
    private readonly List<string> taps;
    private readonly Dictionary<string, int> tapIndex;
    private readonly long[] channelSource;
    private Tensor channelIndex;
    private Tensor channelScale;
    private Tensor offset;
    private (long H, long W, Tensor Offset)? resized;
    private (TileWindow Window, long H, long W, Tensor Offset)? windowed;

    private ResNet18(Conv stem, Pool pool, Block[] blocks, Preprocessing prep, Dictionary<string, string> onnxValues)
    {
        OnnxValues = onnxValues;
        this.stem = stem;
        this.pool = pool;
        this.blocks = blocks;
        foreach (Conv c in blocks.SelectMany(b => b.Convs).Prepend(stem))
        {
            c.ToFloat32();
        }

        channelSource = prep.Source;
        channelIndex = Own(torch.tensor(prep.Source, ScalarType.Int64));
        channelScale = Own(torch.tensor(prep.Scale.Select(s => s * InputRange).ToArray(), new long[] { 1, prep.Source.Length, 1, 1 }));
        offset = Own(torch.tensor(prep.Offset, new long[] { 1, prep.Source.Length, prep.OffsetHeight, prep.OffsetWidth }));
        taps = ["conv1", "relu1", "pool1"];
        foreach (Block b in blocks)
        {
            taps.Add(b.Name + "_relu1");
            taps.Add(b.Name);
            if (b.LastOfStage)
            {
                taps.Add(b.StageName);
            }
        }

        tapIndex = taps.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i, StringComparer.Ordinal);
    }

    public string Name => "resnet18";

    public IReadOnlyList<string> TapNames => taps;

    public Device Device => stem.Weight.device;

    public FirstConvPadding Padding { get; set; }

    /// <summary>
    /// Whether the stem runs folded 2×2 into channels on the CPU (the same sums; its input gradient,
    /// the image's, about 2.5× faster there). Off: libtorch's strided convolution, for comparison.
    /// </summary>
    internal bool FoldedStem { get; set; } = true;

    /// <summary>Blocks per stage, as found in the graph (2, 2, 2, 3 for the CNTK model).</summary>
    public IReadOnlyList<int> StageBlocks => blocks.GroupBy(b => b.Stage).Select(g => g.Count()).ToList();

    /// <summary>The ONNX value each tap reproduces (e.g. <c>layer1_0</c> → <c>ReLU269_Output_0</c>), for parity checks.</summary>
    internal IReadOnlyDictionary<string, string> OnnxValues { get; }

    /// <summary>For each channel the network sees, the RGB channel it comes from (2, 1, 0: BGR).</summary>
    public IReadOnlyList<long> ChannelSource => channelSource;

    /// <summary>The folders searched for the bundled model files: beside the StyleTransfer assembly, then the application's base folder.</summary>
    public static IReadOnlyList<string> BundledCandidates(string fileName)
    {
        var dirs = new List<string>();
        string location = typeof(ResNet18).Assembly.Location;
        if (!string.IsNullOrEmpty(location) && Path.GetDirectoryName(location) is { Length: > 0 } dir)
        {
            dirs.Add(dir);
        }

        dirs.Add(AppContext.BaseDirectory);
        return dirs.Select(d => Path.GetFullPath(Path.Combine(d, ModelsFolder, fileName))).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The network and preprocessing files to load: <paramref name="weightsPath"/> (which must exist) or
    /// the bundled <see cref="ModelFileName"/>; the preprocessing graph beside the weights, else the bundled one.
    /// </summary>
    public static (string Model, string Preprocess) ResolvePaths(string? weightsPath)
    {
        string model;
        if (weightsPath != null)
        {
            if (!File.Exists(weightsPath))
            {
                throw new StyleTransferException($"weights file '{weightsPath}' does not exist");
            }

            model = weightsPath;
        }
        else
        {
            model = BundledCandidates(ModelFileName).FirstOrDefault(File.Exists)
                ?? throw StyleTransferException.Named(
                    $"ResNet-18 model not found at {string.Join(" or ", BundledCandidates(ModelFileName))}: rebuild so that the build copies it from the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18, or pass {Opt.WeightsPath.Is("PATH")}");
        }

        string beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(model)) ?? ".", PreprocessFileName);
        string? prep = File.Exists(beside) ? beside : BundledCandidates(PreprocessFileName).FirstOrDefault(File.Exists);
        return (model, prep ?? throw new StyleTransferException(
            $"ResNet-18 preprocessing graph {PreprocessFileName} not found beside '{model}' nor at {string.Join(" or ", BundledCandidates(PreprocessFileName))}"));
    }

    /// <summary>A short description of the files <see cref="ResolvePaths"/> picks, for the start-up line.</summary>
    public static string Describe(string? weightsPath)
    {
        try
        {
            (string model, _) = ResolvePaths(weightsPath);
            return $"weights {model}";
        }
        catch (StyleTransferException)
        {
            return "weights not found";
        }
    }

    /// <summary>Loads the network graph and the preprocessing graph; errors name the file at fault.</summary>
    public static ResNet18 Load(string modelPath, string preprocessPath)
    {
        // The bundled files are known byte for byte; a file given with --weights can only be checked for structure.
        CheckIfBundled(preprocessPath, PreprocessFileName, PreprocessSha256);
        CheckIfBundled(modelPath, ModelFileName, ModelSha256);
        Preprocessing prep = ReadPreprocessing(OnnxModel.Load(preprocessPath), preprocessPath);
        OnnxModel model = OnnxModel.Load(modelPath);
        return Build(model.Graph, modelPath, prep);
    }

    /// <summary>Refuses (one line) a file that does not have the SHA-256 <paramref name="sha256"/>.</summary>
    internal static void CheckHash(string path, string sha256)
    {
        string actual;
        using (FileStream f = File.OpenRead(path))
        {
            actual = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f));
        }

        if (!string.Equals(actual, sha256, StringComparison.Ordinal))
        {
            throw new StyleTransferException(
                $"bundled model '{path}' is damaged (SHA-256 {actual[..12]}…, expected {sha256[..12]}… from NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1); rebuild to copy it again");
        }
    }

    private static void CheckIfBundled(string path, string fileName, string sha256)
    {
        if (BundledCandidates(fileName).Contains(Path.GetFullPath(path), StringComparer.Ordinal))
        {
            CheckHash(path, sha256);
        }
    }

    public void MoveTo(Device device, ScalarType? dtype = null)
    {
        // The input stage (preprocessing and the 7×7 stem convolution) stays float32 in reduced
        // precision: bf16 would round the image itself to 8 significant bits (docs/performance.md).
        ScalarType? stemType = dtype is ScalarType.BFloat16 or ScalarType.Float16 ? ScalarType.Float32 : dtype;
        foreach (Conv c in blocks.SelectMany(b => b.Convs))
        {
            c.Weight = NetworkTensors.Move(c.Weight, device, dtype);
            c.Bias = NetworkTensors.Move(c.Bias, device, dtype);
        }

        stem.Weight = NetworkTensors.Move(stem.Weight, device, stemType);
        stem.Bias = NetworkTensors.Move(stem.Bias, device, stemType);
        channelIndex = NetworkTensors.Move(channelIndex, device, stemType);
        channelScale = NetworkTensors.Move(channelScale, device, stemType);
        offset = NetworkTensors.Move(offset, device, stemType);
        ClearResized();
    }

    public Dictionary<string, Tensor> Extract(Tensor image, IReadOnlyCollection<string> requested)
    {
        int deepest = -1;
        foreach (string tap in requested)
        {
            if (!tapIndex.TryGetValue(tap, out int index))
            {
                throw new StyleTransferException($"unknown layer '{tap}' for resnet18 (known: {string.Join(", ", taps)})");
            }

            deepest = Math.Max(deepest, index);
        }

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

        Tensor x = Preprocess(image.to(stem.Weight.dtype));
        x = stem.Apply(x, Padding, FoldedStem).to(blocks[0].Conv1.Weight.dtype); // float32 input stage, then the network's precision
        bool keepConv = requested.Contains("conv1");
        if (Emit("conv1", x))
        {
            return result;
        }

        // In place when the pre-activation is not a tap: saves one activation per layer.
        x = F.relu(x, inplace: !keepConv);
        if (Emit("relu1", x))
        {
            return result;
        }

        x = pool.Apply(x);
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

            Tensor z = b.Conv2.Apply(y);
            Tensor shortcut = b.Shortcut?.Apply(x) ?? x;
            z = Crop(z, shortcut.shape[2], shortcut.shape[3]);
            z.add_(Crop(shortcut, z.shape[2], z.shape[3])).relu_();
            x = z;
            if (Emit(b.Name, x) || (b.LastOfStage && Emit(b.StageName, x)))
            {
                return result;
            }
        }

        return result;
    }

    public void Dispose()
    {
        foreach (Conv c in blocks.SelectMany(b => b.Convs).Prepend(stem))
        {
            c.Weight.Dispose();
            c.Bias.Dispose();
            c.DisposeDerived();
        }

        channelIndex.Dispose();
        channelScale.Dispose();
        offset.Dispose();
        ClearResized();
    }

    /// <summary>[1,3,H,W] RGB in [0,1] → what the first convolution expects (BGR, 0..255, mean image subtracted).</summary>
    internal Tensor Preprocess(Tensor image)
    {
        if (image.dim() != 4 || image.shape[1] != 3)
        {
            throw new StyleTransferException($"resnet18 expects an image tensor [N,3,H,W], not [{string.Join(",", image.shape)}]");
        }

        return image.index_select(1, channelIndex).mul_(channelScale).add_(OffsetFor(image.shape[2], image.shape[3]));
    }

    /// <summary>
    /// The preprocessing offset at H×W: the graph's own when it is per channel or the size matches, else its
    /// mean image resized (bilinear, half-pixel centres), kept for the next call.
    /// </summary>
    private Tensor OffsetFor(long h, long w)
    {
        if ((offset.shape[2] == 1 && offset.shape[3] == 1) || (offset.shape[2] == h && offset.shape[3] == w && TileWindow.Current is null))
        {
            return offset;
        }

        if (TileWindow.Current is { } win)
        {
            // A tile: its part of the mean image made for the whole image.
            if (windowed is not { } cached || cached.Window != win || cached.H != h || cached.W != w)
            {
                Tensor full = TileWindowFree(() => OffsetFor(win.FullHeight, win.FullWidth));
                windowed?.Offset.Dispose();
                windowed = (win, h, w, Own(full.narrow(2, win.Y, h).narrow(3, win.X, w)));
            }

            return windowed.Value.Offset;
        }

        if (resized is { } r && r.H == h && r.W == w)
        {
            return r.Offset;
        }

        ClearResized();
        using (torch.no_grad())
        {
            Tensor t = F.interpolate(offset, size: [h, w], mode: InterpolationMode.Bilinear, align_corners: false);
            resized = (h, w, Own(t));
        }

        return resized.Value.Offset;
    }

    private void ClearResized()
    {
        resized?.Offset.Dispose();
        resized = null;
        windowed?.Offset.Dispose();
        windowed = null;
    }

    private static Tensor TileWindowFree(Func<Tensor> body)
    {
        using IDisposable none = TileWindow.Enter(null);
        return body();
    }

    private static Tensor Crop(Tensor t, long h, long w)
    {
        if (t.shape[2] > h)
        {
            t = t.narrow(2, 0, h);
        }

        if (t.shape[3] > w)
        {
            t = t.narrow(3, 0, w);
        }

        return t;
    }

    /// <summary>Keeps a tensor this object owns out of any dispose scope of the caller.</summary>
    private static Tensor Own(Tensor t) => t.DetachFromDisposeScope();

    // ---- Reading the graphs ----

    /// <summary>
    /// Reads the preprocessing graph by running it (Split, Concat, Add, Sub, Mul, Div, Identity; in
    /// float64) on probe inputs: at zero it gives the offset, at one channel of ones the channel mapping.
    /// It must map each output channel from one input channel, scaled, plus an offset per pixel.
    /// </summary>
    internal static Preprocessing ReadPreprocessing(OnnxModel model, string path)
    {
        OnnxGraph g = model.Graph;
        OnnxValueInfo[] inputs = [.. g.DataInputs];
        if (inputs.Length != 1 || g.Outputs.Count != 1)
        {
            throw new StyleTransferException($"preprocessing graph '{path}' must have one input and one output, not {inputs.Length} and {g.Outputs.Count}");
        }

        List<long?> shape = inputs[0].Shape ?? [];
        if (shape.Count != 4 || shape[1] != 3 || shape[2] is not > 0 || shape[3] is not > 0)
        {
            throw new StyleTransferException($"preprocessing graph '{path}': input {inputs[0]} is not an image of a fixed size [N,3,H,W]");
        }

        long h = shape[2]!.Value, w = shape[3]!.Value;
        using var scope = torch.NewDisposeScope();
        Tensor Run(Tensor x) => RunElementwise(g, inputs[0].Name, x, path);
        Tensor zero = Run(torch.zeros(new long[] { 1, 3, h, w }, ScalarType.Float64));
        if (zero.dim() != 4 || zero.shape[0] != 1 || zero.shape[2] != h || zero.shape[3] != w)
        {
            throw new StyleTransferException($"preprocessing graph '{path}': output has shape [{string.Join(",", zero.shape)}], expected [1,C,{h},{w}]");
        }

        long channels = zero.shape[1];
        var source = new long[channels];
        var scale = new float[channels];
        var found = new bool[channels];
        for (int c = 0; c < 3; c++)
        {
            Tensor probe = torch.zeros(new long[] { 1, 3, h, w }, ScalarType.Float64);
            probe[0, c].fill_(1.0);
            Tensor gain = Run(probe) - zero;
            for (int o = 0; o < channels; o++)
            {
                double min = gain[0, o].min().item<double>(), max = gain[0, o].max().item<double>();
                if (min != max)
                {
                    throw new StyleTransferException($"preprocessing graph '{path}': the scale of output channel {o} varies across the image, which is not supported");
                }

                if (min == 0)
                {
                    continue;
                }

                if (found[o])
                {
                    throw new StyleTransferException($"preprocessing graph '{path}': output channel {o} mixes input channels, which is not supported");
                }

                found[o] = true;
                source[o] = c;
                scale[o] = (float)min;
            }
        }

        if (found.Contains(false))
        {
            throw new StyleTransferException($"preprocessing graph '{path}': output channel {Array.IndexOf(found, false)} does not depend on the input");
        }

        // Per-channel offsets are kept as [C,1,1]; a mean image is kept at its size.
        bool perChannel = Enumerable.Range(0, (int)channels).All(o => zero[0, o].min().item<double>() == zero[0, o].max().item<double>());
        Tensor off = (perChannel ? zero.narrow(2, 0, 1).narrow(3, 0, 1) : zero).to_type(ScalarType.Float32).contiguous();
        return new Preprocessing(source, scale, off.data<float>().ToArray(), off.shape[2], off.shape[3]);
    }

    private static Tensor RunElementwise(OnnxGraph g, string input, Tensor x, string path)
    {
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [input] = x };
        Tensor Value(OnnxNode n, int i)
        {
            string name = n.Inputs[i];
            if (values.TryGetValue(name, out Tensor? v))
            {
                return v;
            }

            if (g.Initializers.TryGetValue(name, out OnnxTensor? init))
            {
                return values[name] = ToTensor(init, path).to_type(ScalarType.Float64);
            }

            throw new StyleTransferException($"preprocessing graph '{path}': node {n} reads '{name}', which nothing produces");
        }

        foreach (OnnxNode n in g.Nodes)
        {
            Fail.If(n.Domain is not ("" or "ai.onnx"), path, $"node {n} is in domain '{n.Domain}', not ONNX's");
            switch (n.OpType)
            {
                case "Identity":
                    values[n.Outputs[0]] = Value(n, 0);
                    break;
                case "Constant":
                    OnnxTensor constant = n.Attributes.TryGetValue("value", out OnnxAttribute? a) && a.T != null
                        ? a.T
                        : throw new StyleTransferException($"preprocessing graph '{path}': Constant node {n} has no tensor 'value'");
                    values[n.Outputs[0]] = ToTensor(constant, path).to_type(ScalarType.Float64);
                    break;
                case "Add" or "Sub" or "Mul" or "Div":
                    Fail.If(n.Inputs.Count != 2 || n.Int("broadcast", 1) != 1 || n.Attributes.ContainsKey("axis"), path, $"node {n}: only numpy-style broadcasting is supported");
                    Tensor l = Value(n, 0), r = Value(n, 1);
                    values[n.Outputs[0]] = n.OpType switch
                    {
                        "Add" => l + r,
                        "Sub" => l - r,
                        "Mul" => l * r,
                        _ => l / r,
                    };
                    break;
                case "Split":
                    Tensor s = Value(n, 0);
                    long axis = n.Int("axis", 0);
                    axis = axis < 0 ? axis + s.dim() : axis;
                    long[] parts = n.Ints("split")
                        ?? (n.Inputs.Count > 1 && n.Inputs[1] != "" ? Value(n, 1).to_type(ScalarType.Int64).data<long>().ToArray() : null)
                        ?? [.. Enumerable.Repeat(s.shape[axis] / n.Outputs.Count, n.Outputs.Count)];
                    Fail.If(parts.Length != n.Outputs.Count || parts.Sum() != s.shape[axis], path, $"node {n}: split [{string.Join(",", parts)}] does not fit an axis of {s.shape[axis]}");
                    long start = 0;
                    for (int i = 0; i < parts.Length; i++)
                    {
                        values[n.Outputs[i]] = s.narrow(axis, start, parts[i]);
                        start += parts[i];
                    }

                    break;
                case "Concat":
                    Tensor[] items = [.. Enumerable.Range(0, n.Inputs.Count).Select(i => Value(n, i))];
                    values[n.Outputs[0]] = torch.cat(items, n.Int("axis", 0));
                    break;
                default:
                    throw new StyleTransferException($"preprocessing graph '{path}': operator {n.OpType} (node {n}) is not supported; expected only Split, Concat, Add, Sub, Mul, Div");
            }
        }

        string output = g.Outputs[0].Name;
        return values.TryGetValue(output, out Tensor? result)
            ? result
            : throw new StyleTransferException($"preprocessing graph '{path}': nothing produces its output '{output}'");
    }

    /// <summary>Maps the ONNX nodes to stem, pool and blocks by following the data from the input.</summary>
    private static ResNet18 Build(OnnxGraph g, string path, Preprocessing prep)
    {
        var consumers = new Dictionary<string, List<OnnxNode>>(StringComparer.Ordinal);
        foreach (OnnxNode n in g.Nodes)
        {
            Fail.If(n.Domain is not ("" or "ai.onnx"), path, $"node {n} is in domain '{n.Domain}', not ONNX's");
            foreach (string i in n.Inputs.Where(i => i != "").Distinct())
            {
                if (!consumers.TryGetValue(i, out List<OnnxNode>? list))
                {
                    consumers[i] = list = [];
                }

                list.Add(n);
            }
        }

        var visited = new HashSet<OnnxNode>();
        List<OnnxNode> Users(string value) => consumers.TryGetValue(value, out List<OnnxNode>? l) ? l : [];

        OnnxNode Only(string value, string what)
        {
            List<OnnxNode> users = Users(value);
            if (users.Count != 1)
            {
                throw Fail.Error(path, $"'{value}' should feed only the {what}, but feeds {users.Count} node(s): {string.Join("; ", users)}");
            }

            return Expect(users[0], what);
        }

        OnnxNode Expect(OnnxNode n, string what)
        {
            string op = what.Split(' ')[0];
            Fail.If(n.OpType != op, path, $"expected the {what} at node {n}");
            Fail.If(!visited.Add(n), path, $"node {n} is reached twice (the graph is not a ResNet)");
            return n;
        }

        // A Conv followed (when it is) by a BatchNormalization, as one folded convolution.
        Conv ConvBn(OnnxNode conv, long inChannels, string what)
        {
            Conv c = ReadConv(g, conv, inChannels, path);
            List<OnnxNode> next = Users(conv.Outputs[0]);
            if (next.Count == 1 && next[0].OpType == "BatchNormalization")
            {
                OnnxNode bn = Expect(next[0], "BatchNormalization of the " + what);
                FoldBatchNorm(g, bn, c, path);
                c.Output = bn.Outputs[0];
            }

            return c;
        }

        OnnxValueInfo[] inputs = [.. g.DataInputs];
        Fail.If(inputs.Length != 1, path, $"the graph should have one image input, not {inputs.Length} ({string.Join(", ", inputs.Select(i => i.Name))})");
        Fail.If(inputs[0].Shape is { Count: not 4 } || inputs[0].Shape?[1] is not (3 or null), path, $"input {inputs[0]} is not an image [N,3,H,W]");

        OnnxNode first = Only(inputs[0].Name, "Conv stem");
        Conv stem = ConvBn(first, prep.Source.Length, "stem");
        OnnxNode relu = Only(stem.Output, "Relu after the stem");
        OnnxNode poolNode = Only(relu.Outputs[0], "MaxPool after the stem");
        Pool pool = ReadPool(poolNode, path);
        string x = poolNode.Outputs[0];
        long channels = stem.OutChannels;

        var onnxValues = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["conv1"] = stem.Output,
            ["relu1"] = relu.Outputs[0],
            ["pool1"] = poolNode.Outputs[0],
        };
        var blocks = new List<Block>();
        int stage = 0, inStage = 0;
        while (true)
        {
            List<OnnxNode> users = Users(x);
            if (users.All(u => u.OpType != "Conv"))
            {
                break;
            }

            string name = $"block {blocks.Count} (input '{x}')";
            Fail.If(users.Count is < 2 or > 3, path, $"{name}: expected a residual block, but '{x}' feeds {string.Join("; ", users)}");
            Conv? main = null, shortcut = null;
            OnnxNode? innerRelu = null;
            foreach (OnnxNode conv in users.Where(u => u.OpType == "Conv"))
            {
                Conv c = ConvBn(Expect(conv, "Conv of " + name), channels, name);
                List<OnnxNode> next = Users(c.Output);
                Fail.If(next.Count != 1 || next[0].OpType is not ("Relu" or "Add"), path, $"{name}: after {conv} expected a Relu (main path) or the Add (shortcut), found {string.Join("; ", next)}");
                if (next[0].OpType == "Relu")
                {
                    Fail.If(main != null, path, $"{name}: two main paths");
                    main = c;
                    innerRelu = Expect(next[0], "Relu of the main path");
                }
                else
                {
                    Fail.If(shortcut != null, path, $"{name}: two shortcut convolutions");
                    shortcut = c;
                }
            }

            Fail.If(main == null || innerRelu == null, path, $"{name}: no main path (Conv, BatchNormalization, Relu)");
            OnnxNode secondConv = Only(innerRelu!.Outputs[0], "Conv of the main path");
            Conv conv2 = ConvBn(secondConv, main!.OutChannels, name);
            OnnxNode add = Only(conv2.Output, "Add of the residual");
            string other = add.Inputs.Count == 2 && add.Inputs[0] == conv2.Output ? add.Inputs[1]
                : add.Inputs.Count == 2 && add.Inputs[1] == conv2.Output ? add.Inputs[0]
                : throw Fail.Error(path, $"{name}: the residual {add} should add two tensors");
            string expectedOther = shortcut?.Output ?? x;
            Fail.If(other != expectedOther, path, $"{name}: the residual {add} adds '{other}', expected '{expectedOther}'");
            Fail.If(users.Count != 2, path, $"{name}: '{x}' feeds {users.Count} nodes, expected the main path and the Add or a shortcut Conv");
            Fail.If(shortcut == null && (conv2.OutChannels != channels || main.StrideH != 1 || main.StrideW != 1), path, $"{name}: changes shape but has no projection shortcut");
            Fail.If(shortcut != null && shortcut.OutChannels != conv2.OutChannels, path, $"{name}: shortcut has {shortcut?.OutChannels} channels, main path {conv2.OutChannels}");
            OnnxNode outRelu = Only(add.Outputs[0], "Relu after the residual add");

            bool downsamples = shortcut != null || main.StrideH != 1 || main.StrideW != 1;
            if (blocks.Count == 0 || downsamples)
            {
                stage++;
                inStage = 0;
                if (blocks.Count > 0)
                {
                    blocks[^1].LastOfStage = true;
                }
            }

            var block = new Block(main, conv2, shortcut, stage, inStage++);
            blocks.Add(block);
            channels = conv2.OutChannels;
            x = outRelu.Outputs[0];
            onnxValues[block.Name + "_relu1"] = innerRelu.Outputs[0];
            onnxValues[block.Name] = onnxValues[block.StageName] = x;
        }

        Fail.If(blocks.Count == 0, path, $"no residual block after the stem's max pool ('{x}' feeds {string.Join("; ", Users(x))})");
        blocks[^1].LastOfStage = true;

        // Everything not mapped must be the classifier head, which is not used.
        OnnxNode? stray = g.Nodes.FirstOrDefault(n => !visited.Contains(n) && !HeadOps.Contains(n.OpType));
        Fail.If(stray != null, path, $"node {stray} is not part of the recognised ResNet layout (stem, basic blocks, pooling head)");
        return new ResNet18(stem, pool, [.. blocks], prep, onnxValues);
    }

    private static Conv ReadConv(OnnxGraph g, OnnxNode n, long inChannels, string path)
    {
        Fail.If(n.Inputs.Count is < 2 or > 3, path, $"{n}: expected inputs (X, W[, B])");
        Fail.If(n.Int("group", 1) != 1, path, $"{n}: grouped convolution is not supported");
        Fail.If(n.String("auto_pad", "NOTSET") is not ("NOTSET" or "VALID"), path, $"{n}: auto_pad {n.String("auto_pad", "")} is not supported (explicit pads only)");
        Fail.If(n.Ints("dilations") is { } d && d.Any(v => v != 1), path, $"{n}: dilated convolution is not supported");
        Tensor w = Initializer(g, n, 1, path);
        long[] ws = w.shape;
        Fail.If(ws.Length != 4 || ws[1] != inChannels, path, $"{n}: weight has shape [{string.Join(",", ws)}], expected [out,{inChannels},kh,kw]");
        Fail.If(n.Ints("kernel_shape") is { } k && !k.SequenceEqual(ws[2..]), path, $"{n}: kernel_shape does not match the weight");
        Tensor b = n.Inputs.Count == 3 && n.Inputs[2] != "" ? Initializer(g, n, 2, path) : torch.zeros(ws[0], ScalarType.Float64);
        Fail.If(b.shape.Length != 1 || b.shape[0] != ws[0], path, $"{n}: bias has shape [{string.Join(",", b.shape)}], expected [{ws[0]}]");
        (long sh, long sw, long[] pads) = Geometry(n, path);
        return new Conv(w, b, ws[2], ws[3], sh, sw, pads, n.Outputs[0]);
    }

    private static Pool ReadPool(OnnxNode n, string path)
    {
        long[] k = n.Ints("kernel_shape") ?? [];
        Fail.If(k.Length != 2, path, $"{n}: expected a 2-D kernel_shape");
        Fail.If(n.Int("ceil_mode", 0) != 0 || n.Int("storage_order", 0) != 0 || n.Outputs.Count != 1, path, $"{n}: ceil_mode, storage_order and indices are not supported");
        Fail.If(n.Ints("dilations") is { } d && d.Any(v => v != 1), path, $"{n}: dilated pooling is not supported");
        Fail.If(n.String("auto_pad", "NOTSET") is not ("NOTSET" or "VALID"), path, $"{n}: auto_pad {n.String("auto_pad", "")} is not supported (explicit pads only)");
        (long sh, long sw, long[] pads) = Geometry(n, path);
        Fail.If(pads[0] > k[0] / 2 || pads[1] > k[1] / 2 || pads[2] > k[0] / 2 || pads[3] > k[1] / 2, path, $"{n}: padding larger than half the kernel");
        return new Pool(k[0], k[1], sh, sw, pads);
    }

    /// <summary>Strides and ONNX pads [top, left, bottom, right].</summary>
    private static (long StrideH, long StrideW, long[] Pads) Geometry(OnnxNode n, string path)
    {
        long[] strides = n.Ints("strides") ?? [1, 1];
        long[] pads = n.String("auto_pad", "NOTSET") == "VALID" ? [0, 0, 0, 0] : n.Ints("pads") ?? [0, 0, 0, 0];
        Fail.If(strides.Length != 2 || strides.Any(s => s < 1), path, $"{n}: strides [{string.Join(",", strides)}] are not two positive numbers");
        Fail.If(pads.Length != 4 || pads.Any(p => p < 0), path, $"{n}: pads [{string.Join(",", pads)}] are not four non-negative numbers");
        return (strides[0], strides[1], pads);
    }

    /// <summary>W' = W·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β, computed in float64, stored as float32.</summary>
    private static void FoldBatchNorm(OnnxGraph g, OnnxNode bn, Conv c, string path)
    {
        Fail.If(bn.Inputs.Count != 5 || bn.Inputs[0] != c.Output, path, $"{bn}: expected inputs (X, scale, B, mean, var)");
        Fail.If(bn.Int("spatial", 1) != 1, path, $"{bn}: spatial=0 is not supported");
        Fail.If(bn.Outputs.Count > 1 && bn.Outputs.Skip(1).Any(o => o != ""), path, $"{bn}: training-mode outputs are not supported");
        double eps = bn.Float("epsilon", 1e-5f);
        using var scope = torch.NewDisposeScope();
        Tensor[] p = [.. Enumerable.Range(1, 4).Select(i => Initializer(g, bn, i, path))];
        Fail.If(p.Any(t => t.shape.Length != 1 || t.shape[0] != c.OutChannels), path, $"{bn}: parameters should be vectors of {c.OutChannels}");
        Tensor s = p[0] / (p[3] + eps).sqrt();
        Tensor w = c.Weight * s.reshape(-1, 1, 1, 1);
        Tensor b = ((c.Bias - p[2]) * s) + p[1];
        c.Weight.Dispose();
        c.Bias.Dispose();
        c.Weight = w.MoveToOuterDisposeScope();
        c.Bias = b.MoveToOuterDisposeScope();
    }

    /// <summary>Input <paramref name="index"/> of <paramref name="n"/>, which must be an initializer, as float64.</summary>
    private static Tensor Initializer(OnnxGraph g, OnnxNode n, int index, string path)
    {
        string name = n.Inputs[index];
        if (!g.Initializers.TryGetValue(name, out OnnxTensor? t))
        {
            throw Fail.Error(path, $"{n}: input '{name}' is not a stored tensor");
        }

        using Tensor f = ToTensor(t, path);
        return f.to_type(ScalarType.Float64);
    }

    private static Tensor ToTensor(OnnxTensor t, string path)
    {
        try
        {
            return torch.tensor(t.ToFloats(), [.. t.Dims]);
        }
        catch (InvalidDataException e)
        {
            throw Fail.Error(path, e.Message);
        }
    }

    /// <summary>What <see cref="ReadPreprocessing"/> found: out[c] = Scale[c]·in[Source[c]] + Offset[c,y,x], with in in 0..255.</summary>
    internal sealed record Preprocessing(long[] Source, float[] Scale, float[] Offset, long OffsetHeight, long OffsetWidth);

    private static class Fail
    {
        public static StyleTransferException Error(string path, string message) =>
            new($"ONNX model '{path}' is not a ResNet of the expected layout: {message}");

        public static void If(bool condition, string path, string message)
        {
            if (condition)
            {
                throw Error(path, message);
            }
        }
    }

    /// <summary>A convolution with its batch norm folded in (float64 while loading, float32 after).</summary>
    private sealed class Conv(Tensor weight, Tensor bias, long kh, long kw, long strideH, long strideW, long[] pads, string output)
    {
        private Tensor? spaceToDepth;
        private Tensor? spaceToDepthOf;

        public Tensor Weight { get; set; } = weight;

        public Tensor Bias { get; set; } = bias;

        public long StrideH => strideH;

        public long StrideW => strideW;

        public long OutChannels => Weight.shape[0];

        /// <summary>The ONNX value this layer's result replaces (the conv's, or its batch norm's output).</summary>
        public string Output { get; set; } = output;

        public void ToFloat32()
        {
            Weight = Convert(Weight);
            Bias = Convert(Bias);
        }

        /// <summary>
        /// Conv with ONNX pads [top, left, bottom, right]. When the end pads are smaller, libtorch's
        /// symmetric padding with the begin pads computes the same windows plus possibly one more
        /// row/column, which is cut off, so no padded copy of the input is made.
        /// </summary>
        public Tensor Apply(Tensor x, FirstConvPadding mode = FirstConvPadding.Zero, bool fold = false)
        {
            if (fold && UsesSpaceToDepth(x))
            {
                return ApplySpaceToDepth(x, mode);
            }

            long[] stride = [strideH, strideW];
            if (mode == FirstConvPadding.Zero && pads[2] <= pads[0] && pads[3] <= pads[1])
            {
                (long oh, long ow) = OutputSize(x, kh, kw, strideH, strideW, pads);
                Tensor y = ConvHook.Conv(F.conv2d(x, Weight, Bias, strides: stride, padding: [pads[0], pads[1]]), Weight);
                return Crop(y, oh, ow);
            }

            // An explicit padded copy: asymmetric zero padding, or replicate padding.
            Tensor padded = NetworkTensors.Pad(x, pads[1], pads[3], pads[0], pads[2], mode);
            return ConvHook.Conv(F.conv2d(padded, Weight, Bias, strides: stride), Weight);
        }

        /// <summary>Releases the space-to-depth weights (the weights themselves belong to the network).</summary>
        public void DisposeDerived()
        {
            spaceToDepth?.Dispose();
            (spaceToDepth, spaceToDepthOf) = (null, null);
        }

        private static Tensor Convert(Tensor t)
        {
            Tensor f = Own(t.to_type(ScalarType.Float32));
            t.Dispose();
            return f;
        }

        /// <summary>
        /// The stem (stride 2, three input channels) on the CPU. oneDNN computes the input gradient of
        /// a strided convolution with few input channels at about 40 GFLOP/s against about 250 for the
        /// forward pass (its <c>brgconv_strided</c> backward; docs/performance.md), and that gradient
        /// is the image's. The same convolution at stride 1 on the image folded 2×2 into channels
        /// (pixel_unshuffle: 3 → 12 channels at half the size) with the kernel folded the same way
        /// (7×7, zero-extended to 8×8, → 4×4) gives the same sums and a gradient through ordinary
        /// kernels.
        /// </summary>
        private bool UsesSpaceToDepth(Tensor x) =>
            strideH == 2 && strideW == 2 && Weight.shape[1] <= 4 && x.device_type == DeviceType.CPU && x.dim() == 4;

        private Tensor ApplySpaceToDepth(Tensor x, FirstConvPadding mode)
        {
            (long oh, long ow) = OutputSize(x, kh, kw, strideH, strideW, pads);
            long kh2 = (kh + 1) / 2, kw2 = (kw + 1) / 2;

            // Rows and columns the folded convolution reads: 2·(out + k/2 − 1), from the top-left pad on.
            long needH = 2 * (oh + kh2 - 1), needW = 2 * (ow + kw2 - 1);
            long h = x.shape[2], w = x.shape[3];
            long bottom = needH - h - pads[0], right = needW - w - pads[1];
            Tensor padded;
            if (mode == FirstConvPadding.Zero)
            {
                padded = F.pad(x, [pads[1], right, pads[0], bottom]);
            }
            else
            {
                // The graph's own padding, then zero rows and columns that meet only the kernel's zero extension.
                using Tensor edge = NetworkTensors.Pad(x, pads[1], pads[3], pads[0], pads[2], mode);
                padded = F.pad(edge, [0, right - pads[3], 0, bottom - pads[2]]);
            }

            using (padded)
            {
                using Tensor folded = F.pixel_unshuffle(padded, 2);
                return ConvHook.Conv(F.conv2d(folded, FoldedWeight(), Bias), Weight);
            }
        }

        /// <summary>[O,C,kh,kw] → [O,4C,⌈kh/2⌉,⌈kw/2⌉], channel c·4 + 2p + q holding taps (2a + p, 2b + q), as pixel_unshuffle orders them; made once per weight tensor.</summary>
        private Tensor FoldedWeight()
        {
            if (spaceToDepth is null || !ReferenceEquals(spaceToDepthOf, Weight))
            {
                DisposeDerived();
                long o = Weight.shape[0], c = Weight.shape[1], kh2 = (kh + 1) / 2, kw2 = (kw + 1) / 2;
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                Tensor extended = F.pad(Weight, [0, (2 * kw2) - kw, 0, (2 * kh2) - kh]);
                spaceToDepth = extended.reshape(o, c, kh2, 2, kw2, 2).permute(0, 1, 3, 5, 2, 4).reshape(o, c * 4, kh2, kw2).contiguous().DetachFromDisposeScope();
                spaceToDepthOf = Weight;
            }

            return spaceToDepth;
        }
    }

    /// <summary>Max pooling with ONNX pads (padding never wins a max).</summary>
    private sealed class Pool(long kh, long kw, long strideH, long strideW, long[] pads)
    {
        public Tensor Apply(Tensor x)
        {
            (long oh, long ow) = OutputSize(x, kh, kw, strideH, strideW, pads);
            long[] kernel = [kh, kw], stride = [strideH, strideW];
            if (pads[2] <= pads[0] && pads[3] <= pads[1])
            {
                return Crop(MaxPooling.Pool2d(x, kernel, stride, [pads[0], pads[1]]), oh, ow);
            }

            using Tensor padded = F.pad(x, [pads[1], pads[3], pads[0], pads[2]], value: double.NegativeInfinity);
            return MaxPooling.Pool2d(padded, kernel, stride, [0, 0]);
        }
    }

    private static (long H, long W) OutputSize(Tensor x, long kh, long kw, long sh, long sw, long[] pads)
    {
        long h = ((x.shape[2] + pads[0] + pads[2] - kh) / sh) + 1;
        long w = ((x.shape[3] + pads[1] + pads[3] - kw) / sw) + 1;
        if (x.shape[2] + pads[0] + pads[2] < kh || x.shape[3] + pads[1] + pads[3] < kw)
        {
            throw new StyleTransferException(
                $"resnet18: a feature map of {x.shape[3]}×{x.shape[2]} is too small for a {kw}×{kh} window; use a larger image or a shallower layer");
        }

        return (h, w);
    }

    private sealed class Block
    {
        public Block(Conv conv1, Conv conv2, Conv? shortcut, int stage, int index)
        {
            Conv1 = conv1;
            Conv2 = conv2;
            Shortcut = shortcut;
            Stage = stage;
            Name = string.Create(CultureInfo.InvariantCulture, $"layer{stage}_{index}");
            StageName = string.Create(CultureInfo.InvariantCulture, $"layer{stage}");
        }

        public Conv Conv1 { get; }

        public Conv Conv2 { get; }

        public Conv? Shortcut { get; }

        public int Stage { get; }

        public string Name { get; }

        public string StageName { get; }

        public bool LastOfStage { get; set; }

        public IEnumerable<Conv> Convs => Shortcut == null ? [Conv1, Conv2] : [Conv1, Conv2, Shortcut];
    }
}
