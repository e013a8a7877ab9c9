using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StyleTransfer.Cli;

namespace StyleTransfer.Web.Tests;

/// <summary>
/// The web app in-process on a test server (or on Kestrel at a free loopback port), over a temporary
/// data folder; jobs use the CLI's option parser, one thread and small images.
/// </summary>
internal sealed class WebTestApp : IAsyncDisposable
{
    private WebTestApp(WebApplication app, WebSettings settings, HttpClient client)
    {
        App = app;
        Settings = settings;
        Client = client;
    }

    public WebApplication App { get; }

    public WebSettings Settings { get; }

    public HttpClient Client { get; }

    public static WebSettings DefaultSettings(string dataDir) => new() { DataDir = dataDir, Threads = 1, PreviewEvery = 1, Port = 0 };

    public static async Task<WebTestApp> StartAsync(WebSettings settings, bool kestrel = false)
    {
        WebApplication app = WebServer.Create(settings, new ServeCommand.FormOptions(), b =>
        {
            if (!kestrel)
            {
                b.WebHost.UseTestServer();
            }
        });
        await app.StartAsync();
        HttpClient client = kestrel ? new HttpClient { BaseAddress = new Uri(app.Urls.First()) } : app.GetTestClient();
        return new WebTestApp(app, settings, client);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }

    /// <summary>POST /api/jobs with the images as files (name, bytes) and the options as fields.</summary>
    public Task<HttpResponseMessage> SubmitAsync((string Name, byte[] Bytes) content, IEnumerable<(string Name, byte[] Bytes)> styles, params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        form.Add(File(content.Bytes), "content", content.Name);
        foreach ((string name, byte[] bytes) in styles)
        {
            form.Add(File(bytes), "style", name);
        }

        foreach ((string name, string value) in fields)
        {
            form.Add(new StringContent(value), name);
        }

        return Client.PostAsync("/api/jobs", form);
    }

    /// <summary>Submits a small job (64 px, ResNet-18) and returns its id; fails the test on a refusal.</summary>
    public async Task<string> SubmitSmallAsync(int iterations, params (string Name, string Value)[] more)
    {
        using HttpResponseMessage r = await SubmitAsync(("scene.png", Images.ScenePng(64, 48)), [("stripes.png", Images.StripesPng(48, 48))], [("size", "64"), ("iterations", iterations.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("network", "resnet18"), ("scales", "1"), .. more]);
        string body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == System.Net.HttpStatusCode.Created, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    public async Task<JsonElement> GetJobAsync(string id)
    {
        string body = await Client.GetStringAsync("/api/jobs/" + id);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>Polls the job until <paramref name="done"/> holds (at most 2 minutes, a guard against a hang, not a timing).</summary>
    public async Task<JsonElement> WaitForAsync(string id, Func<JsonElement, bool> done)
    {
        DateTime giveUp = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            JsonElement job = await GetJobAsync(id);
            if (done(job))
            {
                return job;
            }

            Assert.True(DateTime.UtcNow < giveUp, $"job {id} stayed {job.GetProperty("status")}");
            await Task.Delay(50);
        }
    }

    public Task<JsonElement> WaitForStatusAsync(string id, string status) => WaitForAsync(id, j => j.GetProperty("status").GetString() == status);

    private static ByteArrayContent File(byte[] bytes)
    {
        var c = new ByteArrayContent(bytes);
        c.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return c;
    }
}

/// <summary>Small images the tests make themselves.</summary>
internal static class Images
{
    public static byte[] ScenePng(int width, int height) => Png(width, height, (x, y) =>
        x > width / 3 && x < 2 * width / 3 && y > height / 3 && y < 2 * height / 3
            ? new Rgb24(240, 220, 60)
            : new Rgb24((byte)(255 * x / width), (byte)(128 + (100 * y / height)), (byte)(200 - (150 * y / height))));

    public static byte[] StripesPng(int width, int height) => Png(width, height, (x, y) =>
        (x + y) / 4 % 2 == 0 ? new Rgb24(20, 40, 160) : new Rgb24(250, 200, 30));

    /// <summary>Random pixels: a PNG that does not compress.</summary>
    public static byte[] NoisePng(int width, int height)
    {
        var random = new Random(1);
        return Png(width, height, (_, _) => new Rgb24((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256)));
    }

    public static byte[] Png(int width, int height, Func<int, int, Rgb24> pixel)
    {
        using var img = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                img[x, y] = pixel(x, y);
            }
        }

        using var stream = new MemoryStream();
        img.SaveAsPng(stream);
        return stream.ToArray();
    }

    /// <summary>Width and height of a PNG, after checking its signature.</summary>
    public static (int Width, int Height) PngSize(byte[] bytes)
    {
        Assert.True(bytes.AsSpan().StartsWith((byte[])[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "not a PNG");
        using var img = Image.Load<Rgb24>(bytes);
        return (img.Width, img.Height);
    }
}

/// <summary>A temporary folder deleted with the test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "stylize-web-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
