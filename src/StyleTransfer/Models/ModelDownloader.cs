using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using StyleTransfer.Formats;
using StyleTransfer.Networks;

namespace StyleTransfer.Models;

/// <summary>
/// A torchvision weights file that <see cref="ModelDownloader"/> can fetch: the network it is for,
/// its published file name (whose last <c>-HEX</c> part is the start of its SHA-256, as in
/// torch.hub), and the most bytes it may have.
/// </summary>
public sealed partial record ModelFile(string Network, string FileName, long MaxBytes)
{
    /// <summary>The SHA-256 prefix in <see cref="FileName"/> (lowercase hex), e.g. "dcbb9e9d" for vgg19-dcbb9e9d.pth.</summary>
    public string Sha256Prefix => HashInName().Match(FileName) is { Success: true } m
        ? m.Groups[1].Value.ToLowerInvariant()
        : throw new ArgumentException($"'{FileName}' carries no SHA-256 prefix (NAME-HEX.EXT)", nameof(FileName));

    // torch.hub's HASH_REGEX, "-([a-f0-9]*)\.", with at least 8 digits.
    [GeneratedRegex(@"-([0-9a-fA-F]{8,64})\.[^-]*$")]
    private static partial Regex HashInName();
}

/// <summary>Bytes of one download so far; <see cref="Total"/> is null while the size is unknown.</summary>
public sealed record DownloadProgress(string FileName, long Received, long? Total);

/// <summary>What <see cref="ModelDownloader.DownloadAsync"/> did.</summary>
/// <param name="Path">The verified weights file.</param>
/// <param name="Downloaded">False when the file was there already and nothing was fetched.</param>
/// <param name="Bytes">The file's size in bytes.</param>
/// <param name="ResumedFrom">Bytes of an earlier partial download that were kept (0: started afresh).</param>
public sealed record DownloadResult(string Path, bool Downloaded, long Bytes, long ResumedFrom);

/// <summary>
/// Fetches torchvision's published ImageNet weights (<see cref="Known"/>) into the PyTorch hub
/// cache, where <see cref="WeightLocator"/> finds them. A download goes to NAME.partial beside the
/// final name and continues from there after an interruption (an HTTP Range request); the whole
/// file's SHA-256 must start with the prefix in its name (otherwise it is deleted and refused);
/// only then is it renamed to its final name. A response larger than the file's known size bound
/// is refused. Every failure is a <see cref="StyleTransferException"/> with one line.
/// </summary>
public sealed class ModelDownloader : IDisposable
{
    /// <summary>Where torchvision publishes its weights.</summary>
    public const string DefaultBaseUrl = "https://download.pytorch.org/models/";

    /// <summary>Environment variable naming another base URL (a mirror holding the same file names).</summary>
    public const string BaseUrlVariable = "STYLIZE_MODELS_BASE_URL";

    private const int BufferSize = 1 << 16;

    private readonly HttpClient client;
    private readonly TimeSpan stallTimeout;

    /// <param name="baseUrl">Base URL the file names are appended to; null: <see cref="BaseUrlFromEnvironment"/>.</param>
    /// <param name="stallTimeout">Longest wait for the response headers or for the next bytes of the body (default 60 s).</param>
    public ModelDownloader(Uri? baseUrl = null, TimeSpan? stallTimeout = null)
    {
        BaseUrl = baseUrl ?? BaseUrlFromEnvironment();
        if (!BaseUrl.IsAbsoluteUri || BaseUrl.Scheme is not ("http" or "https"))
        {
            throw new StyleTransferException($"base URL '{BaseUrl}' is not an http or https URL");
        }

        if (!BaseUrl.AbsolutePath.EndsWith('/'))
        {
            BaseUrl = new Uri(BaseUrl.AbsoluteUri + "/");
        }

        this.stallTimeout = stallTimeout ?? TimeSpan.FromSeconds(60);
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(30),
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = true,
            MaxAutomaticRedirections = 5,
        };
        client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("stylize", typeof(ModelDownloader).Assembly.GetName().Version?.ToString(3) ?? "0"));
    }

    /// <summary>The files this downloader knows: torchvision's IMAGENET1K_V1 weights of the networks stylize can use.</summary>
    /// <remarks>Size bounds: <see cref="NetworkSpec.DownloadBytes"/>.</remarks>
    public static IReadOnlyList<ModelFile> Known { get; } =
        [.. NetworkSpecs.All.Where(s => s.DownloadBytes > 0).Select(s => new ModelFile(s.Name, s.WeightsFileName!, s.DownloadBytes))];

    /// <summary>Tests only: the hub folder to use instead of the environment's (per async flow).</summary>
    internal static readonly AsyncLocal<string?> HubFolderForTests = new();

    /// <summary>The base URL in use, ending in '/'.</summary>
    public Uri BaseUrl { get; }

    /// <summary><see cref="BaseUrlVariable"/> when set, else <see cref="DefaultBaseUrl"/>.</summary>
    public static Uri BaseUrlFromEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable(BaseUrlVariable);
        return ParseBaseUrl(string.IsNullOrWhiteSpace(value) ? DefaultBaseUrl : value.Trim(), BaseUrlVariable);
    }

    /// <summary>Parses a base URL given by the user; <paramref name="what"/> names where it came from in the error.</summary>
    public static Uri ParseBaseUrl(string value, string what) =>
        Uri.TryCreate(value, UriKind.Absolute, out Uri? uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new StyleTransferException($"{what}: '{value}' is not an http or https URL");

    /// <summary>The file for <paramref name="network"/>, or a one-line error listing what can be downloaded.</summary>
    public static ModelFile Find(string network)
    {
        string names = string.Join(", ", Known.Select(k => k.Network));
        if (Known.FirstOrDefault(k => string.Equals(k.Network, network, StringComparison.OrdinalIgnoreCase)) is { } file)
        {
            return file;
        }

        return NetworkSpecs.All.FirstOrDefault(s => s.WeightsFileName == null && string.Equals(s.Name, network, StringComparison.OrdinalIgnoreCase)) is { } bundled
            ? throw new StyleTransferException($"{bundled.Name} comes with stylize: nothing to download (downloadable: {names})")
            : throw new StyleTransferException($"unknown network '{network}' (downloadable: {names})");
    }

    /// <summary>
    /// The PyTorch hub checkpoint folder downloads go to: $TORCH_HOME/hub/checkpoints, else
    /// $XDG_CACHE_HOME/torch/hub/checkpoints, else ~/.cache/torch/hub/checkpoints (the first place
    /// <see cref="WeightLocator"/> looks).
    /// </summary>
    public static string HubFolder() =>
        HubFolderForTests.Value
        ?? Path.GetDirectoryName(WeightLocator.CandidatePaths("x").FirstOrDefault() ?? throw new StyleTransferException("no PyTorch hub folder: set TORCH_HOME"))!;

    /// <summary>Where the weights of <paramref name="file"/> already are (any place the lookup searches), or null.</summary>
    public static string? FindExisting(ModelFile file)
    {
        if (HubFolderForTests.Value is { } folder)
        {
            string path = Path.Combine(folder, file.FileName);
            return File.Exists(path) ? path : null;
        }

        return WeightLocator.Find(null, file.FileName);
    }

    /// <summary>The URL <paramref name="file"/> is fetched from.</summary>
    public Uri UrlOf(ModelFile file) => new(BaseUrl, Uri.EscapeDataString(file.FileName));

    /// <summary>
    /// Downloads <paramref name="file"/> into <paramref name="folder"/> (created if missing),
    /// continuing a NAME.partial left by an interrupted download. When the final file is there
    /// already nothing is fetched. Cancelled, the partial file is kept for the next call.
    /// </summary>
    public async Task<DownloadResult> DownloadAsync(ModelFile file, string folder, IProgress<DownloadProgress>? progress = null, CancellationToken cancellation = default)
    {
        string expected = file.Sha256Prefix;
        string final = Path.Combine(Path.GetFullPath(folder), file.FileName);
        string partial = final + ".partial";
        if (File.Exists(final))
        {
            return new DownloadResult(final, Downloaded: false, new FileInfo(final).Length, 0);
        }

        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(final)!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StyleTransferException($"cannot create the folder '{Path.GetDirectoryName(final)}' ({FirstLine(e)})");
        }

        long kept = KeptBytes(partial, file.MaxBytes);
        Uri url = UrlOf(file);
        using HttpResponseMessage response = await Request(url, kept, cancellation).ConfigureAwait(false);
        long start = kept;
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && kept > 0)
        {
            // The partial file already has every byte (interrupted between the last byte and the rename).
            return Finish(file, expected, partial, final, kept, kept);
        }

        if (response.StatusCode == HttpStatusCode.PartialContent && kept > 0)
        {
            if (response.Content.Headers.ContentRange is not { From: { } from } || from != kept)
            {
                TryDelete(partial);
                throw new StyleTransferException($"download of {url} failed: the server resumed at byte {response.Content.Headers.ContentRange?.From?.ToString(CultureInfo.InvariantCulture) ?? "?"}, not {kept}; the partial file was deleted, run the command again");
            }
        }
        else if (response.StatusCode == HttpStatusCode.OK)
        {
            start = 0; // a full answer (the server ignores ranges, or there was nothing to resume)
        }
        else
        {
            throw new StyleTransferException($"download of {url} failed: HTTP {(int)response.StatusCode} ({response.ReasonPhrase})");
        }

        long? total = response.Content.Headers.ContentLength is long length ? start + length : null;
        if (total > file.MaxBytes)
        {
            throw new StyleTransferException($"download of {url} refused: the server announces {total} bytes, more than the {file.MaxBytes} bytes {file.FileName} can have");
        }

        long received = await Receive(response, file, url, partial, start, total, progress, cancellation).ConfigureAwait(false);
        if (total is long t && received != t)
        {
            throw Interrupted(url, partial, received, total, "the response ended early");
        }

        return Finish(file, expected, partial, final, received, start);
    }

    /// <summary>Releases the HTTP client.</summary>
    public void Dispose() => client.Dispose();

    /// <summary>Bytes of an earlier partial download to continue from; anything that is not a plain file of a possible size is removed.</summary>
    private static long KeptBytes(string partial, long maxBytes)
    {
        var info = new FileInfo(partial);
        if (info.LinkTarget != null || (info.Exists && (info.Length > maxBytes || info.Attributes.HasFlag(FileAttributes.Directory))))
        {
            TryDelete(partial); // a link (planted or not) is removed, never followed
            return 0;
        }

        return info.Exists ? info.Length : 0;
    }

    private async Task<HttpResponseMessage> Request(Uri url, long from, CancellationToken cancellation)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (from > 0)
        {
            request.Headers.Range = new RangeHeaderValue(from, null);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(stallTimeout);
        try
        {
            return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            throw new StyleTransferException($"download of {url} failed: no answer within {stallTimeout.TotalSeconds:0} s");
        }
        catch (HttpRequestException e)
        {
            throw new StyleTransferException($"download of {url} failed: {Reason(e)}");
        }
    }

    /// <summary>Appends the body to the partial file (from <paramref name="start"/>); returns the partial file's length.</summary>
    private async Task<long> Receive(HttpResponseMessage response, ModelFile file, Uri url, string partial, long start, long? total, IProgress<DownloadProgress>? progress, CancellationToken cancellation)
    {
        long received = start;
        FileStream output;
        try
        {
            output = new FileStream(partial, start > 0 ? FileMode.Open : FileMode.Create, FileAccess.Write, FileShare.None, BufferSize);
            output.SetLength(start);
            output.Seek(start, SeekOrigin.Begin);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StyleTransferException($"cannot write '{partial}' ({FirstLine(e)})");
        }

        await using (output.ConfigureAwait(false))
        {
            progress?.Report(new DownloadProgress(file.FileName, received, total));
            byte[] buffer = new byte[BufferSize];
            Stream body = await response.Content.ReadAsStreamAsync(cancellation).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                while (true)
                {
                    int n;
                    using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation))
                    {
                        timeout.CancelAfter(stallTimeout);
                        try
                        {
                            n = await body.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
                        {
                            throw Interrupted(url, partial, received, total, $"no data for {stallTimeout.TotalSeconds:0} s");
                        }
                        catch (Exception e) when (e is HttpRequestException or IOException)
                        {
                            throw Interrupted(url, partial, received, total, Reason(e));
                        }
                    }

                    if (n == 0)
                    {
                        break;
                    }

                    if (received + n > file.MaxBytes || (total is long t && received + n > t))
                    {
                        await output.DisposeAsync().ConfigureAwait(false);
                        TryDelete(partial);
                        throw new StyleTransferException($"download of {url} refused: the response is larger than {total ?? file.MaxBytes} bytes; nothing was kept");
                    }

                    try
                    {
                        await output.WriteAsync(buffer.AsMemory(0, n), CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (IOException e)
                    {
                        throw new StyleTransferException($"cannot write '{partial}' ({FirstLine(e)})");
                    }

                    received += n;
                    progress?.Report(new DownloadProgress(file.FileName, received, total));
                    cancellation.ThrowIfCancellationRequested();
                }
            }
        }

        return received;
    }

    /// <summary>Checks the whole partial file's SHA-256 against the name's prefix, then renames it to its final name.</summary>
    private static DownloadResult Finish(ModelFile file, string expected, string partial, string final, long bytes, long resumedFrom)
    {
        string actual;
        using (FileStream stream = File.OpenRead(partial))
        {
            actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        }

        if (!actual.StartsWith(expected, StringComparison.Ordinal))
        {
            TryDelete(partial);
            throw new StyleTransferException($"downloaded {file.FileName} has SHA-256 {actual[..expected.Length]}…, not {expected}… as its name says: refused and deleted");
        }

        try
        {
            File.Move(partial, final, overwrite: true); // rename(2): whole or not at all, follows no link at the final name
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StyleTransferException($"cannot write '{final}' ({FirstLine(e)})");
        }

        return new DownloadResult(final, Downloaded: true, bytes, resumedFrom);
    }

    private static StyleTransferException Interrupted(Uri url, string partial, long received, long? total, string reason)
    {
        string of = total is long t ? $" of {t}" : "";
        return new StyleTransferException($"download of {url} interrupted after {received}{of} bytes ({reason}); {received} bytes kept in {partial}: run the command again to resume");
    }

    /// <summary>The innermost useful reason: "Connection refused", "Name or service not known", "The response ended prematurely...".</summary>
    private static string Reason(Exception e)
    {
        for (Exception? x = e; x != null; x = x.InnerException)
        {
            if (x is SocketException socket)
            {
                return socket.SocketErrorCode == SocketError.ConnectionRefused ? "connection refused" : FirstLine(socket);
            }
        }

        return FirstLine(e.InnerException is IOException inner ? inner : e);
    }

    private static string FirstLine(Exception e) => e.Message.Split('\n')[0].Trim().TrimEnd('.');

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the error that brought us here is the one to report.
        }
    }
}
