using System.Buffers.Binary;
using StyleTransfer.Cli;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;

namespace StyleTransfer.Tests;

/// <summary>Issue 18's items 4, 5 and 11: the memory guard before decoding, exit 2 for bad numbers, corruption refused.</summary>
public sealed class ReliabilityTests : CliImagesTest
{
    [Fact]
    public void TheMemoryGuardRefusesAHugeSizeBeforeDecodingAnything()
    {
        // The content image's header is whole but its pixel data is not: decoding it would fail.
        // The guard, working from headers, must refuse --size 16384 first.
        string broken = BrokenPixelData(content, dir.File("broken.png"));
        Assert.Throws<StyleTransferException>(() => ImageIO.Load(broken, "content image"));
        string output = dir.File("out.png");
        (int code, _, string stderr) = CliRun.WithDefaults([broken, style, "-o", output, "--size", "16384", "--network", "vgg19", "--weights", TestPaths.NarrowPth]);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Matches(@"^error: --size 16384 needs about \d+ GB of memory with vgg19, and this machine has \d+ GB; use a smaller --size\r?\n$", stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void TheTextureGuardRefusesAHugeSizeBeforeDecodingTheStyle()
    {
        string broken = BrokenPixelData(style, dir.File("broken.png"));
        (int code, _, string stderr) = CliRun.WithDefaults(["texture", broken, "-o", dir.File("t.png"), "--size", "16384x16384", "--network", "vgg19", "--weights", TestPaths.NarrowPth]);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Matches(@"^error: --size 16384 needs about \d+ GB of memory with vgg19", stderr);
    }

    [Fact]
    public void AHugeLearningRateIsABadNumberNotAnInternalError()
    {
        (int code, _, string stderr) = CliRun.WithDefaults([content, style, "-o", dir.File("out.png"), "--lr", "1e300", "--network", "vgg19", "--weights", TestPaths.NarrowPth, "--size", "32", "-n", "1"]);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal("error: --learning-rate must be a number above 0 and at most 1000, not 1E+300" + Environment.NewLine, stderr);
    }

    [Fact]
    public void TheBundledOnnxFilesHaveTheirKnownHashesAndADamagedCopyIsRefused()
    {
        string model = ResNet18.BundledCandidates(ResNet18.ModelFileName).First(File.Exists);
        string prep = ResNet18.BundledCandidates(ResNet18.PreprocessFileName).First(File.Exists);
        ResNet18.CheckHash(model, ResNet18.ModelSha256);
        ResNet18.CheckHash(prep, ResNet18.PreprocessSha256);

        // One bit flipped deep inside a weight: the graph still parses, only the hash tells.
        string copy = BadFiles.FlipBits(model, dir.File(ResNet18.ModelFileName), 20_000_000);
        var e = Assert.Throws<StyleTransferException>(() => ResNet18.CheckHash(copy, ResNet18.ModelSha256));
        Assert.StartsWith($"bundled model '{copy}' is damaged (SHA-256 ", e.Message);
        Assert.EndsWith("expected e2552f19db2d… from NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1); rebuild to copy it again", e.Message);
        using ResNet18 parsed = ResNet18.Load(copy, prep); // not the bundled path: structure only, as for --weights
    }

    [Fact]
    public void AJpegCutInHalfWithItsEndMarkerPutBackIsRefusedAndAWholeOneIsNot()
    {
        string jpeg = dir.File("whole.jpg");
        using (var img = TestImages.Scene(200, 150))
        {
            SixLabors.ImageSharp.ImageExtensions.Save(img, jpeg, new SixLabors.ImageSharp.Formats.Jpeg.JpegEncoder { Quality = 90 });
        }

        Assert.Equal((200, 150), ImageIO.Probe(jpeg, "content image"));
        byte[] d = File.ReadAllBytes(jpeg);
        int sos = d.AsSpan().IndexOf(new byte[] { 0xFF, 0xDA });
        string cut = dir.File("cut.jpg");
        File.WriteAllBytes(cut, [.. d[..(sos + ((d.Length - sos) / 2))], 0xFF, 0xD9]);
        var e = Assert.Throws<StyleTransferException>(() => ImageIO.Probe(cut, "content image"));
        Assert.Matches(@$"^content image '{System.Text.RegularExpressions.Regex.Escape(cut)}' is corrupt or truncated \(a scan stops after \d+ of 130 blocks: premature end of data\)$", e.Message);
    }

    /// <summary>A copy of a PNG whose IDAT data is replaced by bytes that are not zlib (CRC fixed, so only decoding can tell).</summary>
    private static string BrokenPixelData(string png, string path)
    {
        byte[] d = File.ReadAllBytes(png);
        for (int p = 8; p + 8 <= d.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(d.AsSpan(p));
            if (d.AsSpan(p + 4, 4).SequenceEqual("IDAT"u8))
            {
                d.AsSpan(p + 8, length).Fill(0xA5);
                BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(p + 8 + length), BadFiles.Crc32(d.AsSpan(p + 4, length + 4)));
            }

            p += length + 12;
        }

        File.WriteAllBytes(path, d);
        return path;
    }
}
