using StyleTransfer.Build;

namespace StyleTransfer.Tests;

/// <summary>The GLIBCXX_3.4.32 fix, on a copy of TorchSharp's real libLibTorchSharp.so from the NuGet cache (never modified).</summary>
public sealed class ElfPatcherTests
{
    private const string Version = "GLIBCXX_3.4.32";

    private static string PackagedLibrary
    {
        get
        {
            string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            return Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        }
    }

    [Fact]
    public void MarksExactlyTheOneVersionFlagWeakAndIsIdempotent()
    {
        Assert.True(File.Exists(PackagedLibrary), $"missing {PackagedLibrary}");
        using var dir = new TempDir();
        string copy = dir.File("libLibTorchSharp.so");
        File.Copy(PackagedLibrary, copy);
        byte[] before = File.ReadAllBytes(copy);

        Assert.False(ElfVersionPatcher.IsVersionWeak(copy, Version));
        Assert.Equal(ElfPatchResult.Patched, ElfVersionPatcher.MarkVersionWeak(copy, Version));
        Assert.True(ElfVersionPatcher.IsVersionWeak(copy, Version));
        byte[] after = File.ReadAllBytes(copy);
        int[] changed = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToArray();
        Assert.Single(changed);
        Assert.Equal(before[changed[0]] | 0x2, after[changed[0]]);

        Assert.Equal(ElfPatchResult.AlreadyWeak, ElfVersionPatcher.MarkVersionWeak(copy, Version));
        Assert.Equal(after, File.ReadAllBytes(copy));
        Assert.Equal(ElfPatchResult.NotRequired, ElfVersionPatcher.MarkVersionWeak(copy, "GLIBCXX_9.9.99"));
        Assert.Equal(before, File.ReadAllBytes(PackagedLibrary));
    }

    [Fact]
    public void TheCopyInTheTestOutputLoadsOnThisHost()
    {
        // The build patched the copy beside the tests when this host's libstdc++ lacks the version.
        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        string libstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
        if (File.Exists(libstdcxx) && !ElfVersionPatcher.FileDefinesVersion(libstdcxx, Version))
        {
            Assert.True(ElfVersionPatcher.IsVersionWeak(output, Version));
        }

        Assert.Equal("2.10.0.0", TorchRuntime.EnsureLoaded());
    }

    [Fact]
    public void RejectsFilesThatAreNotElf64()
    {
        Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.MarkVersionWeak("not an elf file at all, long enough to pass the length check ......"u8.ToArray(), Version, out _));
        byte[] truncated = File.ReadAllBytes(PackagedLibrary)[..200];
        Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.MarkVersionWeak(truncated, Version, out _));
    }
}
