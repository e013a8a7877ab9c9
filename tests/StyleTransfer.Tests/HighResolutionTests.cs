using System.Diagnostics;
using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.Metadata.Profiles.Icc;
using SixLabors.ImageSharp.PixelFormats;
using StyleTransfer.Cli;
using StyleTransfer.Imaging;
using StyleTransfer.Networks;
using StyleTransfer.Optimization;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>Issue 15: the memory budget (--max-memory) and print output (16-bit PNG/TIFF, ICC and EXIF carried over).</summary>
public sealed class HighResolutionTests : CliImagesTest
{
    public HighResolutionTests() => TorchRuntime.EnsureLoaded();

    [Theory]
    [InlineData("8G", 8L << 30)]
    [InlineData("512M", 512L << 20)]
    [InlineData("1.5g", 3L << 29)]
    [InlineData("100KB", 100L << 10)]
    [InlineData("4096", 4096L)]
    public void SizesParseWithSuffixes(string text, long bytes) => Assert.Equal(bytes, MemoryBudget.Parse(text));

    [Theory]
    [InlineData("abc")]
    [InlineData("-1G")]
    [InlineData("8X")]
    public void BadSizesAreRefused(string text)
    {
        var e = Assert.Throws<StyleTransferException>(() => MemoryBudget.Parse(text));
        Assert.Equal($"--max-memory: '{text}' is not a size (a number with K, M or G, e.g. 8G)", e.Message);
    }

    [Fact]
    public void TheBudgetPicksTilesAndHistoryAt4K()
    {
        StyleTransferOptions o = NetworkFactory.DefaultOptions("resnet18") with { Size = 3840, MaxMemory = 8L << 30 };
        long stylePixels = 5760L * 4320;
        MemoryPlan plan = MemoryBudget.Require(o, 2880, 3840, stylePixels, canTile: true);
        Assert.Equal((1024, 128, 5), (plan.Tile, plan.Halo, plan.History));
        Assert.InRange(plan.Estimate, 6L << 30, (long)((8L << 30) * MemoryBudget.PlanShare));
        Assert.Equal($"memory: budget 8.0 GB (--max-memory); 1024 px tiles (+128 px halo), L-BFGS history 5 (of 25); estimated peak {MemoryBudget.Format(plan.Estimate)}", plan.Describe());

        // The default run at 512 px is untouched: whole image, the full history (ResNet-18's 25
        // pairs, or the 100 asked for).
        MemoryPlan small = MemoryBudget.Require(NetworkFactory.DefaultOptions("resnet18") with { MaxMemory = 8L << 30 }, 384, 512, 768L * 576, canTile: true);
        Assert.Equal((null, 25), (small.Tile, small.History));
        MemoryPlan asked = MemoryBudget.Require(NetworkFactory.DefaultOptions("resnet18") with { MaxMemory = 8L << 30, LbfgsHistory = 100 }, 384, 512, 768L * 576, canTile: true);
        Assert.Equal((null, 100), (asked.Tile, asked.History));

        // Networks that cannot tile only get a shorter history, or a refusal.
        var e = Assert.Throws<StyleTransferException>(() => MemoryBudget.Require(NetworkFactory.DefaultOptions("alexnet") with { Size = 3840, MaxMemory = 4L << 30 }, 2880, 3840, stylePixels, canTile: false));
        Assert.StartsWith("--max-memory 4.0 GB is too small for a 3840x2880 output with alexnet: it needs about ", e.Message);
    }

    [Fact]
    public void TheWholeImageEstimateCountsTheStyleAnchorsPass()
    {
        // Above the anchor (512 px for ResNet-18) the network also runs on the image at 512 px: a
        // 1024×768 scale adds a 512×384 pass; at 512 px and with the anchor off there is none.
        StyleTransferOptions o = NetworkFactory.DefaultOptions("resnet18") with { Size = 1024, MaxMemory = 20L << 30 };
        Assert.Equal(512L * 384, MemoryBudget.AnchorPixels(o, 768, 1024));
        Assert.Equal(0, MemoryBudget.AnchorPixels(o, 384, 512));
        Assert.Equal(0, MemoryBudget.AnchorPixels(o with { StyleAnchor = 0 }, 768, 1024));
        Assert.Equal(0, MemoryBudget.AnchorPixels(NetworkFactory.DefaultOptions("vgg19") with { Size = 1024 }, 768, 1024));

        long style = 1536L * 1152, pixels = 1024L * 768, anchor = 512L * 384;
        long with = MemoryBudget.Estimate(o, pixels, style, null, 0, o.LbfgsHistory, anchor);
        Assert.Equal(NetworkFactory.EstimateWorkingBytes("resnet18", anchor), with - MemoryBudget.Estimate(o, pixels, style, null, 0, o.LbfgsHistory));
        Assert.Equal(with, MemoryBudget.Require(o, 768, 1024, style, canTile: true).Estimate);

        // Tiles keep the estimate measured for them (higher than the peak already).
        Assert.Equal(MemoryBudget.Estimate(o, pixels, style, 512, 128, 5), MemoryBudget.Estimate(o, pixels, style, 512, 128, 5, anchor));
    }

    [Theory]
    [InlineData("cuda", true, 0)]
    [InlineData("CUDA:3", true, 3)]
    [InlineData(" cuda:12 ", true, 12)]
    [InlineData("cpu", false, 0)]
    [InlineData("cuda:", false, 0)]
    [InlineData("cuda:-1", false, 0)]
    [InlineData("cuda:x", false, 0)]
    public void GpuOrdinalsAreParsed(string device, bool isGpu, int index)
    {
        Assert.Equal(isGpu, TorchRuntime.TryCudaIndex(device, out int got));
        if (isGpu)
        {
            Assert.Equal(index, got);
        }
    }

    [Theory]
    [InlineData(null, 0, null)]
    [InlineData("", 1, null)]
    [InlineData("3,1", 0, "3")]
    [InlineData("3, 1", 1, "1")]
    [InlineData("0", 1, null)]
    [InlineData("GPU-8c2f51e0-aaaa", 0, "GPU-8c2f51e0-aaaa")]
    public void CudaVisibleDevicesMapsOrdinalsToPhysicalGpus(string? visible, int index, string? physical) =>
        Assert.Equal(physical, GpuMemory.Physical(visible, index));

    [Fact]
    public void TheDefaultBudgetIsAShareOfTheDevicesMemory()
    {
        // The CPU: 80 % of this machine's memory, and every CPU run is planned.
        Assert.Equal((MemoryBudget.DefaultBudget(), "default: 80% of this machine's"), MemoryBudget.DefaultBudget("cpu"));
        StyleTransferOptions cpu = NetworkFactory.DefaultOptions("resnet18");
        Assert.True(MemoryBudget.Planned(cpu));
        Assert.Equal((8L << 30, "--max-memory"), MemoryBudget.BudgetFor(cpu with { MaxMemory = 8L << 30 }));

        // A GPU run with --max-memory or --tile is planned whether or not its memory can be read.
        Assert.True(MemoryBudget.Planned(cpu with { Device = "cuda", MaxMemory = 8L << 30 }));
        Assert.True(MemoryBudget.Planned(cpu with { Device = "cuda:1", Tile = 512 }));
        Assert.Equal((12L << 30, "--max-memory"), MemoryBudget.BudgetFor(cpu with { Device = "cuda", MaxMemory = 12L << 30 }));
        // As the H200 run of docs/high-resolution.md (Tübingen, The Starry Night: a 5760×3600 style
        // image), made when ResNet-18's default history was 100 pairs.
        MemoryPlan plan = MemoryBudget.Require(cpu with { Device = "cuda", Size = 3840, MaxMemory = 12L << 30, LbfgsHistory = 100 }, 2880, 3840, 5760L * 3600, canTile: true);
        Assert.StartsWith("memory: budget 12.0 GB (--max-memory); 1024 px tiles (+128 px halo), L-BFGS history 20 (of 100)", plan.Describe());
    }

    [Fact]
    public void AMaxMemoryTooSmallIsRefusedBeforeAnyLargeAllocation()
    {
        // As its own process, under GNU time, for its peak resident memory.
        string output = dir.File("out.png"), rss = dir.File("rss.txt");
        var start = new ProcessStartInfo("/usr/bin/time") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string host = Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
        foreach (string a in new[] { "-f", "%M", "-o", rss, host, Path.Combine(AppContext.BaseDirectory, "stylize.dll"), content, style, "-o", output, "--size", "3840", "--max-memory", "1G", "--network", "resnet18", "--threads", "1" })
        {
            start.ArgumentList.Add(a);
        }

        using Process p = Process.Start(start)!;
        string stderr = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(CliApp.ExitBadInput, p.ExitCode);
        Assert.Matches(@"^error: --max-memory 1\.0 GB is too small for a 3840x2560 output with resnet18: it needs about \d+\.\d GB \(256 px tiles, L-BFGS history 3\); give more, or a smaller --size\r?\n$", stderr);
        Assert.False(File.Exists(output));
        long peakKb = long.Parse(File.ReadAllLines(rss).Last(l => l.Trim().Length > 0).Trim(), CultureInfo.InvariantCulture);
        Assert.InRange(peakKb, 1, 500 * 1024);
    }

    [Fact]
    public void SixteenBitPngAndTiffKeepTheFractionalLevels()
    {
        // A ramp finer than 8 bits: 16-bit output keeps levels between the 8-bit ones.
        using Tensor ramp = torch.linspace(0, 1, 1000).reshape(1, 1, 1, 1000).expand(1, 3, 4, 1000).contiguous();
        string png = dir.File("ramp.png"), tiff = dir.File("ramp.tiff");
        PrintOutput.Save(ramp, png, bitDepth: 16);
        PrintOutput.Save(ramp, tiff, bitDepth: 16);
        foreach (string file in new[] { png, tiff })
        {
            using Image<Rgb48> img = Image.Load<Rgb48>(file);
            Assert.Equal((1000, 4), (img.Width, img.Height));
            Assert.Equal((ushort)Math.Round(65535.0 * 1 / 999), img[1, 0].R);
            Assert.Equal((ushort)Math.Round(65535.0 * 500 / 999), img[500, 3].G);
            Assert.Equal(65535, img[999, 2].B);
        }

        Assert.Equal(16, File.ReadAllBytes(png)[24]); // IHDR bit depth
        Assert.Equal("II*\0", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(tiff), 0, 4));
    }

    [Theory]
    [InlineData("out.png", 16)]
    [InlineData("out.tiff", 16)]
    [InlineData("out.tif", 8)]
    [InlineData("out.jpg", 8)]
    public void TheContentsIccProfileAndExifAreCarriedOverUpright(string name, int bits)
    {
        byte[] icc = MinimalIcc();
        string jpeg = CameraJpeg(icc);

        using Tensor loaded = ImageIO.LoadTensor(jpeg, "content image", 64);
        Assert.Equal([1L, 3, 64, 48], loaded.shape); // turned upright on reading
        string output = dir.File(name);
        PrintOutput.Save(loaded, output, bits, metadataFrom: jpeg);
        if (PrintOutput.IsTiff(output))
        {
            Assert.Equal(icc, TiffTag(File.ReadAllBytes(output), 34675));
            Assert.Equal(bits * 3, Image.Identify(output).PixelType.BitsPerPixel);
            return;
        }

        var meta = Image.Identify(output).Metadata;
        Assert.Equal(icc, name.EndsWith(".png", StringComparison.Ordinal) ? PngIccp(File.ReadAllBytes(output)) : meta.IccProfile!.ToByteArray());
        Assert.Equal((ushort)1, meta.ExifProfile!.GetValue(ExifTag.Orientation)!.Value);
        Assert.Equal("TestCam", meta.ExifProfile!.GetValue(ExifTag.Make)!.Value);
    }

    [Theory]
    [InlineData("out.tiff", 16)]
    [InlineData("out.tif", 8)]
    public void TiffCarriesTheContentsExifUpright(string name, int bits)
    {
        byte[] icc = MinimalIcc();
        string jpeg = CameraJpeg(icc, exif =>
        {
            exif.SetValue(ExifTag.DateTimeOriginal, "2024:05:06 07:08:09");
            exif.SetValue(ExifTag.PixelXDimension, (Number)64u);
            exif.SetValue(ExifTag.PixelYDimension, (Number)48u);
        });

        using Tensor loaded = ImageIO.LoadTensor(jpeg, "content image", 64);
        string output = dir.File(name);
        PrintOutput.Save(loaded, output, bits, metadataFrom: jpeg);
        byte[] tiff = File.ReadAllBytes(output);

        // The file's first IFD: the image, upright, with the camera's tags and the ICC profile.
        Assert.Equal(icc, TiffTag(tiff, 34675));
        Assert.Equal(1u, TiffValue(tiff, TiffIfd(tiff, 0), 274));
        Assert.Equal("TestCam", TiffAscii(tiff, TiffIfd(tiff, 0), 271));
        Assert.Equal((48u, 64u), (TiffValue(tiff, TiffIfd(tiff, 0), 256), TiffValue(tiff, TiffIfd(tiff, 0), 257)));

        // The Exif sub-IFD (tag 34665): the date, and the pixel dimensions of the output.
        int exifIfd = (int)TiffValue(tiff, TiffIfd(tiff, 0), 34665)!.Value;
        Assert.Equal("2024:05:06 07:08:09", TiffAscii(tiff, exifIfd, 36867));
        Assert.Equal((48u, 64u), (TiffValue(tiff, exifIfd, 40962), TiffValue(tiff, exifIfd, 40963)));

        // A TIFF reader sees the same pixels and the same EXIF.
        using Image<Rgb48> img = Image.Load<Rgb48>(output);
        Assert.Equal((48, 64), (img.Width, img.Height));
        Assert.Equal(loaded[0, 1, 10, 20].ToSingle(), img[20, 10].G / 65535.0, bits == 8 ? 0.5 / 255 : 1.0 / 65535);
        ExifProfile? read = img.Frames.RootFrame.Metadata.ExifProfile ?? img.Metadata.ExifProfile;
        Assert.NotNull(read);
        Assert.Equal((ushort)1, read!.GetValue(ExifTag.Orientation)!.Value);
        Assert.Equal("TestCam", read.GetValue(ExifTag.Make)!.Value);
    }

    [Fact]
    public void SixteenBitJpegIsRefused()
    {
        (int code, _, string stderr) = CliRun.WithDefaults([content, style, "-o", dir.File("out.jpg"), "--bit-depth", "16"], ("--network", "vgg19"), ("--weights", TestPaths.NarrowPth), ("--size", "32"), ("-n|--iterations", "1"));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Equal($"error: --bit-depth 16 needs a .png, .tif or .tiff output, not '{dir.File("out.jpg")}' (JPEG has 8 bits)" + Environment.NewLine, stderr);
    }

    [Fact]
    public void ARunWritesASixteenBitTiff()
    {
        string output = dir.File("out.tiff");
        (int code, string stdout, string stderr) = CliRun.WithDefaults([content, style, "-o", output, "--bit-depth", "16", "--max-memory", "4G"], ("--network", "vgg19"), ("--weights", TestPaths.NarrowPth), ("--size", "32"), ("-n|--iterations", "1"), ("--threads", "2"));
        Assert.True(code == 0, stderr);
        Assert.Contains("memory: budget 4.0 GB (--max-memory); whole image (no tiles), L-BFGS history 100; estimated peak ", stdout);
        using Image<Rgb48> img = Image.Load<Rgb48>(output);
        Assert.Equal((32, 21), (img.Width, img.Height));
    }

    /// <summary>The profile in a PNG's iCCP chunk (ImageSharp 2.1 does not read it), CRC checked.</summary>
    private static byte[] PngIccp(byte[] png)
    {
        for (int at = 8; at + 12 <= png.Length;)
        {
            int length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            if (png.AsSpan(at + 4, 4).SequenceEqual("iCCP"u8))
            {
                Assert.Equal(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 8 + length)), Formats.ZipPthFile.Crc32(png.AsSpan(at + 4, length + 4)));
                int name = Array.IndexOf(png, (byte)0, at + 8);
                using var z = new System.IO.Compression.ZLibStream(new MemoryStream(png, name + 2, at + 8 + length - name - 2), System.IO.Compression.CompressionMode.Decompress);
                using var profile = new MemoryStream();
                z.CopyTo(profile);
                return profile.ToArray();
            }

            at += length + 12;
        }

        return [];
    }

    /// <summary>The bytes of an UNDEFINED-type tag of a little-endian TIFF's first IFD.</summary>
    private static byte[] TiffTag(byte[] tiff, ushort tag)
    {
        int ifd = BitConverter.ToInt32(tiff, 4);
        int n = BitConverter.ToUInt16(tiff, ifd);
        for (int i = 0; i < n; i++)
        {
            int e = ifd + 2 + (12 * i);
            if (BitConverter.ToUInt16(tiff, e) == tag)
            {
                int count = BitConverter.ToInt32(tiff, e + 4), at = BitConverter.ToInt32(tiff, e + 8);
                return tiff.AsSpan(at, count).ToArray();
            }
        }

        return [];
    }

    /// <summary>The offset of a little-endian TIFF's first IFD (0), or of the next ones.</summary>
    private static int TiffIfd(byte[] tiff, int index)
    {
        int ifd = BitConverter.ToInt32(tiff, 4);
        for (int k = 0; k < index; k++)
        {
            ifd = BitConverter.ToInt32(tiff, ifd + 2 + (12 * BitConverter.ToUInt16(tiff, ifd)));
        }

        return ifd;
    }

    /// <summary>The offset of <paramref name="tag"/>'s 12-byte entry in the IFD at <paramref name="ifd"/>, or null.</summary>
    private static int? TiffEntry(byte[] tiff, int ifd, ushort tag)
    {
        int n = BitConverter.ToUInt16(tiff, ifd);
        for (int i = 0; i < n; i++)
        {
            int e = ifd + 2 + (12 * i);
            if (BitConverter.ToUInt16(tiff, e) == tag)
            {
                return e;
            }
        }

        return null;
    }

    /// <summary>A SHORT or LONG tag's single value in the IFD at <paramref name="ifd"/>, or null.</summary>
    private static uint? TiffValue(byte[] tiff, int ifd, ushort tag)
    {
        if (TiffEntry(tiff, ifd, tag) is not { } e)
        {
            return null;
        }

        Assert.Equal(1, BitConverter.ToInt32(tiff, e + 4));
        return BitConverter.ToUInt16(tiff, e + 2) == 3 ? BitConverter.ToUInt16(tiff, e + 8) : BitConverter.ToUInt32(tiff, e + 8);
    }

    /// <summary>An ASCII tag's text (without its NUL) in the IFD at <paramref name="ifd"/>, or null.</summary>
    private static string? TiffAscii(byte[] tiff, int ifd, ushort tag)
    {
        if (TiffEntry(tiff, ifd, tag) is not { } e)
        {
            return null;
        }

        Assert.Equal(2, BitConverter.ToUInt16(tiff, e + 2));
        int count = BitConverter.ToInt32(tiff, e + 4);
        int at = count <= 4 ? e + 8 : BitConverter.ToInt32(tiff, e + 8);
        return System.Text.Encoding.ASCII.GetString(tiff, at, count).TrimEnd('\0');
    }

    /// <summary>A 64×48 camera JPEG stored sideways (EXIF orientation 6) with <paramref name="icc"/>, the make "TestCam" and whatever <paramref name="moreExif"/> adds.</summary>
    private string CameraJpeg(byte[] icc, Action<ExifProfile>? moreExif = null)
    {
        string jpeg = dir.File("camera.jpg");
        using Image<Rgb24> photo = TestImages.Scene(64, 48);
        photo.Metadata.IccProfile = new IccProfile(icc);
        photo.Metadata.ExifProfile = new ExifProfile();
        photo.Metadata.ExifProfile.SetValue(ExifTag.Orientation, (ushort)6);
        photo.Metadata.ExifProfile.SetValue(ExifTag.Make, "TestCam");
        moreExif?.Invoke(photo.Metadata.ExifProfile);
        photo.SaveAsJpeg(jpeg);
        return jpeg;
    }

    /// <summary>An ICC v2 display profile header with no tags: enough for the profile to travel.</summary>
    private static byte[] MinimalIcc()
    {
        var b = new byte[132];
        b[3] = 132;
        "mntr"u8.CopyTo(b.AsSpan(12));
        "RGB "u8.CopyTo(b.AsSpan(16));
        "XYZ "u8.CopyTo(b.AsSpan(20));
        b[8] = 2;
        "acsp"u8.CopyTo(b.AsSpan(36));
        return b;
    }
}
