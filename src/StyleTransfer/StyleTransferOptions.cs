using System.Globalization;
using StyleTransfer.Imaging;
using StyleTransfer.Losses;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;

namespace StyleTransfer;

/// <summary>How the output image starts.</summary>
public enum InitMode
{
    /// <summary>White noise, as in the paper.</summary>
    Noise,

    /// <summary>The content image.</summary>
    Content,

    /// <summary>The style image, resized to the output size.</summary>
    Style,
}

/// <summary>The optimiser that updates the pixels.</summary>
public enum OptimizerKind
{
    /// <summary>L-BFGS, as in the paper.</summary>
    Lbfgs,

    /// <summary>Adam.</summary>
    Adam,
}

/// <summary>How each style layer's term is scaled.</summary>
public enum StyleNormalization
{
    /// <summary>The paper's E_l = Σ (G − A)² / (4 N² M²).</summary>
    Paper,

    /// <summary>Σ (G − A)² / Σ A²: every layer counts equally whatever its activation scale.</summary>
    Relative,
}

/// <summary>A mask that places style image <paramref name="Style"/> (0-based) on the output: a greyscale image, white where that style applies.</summary>
public sealed record StyleMask(int Style, string Path);

/// <summary>What a style mask whose aspect ratio differs from the content image's does.</summary>
public enum MaskFit
{
    /// <summary>Refused with a one-line error (the default): a stretched mask places the style somewhere else than drawn.</summary>
    Exact,

    /// <summary>Stretched to the output, as asked for.</summary>
    Stretch,
}

/// <summary>Colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").</summary>
public enum ColorPreservationMode
{
    /// <summary>Off: the output takes the style's colours.</summary>
    None,

    /// <summary>Transfer on luminance only (YIQ), then put the content's I/Q chroma back.</summary>
    Luminance,

    /// <summary>Recolour the style image so its colour mean and covariance match the content's, then transfer.</summary>
    Histogram,
}

/// <summary>How a style image smaller than its place in the run (<see cref="StyleTransferOptions.StyleScale"/> × the output) is used.</summary>
public enum SmallStyleMode
{
    /// <summary>Stretched to that size, every style layer taking part (the paper's way, and this library's before).</summary>
    Enlarge,

    /// <summary>
    /// Never enlarged beyond its own pixels at the reference size (<see cref="StyleTransferOptions.StyleAnchor"/>,
    /// or the output when that is off), and without the style layers whose receptive field covers
    /// more than a third of its long edge there: a layer that sees a small painting whole matches its
    /// objects (a face, an eye) and pastes them into the photograph.
    /// </summary>
    Native,
}

/// <summary>How the first convolution of the feature network pads its input.</summary>
public enum FirstConvPadding
{
    /// <summary>Zeros (after the network's normalisation), as the networks were trained.</summary>
    Zero,

    /// <summary>The edge pixels repeated (crowsonkb's style_transfer): fewer border artefacts.</summary>
    Replicate,
}

/// <summary>
/// Every setting of a style transfer, in one record. Front ends build it and call
/// <see cref="Validate()"/> once; the engine trusts it after that.
/// </summary>
/// <remarks>
/// The settings whose best value depends on the feature network (layers, weights, iterations,
/// initialisation, feature transform, scales, anti-aliasing, ...) take <see cref="Network"/>'s
/// default until they are set: <c>new StyleTransferOptions { Network = "resnet18" }</c> is
/// ResNet-18's recipe, <c>new StyleTransferOptions()</c> the paper's VGG-19 recipe. A value that
/// was set stays set when <see cref="Network"/> changes (<c>with { Network = ... }</c>).
/// </remarks>
public sealed record StyleTransferOptions
{
    private readonly string? network;
    private readonly int? iterations;
    private readonly double? contentWeight;
    private readonly double? styleWeight;
    private readonly double? tvWeight;
    private readonly double? tvChromaWeight;
    private readonly IReadOnlyList<string>? contentLayers;
    private readonly IReadOnlyList<string>? styleLayers;
    private readonly InitMode? initMode;
    private readonly double? initNoise;
    private readonly bool? contentLuminance;
    private readonly FeatureTransformKind? featureTransform;
    private readonly double? softmaxTemperature;
    private readonly StyleNormalization? styleNormalization;
    private readonly bool? lineSearch;
    private readonly int? scales;
    private readonly int? scaleStart;
    private readonly int? styleAnchor;
    private readonly int? iterationTaper;
    private readonly double? styleScale;
    private readonly SmallStyleMode? smallStyle;
    private readonly double? paletteTransfer;
    private readonly int? lbfgsHistory;
    private readonly bool? antiAlias;
    private readonly bool? sizeInvariant;

    /// <summary>The paper's style layers (rectified responses; "conv1_1" … "conv5_1" in its Caffe naming).</summary>
    public static readonly IReadOnlyList<string> PaperStyleLayers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];

    /// <summary>The paper's content layer ("conv4_2" in its Caffe naming).</summary>
    public static readonly IReadOnlyList<string> PaperContentLayers = ["relu4_2"];

    /// <summary>Long edge of the output in pixels.</summary>
    public int Size { get; init; } = 512;

    /// <summary>Optimiser iterations.</summary>
    public int Iterations { get => iterations ?? NetworkDefaults.For(Network).Iterations; init => iterations = value; }

    /// <summary>α, the content weight.</summary>
    public double ContentWeight { get => contentWeight ?? NetworkDefaults.For(Network).ContentWeight; init => contentWeight = value; }

    /// <summary>β, the style weight. The default gives the paper's α/β = 1e-3.</summary>
    public double StyleWeight { get => styleWeight ?? NetworkDefaults.For(Network).StyleWeight; init => styleWeight = value; }

    /// <summary>Weight of the squared total-variation term (0: off, as in the paper).</summary>
    public double TvWeight { get => tvWeight ?? NetworkDefaults.For(Network).TvWeight; init => tvWeight = value; }

    /// <summary>
    /// Weight of a squared total-variation term on the colour differences alone (B−Y, R−Y; see
    /// <see cref="Losses.TotalVariation.ComputeChroma"/>): smooths colour speckle, leaves strokes of
    /// light and dark alone (0: off, as in the paper).
    /// </summary>
    public double TvChromaWeight { get => tvChromaWeight ?? NetworkDefaults.For(Network).TvChromaWeight; init => tvChromaWeight = value; }

    /// <summary>Layers whose features are matched for content.</summary>
    public IReadOnlyList<string> ContentLayers { get => contentLayers ?? NetworkDefaults.For(Network).ContentLayers; init => contentLayers = value; }

    /// <summary>Layers whose Gram matrices are matched for style.</summary>
    public IReadOnlyList<string> StyleLayers { get => styleLayers ?? NetworkDefaults.For(Network).StyleLayers; init => styleLayers = value; }

    /// <summary>w_l per style layer; null means equal weights 1/L.</summary>
    public IReadOnlyList<double>? StyleLayerWeights { get; init; }

    /// <summary>How the output image starts: noise (the paper; VGG-19's default), the content image (the other networks') or the style image.</summary>
    public InitMode Init { get => initMode ?? NetworkDefaults.For(Network).Init; init => initMode = value; }

    /// <summary>
    /// With <see cref="Init"/> content or style: the share of uniform noise (from <see cref="Seed"/>)
    /// mixed into the starting image, (1 − x)·image + x·noise; 0 (the default) starts from the image
    /// itself, 1 from noise alone. A start away from the photograph lets the optimiser settle
    /// further from it: larger swirls and more of the painting's palette (docs/quality.md). Noise
    /// starts refuse it (<see cref="Validate()"/>).
    /// </summary>
    public double InitNoise { get => initNoise ?? NetworkDefaults.For(Network).InitNoise; init => initNoise = value; }

    /// <summary>
    /// Whether the content loss sees the luminance alone: the content layers are taken from grey
    /// versions of the photograph and of the image being made (<see cref="Networks.LuminanceTaps"/>),
    /// so the structure of light and dark is kept and the colours are left to the style, which
    /// repaints the scene in the painting's palette (docs/quality.md). Costs a second pass of the
    /// network up to the content layers. Off: the paper's content loss, colours included.
    /// </summary>
    public bool ContentLuminance { get => contentLuminance ?? NetworkDefaults.For(Network).ContentLuminance; init => contentLuminance = value; }

    /// <summary>Transformation of the feature maps before the losses (softmax: SWAG, for non-VGG networks).</summary>
    public FeatureTransformKind FeatureTransform { get => featureTransform ?? NetworkDefaults.For(Network).FeatureTransform; init => featureTransform = value; }

    /// <summary>Temperature T of the softmax transform.</summary>
    public double SoftmaxTemperature { get => softmaxTemperature ?? NetworkDefaults.For(Network).SoftmaxTemperature; init => softmaxTemperature = value; }

    /// <summary>How each style layer's term is scaled.</summary>
    public StyleNormalization StyleNormalization { get => styleNormalization ?? NetworkDefaults.For(Network).StyleNormalization; init => styleNormalization = value; }

    /// <summary>The optimiser: L-BFGS (the paper) or Adam.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Lbfgs;

    /// <summary>L-BFGS with a strong-Wolfe line search (PyTorch's line_search_fn="strong_wolfe"); off: fixed steps, as torch.optim.LBFGS by default.</summary>
    public bool LineSearch { get => lineSearch ?? NetworkDefaults.For(Network).LineSearch; init => lineSearch = value; }

    /// <summary>L-BFGS memory: how many (step, gradient change) pairs are kept. Each pair holds two image-sized tensors. Null: the network's default (100; 25 for ResNet-18).</summary>
    public int LbfgsHistory { get => lbfgsHistory ?? NetworkDefaults.For(Network).LbfgsHistory; init => lbfgsHistory = value; }

    /// <summary>Step size: L-BFGS's initial step scale, or Adam's learning rate (pixels are in [0,1]). Null: 1 for L-BFGS, 0.02 for Adam.</summary>
    public double? LearningRate { get; init; }

    /// <summary>Largest <see cref="LearningRate"/> accepted.</summary>
    public const double MaxLearningRate = 1000;

    /// <summary>Pooling between VGG-19's blocks: average (the paper) or max; the other networks keep their own.</summary>
    public PoolingMode Pooling { get; init; } = PoolingMode.Avg;

    /// <summary>Feature network name (see <see cref="NetworkFactory.Names"/>): vgg19 (the default), resnet18, alexnet, googlenet or resnet50. The network-dependent settings that are not set take its defaults.</summary>
    public string Network { get => network ?? "vgg19"; init => network = value; }

    /// <summary>Whether <see cref="Network"/> was left unset: then <see cref="StyleTransferEngine"/>, like the CLI, picks VGG-19 when its weights are found and ResNet-18 otherwise.</summary>
    internal bool NetworkUnset => network is null;

    /// <summary>Weights file; null searches the PyTorch hub cache.</summary>
    public string? WeightsPath { get; init; }

    /// <summary>Apply the paper's mean-activation weight normalisation.</summary>
    public bool NormalizeWeights { get; init; }

    /// <summary>Random seed (noise initialisation); null picks one and reports it.</summary>
    public long? Seed { get; init; }

    /// <summary>Write an intermediate image every N iterations (0: never).</summary>
    public int SaveEvery { get; init; }

    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>libtorch intra-op threads; null: one per core.</summary>
    public int? Threads { get; init; }

    /// <summary>The style image's long edge, relative to the output's long edge.</summary>
    public double StyleScale { get => styleScale ?? NetworkDefaults.For(Network).StyleScale; init => styleScale = value; }

    /// <summary>
    /// How a style image smaller than <see cref="StyleScale"/> × the output is used: stretched, with
    /// every style layer (<see cref="SmallStyleMode.Enlarge"/>), or at its own pixels without the
    /// layers that would see it whole (<see cref="SmallStyleMode.Native"/>; see <see cref="StyleEdge"/>
    /// and docs/quality.md).
    /// </summary>
    public SmallStyleMode SmallStyle { get => smallStyle ?? NetworkDefaults.For(Network).SmallStyle; init => smallStyle = value; }

    /// <summary>
    /// The long edge, in pixels, at which a style image of <paramref name="width"/> × <paramref name="height"/>
    /// is used for an output of <see cref="Size"/>: <see cref="StyleScale"/> × <see cref="Size"/>; with
    /// <see cref="SmallStyleMode.Native"/> at most the image's own long edge scaled from the reference
    /// size (<see cref="StyleAnchor"/>, or <see cref="Size"/> when that is off) to <see cref="Size"/>,
    /// so every output size sees the painting as the reference size does. At least <see cref="ImageIO.MinSide"/>.
    /// </summary>
    public int StyleEdge(int width, int height) => SmallStyle == SmallStyleMode.Native
        ? Math.Min(EnlargedStyleEdge, Math.Max(ImageIO.MinSide, (int)Math.Round(Math.Max(width, height) * (double)Size / StyleReference)))
        : EnlargedStyleEdge;

    /// <summary>The long edge of a style image at <see cref="StyleScale"/> × <see cref="Size"/>, whatever its own size (<see cref="SmallStyleMode.Enlarge"/>); at least <see cref="ImageIO.MinSide"/>.</summary>
    internal int EnlargedStyleEdge => Math.Max(ImageIO.MinSide, (int)Math.Round(Size * StyleScale));

    /// <summary>The long edge whose view of the style image <see cref="SmallStyleMode.Native"/> fixes: <see cref="StyleAnchor"/>, or <see cref="Size"/> when that is off.</summary>
    internal int StyleReference => StyleAnchor > 0 ? StyleAnchor : Size;

    /// <summary>Colour preservation: none (default), luminance-only transfer or style colour histogram matching.</summary>
    public ColorPreservationMode PreserveColor { get; init; } = ColorPreservationMode.None;

    /// <summary>
    /// The reverse of <see cref="PreserveColor"/>: how far the photograph is recoloured towards the
    /// painting's palette before the transfer (its colour mean and covariance; several style images
    /// together, by their blend weights), from 0 (the photograph as it is; VGG-19's default) to 1 (the
    /// painting's colour statistics; ResNet-18's default since the eighth session). The content targets come from the recoloured photograph, and
    /// so does the starting image when it is the photograph (<see cref="Init"/> content; a noise
    /// start, ResNet-18's default, stays noise), so the result keeps its structure in the painting's
    /// colours; no extra network pass (docs/quality.md). Not applied when <see cref="PreserveColor"/> is set.
    /// </summary>
    public double PaletteTransfer { get => paletteTransfer ?? NetworkDefaults.For(Network).PaletteTransfer; init => paletteTransfer = value; }

    /// <summary>
    /// Coarse-to-fine scales: 1 (default) runs at <see cref="Size"/> only; N runs N sizes growing by √2
    /// up to <see cref="Size"/>; <see cref="AutoScales"/> (0) starts near 128 px (see <see cref="ScaleSizes"/>).
    /// </summary>
    public int Scales { get => scales ?? NetworkDefaults.For(Network).Scales; init => scales = value; }

    /// <summary>Padding of the feature network's first convolution.</summary>
    public FirstConvPadding Padding { get; init; } = FirstConvPadding.Zero;

    /// <summary>
    /// Low-pass the image (3×3 binomial) before the feature network, so the losses cannot see or
    /// paint a 2-pixel lattice (see <see cref="Networks.AntiAliasedInput"/>). Off: the network sees
    /// the pixels as they are, as in the paper.
    /// </summary>
    public bool AntiAlias { get => antiAlias ?? NetworkDefaults.For(Network).AntiAlias; init => antiAlias = value; }

    /// <summary>
    /// Content and total-variation losses per pixel, scaled to a <see cref="BalanceArea"/>-pixel image,
    /// instead of summed over the image: the style terms do not grow with the image, so with plain
    /// sums every doubling of the size makes the content four times stronger against the style (a
    /// 1024 px output is less stylised than a 512 px one, and the coarse scales of a coarse-to-fine
    /// run are stylised far more than the last). On: α/β means the same at every size and scale.
    /// Off: the paper's sums.
    /// </summary>
    public bool SizeInvariant { get => sizeInvariant ?? NetworkDefaults.For(Network).SizeInvariant; init => sizeInvariant = value; }

    /// <summary>The image area (512 × 512 pixels) at which <see cref="SizeInvariant"/> losses equal the plain sums.</summary>
    public const int BalanceArea = 512 * 512;

    /// <summary>The factor on the content and TV sums for an image of <paramref name="height"/> × <paramref name="width"/>: 1 unless <see cref="SizeInvariant"/>.</summary>
    public double PixelLossScale(long height, long width) => SizeInvariant ? BalanceArea / (double)(height * width) : 1.0;

    /// <summary>The value of <see cref="Scales"/> that picks the number of scales from <see cref="Size"/>.</summary>
    public const int AutoScales = 0;

    /// <summary>The default of <see cref="ScaleStart"/>.</summary>
    public const int AutoScaleStart = 128;

    /// <summary>Long edge of the smallest scale that <see cref="AutoScales"/> starts from (at least this, below √2 × this).</summary>
    public int ScaleStart { get => scaleStart ?? NetworkDefaults.For(Network).ScaleStart; init => scaleStart = value; }

    /// <summary>
    /// The size, in pixels of the long edge, whose look larger outputs keep (0: off). At every scale
    /// larger than this, the style loss is also taken on the image scaled down to it, against the
    /// style image scaled by the same factor, at half the weight; the other half matches the style at
    /// the full size. So a 2048 px output looks like the 512 px one with more detail, instead of
    /// taking a finer texture at each larger scale.
    /// </summary>
    public int StyleAnchor { get => styleAnchor ?? NetworkDefaults.For(Network).StyleAnchor; init => styleAnchor = value; }

    /// <summary>
    /// Coarse to fine, the long edge above which a scale gets fewer iterations (0: off): a scale of
    /// long edge s above it gets its share × (this / s)², at least <see cref="MinTaperedIterations"/>.
    /// The look is laid out at the small scales and kept by <see cref="StyleAnchor"/>; the large
    /// scales add detail and cost in proportion to their pixels, so this keeps the time of a 3840 px
    /// run within a few times a 1024 px run's. A single-scale run is never tapered.
    /// </summary>
    public int IterationTaper { get => iterationTaper ?? NetworkDefaults.For(Network).IterationTaper; init => iterationTaper = value; }

    /// <summary>The fewest iterations <see cref="IterationTaper"/> leaves a scale.</summary>
    public const int MinTaperedIterations = 20;

    /// <summary>The smallest long edge any scale may have.</summary>
    public const int MinScaleSize = 32;

    /// <summary>
    /// The long edge of every scale, smallest first, ending at <see cref="Size"/>: Size / √2^k rounded.
    /// Auto: as many as keep the smallest at or above <see cref="ScaleStart"/> (one when Size is below √2 × it).
    /// </summary>
    public IReadOnlyList<int> ScaleSizes
    {
        get
        {
            int count = Scales == AutoScales
                ? 1 + (int)Math.Floor((Math.Log(Size / (double)ScaleStart) / Math.Log(Math.Sqrt(2))) + 1e-9)
                : Scales;
            count = Math.Max(1, count);
            return [.. Enumerable.Range(0, count).Select(k => (int)Math.Round(Size / Math.Pow(Math.Sqrt(2), count - 1 - k)))];
        }
    }

    /// <summary>
    /// Iterations at scale <paramref name="index"/> of <paramref name="count"/>: <see cref="Iterations"/>
    /// at the last, half of them (rounded up) at each smaller one; fewer at the scales longer than
    /// <see cref="IterationTaper"/> when there are several scales.
    /// </summary>
    public int IterationsAtScale(int index, int count)
    {
        int full = index == count - 1 ? Iterations : (Iterations + 1) / 2;
        if (IterationTaper <= 0 || count < 2)
        {
            return full;
        }

        IReadOnlyList<int> sizes = ScaleSizes;
        int edge = count == sizes.Count && index >= 0 && index < count ? sizes[index] : 0;
        if (edge <= IterationTaper)
        {
            return full;
        }

        double share = IterationTaper / (double)edge * (IterationTaper / (double)edge);
        return Math.Min(full, Math.Max(MinTaperedIterations, (int)Math.Round(full * share)));
    }

    /// <summary>Iterations over every scale.</summary>
    public int TotalIterations
    {
        get
        {
            int count = ScaleSizes.Count;
            return Enumerable.Range(0, count).Sum(k => IterationsAtScale(k, count));
        }
    }

    /// <summary>Arithmetic of the feature network (Grams, losses and the optimiser stay fp32/fp64).</summary>
    public Precision Precision { get; init; } = Precision.Fp32;

    /// <summary>Per style image, its share of the blended style target (normalised to sum 1); null: equal shares.</summary>
    public IReadOnlyList<double>? StyleBlend { get; init; }

    /// <summary>Masks placing style images on regions of the output (image files, loaded at the output size by <see cref="StyleTransferEngine"/>). Styles without a mask share what the masks leave.</summary>
    public IReadOnlyList<StyleMask>? StyleMasks { get; init; }

    /// <summary>A mask of another aspect ratio than the content image: refused (<see cref="MaskFit.Exact"/>, the default) or stretched.</summary>
    public MaskFit MaskFit { get; init; } = MaskFit.Exact;

    /// <summary>The statistic the style loss matches: Gram matrices (the paper) or Gaussian fits (W2).</summary>
    public StyleLossKind StyleLoss { get; init; } = StyleLossKind.Gram;

    /// <summary>
    /// Memory the run may take, in bytes (--max-memory); null: a safe share of this machine's memory, or of the GPU's free memory on CUDA
    /// (<see cref="Optimization.MemoryBudget.DefaultBudget(string)"/>). Picks the tile size and the L-BFGS
    /// history (<see cref="Optimization.MemoryBudget"/>).
    /// </summary>
    public long? MaxMemory { get; init; }

    /// <summary>Interior tile size in pixels for tiled evaluation (--tile): null: chosen by the memory budget; 0: never tile.</summary>
    public int? Tile { get; init; }

    /// <summary>Halo around each tile in pixels (--tile-halo); null: the network's receptive radius (exact).</summary>
    public int? TileHalo { get; init; }

    /// <summary>Bits per channel of the written image: 8, or 16 (PNG and TIFF only).</summary>
    public int BitDepth { get; init; } = 8;

    /// <summary>The effective step size.</summary>
    public double EffectiveLearningRate => LearningRate ?? (Optimizer == OptimizerKind.Lbfgs ? 1.0 : 0.02);

    /// <summary>w_l for each style layer (given, or 1/L each).</summary>
    public IReadOnlyList<double> EffectiveStyleLayerWeights =>
        StyleLayerWeights ?? Enumerable.Repeat(1.0 / StyleLayers.Count, StyleLayers.Count).ToList();

    /// <summary>The normalised blend weights for <paramref name="styleCount"/> style images.</summary>
    public IReadOnlyList<double> EffectiveStyleBlend(int styleCount)
    {
        IReadOnlyList<double> w = StyleBlend ?? Enumerable.Repeat(1.0, styleCount).ToList();
        double sum = w.Sum();
        return w.Select(x => x / sum).ToList();
    }

    /// <summary><see cref="Validate()"/>, and the settings that depend on the number of style images (blend weights, masks).</summary>
    public StyleTransferOptions Validate(int styleCount)
    {
        Validate();
        Require(styleCount >= 1, $"at least one style image is needed");
        if (StyleBlend != null)
        {
            Require(StyleBlend.Count == styleCount, $"{Opt.StyleBlend} has {StyleBlend.Count} value(s) but there are {styleCount} style images");
        }

        if (StyleMasks != null)
        {
            foreach (StyleMask m in StyleMasks)
            {
                Require(m.Style >= 0 && m.Style < styleCount, $"{Opt.StyleMasks} names style image {m.Style + 1}, but there {(styleCount == 1 ? "is 1" : $"are {styleCount}")}");
            }

            Require(
                StyleBlend == null || StyleMasks.Select(m => m.Style).Distinct().Count() < styleCount,
                $"{Opt.StyleBlend} cannot be used when every style image has a {Opt.StyleMasks} (the masks place the styles)");
        }

        return this;
    }

    /// <summary>Checks every value; throws <see cref="StyleTransferException"/> with one line naming the first problem.</summary>
    public StyleTransferOptions Validate()
    {
        Require(
            NetworkFactory.Names.Contains(Network),
            $"unknown network '{Network}' (known: {string.Join(", ", NetworkFactory.Names)})");
        Require(Size >= 16, $"{Opt.Size} must be at least 16, not {Size}");
        Require(Size <= 16384, $"{Opt.Size} must be at most 16384, not {Size}");
        Require(Iterations >= 1, $"{Opt.Iterations} must be at least 1, not {Iterations}");
        RequireWeight(ContentWeight, Opt.ContentWeight);
        RequireWeight(StyleWeight, Opt.StyleWeight);
        RequireWeight(TvWeight, Opt.TvWeight);
        RequireWeight(TvChromaWeight, Opt.TvChromaWeight);
        Require(ContentWeight > 0 || StyleWeight > 0 || TvWeight > 0, $"at least one of {Opt.ContentWeight}, {Opt.StyleWeight} and {Opt.TvWeight} must be above 0");
        Require(ContentLayers.Count > 0 || ContentWeight == 0, $"{Opt.ContentLayers} is empty");
        Require(StyleLayers.Count > 0 || StyleWeight == 0, $"{Opt.StyleLayers} is empty");
        foreach (string layer in ContentLayers.Concat(StyleLayers))
        {
            Require(!string.IsNullOrWhiteSpace(layer), $"a layer name is empty");
        }

        Require(StyleLayers.Distinct().Count() == StyleLayers.Count, $"{Opt.StyleLayers} names a layer twice");
        if (StyleLayerWeights != null)
        {
            Require(
                StyleLayerWeights.Count == StyleLayers.Count,
                $"{Opt.StyleLayerWeights} has {StyleLayerWeights.Count} value(s) but {Opt.StyleLayers} has {StyleLayers.Count}");
            foreach (double w in StyleLayerWeights)
            {
                RequireWeight(w, Opt.StyleLayerWeights);
            }
        }

        if (LearningRate is { } lr)
        {
            // Pixels are in [0, 1]: a step beyond MaxLearningRate is meaningless, and 1e300 overflows float32 in the optimiser.
            Require(double.IsFinite(lr) && lr > 0 && lr <= MaxLearningRate, $"{Opt.LearningRate} must be a number above 0 and at most {MaxLearningRate}, not {Format(lr)}");
        }

        if (StyleBlend != null)
        {
            foreach (double w in StyleBlend)
            {
                RequireWeight(w, Opt.StyleBlend);
            }

            Require(StyleBlend.Count > 0, $"{Opt.StyleBlend} is empty");
            Require(StyleBlend.Sum() > 0, $"{Opt.StyleBlend} weights are all 0");
        }

        if (StyleMasks != null)
        {
            foreach (StyleMask m in StyleMasks)
            {
                Require(!string.IsNullOrWhiteSpace(m.Path), $"{Opt.StyleMasks} for style image {m.Style + 1} names no file");
            }

            foreach (var twice in StyleMasks.GroupBy(m => m.Style).Where(g => g.Count() > 1).Take(1))
            {
                Require(false, $"{Opt.StyleMasks}: style image {twice.Key + 1} has two masks");
            }
        }

        Require(InitNoise is >= 0 and <= 1, $"{Opt.InitNoise} must be from 0 to 1, not {Format(InitNoise)}");
        Require(initNoise is not > 0 || Init != InitMode.Noise, $"{Opt.InitNoise} mixes noise into a photograph or painting start, and {Opt.Init.Is("noise")} starts from noise already: add {Opt.Init.Is("content")} or leave {Opt.InitNoise} out");
        Require(PaletteTransfer is >= 0 and <= 1, $"{Opt.PaletteTransfer} must be from 0 to 1, not {Format(PaletteTransfer)}");
        Require(double.IsFinite(StyleScale) && StyleScale > 0 && StyleScale <= 8, $"{Opt.StyleScale} must be above 0 and at most 8, not {Format(StyleScale)}");
        Require(Enum.IsDefined(SmallStyle), $"{Opt.SmallStyle} must be enlarge or native, not {SmallStyle}");
        Require(
            SmallStyle != SmallStyleMode.Native || TileGeometry.Taps(Network) is not null,
            $"{Opt.SmallStyle.Is("native")} needs the receptive fields of the network's layers, known for {string.Join(" and ", TileGeometry.Networks)}, not {Network}; use {Opt.SmallStyle.Is("enlarge")}");
        Require(LbfgsHistory >= 1, $"{Opt.LbfgsHistory} must be at least 1, not {LbfgsHistory}");
        Require(BitDepth is 8 or 16, $"{Opt.BitDepth} must be 8 or 16, not {BitDepth}");
        Require(MaxMemory is null or > 0, $"{Opt.MaxMemory} must be above 0, not {MaxMemory}");
        Require(Tile is null or 0 or (>= 64 and <= 16384), $"{Opt.Tile} must be 0 (off) or from 64 to 16384 px, not {Tile}");
        Require(TileHalo is null or (>= 0 and <= 1024), $"{Opt.TileHalo} must be from 0 to 1024 px, not {TileHalo}");
        Require(double.IsFinite(SoftmaxTemperature) && SoftmaxTemperature > 0, $"{Opt.SoftmaxTemperature} must be a number above 0, not {Format(SoftmaxTemperature)}");
        Require(SaveEvery >= 0, $"{Opt.SaveEvery} must be 0 or more, not {SaveEvery}");
        Require(Threads is null or >= 1, $"{Opt.Threads} must be at least 1, not {Threads}");
        Require(Threads is null || Threads <= MaxThreads, ThreadsTooMany(Threads ?? 0));
        Require(Seed is null or >= 0, $"{Opt.Seed} must be 0 or more, not {Seed}");
        Require(Enum.IsDefined(PreserveColor), $"{Opt.PreserveColor} must be none, luminance or histogram, not {PreserveColor}");
        Require(Enum.IsDefined(Padding), $"{Opt.Padding} must be zero or replicate, not {Padding}");
        Require(Scales >= 0, $"{Opt.Scales} must be auto or a count of 1 or more, not {Scales}");
        Require(ScaleStart >= MinScaleSize, $"{Opt.ScaleStart} must be at least {MinScaleSize} px, not {ScaleStart}");
        Require(IterationTaper == 0 || IterationTaper >= MinScaleSize, $"{Opt.IterationTaper} must be 0 (off) or at least {MinScaleSize} px, not {IterationTaper}");
        Require(StyleAnchor == 0 || StyleAnchor >= MinScaleSize, $"{Opt.StyleAnchor} must be 0 (off) or at least {MinScaleSize} px, not {StyleAnchor}");
        if (Scales > 1)
        {
            int smallest = (int)Math.Round(Size / Math.Pow(Math.Sqrt(2), Scales - 1));
            int most = 1 + (int)Math.Floor((Math.Log(Size / (double)MinScaleSize) / Math.Log(Math.Sqrt(2))) + 1e-9);
            Require(smallest >= MinScaleSize, $"{Opt.Scales.Is(Scales.ToString(CultureInfo.InvariantCulture))} starts at {smallest} px, below {MinScaleSize}; at most {Math.Max(1, most)} scale(s) fit {Opt.Size.Is(Size.ToString(CultureInfo.InvariantCulture))}");
        }

        Require(
            Precision != Precision.Fp16 || Device.Trim().StartsWith("cuda", StringComparison.OrdinalIgnoreCase),
            $"{Opt.Precision.Is("fp16")} needs {Opt.Device.Is("cuda")} (libtorch has no fast fp16 convolutions on the CPU); use {Opt.Precision.Is("bf16")}");
        return this;
    }

    /// <summary>The most libtorch threads allowed: 4 × the cores (more only adds contention; an unbounded count spawns threads until the pid limit).</summary>
    public static int MaxThreads => 4 * Environment.ProcessorCount;

    /// <summary>The one-line refusal of a thread count above <see cref="MaxThreads"/>.</summary>
    internal static FormattableString ThreadsTooMany(int threads) =>
        $"{Opt.Threads} must be at most {MaxThreads} (4 × this machine's {Environment.ProcessorCount} cores), not {threads}";

    internal static string Format(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

    private static void RequireWeight(double w, Opt name) =>
        Require(double.IsFinite(w) && w >= 0, $"{name} must be a finite number of 0 or more, not {Format(w)}");

    private static void Require(bool condition, FormattableString message) => StyleTransferException.Require(condition, message);
}
