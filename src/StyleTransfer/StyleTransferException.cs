using System.Globalization;

namespace StyleTransfer;

/// <summary>What went wrong, so a front end can pick an exit code.</summary>
public enum FailureKind
{
    /// <summary>The user's input (a file, a number, a name) is wrong. Exit code 2.</summary>
    BadInput,

    /// <summary>The optimisation itself failed (the loss became NaN or infinite). Exit code 3.</summary>
    Diverged,

    /// <summary>The native engine could not start. Exit code 4.</summary>
    Engine,
}

/// <summary>
/// An error meant for the user: its message is one complete line that names the problem.
/// Everything else that escapes the library is a bug.
/// </summary>
/// <remarks>
/// A message names settings by their <see cref="StyleTransferOptions"/> property
/// (<c>ContentLayers: unknown layer 'relu4_2' for resnet18</c>), or by the parameter of the method
/// that took them (<c>resume</c>). A front end with names of its own (the CLI's <c>--content-layers</c>)
/// renders the same message with <see cref="FormatMessage"/>.
/// </remarks>
public sealed class StyleTransferException : Exception
{
    private readonly FormattableString? template;

    /// <summary>An error with a plain message.</summary>
    public StyleTransferException(string message, FailureKind kind = FailureKind.BadInput)
        : base(message)
    {
        Kind = kind;
    }

    /// <summary>An error with a plain message, caused by <paramref name="inner"/>.</summary>
    public StyleTransferException(string message, Exception inner, FailureKind kind = FailureKind.BadInput)
        : base(message, inner)
    {
        Kind = kind;
    }

    private StyleTransferException(FormattableString template, Exception? inner, FailureKind kind)
        : base(Render(template, null), inner)
    {
        this.template = template;
        Kind = kind;
    }

    /// <summary>Which kind of failure: bad input, a diverged run, or an engine that cannot start.</summary>
    public FailureKind Kind { get; }

    /// <summary>
    /// The message with every setting it names rendered by <paramref name="optionName"/>, which
    /// receives the property (or parameter) name and returns the front end's name for it, or null to
    /// keep the property name. A setting named with its value (<c>Device = cuda</c>) becomes
    /// <c>NAME cuda</c> when renamed.
    /// </summary>
    public string FormatMessage(Func<string, string?> optionName)
    {
        ArgumentNullException.ThrowIfNull(optionName);
        return template is null ? Message : Render(template, optionName);
    }

    /// <summary>An error whose message names settings through <see cref="Opt"/> holes, so that <see cref="FormatMessage"/> can rename them.</summary>
    internal static StyleTransferException Named(FormattableString message, FailureKind kind = FailureKind.BadInput, Exception? inner = null) =>
        new(message, inner, kind);

    /// <summary>Throws <see cref="Named"/> unless <paramref name="condition"/> holds.</summary>
    internal static void Require(bool condition, FormattableString message)
    {
        if (!condition)
        {
            throw Named(message);
        }
    }

    private static string Render(FormattableString template, Func<string, string?>? optionName)
    {
        object?[] args = [.. template.GetArguments()];
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is Opt o)
            {
                args[i] = o.Render(optionName);
            }
            else if (args[i] is IEnumerable<Opt> list)
            {
                string[] names = [.. list.Select(x => x.Render(optionName))];
                args[i] = names.Length < 2 ? string.Join("", names) : $"{string.Join(", ", names[..^1])} and {names[^1]}";
            }
        }

        return string.Format(CultureInfo.CurrentCulture, template.Format, args);
    }
}

/// <summary>
/// A setting named in an error message: a <see cref="StyleTransferOptions"/> property (or a
/// method's parameter), optionally with a value. Renders as the property name, or <c>Name = value</c>,
/// unless a front end renames it (<see cref="StyleTransferException.FormatMessage"/>).
/// </summary>
/// <param name="Name">The property or parameter name.</param>
/// <param name="Value">A value shown with it, or null.</param>
/// <param name="Key">What the front end's renaming receives, when not <paramref name="Name"/> (a short form: "Iterations.Short").</param>
internal readonly record struct Opt(string Name, string? Value = null, string? Key = null)
{
    public static readonly Opt Size = new(nameof(StyleTransferOptions.Size));
    public static readonly Opt Iterations = new(nameof(StyleTransferOptions.Iterations));
    public static readonly Opt ContentWeight = new(nameof(StyleTransferOptions.ContentWeight));
    public static readonly Opt StyleWeight = new(nameof(StyleTransferOptions.StyleWeight));
    public static readonly Opt TvWeight = new(nameof(StyleTransferOptions.TvWeight));
    public static readonly Opt TvChromaWeight = new(nameof(StyleTransferOptions.TvChromaWeight));
    public static readonly Opt ContentLayers = new(nameof(StyleTransferOptions.ContentLayers));
    public static readonly Opt StyleLayers = new(nameof(StyleTransferOptions.StyleLayers));
    public static readonly Opt StyleLayerWeights = new(nameof(StyleTransferOptions.StyleLayerWeights));
    public static readonly Opt LearningRate = new(nameof(StyleTransferOptions.LearningRate));
    public static readonly Opt StyleBlend = new(nameof(StyleTransferOptions.StyleBlend));
    public static readonly Opt StyleMasks = new(nameof(StyleTransferOptions.StyleMasks));
    public static readonly Opt StyleScale = new(nameof(StyleTransferOptions.StyleScale));
    public static readonly Opt SmallStyle = new(nameof(StyleTransferOptions.SmallStyle));
    public static readonly Opt LbfgsHistory = new(nameof(StyleTransferOptions.LbfgsHistory));
    public static readonly Opt SoftmaxTemperature = new(nameof(StyleTransferOptions.SoftmaxTemperature));
    public static readonly Opt SaveEvery = new(nameof(StyleTransferOptions.SaveEvery));
    public static readonly Opt Threads = new(nameof(StyleTransferOptions.Threads));
    public static readonly Opt Seed = new(nameof(StyleTransferOptions.Seed));
    public static readonly Opt PreserveColor = new(nameof(StyleTransferOptions.PreserveColor));
    public static readonly Opt PaletteTransfer = new(nameof(StyleTransferOptions.PaletteTransfer));
    public static readonly Opt Padding = new(nameof(StyleTransferOptions.Padding));
    public static readonly Opt Scales = new(nameof(StyleTransferOptions.Scales));
    public static readonly Opt ScaleStart = new(nameof(StyleTransferOptions.ScaleStart));
    public static readonly Opt StyleAnchor = new(nameof(StyleTransferOptions.StyleAnchor));
    public static readonly Opt IterationTaper = new(nameof(StyleTransferOptions.IterationTaper));
    public static readonly Opt BitDepth = new(nameof(StyleTransferOptions.BitDepth));
    public static readonly Opt MaxMemory = new(nameof(StyleTransferOptions.MaxMemory));
    public static readonly Opt Tile = new(nameof(StyleTransferOptions.Tile));
    public static readonly Opt TileHalo = new(nameof(StyleTransferOptions.TileHalo));
    public static readonly Opt Device = new(nameof(StyleTransferOptions.Device));
    public static readonly Opt Precision = new(nameof(StyleTransferOptions.Precision));
    public static readonly Opt Optimizer = new(nameof(StyleTransferOptions.Optimizer));
    public static readonly Opt LineSearch = new(nameof(StyleTransferOptions.LineSearch));
    public static readonly Opt Network = new(nameof(StyleTransferOptions.Network));
    public static readonly Opt WeightsPath = new(nameof(StyleTransferOptions.WeightsPath));
    public static readonly Opt NormalizeWeights = new(nameof(StyleTransferOptions.NormalizeWeights));
    public static readonly Opt MaskFit = new(nameof(StyleTransferOptions.MaskFit));
    public static readonly Opt Init = new(nameof(StyleTransferOptions.Init));
    public static readonly Opt InitNoise = new(nameof(StyleTransferOptions.InitNoise));

    /// <summary>The checkpoint a run resumes from (<c>resume</c>, the parameter of <see cref="Optimization.Stylizer.StylizeFiles(string, IReadOnlyList{string}, string, StyleTransferOptions, IProgress{Optimization.IterationReport}?, CancellationToken, Optimization.Checkpoint?, string?, Action{Optimization.StylizeResult, FileBatch}?)"/>).</summary>
    public static readonly Opt Resume = new("resume");

    /// <summary>This setting with a value: <c>Name = value</c>.</summary>
    public Opt Is(string value) => this with { Value = value };

    /// <summary>The property's name, or the front end's.</summary>
    public string Render(Func<string, string?>? optionName)
    {
        string? renamed = optionName?.Invoke(Key ?? Name);
        return (renamed, Value) switch
        {
            (null, null) => Name,
            (null, { } v) => $"{Name} = {v}",
            ({ } r, null) => r,
            ({ } r, { } v) => $"{r} {v}",
        };
    }

    public override string ToString() => Render(null);
}
