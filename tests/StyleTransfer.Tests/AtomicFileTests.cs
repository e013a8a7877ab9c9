using StyleTransfer.Experiments;

namespace StyleTransfer.Tests;

/// <summary>
/// The atomic writes every output goes through (images, logs, plots, checkpoints): a link planted
/// in the output folder at a temporary-file name is never followed and its target never changes.
/// </summary>
public sealed class AtomicFileTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void APlantedLinkAtTheOldPredictableTemporaryNameIsNotFollowed()
    {
        // Before: the temporary file was .NAME.PID.tmp, opened with File.Create (follows links, truncates).
        string victim = dir.File("victim.txt");
        File.WriteAllText(victim, "precious");
        string planted = dir.File($".out.json.{Environment.ProcessId}.tmp");
        File.CreateSymbolicLink(planted, victim);

        AtomicFile.Write(dir.File("out.json"), s => s.Write("{}"u8));

        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.Equal("{}", File.ReadAllText(dir.File("out.json")));
        Assert.Null(new FileInfo(dir.File("out.json")).LinkTarget);
        Assert.Equal(victim, new FileInfo(planted).LinkTarget);
    }

    [Fact]
    public void APlantedLinkAtTheRandomTemporaryNameIsNotFollowedAndAnotherNameIsUsed()
    {
        string victim = dir.File("victim.txt");
        File.WriteAllText(victim, "precious");
        string[] tokens = ["0123456789abcdef", "fedcba9876543210", "00112233445566ff"];
        string linkToVictim = dir.File($".out.png.{Environment.ProcessId}.{tokens[0]}.tmp");
        string dangling = dir.File($".out.png.{Environment.ProcessId}.{tokens[1]}.tmp");
        File.CreateSymbolicLink(linkToVictim, victim);
        File.CreateSymbolicLink(dangling, dir.File("would-be-created.txt"));
        int next = 0;
        AtomicFile.TokenForTests.Value = () => tokens[next++];
        try
        {
            using var image = TestImages.Scene(20, 20);
            Imaging.ImageIO.Save(image, dir.File("out.png"));
        }
        finally
        {
            AtomicFile.TokenForTests.Value = null;
        }

        Assert.Equal(3, next);
        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.False(File.Exists(dir.File("would-be-created.txt")));
        Assert.Equal(victim, new FileInfo(linkToVictim).LinkTarget);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(dir.File("out.png"))[..4]);
        Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => f.Contains(tokens[2], StringComparison.Ordinal));
    }

    [Fact]
    public void WhenEveryNameIsTakenTheWriteFailsWithOneLineAndTouchesNothing()
    {
        string victim = dir.File("victim.txt");
        File.WriteAllText(victim, "precious");
        File.CreateSymbolicLink(dir.File($".log.json.{Environment.ProcessId}.aaaaaaaaaaaaaaaa.tmp"), victim);
        AtomicFile.TokenForTests.Value = () => "aaaaaaaaaaaaaaaa";
        try
        {
            var e = Assert.Throws<StyleTransferException>(() => RunLog.Save(dir.File("log.json"), "stylize", new Dictionary<string, string>(), new StyleTransferOptions(), []));
            Assert.StartsWith($"cannot write '{dir.File("log.json")}' (", e.Message);
        }
        finally
        {
            AtomicFile.TokenForTests.Value = null;
        }

        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.False(File.Exists(dir.File("log.json")));
    }

    [Fact]
    public void StaleTemporaryFilesOfKilledRunsAreRemovedAndNothingElse()
    {
        const int Dead = 999_999_999; // above any pid_max: no such process
        DateTime twoMinutesAgo = DateTime.UtcNow.AddMinutes(-2);
        string Make(string name, DateTime written)
        {
            string path = dir.File(name);
            File.WriteAllText(path, "partial");
            File.SetLastWriteTimeUtc(path, written);
            return path;
        }

        string deadOld = Make($".out.ckpt.{Dead}.0123456789abcdef.tmp", twoMinutesAgo);
        string deadOldFormat = Make($".out.ckpt.{Dead}.tmp", twoMinutesAgo);
        string ancient = Make($".out.ckpt.{Environment.ProcessId}.00000000000000aa.tmp", DateTime.UtcNow.AddDays(-2));
        string deadFresh = Make($".out.ckpt.{Dead}.1111111111111111.tmp", DateTime.UtcNow);
        string liveOld = Make($".out.ckpt.{Environment.ProcessId}.2222222222222222.tmp", twoMinutesAgo);
        string otherName = Make($".other.ckpt.{Dead}.3333333333333333.tmp", twoMinutesAgo);
        string notOurs = Make($".out.ckpt.{Dead}.notours.tmp", twoMinutesAgo);
        string victim = Make("victim.txt", twoMinutesAgo);
        string link = dir.File($".out.ckpt.{Dead}.4444444444444444.tmp");
        File.CreateSymbolicLink(link, victim);

        AtomicFile.Write(dir.File("out.ckpt"), s => s.Write("ok"u8));

        Assert.False(File.Exists(deadOld));
        Assert.False(File.Exists(deadOldFormat));
        Assert.False(File.Exists(ancient));
        Assert.All(new[] { deadFresh, liveOld, otherName, notOurs, victim }, f => Assert.Equal("partial", File.ReadAllText(f)));
        Assert.Equal(victim, new FileInfo(link).LinkTarget);
        Assert.Equal("ok", File.ReadAllText(dir.File("out.ckpt")));
    }
}
