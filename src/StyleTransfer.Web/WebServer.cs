using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StyleTransfer.Optimization;

namespace StyleTransfer.Web;

/// <summary>
/// `stylize serve`: the page (embedded assets) and the JSON + server-sent-events API over the job
/// queue. Routes take only generated job ids and fixed asset names, so nothing a client sends
/// becomes a path on this machine.
/// </summary>
public static partial class WebServer
{
    public const string TokenCookie = "stylize-token";

    /// <summary>Asset name → (resource, content type): everything the page needs, and nothing else.</summary>
    private static readonly Dictionary<string, (string Resource, string Type)> Assets = new(StringComparer.Ordinal)
    {
        [""] = ("wwwroot/index.html", "text/html; charset=utf-8"),
        ["app.js"] = ("wwwroot/app.js", "text/javascript; charset=utf-8"),
        ["style.css"] = ("wwwroot/style.css", "text/css; charset=utf-8"),
        ["examples/village.jpg"] = ("examples/village.jpg", "image/jpeg"),
        ["examples/swirls.jpg"] = ("examples/swirls.jpg", "image/jpeg"),
    };

    /// <summary>
    /// The app, not yet started. <paramref name="configure"/> may change the builder (tests put a
    /// test server in place of Kestrel).
    /// </summary>
    public static WebApplication Create(WebSettings settings, IJobOptionsParser parser, Action<WebApplicationBuilder>? configure = null)
    {
        settings.Validate();
        Directory.CreateDirectory(Path.Combine(settings.DataDir, "uploads"));
        Directory.CreateDirectory(Path.Combine(settings.DataDir, "results"));

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "stylize", ContentRootPath = settings.DataDir });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        long maxBody = (settings.MaxUploadBytes * (settings.MaxStyles + 1)) + (1024 * 1024);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = maxBody;
        });
        builder.WebHost.UseUrls($"http://{(settings.Host.Contains(':', StringComparison.Ordinal) && !settings.Host.StartsWith('[') ? $"[{settings.Host}]" : settings.Host)}:{settings.Port}");
        builder.Services.Configure<FormOptions>(o =>
        {
            o.MultipartBodyLengthLimit = maxBody;
            o.ValueCountLimit = 200;
            o.ValueLengthLimit = 64 * 1024;
        });
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull);
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(_ => new JobStore(Path.Combine(settings.DataDir, "jobs.db")));
        builder.Services.AddSingleton(sp => new JobManager(settings, sp.GetRequiredService<JobStore>(), parser));
        configure?.Invoke(builder);

        WebApplication app = builder.Build();
        JobManager jobs = app.Services.GetRequiredService<JobManager>();
        app.Lifetime.ApplicationStopping.Register(jobs.Dispose);
        app.Use(Guard(settings));
        MapApi(app, settings, parser, jobs);
        MapAssets(app);
        return app;
    }

    /// <summary>Headers on every answer; the host, origin and token checks before any route.</summary>
    private static Func<HttpContext, RequestDelegate, Task> Guard(WebSettings settings) => async (context, next) =>
    {
        HttpResponse res = context.Response;
        res.Headers.XContentTypeOptions = "nosniff";
        res.Headers.XFrameOptions = "DENY";
        res.Headers["Referrer-Policy"] = "no-referrer";
        res.Headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
        HttpRequest req = context.Request;

        // A page on another site must not drive this server through the user's browser: no
        // cross-origin writes, and on loopback no foreign Host name (DNS rebinding).
        string? origin = req.Headers.Origin;
        if (!HttpMethods.IsGet(req.Method) && !HttpMethods.IsHead(req.Method) && origin is not null && !SameOrigin(origin, req))
        {
            await Refuse(context, StatusCodes.Status403Forbidden, "cross-origin requests are refused");
            return;
        }

        if (settings.IsLoopback && !IsLoopbackName(req.Host.Host))
        {
            await Refuse(context, StatusCodes.Status403Forbidden, $"this server answers to localhost only, not '{Uploads.DisplayName(req.Host.Host)}'");
            return;
        }

        if (settings.Token is { } token)
        {
            string? given = req.Headers.Authorization.ToString() is { Length: > 7 } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..]
                : req.Query.TryGetValue("token", out var q) ? q.ToString()
                : req.Cookies[TokenCookie];
            if (given is null || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(token)))
            {
                await Refuse(context, StatusCodes.Status401Unauthorized, "this server needs its token (?token=… once in the browser, or the header Authorization: Bearer …)");
                return;
            }

            if (req.Query.ContainsKey("token"))
            {
                res.Cookies.Append(TokenCookie, token, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/" });
            }
        }

        await next(context);
    };

    private static bool SameOrigin(string origin, HttpRequest req) =>
        Uri.TryCreate(origin, UriKind.Absolute, out Uri? o) && string.Equals(o.Authority, req.Host.Value, StringComparison.OrdinalIgnoreCase);

    private static bool IsLoopbackName(string host) =>
        host is "localhost" or "127.0.0.1" or "[::1]" or "::1" || (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var ip) && System.Net.IPAddress.IsLoopback(ip));

    private static Task Refuse(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new ErrorView(message));
    }

    [GeneratedRegex("^[0-9a-f]{16}$")]
    private static partial Regex JobId();

    private static void MapApi(WebApplication app, WebSettings settings, IJobOptionsParser parser, JobManager jobs)
    {
        app.MapGet("/api/config", () => Results.Json(new
        {
            defaultNetwork = StyleEngine.DefaultNetwork,
            networks = StyleEngine.Defaults(),
            maxUploadBytes = settings.MaxUploadBytes,
            maxMegapixels = settings.MaxMegapixels,
            maxStyles = settings.MaxStyles,
            maxJobsPerClient = settings.MaxJobsPerClient,
            examples = new[] { new { name = "village.jpg", url = "/examples/village.jpg", role = "content" }, new { name = "swirls.jpg", url = "/examples/swirls.jpg", role = "style" } },
        }));

        app.MapGet("/api/jobs", () =>
        {
            List<JobRecord> list = jobs.List(100);
            return Results.Json(list.Select(j => jobs.View(j) with { Losses = [] }));
        });

        app.MapPost("/api/jobs", async (HttpContext context) =>
        {
            try
            {
                return await Submit(context, settings, parser, jobs);
            }
            catch (RequestException e)
            {
                return Results.Json(new ErrorView(e.Message), statusCode: e.Status);
            }
        });

        app.MapGet("/api/jobs/{id}", (string id) =>
            Find(jobs, id) is { } job ? Results.Json(jobs.View(job)) : NotFound());

        app.MapDelete("/api/jobs/{id}", (string id) =>
        {
            if (Find(jobs, id) is not { } job)
            {
                return NotFound();
            }

            jobs.Cancel(id);
            return Results.Json(jobs.View(jobs.Get(id) ?? job), statusCode: StatusCodes.Status202Accepted);
        });

        app.MapGet("/api/jobs/{id}/events", async (HttpContext context, string id) =>
        {
            if (Find(jobs, id) is null || jobs.Subscribe(id) is not { } reader)
            {
                await NotFound().ExecuteAsync(context);
                return;
            }

            try
            {
                context.Response.ContentType = "text/event-stream";
                context.Response.Headers.CacheControl = "no-cache";
                context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
                await foreach (ServerEvent e in reader.ReadAllAsync(context.RequestAborted))
                {
                    await context.Response.WriteAsync($"event: {e.Name}\ndata: {e.Data}\n\n", context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                }
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                jobs.Unsubscribe(id, reader);
            }
        });

        app.MapGet("/api/jobs/{id}/result", (string id, string? format) =>
        {
            if (Find(jobs, id) is not { Status: JobStatus.Done } job)
            {
                return NotFound("no result for that job");
            }

            string path = Path.Combine(jobs.ResultsDir, JobManager.ResultFile(job.Id));
            if (!File.Exists(path))
            {
                return NotFound("the result file is gone");
            }

            return format switch
            {
                null or "png" => Results.File(path, "image/png", $"stylized-{job.Id}.png"),
                "jpeg" or "jpg" => Results.File(StyleEngine.PngFileToJpeg(path), "image/jpeg", $"stylized-{job.Id}.jpg"),
                _ => Results.Json(new ErrorView($"format must be png or jpeg, not '{Uploads.DisplayName(format)}'"), statusCode: StatusCodes.Status400BadRequest),
            };
        });

        app.MapGet("/api/jobs/{id}/content", (string id) =>
            Find(jobs, id) is { } job ? Input(jobs, job.Content) : NotFound());

        app.MapGet("/api/jobs/{id}/style/{n:int}", (string id, int n) =>
            Find(jobs, id) is { } job && n >= 1 && n <= job.Styles.Count ? Input(jobs, job.Styles[n - 1]) : NotFound());

        app.MapFallback("/api/{**rest}", () => NotFound());
    }

    /// <summary>A job by an id of the generated form (anything else, ../ included, is simply not found).</summary>
    private static JobRecord? Find(JobManager jobs, string id) => JobId().IsMatch(id) ? jobs.Get(id) : null;

    private static IResult NotFound(string message = "no such job") => Results.Json(new ErrorView(message), statusCode: StatusCodes.Status404NotFound);

    private static IResult Input(JobManager jobs, StoredImage image)
    {
        // Stored names are generated (hex + a sniffed extension); checked again before use.
        string path = Path.Combine(jobs.UploadsDir, image.File);
        return StoredName().IsMatch(image.File) && File.Exists(path) ? Results.File(path, image.ContentType) : NotFound("the image is gone");
    }

    [GeneratedRegex("^[0-9a-f]{24}\\.(png|jpg|gif|bmp|webp|tif)$")]
    private static partial Regex StoredName();

    private static async Task<IResult> Submit(HttpContext context, WebSettings settings, IJobOptionsParser parser, JobManager jobs)
    {
        string client = context.Connection.RemoteIpAddress?.ToString() ?? "local";
        if (jobs.ActiveJobs(client) >= settings.MaxJobsPerClient)
        {
            throw TooMany(settings);
        }

        if (!context.Request.HasFormContentType)
        {
            throw new RequestException(StatusCodes.Status415UnsupportedMediaType, "send the job as multipart/form-data (file fields content and style, options as fields)");
        }

        IFormCollection form;
        try
        {
            form = await context.Request.ReadFormAsync(context.RequestAborted);
        }
        catch (Exception e) when (e is InvalidDataException or BadHttpRequestException or IOException)
        {
            throw new RequestException(StatusCodes.Status413PayloadTooLarge, $"the upload is too large or malformed (at most {Uploads.FormatBytes(settings.MaxUploadBytes)} per image, {settings.MaxStyles} style images)");
        }

        foreach (IFormFile f in form.Files.Where(f => f.Name is not ("content" or "style")))
        {
            throw new RequestException(StatusCodes.Status400BadRequest, $"unknown file field '{Uploads.DisplayName(f.Name)}' (the files are content and style)");
        }

        IReadOnlyList<IFormFile> contents = form.Files.GetFiles("content");
        IReadOnlyList<IFormFile> styles = form.Files.GetFiles("style");
        if (contents.Count != 1)
        {
            throw new RequestException(StatusCodes.Status400BadRequest, contents.Count == 0 ? "a content image is required (file field content)" : "give one content image, not several");
        }

        if (styles.Count == 0 || styles.Count > settings.MaxStyles)
        {
            throw new RequestException(StatusCodes.Status400BadRequest, styles.Count == 0 ? "at least one style image is required (file field style)" : $"at most {settings.MaxStyles} style images");
        }

        var fields = new List<KeyValuePair<string, string>>();
        foreach ((string key, Microsoft.Extensions.Primitives.StringValues values) in form)
        {
            fields.AddRange(values.Select(v => new KeyValuePair<string, string>(key, v ?? "")));
        }

        StyleTransferOptions options;
        try
        {
            options = parser.Parse(fields, styles.Count) with { Threads = settings.Threads };
        }
        catch (StyleTransferException e)
        {
            throw new RequestException(StatusCodes.Status400BadRequest, e.Message);
        }

        string uploads = jobs.UploadsDir;
        var saved = new List<StoredImage>();
        try
        {
            saved.Add(await Uploads.SaveAsync(contents[0], "content image", uploads, settings, context.RequestAborted));
            for (int i = 0; i < styles.Count; i++)
            {
                saved.Add(await Uploads.SaveAsync(styles[i], Stylizer.StyleName(styles.Count, i), uploads, settings, context.RequestAborted));
            }
        }
        catch
        {
            saved.ForEach(s => File.Delete(Path.Combine(uploads, s.File)));
            throw;
        }

        var job = new JobRecord
        {
            Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
            Client = client,
            Device = StyleEngine.DeviceKey(options),
            Created = DateTimeOffset.UtcNow,
            Fields = fields,
            Content = saved[0],
            Styles = saved[1..],
            Iterations = options.TotalIterations,
        };
        if (!jobs.TrySubmit(job))
        {
            saved.ForEach(s => File.Delete(Path.Combine(uploads, s.File)));
            throw TooMany(settings);
        }

        return Results.Json(new { id = job.Id, status = job.Status, url = "/api/jobs/" + job.Id }, statusCode: StatusCodes.Status201Created);
    }

    private static RequestException TooMany(WebSettings settings) =>
        new(StatusCodes.Status429TooManyRequests, $"at most {settings.MaxJobsPerClient} queued or running jobs per client: wait for one to finish, or cancel one");

    private static void MapAssets(WebApplication app)
    {
        Assembly assembly = typeof(WebServer).Assembly;
        app.MapGet("/{**path}", (string? path) =>
        {
            if (!Assets.TryGetValue(path ?? "", out (string Resource, string Type) asset) || assembly.GetManifestResourceStream(asset.Resource) is not { } stream)
            {
                return Results.Text("not found\n", "text/plain; charset=utf-8", statusCode: StatusCodes.Status404NotFound);
            }

            return Results.Stream(stream, asset.Type);
        });
    }
}

/// <summary>Every refusal: {"error": "…"}, the line the CLI would print after "error: ".</summary>
public sealed record ErrorView(string Error);
