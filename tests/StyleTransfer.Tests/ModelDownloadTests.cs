using System.Security.Cryptography;
using StyleTransfer.Cli;
using StyleTransfer.Models;

namespace StyleTransfer.Tests;

/// <summary>
/// `stylize models download` and <see cref="ModelDownloader"/> against <see cref="LoopbackHttpServer"/>
/// on 127.0.0.1: the real download.pytorch.org is never contacted.
/// </summary>
public sealed class ModelDownloadTests : IDisposable
{
    /// <summary>The fixture's name carries the start of its SHA-256, as torchvision's file names do.</summary>
    private const string FixtureName = "fixture-5e072b0b.pth";

    private const int FixtureLength = 300_000;

    private readonly TempDir dir = new();

    private static byte[] Fixture
    {
        get
        {
            var bytes = new byte[FixtureLength];
            new Random(14).NextBytes(bytes);
            return bytes;
        }
    }

    private static ModelFile FixtureFile(long maxBytes = 1 << 20) => new("fixture", FixtureName, maxBytes);

    private string Hub => dir.File("hub");

    public void Dispose()
    {
        ModelDownloader.HubFolderForTests.Value = null;
        dir.Dispose();
    }

    [Fact]
    public void FixtureNameCarriesItsSha256Prefix()
    {
        Assert.StartsWith(FixtureFile().Sha256Prefix, Convert.ToHexStringLower(SHA256.HashData(Fixture)), StringComparison.Ordinal);
        Assert.Equal("5e072b0b", FixtureFile().Sha256Prefix);
    }

    [Fact]
    public void KnownFilesAreTorchvisionsWithTheirHashPrefixes()
    {
        Assert.Equal(
            ["vgg19 vgg19-dcbb9e9d.pth dcbb9e9d", "alexnet alexnet-owt-7be5be79.pth 7be5be79", "googlenet googlenet-1378be20.pth 1378be20", "resnet50 resnet50-0676ba61.pth 0676ba61"],
            ModelDownloader.Known.Select(k => $"{k.Network} {k.FileName} {k.Sha256Prefix}"));
        using var downloader = new ModelDownloader(new Uri(ModelDownloader.DefaultBaseUrl));
        Assert.Equal("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", downloader.UrlOf(ModelDownloader.Find("vgg19")).AbsoluteUri);
    }

    [Fact]
    public async Task DownloadVerifiesAndRenamesIntoPlace()
    {
        using var server = new LoopbackHttpServer(LoopbackHttpServer.Serving(FixtureName, Fixture));
        using var downloader = new ModelDownloader(server.BaseUrl);
        var reports = new List<DownloadProgress>();
        DownloadResult result = await downloader.DownloadAsync(FixtureFile(), Hub, new SyncProgress(reports.Add));

        string final = Path.Combine(Hub, FixtureName);
        Assert.Equal(new DownloadResult(final, Downloaded: true, FixtureLength, ResumedFrom: 0), result);
        Assert.Equal(Fixture, File.ReadAllBytes(final));
        Assert.Equal([FixtureName], Directory.GetFiles(Hub).Select(Path.GetFileName));
        Assert.Equal([new SeenRequest("GET", "/models/" + FixtureName, null)], server.Requests);
        Assert.Equal(new DownloadProgress(FixtureName, 0, FixtureLength), reports[0]);
        Assert.Equal(new DownloadProgress(FixtureName, FixtureLength, FixtureLength), reports[^1]);

        // There already: nothing is fetched.
        DownloadResult again = await downloader.DownloadAsync(FixtureFile(), Hub);
        Assert.False(again.Downloaded);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task TruncatedResponseKeepsThePartAndTheNextCallResumesWithARange()
    {
        int calls = 0;
        Func<SeenRequest, Answer> serve = LoopbackHttpServer.Serving(FixtureName, Fixture);
        using var server = new LoopbackHttpServer(r => Interlocked.Increment(ref calls) == 1 ? serve(r) with { CloseAfter = 100_000 } : serve(r));
        using var downloader = new ModelDownloader(server.BaseUrl);
        string partial = Path.Combine(Hub, FixtureName + ".partial");

        var e = await Assert.ThrowsAsync<StyleTransferException>(() => downloader.DownloadAsync(FixtureFile(), Hub));
        Assert.StartsWith($"download of {server.BaseUrl}{FixtureName} interrupted after 100000 of 300000 bytes (", e.Message, StringComparison.Ordinal);
        Assert.EndsWith($"); 100000 bytes kept in {partial}: run the command again to resume", e.Message, StringComparison.Ordinal);
        Assert.Equal(Fixture[..100_000], File.ReadAllBytes(partial));
        Assert.False(File.Exists(Path.Combine(Hub, FixtureName)));

        DownloadResult result = await downloader.DownloadAsync(FixtureFile(), Hub);
        Assert.Equal(100_000, result.ResumedFrom);
        Assert.Equal(FixtureLength, result.Bytes);
        Assert.Equal(Fixture, File.ReadAllBytes(result.Path));
        Assert.False(File.Exists(partial));
        Assert.Equal([null, "bytes=100000-"], server.Requests.Select(r => r.Range));
    }

    [Fact]
    public async Task ServerThatIgnoresTheRangeStartsTheFileAfresh()
    {
        Directory.CreateDirectory(Hub);
        string partial = Path.Combine(Hub, FixtureName + ".partial");
        File.WriteAllBytes(partial, new byte[5000]); // not the fixture's first bytes: must not survive
        using var server = new LoopbackHttpServer(r => new Answer(200, "OK", Fixture));
        using var downloader = new ModelDownloader(server.BaseUrl);

        DownloadResult result = await downloader.DownloadAsync(FixtureFile(), Hub);
        Assert.Equal(0, result.ResumedFrom);
        Assert.Equal(Fixture, File.ReadAllBytes(result.Path));
        Assert.Equal(["bytes=5000-"], server.Requests.Select(r => r.Range));
    }

    [Fact]
    public async Task CorruptedFileIsRefusedAndDeleted()
    {
        byte[] corrupted = Fixture;
        corrupted[123_456] ^= 0x40;
        string actual = Convert.ToHexStringLower(SHA256.HashData(corrupted))[..8];
        using var server = new LoopbackHttpServer(LoopbackHttpServer.Serving(FixtureName, corrupted));
        using var downloader = new ModelDownloader(server.BaseUrl);

        var e = await Assert.ThrowsAsync<StyleTransferException>(() => downloader.DownloadAsync(FixtureFile(), Hub));
        Assert.Equal($"downloaded {FixtureName} has SHA-256 {actual}…, not 5e072b0b… as its name says: refused and deleted", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(Hub));
    }

    [Fact]
    public async Task NotFoundIsOneLineAndWritesNothing()
    {
        using var server = new LoopbackHttpServer(_ => Answer.NotFound());
        using var downloader = new ModelDownloader(server.BaseUrl);

        var e = await Assert.ThrowsAsync<StyleTransferException>(() => downloader.DownloadAsync(FixtureFile(), Hub));
        Assert.Equal($"download of {server.BaseUrl}{FixtureName} failed: HTTP 404 (Not Found)", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(Hub));
    }

    [Fact]
    public async Task ConnectionRefusedIsOneLine()
    {
        var url = new Uri($"http://127.0.0.1:{LoopbackHttpServer.ClosedPort()}/models/");
        using var downloader = new ModelDownloader(url);

        var e = await Assert.ThrowsAsync<StyleTransferException>(() => downloader.DownloadAsync(FixtureFile(), Hub));
        Assert.Equal($"download of {url}{FixtureName} failed: connection refused", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(Hub));
    }

    [Fact]
    public async Task ResponseLargerThanTheFilesBoundIsRefused()
    {
        using var server = new LoopbackHttpServer(LoopbackHttpServer.Serving(FixtureName, Fixture));
        using var downloader = new ModelDownloader(server.BaseUrl);

        var e = await Assert.ThrowsAsync<StyleTransferException>(() => downloader.DownloadAsync(FixtureFile(maxBytes: 200_000), Hub));
        Assert.Equal($"download of {server.BaseUrl}{FixtureName} refused: the server announces 300000 bytes, more than the 200000 bytes {FixtureName} can have", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(Hub));
    }

    [Fact]
    public void CliRefusesACorruptedDownloadWithExitCode2AndLeavesNothing()
    {
        ModelDownloader.HubFolderForTests.Value = Hub;
        using var server = new LoopbackHttpServer(LoopbackHttpServer.Serving("vgg19-dcbb9e9d.pth", Fixture));
        string actual = Convert.ToHexStringLower(SHA256.HashData(Fixture))[..8];

        (int code, string stdout, string stderr) = Run("models", "download", "vgg19", "--base-url", server.BaseUrl.AbsoluteUri);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal($"error: downloaded vgg19-dcbb9e9d.pth has SHA-256 {actual}…, not dcbb9e9d… as its name says: refused and deleted{Environment.NewLine}", stderr);
        Assert.StartsWith($"vgg19: {server.BaseUrl}vgg19-dcbb9e9d.pth -> {Path.Combine(Hub, "vgg19-dcbb9e9d.pth")}{Environment.NewLine}", stdout, StringComparison.Ordinal);
        Assert.Contains($"vgg19-dcbb9e9d.pth: 100% (0.3 of 0.3 MB){Environment.NewLine}", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("wrote", stdout, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(Hub));
    }

    [Fact]
    public void CliReportsConnectionRefusedWithExitCode2()
    {
        ModelDownloader.HubFolderForTests.Value = Hub;
        string url = $"http://127.0.0.1:{LoopbackHttpServer.ClosedPort()}/mirror";

        (int code, _, string stderr) = Run("models", "download", "googlenet", "--base-url", url);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal($"error: download of {url}/googlenet-1378be20.pth failed: connection refused{Environment.NewLine}", stderr);
    }

    [Fact]
    public void CliFetchesNothingWhenTheWeightsAreThere()
    {
        ModelDownloader.HubFolderForTests.Value = Hub;
        Directory.CreateDirectory(Hub);
        string present = Path.Combine(Hub, "resnet50-0676ba61.pth");
        File.WriteAllBytes(present, [1, 2, 3]);
        using var server = new LoopbackHttpServer(_ => Answer.NotFound());

        (int code, string stdout, string stderr) = Run("models", "download", "resnet50", "--base-url", server.BaseUrl.AbsoluteUri);
        Assert.Equal((CliApp.ExitOk, $"resnet50: {present} is there already; nothing downloaded{Environment.NewLine}", ""), (code, stdout, stderr));
        Assert.Empty(server.Requests);
    }

    [Theory]
    [InlineData("error: resnet18 comes with stylize: nothing to download (downloadable: vgg19, alexnet, googlenet, resnet50)", "resnet18")]
    [InlineData("error: unknown network 'vgg16' (downloadable: vgg19, alexnet, googlenet, resnet50)", "vgg16")]
    [InlineData("error: --base-url: 'ftp://example.org/' is not an http or https URL", "vgg19", "--base-url", "ftp://example.org/")]
    [InlineData("error: unknown option '--frobnicate' (see 'stylize models download --help')", "vgg19", "--frobnicate")]
    public void CliRefusesBadArgumentsBeforeFetching(string expected, params string[] args)
    {
        ModelDownloader.HubFolderForTests.Value = Hub;
        (int code, string stdout, string stderr) = Run(["models", "download", .. args]);
        Assert.Equal((CliApp.ExitBadInput, "", expected + Environment.NewLine), (code, stdout, stderr));
        Assert.False(Directory.Exists(Hub));
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private sealed class SyncProgress(Action<DownloadProgress> action) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => action(value);
    }
}
