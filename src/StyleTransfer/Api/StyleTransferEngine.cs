using System.Diagnostics;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer;

/// <summary>
/// The library's entry point: stylises a content image with one or more style images.
/// </summary>
/// <remarks>
/// <para>
/// One engine serves any number of calls, from any threads. It loads each feature network once (on
/// first use) and keeps it until it is disposed; calls that need the same network take turns,
/// calls that need different ones run side by side. The work runs on a background thread; the
/// returned task completes with the image and a report of the run.
/// </para>
/// <code>
/// using var engine = new StyleTransferEngine();
/// using StyleTransferResult result = await engine.StylizeAsync("photo.jpg", "painting.jpg");
/// result.Save("out.png");
/// </code>
/// </remarks>
public sealed class StyleTransferEngine : IDisposable
{
    /// <summary>The most bytes read from a <see cref="Stream"/> input (1 GiB): the image's own limits apply after that.</summary>
    public const long MaxStreamBytes = 1L << 30;

    private readonly Lock gate = new();
    private readonly Dictionary<NetworkKey, CachedNetwork> networks = [];
    private bool disposed;

    /// <summary>
    /// Stylises <paramref name="content"/> in the style of <paramref name="style"/>. See
    /// <see cref="StylizeAsync(ImageInput, IReadOnlyList{ImageInput}, StyleTransferOptions?, IProgress{StyleTransferProgress}?, CancellationToken)"/>.
    /// </summary>
    public Task<StyleTransferResult> StylizeAsync(
        ImageInput content,
        ImageInput style,
        StyleTransferOptions? options = null,
        IProgress<StyleTransferProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        StylizeAsync(content, [style], options, progress, cancellationToken);

    /// <summary>
    /// Stylises <paramref name="content"/> with several style images, blended by
    /// <see cref="StyleTransferOptions.StyleBlend"/> and placed by <see cref="StyleTransferOptions.StyleMasks"/>.
    /// </summary>
    /// <param name="content">The photograph: a file path, a stream or an ImageSharp image (each converts implicitly).</param>
    /// <param name="styles">The paintings, at least one.</param>
    /// <param name="options">
    /// The settings; null: all defaults. When <see cref="StyleTransferOptions.Network"/> is not set,
    /// VGG-19 is used when its weights are found, else ResNet-18 (bundled), as the CLI does; every
    /// setting left unset takes that network's default.
    /// </param>
    /// <param name="progress">
    /// Receives a report after every iteration, and with <see cref="StyleTransferOptions.SaveEvery"/>
    /// set to N, one more every N iterations that carries a preview image (yours to dispose).
    /// Reports are made on the worker thread.
    /// </param>
    /// <param name="cancellationToken">Stops the run between iterations; the task is then cancelled (<see cref="OperationCanceledException"/>).</param>
    /// <returns>The stylised image (the content's aspect ratio, long edge <see cref="StyleTransferOptions.Size"/>) and the run's report.</returns>
    /// <exception cref="StyleTransferException">Bad input (an option, an image, a missing weights file; its message names the property or the image), a diverged run, or an engine that cannot start; see <see cref="StyleTransferException.Kind"/>.</exception>
    public Task<StyleTransferResult> StylizeAsync(
        ImageInput content,
        IReadOnlyList<ImageInput> styles,
        StyleTransferOptions? options = null,
        IProgress<StyleTransferProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(styles);
        ObjectDisposedException.ThrowIf(disposed, this);
        return Task.Run(() => StylizeAsyncCore(content, styles, options ?? new StyleTransferOptions(), progress, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// The options an engine run uses for <paramref name="options"/>: the network chosen when none
    /// is named (VGG-19 when its weights are found, else ResNet-18), so every unset setting is that
    /// network's default; validated.
    /// </summary>
    public static StyleTransferOptions Resolve(StyleTransferOptions? options)
    {
        options ??= new StyleTransferOptions();
        if (options.NetworkUnset)
        {
            options = options with { Network = NetworkFactory.ChooseDefault(options.WeightsPath) };
        }

        return options.Validate();
    }

    /// <summary>
    /// The lower-level form, for callers that hold a network and tensors (a video or tile pipeline):
    /// stylises <paramref name="content"/> ([1,3,H,W], RGB in [0,1]) with <paramref name="styles"/>
    /// (each [1,3,h,w]; masks as in <see cref="Stylizer.Run(Tensor, IReadOnlyList{Tensor}, IFeatureNetwork, StyleTransferOptions, IReadOnlyList{Tensor?}?, IProgress{IterationReport}?, CancellationToken, Action{int, Tensor}?, Action{Checkpoint}?, Checkpoint?, RunHooks?)"/>)
    /// on the calling thread, on <paramref name="network"/>'s device. The output has the content's
    /// size. Unlike <see cref="StylizeAsync(ImageInput, IReadOnlyList{ImageInput}, StyleTransferOptions?, IProgress{StyleTransferProgress}?, CancellationToken)"/>,
    /// a cancelled run returns the image so far (<see cref="StyleTransferReport.Cancelled"/>).
    /// </summary>
    public static StyleTransferResult Stylize(
        IFeatureNetwork network,
        Tensor content,
        IReadOnlyList<Tensor> styles,
        StyleTransferOptions options,
        IReadOnlyList<Tensor?>? masks = null,
        IProgress<StyleTransferProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(options);
        var clock = Stopwatch.StartNew();
        options.Validate(styles.Count);
        var forward = progress is null ? null : new Forward(progress);
        Action<int, Tensor>? preview = progress is null || options.SaveEvery <= 0
            ? null
            : (i, img) => progress.Report(new StyleTransferProgress(forward!.Last ?? throw new InvalidOperationException("a preview before any iteration"), ImageIO.ToImage(img)));
        using StylizeResult run = Stylizer.Run(content, styles, network, options, masks, forward, cancellationToken, preview);
        Image<Rgb24> image = ImageIO.ToImage(run.Image);
        var report = new StyleTransferReport(options with { Seed = run.Seed }, network.Device.ToString(), run.Seed, run.History, clock.Elapsed, run.Cancelled);
        return new StyleTransferResult(image, report);
    }

    /// <summary>Disposes the networks loaded so far (waiting for runs that use them to end).</summary>
    public void Dispose()
    {
        List<CachedNetwork> loaded;
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
            loaded = [.. networks.Values];
            networks.Clear();
        }

        foreach (CachedNetwork entry in loaded)
        {
            entry.Turn.Wait();
            entry.Network?.Dispose();
            entry.Network = null;
            entry.Turn.Release();
        }
    }

    /// <summary>
    /// The door of this repository's front ends (the web app, the batch workers): a run as
    /// <see cref="StylizeAsync(ImageInput, IReadOnlyList{ImageInput}, StyleTransferOptions?, IProgress{StyleTransferProgress}?, CancellationToken)"/>
    /// makes it (the same input checks, this engine's cached network), at the tensor level: progress
    /// as <see cref="IterationReport"/>s, <paramref name="snapshot"/> receiving the image (on the CPU,
    /// for the time of the call) every <see cref="StyleTransferOptions.SaveEvery"/> iterations, and a
    /// run stopped through <paramref name="cancellationToken"/> returned (<see cref="StylizeResult.Cancelled"/>)
    /// rather than thrown, once it started. The result's image is the tensor, for outputs the public
    /// <see cref="Image{TPixel}"/> of 8 bits cannot carry (16-bit PNG, the content's metadata).
    /// </summary>
    internal Task<StylizeResult> RunAsync(
        ImageInput content,
        IReadOnlyList<ImageInput> styles,
        StyleTransferOptions options,
        IProgress<IterationReport>? progress,
        Action<int, Tensor>? snapshot,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(styles);
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(disposed, this);
        return Task.Run(
            () => WithNetworkAsync(content, styles, options, (network, c, s, masks, resolved) => Stylizer.Run(c, s, network, resolved, masks, progress, cancellationToken, snapshot), cancellationToken),
            cancellationToken);
    }

    private async Task<StyleTransferResult> StylizeAsyncCore(ImageInput content, IReadOnlyList<ImageInput> styles, StyleTransferOptions options, IProgress<StyleTransferProgress>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        StyleTransferResult result = await WithNetworkAsync(
            content,
            styles,
            options,
            (network, c, s, masks, resolved) =>
            {
                StyleTransferResult r = Stylize(network, c, s, resolved, masks, progress, cancellationToken);
                if (r.Report.Cancelled)
                {
                    r.Dispose();
                    throw new OperationCanceledException(cancellationToken);
                }

                return r;
            },
            cancellationToken).ConfigureAwait(false);
        return new StyleTransferResult(result.Image, result.Report with { Elapsed = clock.Elapsed });
    }

    /// <summary>
    /// Resolves and checks the options, loads the inputs (and masks) as tensors, and runs
    /// <paramref name="body"/> on this engine's network for the options, loaded on first use, in its turn.
    /// </summary>
    private async Task<T> WithNetworkAsync<T>(
        ImageInput content,
        IReadOnlyList<ImageInput> styles,
        StyleTransferOptions options,
        Func<IFeatureNetwork, Tensor, List<Tensor>, Tensor?[]?, StyleTransferOptions, T> body,
        CancellationToken cancellationToken)
    {
        options = Resolve(options).Validate(styles.Count);
        TorchRuntime.SetThreads(options.Threads);
        Device device = TorchRuntime.ResolveDevice(options.Device);
        var key = NetworkKey.For(options);
        CachedNetwork entry;
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (!networks.TryGetValue(key, out entry!))
            {
                entry = new CachedNetwork();
                networks[key] = entry;
            }
        }

        using var loaded = new DisposableList();
        using (var files = new TempImages())
        {
            // Streams become files first, so that every input passes the same checks (truncation,
            // decompression bombs, size limits) before any pixel is decoded.
            try
            {
                string? contentFile = files.PathOf(content, "content image", cancellationToken);
                List<string?> styleFiles = [.. styles.Select((s, i) => files.PathOf(s, Stylizer.StyleName(styles.Count, i), cancellationToken))];
                int[] styleEdges = [.. styles.Select((st, i) => styleFiles[i] is { } f ? Stylizer.StyleEdge(options, f, Stylizer.StyleName(styles.Count, i)) : options.StyleEdge(st.Image!.Width, st.Image.Height))];
                long inMemoryPixels = new[] { content }.Concat(styles).Where(i => i.Image is not null).Select(i => ScaledPixels(i.Image!, options.Size)).DefaultIfEmpty(0).Max();
                MemoryGuard.Check(
                    options,
                    device,
                    [.. new[] { (contentFile, "content image", options.Size) }.Concat(styleFiles.Select((f, i) => (f, Stylizer.StyleName(styles.Count, i), styleEdges[i]))).Where(x => x.Item1 is not null).Select(x => (x.Item1!, x.Item2, x.Item3)),
                 .. (options.StyleMasks ?? []).Select(m => (m.Path, $"mask for style image {m.Style + 1}", options.Size))],
                    inMemoryPixels);
                Tensor c = loaded.Add(files.Load(content, contentFile, "content image", options.Size));
                List<Tensor> s = [.. styles.Select((st, i) => loaded.Add(files.Load(st, styleFiles[i], Stylizer.StyleName(styles.Count, i), styleEdges[i])))];
                Tensor?[]? masks = options.StyleMasks is null ? null : new Tensor?[styles.Count];
                foreach (StyleMask m in options.StyleMasks ?? [])
                {
                    string what = $"mask for style image {m.Style + 1}";
                    Tensor mask = loaded.Add(ImageIO.LoadTensor(m.Path, what, options.Size));
                    Stylizer.CheckMaskShape(mask, c, $"{what} '{m.Path}'", options.MaskFit);
                    using Tensor max = mask.max();
                    if (max.ToDouble() < StyleTerms.Black)
                    {
                        throw new StyleTransferException($"{what} '{m.Path}' is all black: it places that style nowhere");
                    }

                    masks![m.Style] = mask;
                }

                cancellationToken.ThrowIfCancellationRequested();
                await entry.Turn.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    ObjectDisposedException.ThrowIf(disposed, this);
                    entry.Network ??= NetworkFactory.Create(options, device);
                    return body(entry.Network, c, s, masks, options);
                }
                finally
                {
                    entry.Turn.Release();
                }
            }
            catch (StyleTransferException e) when (files.Rename(e) is { } renamed)
            {
                throw renamed;
            }
        }
    }

    private static long ScaledPixels(Image<Rgb24> image, int longEdge)
    {
        (int w, int h) = ImageIO.ScaledSize(image.Width, image.Height, longEdge);
        return (long)w * h;
    }

    /// <summary>What makes two runs' networks the same object.</summary>
    private readonly record struct NetworkKey(string Network, string? Weights, PoolingMode Pooling, bool NormalizeWeights, Precision Precision, FirstConvPadding Padding, bool AntiAlias, string Device)
    {
        public static NetworkKey For(StyleTransferOptions o) => new(
            o.Network,
            o.WeightsPath is null ? null : Path.GetFullPath(o.WeightsPath),
            o.Pooling,
            o.NormalizeWeights,
            o.Precision,
            o.Padding,
            o.AntiAlias,
            o.Device.Trim().ToLowerInvariant());
    }

    /// <summary>A loaded network and the turn to use it: one run at a time.</summary>
    private sealed class CachedNetwork
    {
        public SemaphoreSlim Turn { get; } = new(1, 1);

        public IFeatureNetwork? Network { get; set; }
    }

    /// <summary>Forwards the optimiser's reports and remembers the last, for the previews.</summary>
    private sealed class Forward(IProgress<StyleTransferProgress> target) : IProgress<IterationReport>
    {
        public IterationReport? Last { get; private set; }

        public void Report(IterationReport value)
        {
            Last = value;
            target.Report(new StyleTransferProgress(value, null));
        }
    }

    /// <summary>Stream inputs copied to private temporary files for the run, deleted after it.</summary>
    private sealed class TempImages : IDisposable
    {
        private readonly Dictionary<string, string> names = [];

        /// <summary>The file to check and read <paramref name="input"/> from: its path, a temporary copy of its stream, or null for an in-memory image.</summary>
        public string? PathOf(ImageInput input, string what, CancellationToken cancellationToken)
        {
            if (input.Path is { } path)
            {
                return path;
            }

            if (input.Stream is not { } stream)
            {
                return null;
            }

            string temp = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"stylize-{Guid.NewGuid():N}.img");
            names[temp] = input.Name ?? "(stream)";
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                byte[] buffer = new byte[1 << 16];
                long total = 0;
                int n;
                while ((n = stream.Read(buffer)) > 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    total += n;
                    if (total > MaxStreamBytes)
                    {
                        throw new StyleTransferException($"{what} '{names[temp]}' is larger than {MaxStreamBytes >> 20} MiB");
                    }

                    file.Write(buffer, 0, n);
                }
            }

            return temp;
        }

        /// <summary>Loads an input at <paramref name="longEdge"/> as [1,3,H,W].</summary>
        public Tensor Load(ImageInput input, string? file, string what, int longEdge)
        {
            if (file is not null)
            {
                return ImageIO.LoadTensor(file, what, longEdge);
            }

            Image<Rgb24> image = input.Image!;
            if (image.Width < ImageIO.MinSide || image.Height < ImageIO.MinSide)
            {
                throw new StyleTransferException($"{what} is too small ({image.Width}x{image.Height}; both sides must be at least {ImageIO.MinSide} px)");
            }

            (int w, int h) = ImageIO.ScaledSize(image.Width, image.Height, longEdge);
            if (w == image.Width && h == image.Height)
            {
                return ImageIO.ToTensor(image);
            }

            using Image<Rgb24> scaled = image.Clone(x => x.Resize(w, h, KnownResamplers.Lanczos3));
            return ImageIO.ToTensor(scaled);
        }

        /// <summary>The error with the temporary files' names replaced by the streams' names; null when it names none.</summary>
        public StyleTransferException? Rename(StyleTransferException e)
        {
            string message = e.Message;
            foreach ((string temp, string name) in names)
            {
                message = message.Replace(temp, name, StringComparison.Ordinal);
            }

            return message == e.Message ? null : new StyleTransferException(message, e, e.Kind);
        }

        public void Dispose()
        {
            foreach (string temp in names.Keys)
            {
                AtomicFile.TryDelete(temp);
            }
        }
    }
}

/// <summary>
/// An input image: a file path, a readable stream (read to its end; the caller keeps it), or an
/// ImageSharp image (not disposed). Each converts implicitly, so a path string can be passed where
/// an <see cref="ImageInput"/> is expected.
/// </summary>
public sealed class ImageInput
{
    private ImageInput(string? path, Stream? stream, Image<Rgb24>? image, string? name)
    {
        Path = path;
        Stream = stream;
        Image = image;
        Name = name;
    }

    /// <summary>The file, when the input is one.</summary>
    public string? Path { get; }

    /// <summary>The stream, when the input is one.</summary>
    public Stream? Stream { get; }

    /// <summary>The image, when the input is one.</summary>
    public Image<Rgb24>? Image { get; }

    /// <summary>What errors call the input (the file name of an upload, say); the path for a file.</summary>
    public string? Name { get; }

    /// <summary>An image file (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP).</summary>
    public static ImageInput FromFile(string path) => new(path ?? throw new ArgumentNullException(nameof(path)), null, null, path);

    /// <summary>An image in a stream, read to its end (at most <see cref="StyleTransferEngine.MaxStreamBytes"/>); <paramref name="name"/> names it in errors.</summary>
    public static ImageInput FromStream(Stream stream, string? name = null) => new(null, stream ?? throw new ArgumentNullException(nameof(stream)), null, name);

    /// <summary>An image already decoded.</summary>
    public static ImageInput FromImage(Image<Rgb24> image) => new(null, null, image ?? throw new ArgumentNullException(nameof(image)), null);

    /// <summary>A path: <see cref="FromFile"/>.</summary>
    public static implicit operator ImageInput(string path) => FromFile(path);

    /// <summary>A stream: <see cref="FromStream"/>.</summary>
    public static implicit operator ImageInput(Stream stream) => FromStream(stream);

    /// <summary>An image: <see cref="FromImage"/>.</summary>
    public static implicit operator ImageInput(Image<Rgb24> image) => FromImage(image);
}

/// <summary>A run's image and report. Dispose it to free the image.</summary>
public sealed class StyleTransferResult : IDisposable
{
    internal StyleTransferResult(Image<Rgb24> image, StyleTransferReport report)
    {
        Image = image;
        Report = report;
    }

    /// <summary>The stylised image, RGB.</summary>
    public Image<Rgb24> Image { get; }

    /// <summary>What the run did: its options, seed, losses per iteration and time.</summary>
    public StyleTransferReport Report { get; }

    /// <summary>
    /// Writes the image as PNG or JPEG (by the extension: .png, .jpg, .jpeg), atomically: through a
    /// temporary file and a rename, so the file appears under its name only when whole, and a link
    /// planted at <paramref name="path"/> is replaced, not followed.
    /// </summary>
    public void Save(string path) => ImageIO.Save(Image, path);

    /// <summary>Frees the image.</summary>
    public void Dispose() => Image.Dispose();
}

/// <summary>What a run did.</summary>
/// <param name="Options">The options the run used, network and seed resolved.</param>
/// <param name="Device">The device it ran on ("cpu", "cuda:0").</param>
/// <param name="Seed">The seed (given, or picked): the same seed and options give the same image on the same machine.</param>
/// <param name="History">One report per iteration, over every scale.</param>
/// <param name="Elapsed">Wall time of the whole call: loading, network, targets and iterations.</param>
/// <param name="Cancelled">Stopped early by its cancellation token (only the lower-level <see cref="StyleTransferEngine.Stylize"/> returns such a run).</param>
public sealed record StyleTransferReport(StyleTransferOptions Options, string Device, long Seed, IReadOnlyList<IterationReport> History, TimeSpan Elapsed, bool Cancelled)
{
    /// <summary>The feature network used.</summary>
    public string Network => Options.Network;

    /// <summary>Iterations run, over every scale.</summary>
    public int Iterations => History.Count;

    /// <summary>The last iteration's report (its losses are the final ones); null when none ran.</summary>
    public IterationReport? Final => History.Count > 0 ? History[^1] : null;
}

/// <summary>One progress report: an iteration's losses and, every <see cref="StyleTransferOptions.SaveEvery"/> iterations, a preview.</summary>
/// <param name="Iteration">The iteration just finished (1-based over every scale), its losses and time.</param>
/// <param name="Preview">The image so far, on reports made every <see cref="StyleTransferOptions.SaveEvery"/> iterations (a second report for that iteration); null otherwise. Yours to dispose.</param>
public sealed record StyleTransferProgress(IterationReport Iteration, Image<Rgb24>? Preview);
