using StyleTransfer.Losses;
using StyleTransfer.Models;
using StyleTransfer.Networks;

namespace StyleTransfer.Tests;

/// <summary>The network registry (<see cref="NetworkSpecs"/>): one spec per supported network, read by the factory, the defaults, the download and the memory estimate.</summary>
public sealed class NetworkRegistryTests
{
    private const long MiB = 1 << 20;

    public NetworkRegistryTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void TheRegistryListsExactlyTheSupportedNetworksWithTheirDefaults()
    {
        Assert.Equal(["vgg19", "resnet18", "alexnet", "googlenet", "resnet50"], NetworkSpecs.All.Select(s => s.Name));
        Assert.Equal(NetworkSpecs.All.Select(s => s.Name), NetworkFactory.Names);
        Assert.Equal(["VGG-19", "ResNet-18", "AlexNet", "GoogLeNet", "ResNet-50"], NetworkSpecs.All.Select(s => s.Title));
        Assert.Equal(["vgg19-dcbb9e9d.pth", null, "alexnet-owt-7be5be79.pth", "googlenet-1378be20.pth", "resnet50-0676ba61.pth"], NetworkSpecs.All.Select(s => s.WeightsFileName));
        Assert.Equal([900L, 200, 120, 550, 900], NetworkSpecs.All.Select(s => s.FloatsPerPixel));
        Assert.Equal([true, false, false, false, false], NetworkSpecs.All.Select(s => s.ChannelsLastOnCpu));
        Assert.Equal([true, false, false, false, false], NetworkSpecs.All.Select(s => s.NormalizeWeights != null));
        Assert.Equal([560 * MiB, 0, 240 * MiB, 52 * MiB, 100 * MiB], NetworkSpecs.All.Select(s => s.DownloadBytes));

        // The defaults, as the options read them when they are not set.
        StyleTransferOptions[] o = [.. NetworkFactory.Names.Select(n => new StyleTransferOptions { Network = n })];
        Assert.Equal([1e3, 1e8, 4e7, 4e8, 6e8], o.Select(x => x.StyleWeight));
        Assert.Equal([500, 150, 200, 200, 200], o.Select(x => x.Iterations));
        Assert.Equal(["relu4_2", "layer2_1", "relu3", "inception3b", "layer2_3"], o.Select(x => string.Join(",", x.ContentLayers)));
        Assert.Equal(
            ["relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "relu1,layer1_0,layer1_1,layer2_0,layer2_1,layer3_0,layer3_1", "relu1,relu2,relu3,relu4,relu5", "conv1,conv3,inception3a,inception3b,inception4a,inception4c,inception4e", "relu1,layer1_0,layer1_2,layer2_0,layer2_3,layer3_0,layer3_5"],
            o.Select(x => string.Join(",", x.StyleLayers)));
        Assert.Equal([FeatureTransformKind.None, FeatureTransformKind.Softmax, FeatureTransformKind.Softmax, FeatureTransformKind.Softmax, FeatureTransformKind.Softmax], o.Select(x => x.FeatureTransform));
        Assert.Equal([InitMode.Noise, InitMode.Noise, InitMode.Content, InitMode.Content, InitMode.Content], o.Select(x => x.Init));
        Assert.Equal([1.0, 16, 1, 1, 1], o.Select(x => x.ContentWeight));
        Assert.Equal([1, StyleTransferOptions.AutoScales, 1, 1, 1], o.Select(x => x.Scales));
        Assert.Same(NetworkDefaults.Vgg19, NetworkDefaults.For("no such network"));

        // Figure 1's ladders.
        Assert.Equal(["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"], NetworkFactory.Profile("vgg19").ContentLadder);
        Assert.Equal(["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], NetworkFactory.Profile("vgg19").StyleLadder);
        Assert.Equal(["conv1", "conv3", "inception3b", "inception4e", "inception5b"], NetworkFactory.Profile("googlenet").StyleLadder);

        // What else reads the registry: the download list, the memory estimate, the layout, the default network.
        Assert.Equal(["vgg19:560", "alexnet:240", "googlenet:52", "resnet50:100"], ModelDownloader.Known.Select(k => $"{k.Network}:{k.MaxBytes / MiB}"));
        Assert.Equal("resnet18 comes with stylize: nothing to download (downloadable: vgg19, alexnet, googlenet, resnet50)", Assert.Throws<StyleTransferException>(() => ModelDownloader.Find("ResNet18")).Message);
        Assert.Equal([3_600_000L, 800_000, 480_000, 2_200_000, 3_600_000, 3_600_000], ((string[])[.. NetworkFactory.Names, "unknown"]).Select(n => NetworkFactory.EstimateWorkingBytes(n, 1000)));
        if (Environment.GetEnvironmentVariable("STYLIZE_CHANNELS_LAST") == null)
        {
            Assert.Equal([true, false, false, false, false], NetworkFactory.Names.Select(n => MixedPrecisionNetwork.PrefersChannelsLast(n, TorchSharp.torch.CPU)));
        }

        Assert.Equal("googlenet", NetworkFactory.ChooseDefault("/x/googlenet-1378be20.pth"));
        Assert.Equal("vgg19", NetworkFactory.ChooseDefault("/x/vgg19-dcbb9e9d.pth"));
        Assert.Equal("resnet18", NetworkFactory.ChooseDefault("/x/vgg19.onnx"));
        Assert.Equal("unknown network 'vgg16' (known: vgg19, resnet18, alexnet, googlenet, resnet50)", Assert.Throws<StyleTransferException>(() => NetworkFactory.Profile("vgg16")).Message);
    }

    [Fact]
    public void EveryDefaultAndLadderLayerIsATapOfItsNetwork()
    {
        foreach (NetworkSpec spec in NetworkSpecs.All)
        {
            using IFeatureNetwork probe = spec.Probe();
            Assert.Equal(spec.Name, probe.Name);
            foreach (string layer in spec.Defaults.ContentLayers.Concat(spec.Defaults.StyleLayers).Concat(spec.ContentLadder).Concat(spec.StyleLadder))
            {
                Assert.True(probe.TapNames.Contains(layer), $"{spec.Name}: {layer} is not a tap ({string.Join(", ", probe.TapNames)})");
            }
        }
    }
}
