using System.Text.Json;
using Microsoft.Playwright;

namespace StyleTransfer.Web.Tests;

/// <summary>
/// The page end to end in a real browser: Debian's chromium (apt; .ci/run installs it) driven by
/// Playwright against the app on Kestrel at a loopback port. With STYLIZE_WEB_SCREENSHOTS=DIR (and
/// STYLIZE_WEB_CONTENT / STYLIZE_WEB_STYLE / STYLIZE_WEB_SIZE) the same walk runs on those images and
/// saves the docs' screenshots there (scripts/web-screenshots.sh); CI runs it on 64 px images.
/// </summary>
public sealed class BrowserTests : IDisposable
{
    private const string Chromium = "/usr/bin/chromium";
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public async Task A_user_uploads_watches_the_preview_cancels_one_job_completes_another_and_finds_it_in_the_gallery()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: apt-get install -y chromium (.ci/run does)");
        string? shots = Environment.GetEnvironmentVariable("STYLIZE_WEB_SCREENSHOTS");
        string content = Environment.GetEnvironmentVariable("STYLIZE_WEB_CONTENT") ?? Save("scene.png", Images.ScenePng(64, 48));
        string style = Environment.GetEnvironmentVariable("STYLIZE_WEB_STYLE") ?? Save("stripes.png", Images.StripesPng(48, 48));
        string size = Environment.GetEnvironmentVariable("STYLIZE_WEB_SIZE") ?? "64";
        string longRun = shots is null ? "5000" : "300";

        await using WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.File("data")) with { PreviewEvery = shots is null ? 1 : 5 }, kestrel: true);
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] });
        IPage page = await browser.NewPageAsync(new BrowserNewPageOptions { AcceptDownloads = true, ViewportSize = new ViewportSize { Width = 1280, Height = 860 } });
        await page.GotoAsync(web.App.Urls.First());
        await Expect(page, "() => document.body.dataset.ready === 'true'");

        await page.SetInputFilesAsync("#content-input", content);
        await page.SetInputFilesAsync("#style-input", style);
        await page.FillAsync("#size", size);
        await page.SelectOptionAsync("#network", "resnet18");
        await page.SelectOptionAsync("#scales", "1");

        // A refusal shows the CLI's line.
        await page.FillAsync("#iterations", "0");
        await page.ClickAsync("#start");
        await Expect(page, "() => !document.getElementById('error').hidden");
        Assert.Equal("error: --iterations must be at least 1, not 0", await page.TextContentAsync("#error"));

        // A long run: watch its preview change at least twice.
        await page.FillAsync("#iterations", longRun);
        await page.EvaluateAsync("""
            () => {
              window.previews = new Set();
              const img = document.getElementById('preview');
              new MutationObserver(() => { if (img.src.startsWith('data:')) window.previews.add(img.src); }).observe(img, { attributes: true, attributeFilter: ['src'] });
            }
            """);
        await page.ClickAsync("#start");
        await Expect(page, "() => document.getElementById('live').dataset.status === 'running'");
        string first = (await page.GetAttributeAsync("#live", "data-id"))!;
        await Expect(page, $"() => window.previews.size >= {(shots is null ? 3 : 6)}");
        Assert.Matches($"^iteration [0-9]+ / {longRun}$", await page.TextContentAsync("#iter"));
        if (shots != null)
        {
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "web-running.png") });
        }

        // A short one queues behind it; cancel the long one from the job list; the short one runs to the end.
        await page.FillAsync("#iterations", shots is null ? "3" : "150");
        await page.SelectOptionAsync("#scales", shots is null ? "1" : "auto");
        await page.SelectOptionAsync("#preserve-color", "palette");
        await page.ClickAsync("#start");
        await Expect(page, $"() => document.getElementById('live').dataset.id !== '{first}'");
        string second = (await page.GetAttributeAsync("#live", "data-id"))!;
        await page.ClickAsync($"#jobs li[data-id='{first}'] .cancel-job");
        await Expect(page, "() => document.getElementById('live').dataset.status === 'done'", minutes: shots is null ? 2 : 10);
        Assert.Equal("cancelled", (await web.GetJobAsync(first)).GetProperty("status").GetString());
        if (shots != null)
        {
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "web-done.png"), FullPage = true });
        }

        IDownload download = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#download-png"));
        string saved = dir.File("downloaded.png");
        await download.SaveAsAsync(saved);
        (int w, int h) = Images.PngSize(await File.ReadAllBytesAsync(saved));
        Assert.Equal(int.Parse(size, System.Globalization.CultureInfo.InvariantCulture), Math.Max(w, h));
        JsonElement job = await web.GetJobAsync(second);
        Assert.Equal((job.GetProperty("result").GetProperty("width").GetInt32(), job.GetProperty("result").GetProperty("height").GetInt32()), (w, h));

        await page.ReloadAsync();
        await page.WaitForSelectorAsync($".gallery-item[data-id='{second}'] img");
        Assert.Equal(0, await page.Locator($".gallery-item[data-id='{first}']").CountAsync());
        StringAssert(await page.TextContentAsync($".gallery-item[data-id='{second}'] .meta span"), Path.GetFileName(content), size + " px", "palette 1");
    }

    private static void StringAssert(string? text, params string[] parts)
    {
        Assert.NotNull(text);
        Assert.All(parts, p => Assert.Contains(p, text, StringComparison.Ordinal));
    }

    /// <summary>Waits until the page expression holds (a guard against a hang, not a timing).</summary>
    private static Task Expect(IPage page, string expression, int minutes = 2) =>
        page.WaitForFunctionAsync(expression, null, new PageWaitForFunctionOptions { Timeout = minutes * 60_000, PollingInterval = 50 });

    private string Save(string name, byte[] bytes)
    {
        string path = dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
