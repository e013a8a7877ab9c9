using System.Text.RegularExpressions;
using StyleTransfer.Jobs;

namespace StyleTransfer.Batch.Tests;

/// <summary>
/// A real cluster on this machine: a throwaway PostgreSQL, two `stylize worker` processes and a
/// `stylize batch --cluster` submitter, all on loopback. One worker is killed (SIGKILL) in the
/// middle of a render: every render still completes exactly once and the manifest says who did what.
/// </summary>
public class ClusterTests
{
    [Fact]
    public void A_worker_killed_mid_render_has_its_render_redone_elsewhere_and_every_render_is_done_once()
    {
        using var dir = new TempDir();
        Images.Content(dir.File("a.png"), 0);
        Images.Content(dir.File("b.png"), 1);
        Images.Style(dir.File("s.png"), 0);
        string outDir = dir.File("out");
        using var pg = new PostgresServer();
        string[] worker = ["worker", "--cluster", pg.Url, "--threads", "1", "--probe-timeout", "1"];
        using var w1 = new StylizeProcess([.. worker, "--name", "w1", "--cache", dir.File("cache1")]);
        using var w2 = new StylizeProcess([.. worker, "--name", "w2", "--cache", dir.File("cache2")]);
        Assert.True(w1.WaitFor(l => l.StartsWith("worker w1: joined", StringComparison.Ordinal), TimeSpan.FromSeconds(60)), w1.Output);
        Assert.True(w2.WaitFor(l => l.StartsWith("worker w2: joined", StringComparison.Ordinal), TimeSpan.FromSeconds(60)), w2.Output);

        using var submitter = new StylizeProcess(
            "batch", "--cluster", pg.Url, "--contents", dir.File("a.png"), dir.File("b.png"), "--styles", dir.File("s.png"), "-o", outDir,
            "--sweep", "style-weight=1e6,1e7,1e8", "--network", "resnet18", "--size", "64", "-n", "4", "--scales", "1", "--timeout", "150");

        // Kill w1 while it renders (after it has fetched the render's inputs, before it reports).
        var started = new Regex(@"^w1/cpu: render (\w+) \S+ started");
        Assert.True(w1.WaitFor(l => started.IsMatch(l), TimeSpan.FromSeconds(90)), w1.Output + "\n---\n" + submitter.Output);
        Assert.True(w1.WaitFor(l => l.StartsWith("w1/cpu: fetched input", StringComparison.Ordinal), TimeSpan.FromSeconds(30)), w1.Output);
        w1.Kill();
        string killedRender = started.Match(w1.Lines.Last(l => started.IsMatch(l))).Groups[1].Value;
        bool finishedBeforeKill = w1.Lines.Any(l => l.Contains($"render {killedRender} ", StringComparison.Ordinal) && l.Contains(" accepted", StringComparison.Ordinal));

        Assert.True(submitter.WaitForExit(TimeSpan.FromSeconds(150)), submitter.Output + "\n---\n" + w2.Output);
        w2.Stop();
        Assert.True(submitter.ExitCode == 0, submitter.Output + "\n---\n" + w1.Output + "\n---\n" + w2.Output);
        Assert.Contains("batch: 6 render(s): 6 done, 0 failed, 0 skipped (already done)", submitter.Output, StringComparison.Ordinal);

        BatchManifest manifest = BatchManifest.Load(outDir);
        Assert.Equal(6, manifest.Renders.Count);
        foreach (ManifestEntry e in manifest.Renders)
        {
            Assert.Equal(RenderStatus.Done, e.Status);
            Assert.Contains(e.Worker, new[] { "w1/cpu", "w2/cpu" });
            Assert.Equal(e.Worker, e.TriedBy[^1]);
            Assert.Equal(e.Attempts, e.TriedBy.Count);
            Assert.Equal(JobJson.Sha256File(Path.Combine(outDir, e.Output)), e.OutputSha256);
        }

        // The killed render: handed to w1, then to w2, which delivered it.
        ManifestEntry redone = Assert.Single(manifest.Renders, e => e.Id == killedRender);
        if (!finishedBeforeKill)
        {
            Assert.Equal(["w1/cpu", "w2/cpu"], redone.TriedBy);
            Assert.Equal("w2/cpu", redone.Worker);
        }

        // Exactly once: one accepted result per render across both workers, and the manifest names the worker whose result was taken.
        var accepted = new Regex(@"^(w[12])/cpu: render (\w+) \S+ done in .* accepted$");
        List<(string Worker, string Id)> results = [.. w1.Lines.Concat(w2.Lines).Select(l => accepted.Match(l)).Where(m => m.Success).Select(m => (m.Groups[1].Value + "/cpu", m.Groups[2].Value))];
        Assert.Equal(manifest.Renders.Select(e => e.Id).Order(StringComparer.Ordinal), results.Select(r => r.Id).Order(StringComparer.Ordinal));
        Assert.All(results, r => Assert.Equal(manifest.Find(r.Id)!.Worker, r.Worker));
        Assert.Equal(6, Directory.EnumerateFiles(outDir, "*.png").Count());
        Assert.Empty(Directory.EnumerateFiles(outDir, "*.tmp"));

        // Inputs travel by hash, fetched at most once per worker.
        foreach (StylizeProcess w in new[] { w1, w2 })
        {
            List<string> fetched = [.. w.Lines.Where(l => l.Contains(": fetched input ", StringComparison.Ordinal))];
            Assert.Equal(fetched.Count, fetched.Distinct().Count());
        }
    }
}
