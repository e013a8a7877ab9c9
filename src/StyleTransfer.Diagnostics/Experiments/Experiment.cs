using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Experiments;

/// <summary>
/// The paper's experiments on any feature network: content reconstructions (Figure 1, top), style
/// reconstructions or textures (Figure 1, bottom), and the α/β × style-depth grid (Figure 3). Every
/// experiment is a list of <see cref="TilePlan"/>s run by <see cref="RunTiles"/> against one set
/// of targets and one loaded network.
/// </summary>
internal static class Experiment
{
    /// <summary>Options that reconstruct the content image from white noise by matching <paramref name="layer"/> alone (β = 0).</summary>
    public static StyleTransferOptions ContentReconstruction(StyleTransferOptions o, string layer) => o with
    {
        ContentLayers = [layer],
        ContentWeight = o.ContentWeight > 0 ? o.ContentWeight : 1,
        StyleWeight = 0,
        StyleLayerWeights = null,
        Init = InitMode.Noise,
    };

    /// <summary>Options that synthesise a texture from white noise by matching the Gram matrices of <paramref name="layers"/> alone (α = 0).</summary>
    public static StyleTransferOptions StyleReconstruction(StyleTransferOptions o, IReadOnlyList<string> layers) => o with
    {
        StyleLayers = layers,
        StyleLayerWeights = o.StyleLayerWeights is { } w && w.Count == layers.Count ? w : null,
        StyleWeight = o.StyleWeight > 0 ? o.StyleWeight : 1e3,
        ContentWeight = 0,
        Init = InitMode.Noise,
    };

    /// <summary>"relu1_1", "relu1_1 + relu2_1", "relu1_1 … relu3_1" (a ladder prefix is named by its ends).</summary>
    public static string LayerSetLabel(IReadOnlyList<string> layers) => layers.Count switch
    {
        0 => "none",
        1 => layers[0],
        2 => $"{layers[0]} + {layers[1]}",
        _ => $"{layers[0]} … {layers[^1]}",
    };

    /// <summary>"α/β = 1e-4".</summary>
    public static string RatioLabel(double ratio) => "α/β = " + FormatRatio(ratio);

    /// <summary>1e-4 → "1e-4", 3e-05 → "3e-5", 0.5 → "5e-1".</summary>
    public static string FormatRatio(double ratio) => ratio.ToString("0.##e+0", CultureInfo.InvariantCulture).Replace("e+", "e", StringComparison.Ordinal);

    /// <summary>
    /// Figure 1 of the paper: row 0 reconstructs the content from each layer of the network's
    /// content ladder, row 1 the style from the first 1, 2, … layers of its style ladder. Column 0
    /// is left for the original images.
    /// </summary>
    public static List<TilePlan> Figure1Plan(NetworkProfile profile, StyleTransferOptions o)
    {
        var tiles = new List<TilePlan>();
        for (int i = 0; i < profile.ContentLadder.Count; i++)
        {
            tiles.Add(new TilePlan(0, i + 1, profile.ContentLadder[i], ContentReconstruction(o, profile.ContentLadder[i])) { Group = "content" });
        }

        for (int d = 1; d <= profile.StyleLadder.Count; d++)
        {
            string[] layers = [.. profile.StyleLadder.Take(d)];
            tiles.Add(new TilePlan(1, d, LayerSetLabel(layers), StyleReconstruction(o, layers)) { Group = "style" });
        }

        return tiles;
    }

    /// <summary>
    /// Figure 3 of the paper: α/β across the columns, style depth (the first d layers of the style
    /// ladder) or initialisation down the rows; see <see cref="GridAxes"/> for the defaults.
    /// </summary>
    public static GridPlan PlanGrid(NetworkProfile profile, StyleTransferOptions o, GridAxes axes)
    {
        if (o.StyleWeight <= 0)
        {
            throw new StyleTransferException("grid: --style-weight must be above 0 (the grid varies α/β)");
        }

        IReadOnlyList<string> ladder = profile.StyleLadder;
        foreach (int d in axes.Depths ?? [])
        {
            if (d < 1 || d > ladder.Count)
            {
                throw new StyleTransferException(
                    $"--depths: {d} is larger than the style ladder of {o.Network} ({ladder.Count} layers: {string.Join(", ", ladder)})");
            }
        }

        bool byInit = axes.Inits != null;
        double ratio = o.ContentWeight / o.StyleWeight;
        IReadOnlyList<double> ratios = axes.Ratios ?? (byInit ? [ratio] : GridAxes.DecadesAround(ratio));
        IReadOnlyList<int?> depths = axes.Depths?.Select(d => (int?)d).ToList()
            ?? (byInit ? [null] : [.. Enumerable.Range(1, ladder.Count).Select(d => (int?)d)]);
        IReadOnlyList<InitMode> inits = axes.Inits ?? [o.Init];

        var rowHeaders = new List<string>();
        var tiles = new List<TilePlan>();
        foreach (InitMode init in inits)
        {
            foreach (int? depth in depths)
            {
                IReadOnlyList<string> styleLayers = depth is { } d ? [.. ladder.Take(d)] : o.StyleLayers;
                string layersLabel = depth is null ? "" : LayerSetLabel(styleLayers);
                string initLabel = byInit ? "init " + init.ToString().ToLowerInvariant() : "";
                string header = string.Join(" · ", new[] { initLabel, layersLabel }.Where(s => s.Length > 0));
                int row = rowHeaders.Count;
                rowHeaders.Add(header);
                for (int c = 0; c < ratios.Count; c++)
                {
                    StyleTransferOptions t = o with
                    {
                        StyleLayers = styleLayers,
                        StyleLayerWeights = depth is null ? o.StyleLayerWeights : null,
                        ContentWeight = ratios[c] * o.StyleWeight,
                        Init = init,
                    };
                    tiles.Add(new TilePlan(row, c, $"{header}, {RatioLabel(ratios[c])}".TrimStart(',', ' '), t));
                }
            }
        }

        return new GridPlan(tiles, [.. ratios.Select(RatioLabel)], rowHeaders);
    }

    /// <summary>The layers whose targets a set of tiles needs: every active content layer and every active style layer of any tile.</summary>
    public static (List<string> Content, List<string> Style) TargetLayers(IReadOnlyList<TilePlan> tiles) =>
        ([.. tiles.SelectMany(t => Stylizer.ActiveContentLayers(t.Options)).Distinct()],
         [.. tiles.SelectMany(t => Stylizer.ActiveStyleLayers(t.Options)).Distinct()]);

    /// <summary>
    /// Runs the tiles in order on one network against one set of targets (computed once for all
    /// of them), each optimising an image of <paramref name="size"/>. Stops after the tile during
    /// which <paramref name="cancellation"/> fires. The tiles must share their feature transform.
    /// </summary>
    public static ExperimentResult RunTiles(
        IFeatureNetwork network,
        Tensor? content,
        Tensor? style,
        (int Height, int Width) size,
        IReadOnlyList<TilePlan> tiles,
        IProgress<TileReport>? progress = null,
        CancellationToken cancellation = default,
        Action<int, Tensor>? snapshot = null)
    {
        if (tiles.Count == 0)
        {
            throw new ArgumentException("no tiles to run", nameof(tiles));
        }

        StyleTransferOptions first = tiles[0].Options;
        if (tiles.Any(t => t.Options.FeatureTransform != first.FeatureTransform || t.Options.SoftmaxTemperature != first.SoftmaxTemperature))
        {
            throw new ArgumentException("the tiles must share one feature transform (their targets are computed once)", nameof(tiles));
        }

        foreach (TilePlan t in tiles)
        {
            CheckLayers(network, "--content-layers", t.Options.ContentLayers);
            CheckLayers(network, "--style-layers", t.Options.StyleLayers);
        }

        (List<string> contentLayers, List<string> styleLayers) = TargetLayers(tiles);
        using Targets targets = Targets.Compute(network, content, contentLayers, style, styleLayers, first.FeatureTransform, first.SoftmaxTemperature);
        var runs = new List<TileRun>();
        bool cancelled = false;
        try
        {
            for (int i = 0; i < tiles.Count; i++)
            {
                if (cancellation.IsCancellationRequested)
                {
                    cancelled = true;
                    break;
                }

                TilePlan tile = tiles[i];
                int ordinal = i + 1;
                var forward = progress == null ? null : new Forward<IterationReport>(r => progress.Report(new TileReport(ordinal, tiles.Count, tile, r)));
                StylizeResult result = Stylizer.Run(targets, network, tile.Options, size, content, style, forward, cancellation, snapshot);
                runs.Add(new TileRun(tile, result));
                if (result.Cancelled)
                {
                    cancelled = true;
                    break;
                }
            }
        }
        catch
        {
            runs.ForEach(r => r.Dispose());
            throw;
        }

        return new ExperimentResult(tiles, runs, cancelled, first.Seed ?? runs.FirstOrDefault()?.Result.Seed ?? 0);
    }

    /// <summary>
    /// `stylize reconstruct`: the content image (long edge options.Size) rebuilt from white noise
    /// by matching <paramref name="layer"/> (default: the options' first content layer); writes
    /// the image to <paramref name="outputPath"/>.
    /// </summary>
    public static ExperimentResult Reconstruct(string contentPath, string outputPath, StyleTransferOptions options, string? layer = null, IProgress<TileReport>? progress = null, CancellationToken cancellation = default, Action<ExperimentResult, FileBatch>? companions = null)
    {
        options.Validate();
        ImageIO.CheckOutputPath(outputPath);
        layer ??= options.ContentLayers.FirstOrDefault() ?? throw new StyleTransferException("--layer: no layer given and the options have no content layer");
        Device device = Prepare(options);
        MemoryGuard.Check(options, device, [(contentPath, "content image", options.Size)]);
        using Tensor content = ImageIO.LoadTensor(contentPath, "content image", options.Size);
        (int h, int w) = ((int)content.shape[2], (int)content.shape[3]);
        using IFeatureNetwork network = NetworkFactory.Create(options, device);
        CheckLayers(network, "--layer", [layer]);
        long seed = options.Seed ?? PickSeed();
        TilePlan tile = new(0, 0, layer, ContentReconstruction(options, layer) with { Seed = seed });
        ExperimentResult result = RunTiles(network, content, null, (h, w), [tile], progress, cancellation, Snapshots(options, outputPath));
        return SaveSingle(result, outputPath, companions);
    }

    /// <summary>
    /// `stylize texture`: a <paramref name="size"/> (width, height) image synthesised from white
    /// noise by matching the style image's Gram matrices on <paramref name="layers"/> (default: the
    /// options' style layers). The style image is scaled so its long edge is the output's long edge
    /// × options.StyleScale, whatever its own size.
    /// </summary>
    public static ExperimentResult Texture(string stylePath, string outputPath, StyleTransferOptions options, (int Width, int Height) size, IReadOnlyList<string>? layers = null, IProgress<TileReport>? progress = null, CancellationToken cancellation = default, Action<ExperimentResult, FileBatch>? companions = null)
    {
        options = (options with { Size = Math.Max(size.Width, size.Height) }).Validate();
        ImageIO.CheckOutputPath(outputPath);
        layers ??= options.StyleLayers;
        if (layers.Count == 0)
        {
            throw new StyleTransferException("--layers is empty");
        }

        if (layers.Distinct().Count() != layers.Count)
        {
            throw new StyleTransferException("--layers names a layer twice");
        }

        if (options.StyleLayerWeights is { } weights && weights.Count != layers.Count && layers != options.StyleLayers)
        {
            throw new StyleTransferException($"--style-layer-weights has {weights.Count} value(s) but --layers has {layers.Count}");
        }

        Device device = Prepare(options);
        MemoryGuard.Check(options, device, [(stylePath, "style image", options.EnlargedStyleEdge)], (long)size.Width * size.Height);
        using Tensor style = ImageIO.LoadTensor(stylePath, "style image", options.EnlargedStyleEdge);
        using IFeatureNetwork network = NetworkFactory.Create(options, device);
        CheckLayers(network, "--layers", layers);
        long seed = options.Seed ?? PickSeed();
        TilePlan tile = new(0, 0, LayerSetLabel(layers), StyleReconstruction(options, layers) with { Seed = seed });
        ExperimentResult result = RunTiles(network, null, style, (size.Height, size.Width), [tile], progress, cancellation, Snapshots(options, outputPath));
        return SaveSingle(result, outputPath, companions);
    }

    /// <summary>`stylize figure1`: the labelled contact sheet of <see cref="Figure1Plan"/>, with the two original images as its first column.</summary>
    public static ExperimentResult Figure1(string contentPath, string stylePath, string outputPath, StyleTransferOptions options, IProgress<TileReport>? progress = null, CancellationToken cancellation = default, Action<ExperimentResult, FileBatch>? companions = null)
    {
        options.Validate();
        NetworkProfile profile = NetworkFactory.Profile(options.Network);
        List<TilePlan> plan = Figure1Plan(profile, options);
        string title = $"{options.Network}: content reconstructions (top) and style reconstructions (bottom) from white noise, {options.Iterations} iterations";
        return RunSheet(contentPath, stylePath, outputPath, options, plan, progress, cancellation, companions, (layout, content, style, runs) =>
        {
            var cells = new List<SheetCell> { new(0, 0, "content image", content), new(1, 0, "style image", style) };
            cells.AddRange(plan.Select(t => new SheetCell(t.Row, t.Column, t.Label, runs.GetValueOrDefault((t.Row, t.Column)))));
            return new SheetSpec(2, 1 + plan.Max(t => t.Column), layout.Width, layout.Height, cells)
            {
                Title = title,
                FontSize = SheetSpec.FontSizeFor(layout.Width, layout.Height),
            };
        });
    }

    /// <summary>`stylize grid`: the labelled contact sheet of <see cref="PlanGrid"/>.</summary>
    public static ExperimentResult Grid(string contentPath, string stylePath, string outputPath, StyleTransferOptions options, GridAxes axes, IProgress<TileReport>? progress = null, CancellationToken cancellation = default, Action<ExperimentResult, FileBatch>? companions = null)
    {
        options.Validate();
        GridPlan plan = PlanGrid(NetworkFactory.Profile(options.Network), options, axes);
        string init = axes.Inits == null ? $", init {options.Init.ToString().ToLowerInvariant()}" : "";
        string title = $"{options.Network}: content {string.Join(" + ", options.ContentLayers)}{init}, {options.Iterations} iterations";
        return RunSheet(contentPath, stylePath, outputPath, options, plan.Tiles, progress, cancellation, companions, (layout, _, _, runs) =>
            new SheetSpec(plan.RowHeaders.Count, plan.ColumnHeaders.Count, layout.Width, layout.Height, [.. plan.Tiles.Select(t => new SheetCell(t.Row, t.Column, null, runs.GetValueOrDefault((t.Row, t.Column))))])
            {
                ColumnHeaders = plan.ColumnHeaders,
                RowHeaders = plan.RowHeaders,
                Title = title,
                FontSize = SheetSpec.FontSizeFor(layout.Width, layout.Height),
            });
    }

    private static ExperimentResult RunSheet(
        string contentPath,
        string stylePath,
        string outputPath,
        StyleTransferOptions options,
        IReadOnlyList<TilePlan> plan,
        IProgress<TileReport>? progress,
        CancellationToken cancellation,
        Action<ExperimentResult, FileBatch>? companions,
        Func<(int Width, int Height), Image<Rgb24>, Image<Rgb24>, IReadOnlyDictionary<(int Row, int Column), Image<Rgb24>>, SheetSpec> sheet)
    {
        ImageIO.CheckOutputPath(outputPath);
        Device device = Prepare(options);
        MemoryGuard.Check(options, device, [(contentPath, "content image", options.Size), (stylePath, "style image", options.EnlargedStyleEdge)]);
        using Tensor content = ImageIO.LoadTensor(contentPath, "content image", options.Size);
        using Tensor style = ImageIO.LoadTensor(stylePath, "style image", options.EnlargedStyleEdge);
        (int h, int w) = ((int)content.shape[2], (int)content.shape[3]);
        using IFeatureNetwork network = NetworkFactory.Create(options, device);
        foreach (TilePlan t in plan)
        {
            CheckLayers(network, "--content-layers", t.Options.ContentLayers);
        }

        long seed = options.Seed ?? PickSeed();
        TilePlan[] seeded = [.. plan.Select(t => t with { Options = t.Options with { Seed = seed } })];
        ExperimentResult result = RunTiles(network, content, style, (h, w), seeded, progress, cancellation);
        if (result.StoppedBeforeStart)
        {
            return result;
        }

        var images = new Dictionary<(int Row, int Column), Image<Rgb24>>();
        try
        {
            using Image<Rgb24> contentImage = ImageIO.ToImage(content);
            using Image<Rgb24> styleImage = ImageIO.ToImage(style);
            foreach (TileRun run in result.Tiles)
            {
                images[(run.Plan.Row, run.Plan.Column)] = ImageIO.ToImage(run.Result.Image);
            }

            using var batch = new FileBatch();
            SheetLayout layout = ContactSheet.Save(sheet((w, h), contentImage, styleImage, images), outputPath, batch);
            result.OutputSize = (layout.Width, layout.Height);
            result.Layout = layout;
            companions?.Invoke(result, batch);
            batch.Commit();
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
        finally
        {
            foreach (Image<Rgb24> img in images.Values)
            {
                img.Dispose();
            }
        }
    }

    private static ExperimentResult SaveSingle(ExperimentResult result, string outputPath, Action<ExperimentResult, FileBatch>? companions)
    {
        if (result.StoppedBeforeStart)
        {
            return result;
        }

        try
        {
            Tensor image = result.Tiles[0].Result.Image;
            using var batch = new FileBatch();
            ImageIO.Save(image, outputPath, batch);
            result.OutputSize = ((int)image.shape[3], (int)image.shape[2]);
            companions?.Invoke(result, batch);
            batch.Commit();
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    private static Action<int, Tensor>? Snapshots(StyleTransferOptions options, string outputPath) =>
        options.SaveEvery > 0 ? (i, img) => ImageIO.Save(img, Stylizer.SnapshotPath(outputPath, i)) : null;

    private static Device Prepare(StyleTransferOptions options)
    {
        TorchRuntime.SetThreads(options.Threads);
        return TorchRuntime.ResolveDevice(options.Device);
    }

    private static long PickSeed() => Random.Shared.NextInt64(0, int.MaxValue);

    private static void CheckLayers(IFeatureNetwork network, string flag, IEnumerable<string> layers)
    {
        foreach (string layer in layers)
        {
            if (!network.TapNames.Contains(layer))
            {
                throw new StyleTransferException($"{flag}: unknown layer '{layer}' for {network.Name} (known: {string.Join(", ", network.TapNames)})");
            }
        }
    }

    private sealed class Forward<T>(Action<T> action) : IProgress<T>
    {
        public void Report(T value) => action(value);
    }
}

/// <summary>A grid's tiles and its labels.</summary>
internal sealed record GridPlan(IReadOnlyList<TilePlan> Tiles, IReadOnlyList<string> ColumnHeaders, IReadOnlyList<string> RowHeaders);
