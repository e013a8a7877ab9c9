using StyleTransfer.Losses;

namespace StyleTransfer.Networks;

/// <summary>
/// The settings whose defaults depend on the feature network: the one place they are written.
/// A <see cref="StyleTransferOptions"/> property of these that was not set reads its network's value
/// here, so <c>new StyleTransferOptions { Network = "resnet18" }</c> is ResNet-18's recipe, and the
/// CLI's help text is generated from the same table.
/// </summary>
internal sealed record NetworkDefaults
{
    /// <summary>VGG-19: the paper's recipe (and the defaults of a network this table does not know).</summary>
    public static readonly NetworkDefaults Vgg19 = new();

    /// <summary>ResNet-18: chosen by side-by-side comparison (docs/resnet18.md), then the clean, size-independent recipe (docs/quality.md).</summary>
    public static readonly NetworkDefaults ResNet18 = new()
    {
        ContentLayers = ["layer2_1"],
        StyleLayers = ["relu1", "layer1_0", "layer1_1", "layer2_0", "layer2_1", "layer3_0", "layer3_1"],
        FeatureTransform = FeatureTransformKind.Softmax,
        SoftmaxTemperature = 10,
        StyleNormalization = StyleNormalization.Relative,
        StyleWeight = 1e8,

        // The paper's white-noise start, with a content weight strong enough to hold the photograph
        // from it: the houses and skies take the painting's colours (docs/quality.md, "A noise start").
        ContentWeight = 16,
        Init = InitMode.Noise,

        // The content targets from the photograph recoloured to the painting's colour mean and
        // covariance: the palette nearer the classic results' (docs/quality.md, "The painting's palette").
        PaletteTransfer = 1,
        LineSearch = true,

        // Anti-aliased input, content and TV per pixel, a light TV, coarse to fine from about
        // 256 px, the style image at 1.5×, the 512 px look kept at larger sizes.
        AntiAlias = true,
        SizeInvariant = true,
        TvWeight = 1,
        TvChromaWeight = 4,
        Scales = StyleTransferOptions.AutoScales,
        ScaleStart = 256,
        StyleScale = 1.5,
        StyleAnchor = 512,

        // A small painting at its own pixels, without the layers that see it whole (no face or eye
        // of a 300 px sketch pasted into a garden; docs/quality.md, "Small style images").
        SmallStyle = SmallStyleMode.Native,
        IterationTaper = 1024,
        Iterations = 150,

        // 25 L-BFGS pairs, not 100: the direction's two loops read every pair twice, 60 ms per
        // iteration at 512 × 384 with 100 pairs (a quarter of an evaluation), and the pairs took
        // 470 MB. Five pairs' final losses within 1 %, the pictures alike (docs/performance.md).
        LbfgsHistory = 25,
    };

    // β keeps ResNet-18's balance of the terms at the start: β·L_style(content image) over
    // α·L_content(style image) about 3e2, as 1e8 gives ResNet-18 (docs/networks.md). Measured with
    // full-width random weights (batch norms calibrated on the examples), not trained ones.

    /// <summary>AlexNet: ResNet-18's first recipe carried over (docs/networks.md); untested on real weights.</summary>
    public static readonly NetworkDefaults AlexNet = Torchvision(["relu3"], ["relu1", "relu2", "relu3", "relu4", "relu5"], 4e7);

    /// <summary>GoogLeNet: as <see cref="AlexNet"/>.</summary>
    public static readonly NetworkDefaults GoogLeNet = Torchvision(["inception3b"], ["conv1", "conv3", "inception3a", "inception3b", "inception4a", "inception4c", "inception4e"], 4e8);

    /// <summary>ResNet-50: as <see cref="AlexNet"/>.</summary>
    public static readonly NetworkDefaults ResNet50 = Torchvision(["layer2_3"], ["relu1", "layer1_0", "layer1_2", "layer2_0", "layer2_3", "layer3_0", "layer3_5"], 6e8);

    public int Iterations { get; init; } = 500;

    public double StyleWeight { get; init; } = 1e3;

    public double ContentWeight { get; init; } = 1.0;

    public double TvWeight { get; init; }

    public double TvChromaWeight { get; init; }

    public IReadOnlyList<string> ContentLayers { get; init; } = StyleTransferOptions.PaperContentLayers;

    public IReadOnlyList<string> StyleLayers { get; init; } = StyleTransferOptions.PaperStyleLayers;

    public InitMode Init { get; init; } = InitMode.Noise;

    public double PaletteTransfer { get; init; }

    public double InitNoise { get; init; }

    public bool ContentLuminance { get; init; }

    public FeatureTransformKind FeatureTransform { get; init; } = FeatureTransformKind.None;

    public double SoftmaxTemperature { get; init; } = 1.0;

    public StyleNormalization StyleNormalization { get; init; } = StyleNormalization.Paper;

    public bool LineSearch { get; init; }

    public bool AntiAlias { get; init; }

    public bool SizeInvariant { get; init; }

    public int Scales { get; init; } = 1;

    public int ScaleStart { get; init; } = StyleTransferOptions.AutoScaleStart;

    public double StyleScale { get; init; } = 1.0;

    public int StyleAnchor { get; init; }

    public SmallStyleMode SmallStyle { get; init; } = SmallStyleMode.Enlarge;

    public int IterationTaper { get; init; }

    public int LbfgsHistory { get; init; } = 100;

    /// <summary>The defaults of <paramref name="network"/>; VGG-19's (the paper's) for a name that is not known (<see cref="StyleTransferOptions.Validate()"/> refuses it).</summary>
    public static NetworkDefaults For(string? network) => NetworkSpecs.Find(network)?.Defaults ?? Vgg19;

    /// <summary>ResNet-18's first recipe (SWAG softmax T = 10, relative style terms, content init, line search, 200 iterations) with a network's own layers and β.</summary>
    private static NetworkDefaults Torchvision(IReadOnlyList<string> content, IReadOnlyList<string> style, double styleWeight) => new()
    {
        ContentLayers = content,
        StyleLayers = style,
        FeatureTransform = FeatureTransformKind.Softmax,
        SoftmaxTemperature = 10,
        StyleNormalization = StyleNormalization.Relative,
        StyleWeight = styleWeight,
        Init = InitMode.Content,
        LineSearch = true,
        Iterations = 200,
    };
}
