using System.CommandLine;
using System.Globalization;
using StyleTransfer.Diagnostics;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using static TorchSharp.torch;

namespace StyleTransfer.Cli;

/// <summary>
/// `stylize metrics IMAGE…`: checkerboard energy and colour speckle (<see cref="ImageMetrics"/>) of
/// each image at one long edge, and with --style its style loss there, one machine-readable line
/// per image.
/// </summary>
internal sealed class MetricsCommand
{
    public readonly Argument<string[]> Images = new("IMAGE") { Description = "Images to measure", Arity = ArgumentArity.OneOrMore };
    public readonly Option<int> Size = new("--size") { Description = "Long edge the images (and STYLE, × --style-scale) are scaled to before measuring (Lanczos-3, as for stylising; at most 4096)", DefaultValueFactory = _ => ImageMetrics.DefaultSize };
    public readonly Option<string?> Style = new("--style") { Description = "Also print each image's style loss Σ w_l E_l against this style image, as a run with the image as content image and start point reports it at its first iteration (-n 1 --init content)" };

    /// <summary>Largest --size: the float64 temporaries of a 4096 px image take a few hundred MB.</summary>
    private const int MaxSize = 4096;

    private readonly OptionSet set = new();

    public MetricsCommand()
    {
        Command = new Command("metrics", "Noise measures of finished images (checkerboard energy, colour speckle) and, with --style, their style loss: one machine-readable line per image") { Images, Size, Style };

        // Only what changes the style loss of a given image: the network, its taps and how the terms are formed.
        set.AddTo(
            Command,
            set.Size, set.Iterations, set.ContentWeight, set.StyleWeight, set.Ratio, set.TvWeight, set.ContentLayers, set.Init,
            set.Optimizer, set.LineSearch, set.LbfgsHistory, set.LearningRate, set.Seed, set.SaveEvery);
        Command.Add(set.SmallStyle);
    }

    public Command Command { get; }

    public int Run(ParseResult p, TextWriter stdout)
    {
        int size = p.GetValue(Size);
        if (size < ImageIO.MinSide || size > MaxSize)
        {
            throw new StyleTransferException(size < ImageIO.MinSide ? $"--size must be at least {ImageIO.MinSide}, not {size}" : $"--size must be at most {MaxSize}, not {size}");
        }

        string? stylePath = p.GetValue(Style);
        StyleTransferOptions? options = stylePath is null ? null : set.Build(p, size);
        string[] paths = p.GetRequiredValue(Images);
        TorchRuntime.EnsureLoaded();

        // Every input is read (and refused) before anything is printed; then one at a time.
        foreach (string path in paths)
        {
            ImageIO.Load(path, "image").Dispose();
        }

        using StyleLossMeter? meter = stylePath is null ? null : new StyleLossMeter(stylePath, options!);
        if (meter != null)
        {
            stdout.WriteLine($"# style loss against {stylePath} ({meter.StyleSize.Width}x{meter.StyleSize.Height}): {options!.Network} ({NetworkFactory.Describe(options)}), style layers {string.Join(",", options.StyleLayers)}");
        }

        foreach (string path in paths)
        {
            using Tensor image = ImageIO.LoadTensor(path, "image", size);
            ImageMetricsResult m = ImageMetrics.Measure(image);
            string line = string.Create(CultureInfo.InvariantCulture, $"metrics {path} size={m.Width}x{m.Height} checkerboard={m.Checkerboard:F3} speckle={m.Speckle:F3}");
            if (meter != null)
            {
                line += " style_loss=" + meter.Measure(image).ToString("0.000e+00", CultureInfo.InvariantCulture);
            }

            stdout.WriteLine(line);
        }

        return CliApp.ExitOk;
    }
}
