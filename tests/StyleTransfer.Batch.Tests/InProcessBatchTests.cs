using System.Text.Json;
using StyleTransfer.Cli;
using StyleTransfer.Jobs;

namespace StyleTransfer.Batch.Tests;

/// <summary>`stylize batch` in this process (an Orleans silo with localhost clustering and memory state) on tiny images.</summary>
public class InProcessBatchTests
{
    // The 48 px fixture styles, stretched (--small-style enlarge): used at their own size at the
    // 512 px anchor they would shrink to 16 px and a render would take too little time for the
    // interruption test to stop the batch between renders.
    private static readonly string[] Recipe = ["--network", "resnet18", "--size", "64", "-n", "3", "--scales", "1", "--threads", "1", "--small-style", "enlarge"];

    [Fact]
    public void A_grid_with_a_sweep_resumes_after_an_interruption_and_records_a_failed_render()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("contents"));
        Directory.CreateDirectory(dir.File("styles"));
        Images.Content(dir.File("contents", "a.png"), 0);
        Images.Content(dir.File("contents", "b.png"), 1);
        Images.Style(dir.File("styles", "s.png"), 0);
        string outDir = dir.File("out");
        string[] args = ["batch", "--contents", dir.File("contents"), "--styles", dir.File("styles"), "-o", outDir, "--sweep", "style-weight=1e6,1e8", "--timeout", "120", .. Recipe];
        string[] names = ["a__s__style-weight-1e6.png", "b__s__style-weight-1e6.png", "a__s__style-weight-1e8.png", "b__s__style-weight-1e8.png"];

        // 1. Interrupted (as by Ctrl-C) once the first render is written: exit 130, that render in the
        // manifest. A render already under way when the stop comes may finish too (renders of 64 px
        // take a fraction of a second with the network cached), but not all four.
        using var cts = new CancellationTokenSource();
        var stdout = new WatchingWriter(line =>
        {
            if (line.StartsWith("[1/4]", StringComparison.Ordinal))
            {
                cts.Cancel();
            }
        });
        var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr, cancellation: cts.Token);
        Assert.True(code == CliApp.ExitCancelled, $"exit {code}: {stdout}{stderr}");
        BatchManifest interrupted = BatchManifest.Load(outDir);
        List<ManifestEntry> doneBefore = [.. interrupted.Renders.Where(e => e.Status == RenderStatus.Done)];
        Assert.InRange(doneBefore.Count, 1, 3);
        ManifestEntry first = doneBefore[0];
        Assert.Equal(4, interrupted.Renders.Count);
        byte[] firstBytes = File.ReadAllBytes(Path.Combine(outDir, first.Output));
        DateTime firstWritten = File.GetLastWriteTimeUtc(Path.Combine(outDir, first.Output));

        // 2. The same command again: the finished render is skipped, the other three are made.
        stdout = new WatchingWriter(_ => { });
        code = CliApp.Run(args, stdout, stderr = new StringWriter());
        Assert.True(code == CliApp.ExitOk, $"exit {code}: {stdout}{stderr}");
        Assert.Contains($"batch: 4 render(s): {4 - doneBefore.Count} done, 0 failed, {doneBefore.Count} skipped (already done)", stdout.ToString(), StringComparison.Ordinal);
        Assert.Equal(firstBytes, File.ReadAllBytes(Path.Combine(outDir, first.Output)));
        Assert.Equal(firstWritten, File.GetLastWriteTimeUtc(Path.Combine(outDir, first.Output)));

        BatchManifest manifest = BatchManifest.Load(outDir);
        Assert.Equal(names.Order(StringComparer.Ordinal), manifest.Renders.Select(e => e.Output).Order(StringComparer.Ordinal));
        foreach (ManifestEntry e in manifest.Renders)
        {
            Assert.Equal(RenderStatus.Done, e.Status);
            Assert.Equal("local/cpu", e.Worker);
            Assert.Equal(1, e.Attempts);
            Assert.Equal(3, e.Iterations);
            Assert.Equal(64, e.Settings.Size);
            Assert.Equal(e.Sweep["style-weight"] == "1e6" ? 1e6 : 1e8, e.Settings.StyleWeight);
            Assert.Equal(e.Seed, e.Settings.Seed);
            Assert.True(e.Losses is { } l && double.IsFinite(l.Total) && l.Total > 0, e.Output);
            Assert.InRange(e.OptimizeSeconds, 1e-6, e.Seconds);
            Assert.Equal(JobJson.Sha256File(Path.Combine(outDir, e.Output)), e.OutputSha256);
            Assert.Equal("s.png", e.Style.Name);
        }

        // The manifest is plain JSON with the documented field names.
        using (JsonDocument doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json"))))
        {
            JsonElement r = doc.RootElement.GetProperty("renders")[0];
            foreach (string field in new[] { "id", "output", "content", "style", "sweep", "seed", "status", "worker", "losses", "iterations", "seconds", "optimize_seconds", "output_sha256", "settings" })
            {
                Assert.True(r.TryGetProperty(field, out _), field);
            }
        }

        // 3. A damaged output is redone, with the same bytes (same seed); a bad content image fails alone, with its one-line reason.
        string damaged = Path.Combine(outDir, names[3]);
        byte[] good = File.ReadAllBytes(damaged);
        File.WriteAllBytes(damaged, [.. good.Take(good.Length / 2)]);
        File.WriteAllText(dir.File("contents", "c.png"), "not an image");
        code = CliApp.Run(args, stdout = new WatchingWriter(_ => { }), stderr = new StringWriter());
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains("batch: 6 render(s): 1 done, 2 failed, 3 skipped (already done)", stdout.ToString(), StringComparison.Ordinal);
        Assert.Equal(good, File.ReadAllBytes(damaged));
        const string reason = "content image 'c.png' is not an image in a supported format (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP)";
        Assert.Equal($"error: 2 of 6 renders failed (first: c__s__style-weight-1e6.png: {reason}); the manifest has each reason{Environment.NewLine}", stderr.ToString());
        manifest = BatchManifest.Load(outDir);
        Assert.Equal(["c__s__style-weight-1e6.png", "c__s__style-weight-1e8.png"], manifest.Renders.Where(e => e.Status == RenderStatus.Failed).Select(e => e.Output).Order(StringComparer.Ordinal));
        Assert.All(manifest.Renders.Where(e => e.Status == RenderStatus.Failed), e => Assert.Equal(reason, e.Error));
        Assert.False(File.Exists(Path.Combine(outDir, "c__s__style-weight-1e6.png")));
        Assert.Equal(4, manifest.Renders.Count(e => e.Status == RenderStatus.Done));
        Assert.Empty(Directory.EnumerateFiles(outDir, "*.tmp"));
    }

    [Fact]
    public void A_job_file_lists_renders_with_options_of_their_own()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("in"));
        Images.Content(dir.File("in", "a.png"), 0);
        Images.Style(dir.File("in", "s.png"), 0);
        Images.Style(dir.File("in", "t.png"), 1);
        File.WriteAllText(dir.File("jobs.json"), """
            {"renders": [
              {"content": "in/a.png", "style": "in/s.png", "options": {"size": 64}},
              {"content": "in/a.png", "style": "in/t.png", "options": {"style-weight": 1e6, "size": "48"}}
            ]}
            """);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        string[] recipe = ["--network", "resnet18", "-n", "3", "--scales", "1", "--threads", "1"];
        int code = CliApp.Run(["batch", "--jobs", dir.File("jobs.json"), "-o", dir.File("out"), "--timeout", "120", .. recipe], stdout, stderr);
        Assert.True(code == CliApp.ExitOk, $"exit {code}: {stdout}{stderr}");
        Assert.Contains("batch: 2 render(s) (2 from jobs.json) in this process on cpu", stdout.ToString(), StringComparison.Ordinal);
        BatchManifest manifest = BatchManifest.Load(dir.File("out"));
        Assert.Equal(["a__s__size-64.png", "a__t__style-weight-1e6__size-48.png"], manifest.Renders.Select(e => e.Output));
        Assert.Equal([64, 48], manifest.Renders.Select(e => e.Settings.Size));
        Assert.Equal([1e8, 1e6], manifest.Renders.Select(e => e.Settings.StyleWeight));
        using var img = SixLabors.ImageSharp.Image.Load(dir.File("out", "a__t__style-weight-1e6__size-48.png"));
        Assert.Equal((48, 36), (img.Width, img.Height)); // the 64×48 content at a long edge of 48

        File.WriteAllText(dir.File("bad.json"), """{"renders": [{"content": "in/a.png"}]}""");
        code = CliApp.Run(["batch", "--jobs", dir.File("bad.json"), "-o", dir.File("out2"), .. recipe], stdout, stderr = new StringWriter());
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal($"error: job file '{dir.File("bad.json")}': renders[0]: \"style\" must be a path{Environment.NewLine}", stderr.ToString());
    }

    [Theory]
    [InlineData(new[] { "--sweep", "bogus=1,2" }, "error: --sweep: 'bogus' is not an image option (e.g. style-weight, content-weight, size, iterations, scales, seed)")]
    [InlineData(new[] { "--sweep", "size=64,80", "--size", "64" }, "error: --sweep size and --size cannot be given together")]
    [InlineData(new[] { "--sweep", "size=64,abc" }, "error: size=abc: --size: 'abc' is not an integer (see 'stylize batch --help')")]
    [InlineData(new[] { "--sweep", "palette-transfer=0,1", "--palette-transfer", "1" }, "error: --sweep palette-transfer and --palette-transfer cannot be given together")]
    public void Bad_batches_are_refused_with_one_line_before_any_work(string[] extra, string message)
    {
        using var dir = new TempDir();
        Images.Content(dir.File("a.png"), 0);
        Images.Style(dir.File("s.png"), 0);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["batch", "--contents", dir.File("a.png"), "--styles", dir.File("s.png"), "-o", dir.File("out"), "--network", "resnet18", .. extra], stdout, stderr);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal(message + Environment.NewLine, stderr.ToString());
        Assert.False(File.Exists(dir.File("out", "manifest.json")));
    }
}
