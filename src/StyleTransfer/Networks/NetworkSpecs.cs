namespace StyleTransfer.Networks;

/// <summary>The registry of feature networks: one <see cref="NetworkSpec"/> each, in the order --network lists them.</summary>
internal static class NetworkSpecs
{
    private const long MiB = 1 << 20;

    /// <summary>VGG-19, the paper's network: its values also stand for a name that is not known.</summary>
    public static readonly NetworkSpec Vgg19Spec = NetworkSpec.Torchvision(
        "vgg19",
        "VGG-19",
        Vgg19.WeightsFileName,
        NetworkDefaults.Vgg19,
        ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
        floatsPerPixel: 900,
        downloadBytes: 560 * MiB,
        (path, options) => Vgg19.Load(path, options.Pooling),
        width => Vgg19.CreateRandom(PoolingMode.Avg, widthDivisor: width)) with
    {
        ContentLadder = ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"],
        ChannelsLastOnCpu = true,
        NormalizeWeights = (net, path) => WeightNormalization.Apply((Vgg19)net, path, NetworkFactory.CacheDirectory),
    };

    /// <summary>ResNet-18, whose ONNX graph comes with stylize (a .onnx --weights file is one).</summary>
    public static readonly NetworkSpec ResNet18Spec = new()
    {
        Name = "resnet18",
        Title = "ResNet-18",
        Defaults = NetworkDefaults.ResNet18,
        ContentLadder = ["relu1", "layer1_1", "layer2_1", "layer3_1", "layer4_2"],
        StyleLadder = ["relu1", "layer1_1", "layer2_1", "layer3_1", "layer4_2"],
        FloatsPerPixel = 200,
        Locate = path => ResNet18.ResolvePaths(path).Model,
        DescribeWeights = ResNet18.Describe,
        SearchedFor = () => $"bundled {ResNet18.ResolvePaths(null).Model} (from NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18)",
        Load = (model, options) => ResNet18.Load(model, ResNet18.ResolvePaths(options.WeightsPath).Preprocess),
        Probe = () =>
        {
            (string model, string preprocess) = ResNet18.ResolvePaths(null);
            return ResNet18.Load(model, preprocess);
        },
    };

    /// <summary>
    /// Every network. Working memory (<see cref="NetworkSpec.FloatsPerPixel"/>): VGG-19 keeps about 900
    /// floats of activations and gradients per input pixel up to relu5_1; ResNet-18 about 200 up to
    /// layer4 (process peak over a forward and backward pass with five Gram layers: 132 floats at 512²,
    /// 162 at 1024², where VGG-19 measured 760; 317 measured as below); AlexNet, GoogLeNet and
    /// ResNet-50 120, 550 and 900 up to their deepest default style layer (growth of the process peak
    /// over targets and one L-BFGS iteration with the default layers at 512², full-width random
    /// weights). Download bounds: the published sizes (548.1, 233.1, 49.7, 97.8 MiB) and about 2 % to spare.
    /// </summary>
    public static readonly IReadOnlyList<NetworkSpec> All =
    [
        Vgg19Spec,
        ResNet18Spec,
        NetworkSpec.Torchvision(
            "alexnet",
            "AlexNet",
            AlexNet.WeightsFileName,
            NetworkDefaults.AlexNet,
            ["relu1", "relu2", "relu3", "relu4", "relu5"],
            floatsPerPixel: 120,
            downloadBytes: 240 * MiB,
            (path, _) => AlexNet.Load(path),
            width => AlexNet.CreateRandom(widthDivisor: width)),
        NetworkSpec.Torchvision(
            "googlenet",
            "GoogLeNet",
            GoogLeNet.WeightsFileName,
            NetworkDefaults.GoogLeNet,
            ["conv1", "conv3", "inception3b", "inception4e", "inception5b"],
            floatsPerPixel: 550,
            downloadBytes: 52 * MiB,
            (path, _) => GoogLeNet.Load(path),
            width => GoogLeNet.CreateRandom(widthDivisor: width)),
        NetworkSpec.Torchvision(
            "resnet50",
            "ResNet-50",
            ResNet50.WeightsFileName,
            NetworkDefaults.ResNet50,
            ["relu1", "layer1_2", "layer2_3", "layer3_5", "layer4_2"],
            floatsPerPixel: 900,
            downloadBytes: 100 * MiB,
            (path, _) => ResNet50.Load(path),
            width => ResNet50.CreateRandom(widthDivisor: width)),
    ];

    /// <summary>The network named <paramref name="name"/> (exactly), or null.</summary>
    public static NetworkSpec? Find(string? name) => All.FirstOrDefault(s => s.Name == name);

    /// <summary>The network named <paramref name="name"/>, or the one-line error listing the known ones.</summary>
    public static NetworkSpec Get(string name) =>
        Find(name) ?? throw new StyleTransferException($"unknown network '{name}' (known: {string.Join(", ", All.Select(s => s.Name))})");
}
