using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace StyleTransfer.Web.Tests;

/// <summary>The API in-process (a test server, temporary data folders), jobs on 64 px images with one thread.</summary>
public sealed class WebApiTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    private static async Task<string> ErrorOf(HttpResponseMessage r) =>
        JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString()!;

    private static string Status(JsonElement job) => job.GetProperty("status").GetString()!;

    [Fact]
    public async Task Upload_runs_to_done_and_the_result_is_a_png_of_the_requested_size()
    {
        await using WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.Path));
        string id = await web.SubmitSmallAsync(3);
        Assert.Matches("^[0-9a-f]{16}$", id);
        JsonElement job = await web.WaitForAsync(id, j => JobStatus.IsFinal(Status(j)));
        Assert.Equal("done", Status(job));
        Assert.Equal(3, job.GetProperty("iteration").GetInt32());
        Assert.Equal(3, job.GetProperty("losses").GetArrayLength());
        Assert.InRange(job.GetProperty("secondsPerIteration").GetDouble(), 1e-4, job.GetProperty("elapsed").GetDouble());
        Assert.Equal("64", job.GetProperty("settings").GetProperty("size").GetString());
        Assert.Equal("scene.png", job.GetProperty("content").GetProperty("name").GetString());
        Assert.Equal(64, job.GetProperty("result").GetProperty("width").GetInt32());
        Assert.Equal(48, job.GetProperty("result").GetProperty("height").GetInt32());

        using HttpResponseMessage png = await web.Client.GetAsync($"/api/jobs/{id}/result");
        Assert.Equal("image/png", png.Content.Headers.ContentType!.MediaType);
        Assert.Equal((64, 48), Images.PngSize(await png.Content.ReadAsByteArrayAsync()));
        using HttpResponseMessage jpeg = await web.Client.GetAsync($"/api/jobs/{id}/result?format=jpeg");
        Assert.Equal("image/jpeg", jpeg.Content.Headers.ContentType!.MediaType);
        Assert.True((await jpeg.Content.ReadAsByteArrayAsync()).AsSpan().StartsWith((byte[])[0xFF, 0xD8, 0xFF]));
        using HttpResponseMessage input = await web.Client.GetAsync($"/api/jobs/{id}/style/1");
        Assert.Equal("image/png", input.Content.Headers.ContentType!.MediaType);
        Assert.Equal("nosniff", input.Headers.GetValues("X-Content-Type-Options").Single());
    }

    [Fact]
    public async Task Events_stream_the_job_progress_and_previews_until_it_ends()
    {
        await using WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.Path) with { PreviewEvery = 2 });

        // The job waits behind a long one, so its stream is open before its first iteration.
        string blocker = await web.SubmitSmallAsync(5000);
        string id = await web.SubmitSmallAsync(6);
        using HttpResponseMessage r = await web.Client.GetAsync($"/api/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", r.Content.Headers.ContentType!.MediaType);
        Task<string> reading = r.Content.ReadAsStringAsync();
        (await web.Client.DeleteAsync("/api/jobs/" + blocker)).Dispose();
        string stream = await reading;
        var events = stream.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => (Name: e.Split('\n')[0]["event: ".Length..], Data: JsonDocument.Parse(e.Split('\n')[1]["data: ".Length..]).RootElement))
            .ToList();
        Assert.Equal(("job", "queued", 1), (events[0].Name, Status(events[0].Data), events[0].Data.GetProperty("position").GetInt32()));
        Assert.Equal("done", Status(events[^1].Data));
        Assert.Equal(["queued", "running", "done"], events.Where(e => e.Name == "job").Select(e => Status(e.Data)).Distinct());
        int[] iterations = [.. events.Where(e => e.Name == "progress").Select(e => e.Data.GetProperty("iteration").GetInt32())];
        Assert.Equal([1, 2, 3, 4, 5, 6], iterations);

        // A preview every 2 iterations before the last (one may be dropped if the encoder is behind: never queued up).
        int[] previews = [.. events.Where(e => e.Name == "preview").Select(e => e.Data.GetProperty("iteration").GetInt32())];
        Assert.NotEmpty(previews);
        Assert.All(previews, p => Assert.Contains(p, (int[])[2, 4]));
        Assert.All(events.Where(e => e.Name == "preview"), e => Assert.StartsWith("data:image/jpeg;base64,/9j/", e.Data.GetProperty("image").GetString()));
    }

    [Theory]
    [InlineData("size", "abc")]
    [InlineData("size", "99999999999")]
    [InlineData("iterations", "0")]
    [InlineData("style-weight", "-1")]
    [InlineData("preserve-color", "sepia")]
    [InlineData("scales", "0")]
    [InlineData("style-blend", "1,2")]
    [InlineData("network", "lenet")]
    [InlineData("foo", "1")]
    public async Task Option_errors_are_the_line_the_CLI_prints(string name, string value)
    {
        string content = dir.File("scene.png"), style = dir.File("stripes.png");
        await File.WriteAllBytesAsync(content, Images.ScenePng(64, 48));
        await File.WriteAllBytesAsync(style, Images.StripesPng(48, 48));
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Cli.CliApp.Run([content, style, "-o", dir.File("out.png"), "--threads", "1", "--" + name, value], stdout, stderr);
        Assert.Equal(Cli.CliApp.ExitBadInput, code);

        await using WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.File("data")));
        using HttpResponseMessage r = await web.SubmitAsync(("scene.png", Images.ScenePng(64, 48)), [("stripes.png", Images.StripesPng(48, 48))], (name, value));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal(stderr.ToString().TrimEnd('\n'), "error: " + await ErrorOf(r));
        Assert.Empty(Directory.GetFiles(dir.File("data/uploads")));
    }

    [Fact]
    public async Task Bad_images_are_sniffed_by_content_and_refused_with_the_CLI_line()
    {
        byte[] noise = Images.NoisePng(64, 64);
        byte[] truncated = noise[..(noise.Length / 2)];
        byte[] text = "<html><script>alert(1)</script></html>"u8.ToArray();
        await using WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.File("data")));
        foreach ((string name, byte[] bytes) in new[] { ("photo.png", text), ("cut.png", truncated) })
        {
            string path = dir.File(name);
            await File.WriteAllBytesAsync(path, bytes);
            var stderr = new StringWriter();
            Assert.Equal(Cli.CliApp.ExitBadInput, Cli.CliApp.Run([path, path, "-o", dir.File("out.png"), "--network", "resnet18", "--threads", "1"], new StringWriter(), stderr));

            using HttpResponseMessage r = await web.SubmitAsync((name, bytes), [("stripes.png", Images.StripesPng(48, 48))]);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Equal(stderr.ToString().TrimEnd('\n').Replace(path, name, StringComparison.Ordinal), "error: " + await ErrorOf(r));
        }

        // A second style image that is not one is named as the CLI names it.
        using HttpResponseMessage second = await web.SubmitAsync(("a.png", Images.ScenePng(64, 48)), [("s1.png", Images.StripesPng(48, 48)), ("s2.gif", text)]);
        Assert.Equal("style image 2 's2.gif' is not an image in a supported format (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP)", await ErrorOf(second));
        Assert.Empty(Directory.GetFiles(dir.File("data/uploads")));
    }

    [Fact]
    public async Task Uploads_over_the_byte_or_megapixel_limit_are_refused_with_413()
    {
        byte[] noise = Images.NoisePng(64, 64);
        await using (WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.File("a")) with { MaxUploadBytes = 4096 }))
        {
            using HttpResponseMessage r = await web.SubmitAsync(("big.png", noise), [("stripes.png", Images.StripesPng(48, 48))]);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, r.StatusCode);
            Assert.Equal($"content image 'big.png' is too large ({Uploads.FormatBytes(noise.Length)}; at most 4 KB per image)", await ErrorOf(r));
        }

        await using (WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.File("b")) with { MaxMegapixels = 0.004 }))
        {
            using HttpResponseMessage r = await web.SubmitAsync(("scene.png", Images.ScenePng(40, 40)), [("wide.png", Images.StripesPng(80, 60))]);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, r.StatusCode);
            Assert.Equal("style image 'wide.png' is too large (80x60, 0.0048 megapixels; at most 0.004 here)", await ErrorOf(r));
            Assert.Empty(Directory.GetFiles(dir.File("b/uploads")));
        }
    }

    [Fact]
    public async Task Jobs_queue_in_order_per_device_with_positions_a_cap_per_client_and_cancel()
    {
        await using WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.Path) with { MaxJobsPerClient = 3, PreviewEvery = 1000 });
        string a = await web.SubmitSmallAsync(5000);
        string b = await web.SubmitSmallAsync(2);
        string c = await web.SubmitSmallAsync(2);
        await web.WaitForStatusAsync(a, "running");
        Assert.Equal(1, (await web.GetJobAsync(b)).GetProperty("position").GetInt32());
        Assert.Equal(2, (await web.GetJobAsync(c)).GetProperty("position").GetInt32());

        using (HttpResponseMessage over = await web.SubmitAsync(("scene.png", Images.ScenePng(64, 48)), [("stripes.png", Images.StripesPng(48, 48))], ("size", "64")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, over.StatusCode);
            Assert.Equal("at most 3 queued or running jobs per client: wait for one to finish, or cancel one", await ErrorOf(over));
        }

        // A queued job is cancelled at once; the one behind it moves up.
        using (HttpResponseMessage r = await web.Client.DeleteAsync("/api/jobs/" + b))
        {
            Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
        }

        Assert.Equal("cancelled", Status(await web.GetJobAsync(b)));
        Assert.Equal(1, (await web.GetJobAsync(c)).GetProperty("position").GetInt32());
        Assert.Equal("running", Status(await web.GetJobAsync(a)));

        // The running one stops after its current iteration, writes nothing, and the next runs.
        await web.WaitForAsync(a, j => j.GetProperty("iteration").GetInt32() >= 1);
        (await web.Client.DeleteAsync("/api/jobs/" + a)).Dispose();
        JsonElement stopped = await web.WaitForAsync(a, j => JobStatus.IsFinal(Status(j)));
        Assert.Equal("cancelled", Status(stopped));
        Assert.True(stopped.GetProperty("iteration").GetInt32() < 5000);
        Assert.Equal("done", Status(await web.WaitForAsync(c, j => JobStatus.IsFinal(Status(j)))));
        Assert.Equal(HttpStatusCode.NotFound, (await web.Client.GetAsync($"/api/jobs/{a}/result")).StatusCode);
        Assert.Equal([JobManager.ResultFile(c)], Directory.GetFiles(dir.File("results")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Jobs_and_results_survive_a_restart_and_the_running_one_is_marked_interrupted()
    {
        string done, interrupted, waiting;
        await using (WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.Path) with { PreviewEvery = 1000 }))
        {
            done = await web.SubmitSmallAsync(2);
            await web.WaitForStatusAsync(done, "done");
            interrupted = await web.SubmitSmallAsync(5000);
            waiting = await web.SubmitSmallAsync(2);
            await web.WaitForAsync(interrupted, j => j.GetProperty("iteration").GetInt32() >= 1);
        }

        await using (WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.Path)))
        {
            JsonElement i = await web.GetJobAsync(interrupted);
            Assert.Equal("failed", Status(i));
            Assert.True(i.GetProperty("interrupted").GetBoolean());
            Assert.Equal(JobStore.InterruptedError, i.GetProperty("error").GetString());
            Assert.Equal((64, 48), Images.PngSize(await web.Client.GetByteArrayAsync($"/api/jobs/{done}/result")));
            JsonElement w = await web.WaitForAsync(waiting, j => JobStatus.IsFinal(Status(j)));
            Assert.True(Status(w) == "done", w.ToString());
            string[] listed = [.. JsonDocument.Parse(await web.Client.GetStringAsync("/api/jobs")).RootElement.EnumerateArray().Select(j => j.GetProperty("id").GetString()!)];
            Assert.Equal([waiting, interrupted, done], listed);
        }
    }

    [Fact]
    public void A_job_left_running_by_a_crashed_server_is_marked_interrupted_at_start()
    {
        string db = dir.File("jobs.db");
        using (var store = new JobStore(db))
        {
            var job = new JobRecord
            {
                Id = "00112233aabbccdd",
                Client = "local",
                Device = "cpu",
                Created = DateTimeOffset.UtcNow,
                Fields = [new("size", "64")],
                Content = new StoredImage("c.png", "x.png", "image/png", 64, 48),
                Styles = [new StoredImage("s.png", "y.png", "image/png", 48, 48)],
            };
            store.Insert(job);
            job.Status = JobStatus.Running;
            store.Update(job);
        }

        SqliteConnection.ClearAllPools();
        using (var store = new JobStore(db))
        {
            Assert.Equal(1, store.MarkInterrupted());
            JobRecord back = store.Get("00112233aabbccdd")!;
            Assert.Equal((JobStatus.Failed, true), (back.Status, back.Interrupted));
            Assert.Equal("64", back.Fields.Single().Value);
        }
    }

    [Fact]
    public async Task No_route_reaches_a_file_it_does_not_name()
    {
        // Kestrel on a loopback port, the paths sent as written (not canonicalised by the client).
        await using WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.Path), kestrel: true);
        string id = await web.SubmitSmallAsync(1);
        await web.WaitForAsync(id, j => JobStatus.IsFinal(Status(j)));
        string stored = Directory.GetFiles(dir.File("uploads"))[0];
        string[] paths =
        [
            "/api/jobs/..%2F..%2Fjobs.db", "/api/jobs/%2e%2e%2fjobs.db/result", "/api/jobs/%2Fetc%2Fpasswd", "/api/jobs//etc/passwd",
            "/api/jobs/../jobs.db", "/jobs.db", "/..%2Fjobs.db", "/examples/..%2F..%2Fjobs.db", "/examples/%2e%2e/%2e%2e/jobs.db",
            "/uploads/" + Path.GetFileName(stored), $"/api/jobs/{id}/style/0", $"/api/jobs/{id}/style/2", $"/api/jobs/{id}/style/..%2F..%2Fjobs.db",
            $"/api/jobs/{id}/result/..%2F..%2Fjobs.db", $"/api/jobs/{id.ToUpperInvariant()}", "/app.js%00.db", "/%2e%2e/%2e%2e/etc/passwd", "/" + stored,
        ];
        foreach (string path in paths)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(web.Client.BaseAddress!, path));
            request.RequestUri = new Uri(web.Client.BaseAddress!.GetLeftPart(UriPartial.Authority) + path, new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });
            using HttpResponseMessage r = await web.Client.SendAsync(request);
            string body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest, $"{path}: {(int)r.StatusCode}");
            Assert.DoesNotContain("SQLite format", body, StringComparison.Ordinal);
            Assert.DoesNotContain("root:", body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Uploaded_names_never_reach_the_file_system_and_inputs_are_served_by_their_sniffed_type()
    {
        await using WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.File("data")));
        using HttpResponseMessage r = await web.SubmitAsync(("../../../evil.jpg", Images.ScenePng(64, 48)), [("/tmp/x/..\\stripes.html", Images.StripesPng(48, 48))], ("size", "64"), ("iterations", "1"), ("network", "resnet18"));
        string id = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        JsonElement job = await web.GetJobAsync(id);
        Assert.Equal("evil.jpg", job.GetProperty("content").GetProperty("name").GetString());
        Assert.Equal("stripes.html", job.GetProperty("styles")[0].GetProperty("name").GetString());
        Assert.All(Directory.GetFiles(dir.File("data/uploads")), f => Assert.Matches("^[0-9a-f]{24}\\.png$", Path.GetFileName(f)));
        Assert.False(File.Exists(dir.File("evil.jpg")));
        using HttpResponseMessage style = await web.Client.GetAsync($"/api/jobs/{id}/style/1");
        Assert.Equal("image/png", style.Content.Headers.ContentType!.MediaType);
        await web.WaitForAsync(id, j => JobStatus.IsFinal(Status(j)));
    }

    [Fact]
    public async Task Off_loopback_every_request_needs_the_token()
    {
        Assert.Equal(
            "--host 0.0.0.0 is not a loopback address: give --token SECRET as well (every request must then carry it)",
            Assert.Throws<StyleTransferException>(() => new WebSettings { Host = "0.0.0.0" }.Validate()).Message);

        const string token = "s3cret-token-for-tests";
        await using WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.Path) with { Host = "0.0.0.0", Token = token });
        using (HttpResponseMessage none = await web.Client.GetAsync("/api/config"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        }

        using (HttpResponseMessage page = await web.Client.GetAsync("/"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, page.StatusCode);
        }

        using (var wrong = new HttpRequestMessage(HttpMethod.Get, "/api/config"))
        {
            wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token + "x");
            Assert.Equal(HttpStatusCode.Unauthorized, (await web.Client.SendAsync(wrong)).StatusCode);
        }

        using (var right = new HttpRequestMessage(HttpMethod.Get, "/api/config"))
        {
            right.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            Assert.Equal(HttpStatusCode.OK, (await web.Client.SendAsync(right)).StatusCode);
        }

        using HttpResponseMessage query = await web.Client.GetAsync("/?token=" + token);
        Assert.Equal(HttpStatusCode.OK, query.StatusCode);
        Assert.Contains(query.Headers.GetValues("Set-Cookie"), c => c.StartsWith($"{WebServer.TokenCookie}={token};", StringComparison.Ordinal) && c.Contains("httponly", StringComparison.Ordinal));
    }

    [Fact]
    public async Task On_loopback_foreign_host_names_and_cross_origin_posts_are_refused()
    {
        await using WebTestApp web = await WebTestApp.StartAsync(WebTestApp.DefaultSettings(dir.Path));
        using (var rebound = new HttpRequestMessage(HttpMethod.Get, "/api/config"))
        {
            rebound.Headers.Host = "attacker.example";
            Assert.Equal(HttpStatusCode.Forbidden, (await web.Client.SendAsync(rebound)).StatusCode);
        }

        using var form = new MultipartFormDataContent { { new ByteArrayContent(Images.ScenePng(64, 48)), "content", "a.png" } };
        using var post = new HttpRequestMessage(HttpMethod.Post, "/api/jobs") { Content = form };
        post.Headers.Add("Origin", "https://attacker.example");
        using HttpResponseMessage r = await web.Client.SendAsync(post);
        Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.Equal("cross-origin requests are refused", await ErrorOf(r));
    }
}

/// <summary>`stylize serve`'s own refusals, before anything listens.</summary>
public sealed class ServeCommandTests
{
    [Theory]
    [InlineData("error: --host 0.0.0.0 is not a loopback address: give --token SECRET as well (every request must then carry it)", "--host", "0.0.0.0")]
    [InlineData("error: --port must be from 0 to 65535, not 70000", "--port", "70000")]
    [InlineData("error: --max-upload-mb must be a number above 0, not 0", "--max-upload-mb", "0")]
    [InlineData("error: --port: 'x' is not an integer (see 'stylize serve --help')", "--port", "x")]
    public void Bad_settings_are_one_line_and_exit_2(string expected, string option, string value)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(Cli.CliApp.ExitBadInput, Cli.CliApp.Run(["serve", option, value], stdout, stderr));
        Assert.Equal(expected + "\n", stderr.ToString().Replace("\r\n", "\n", StringComparison.Ordinal));
        Assert.Equal("", stdout.ToString());
    }
}
