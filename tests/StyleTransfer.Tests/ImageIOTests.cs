using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;
using StyleTransfer.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

public sealed class ImageIOTests
{
    public ImageIOTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void ExifOrientationIsHonoured()
    {
        using var dir = new TempDir();
        using (Image<Rgb24> img = TestImages.Scene(40, 20))
        {
            img.Metadata.ExifProfile = new ExifProfile();
            img.Metadata.ExifProfile.SetValue(ExifTag.Orientation, (ushort)6); // rotate 90° clockwise to display
            img.Save(dir.File("rotated.jpg"));
        }

        using Image<Rgb24> loaded = ImageIO.Load(dir.File("rotated.jpg"), "content image");
        Assert.Equal(20, loaded.Width);
        Assert.Equal(40, loaded.Height);
    }

    [Fact]
    public void PngRoundTripIsExactAndLeavesNoTemporaryFile()
    {
        using var dir = new TempDir();
        using Tensor t = TestImages.SceneTensor(33, 21);
        string path = dir.File("out.png");
        ImageIO.Save(t, path);
        ImageIO.Save(t, path); // over an existing file
        using Tensor back = ImageIO.LoadTensor(path, "image", 33);
        Assert.Equal(new long[] { 1, 3, 21, 33 }, back.shape);
        Assert.Equal(0.0, (back - t).abs().max().ToDouble());
        Assert.Equal(["out.png"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void JpegIsChosenByExtension()
    {
        using var dir = new TempDir();
        using Tensor t = TestImages.SceneTensor(32, 32);
        ImageIO.Save(t, dir.File("out.jpeg"));
        byte[] head = File.ReadAllBytes(dir.File("out.jpeg"))[..3];
        Assert.Equal(new byte[] { 0xFF, 0xD8, 0xFF }, head);
    }

    [Fact]
    public void LoadTensorScalesTheLongEdge()
    {
        using var dir = new TempDir();
        string path = TestImages.Save(TestImages.Scene(120, 80), dir.File("a.png"));
        using Tensor t = ImageIO.LoadTensor(path, "content image", 48);
        Assert.Equal(new long[] { 1, 3, 32, 48 }, t.shape);
        Assert.InRange(t.min().ToDouble(), 0.0, 1.0);
        Assert.InRange(t.max().ToDouble(), 0.0, 1.0);
    }

    [Fact]
    public void OutOfRangeValuesAreClampedOnSave()
    {
        using var dir = new TempDir();
        using Tensor t = torch.full(new long[] { 1, 3, 16, 16 }, 2.0f);
        using Tensor n = torch.full(new long[] { 1, 3, 16, 16 }, -1.0f);
        ImageIO.Save(t, dir.File("white.png"));
        ImageIO.Save(n, dir.File("black.png"));
        using Image<Rgb24> w = Image.Load<Rgb24>(dir.File("white.png"));
        using Image<Rgb24> b = Image.Load<Rgb24>(dir.File("black.png"));
        Assert.Equal(new Rgb24(255, 255, 255), w[5, 5]);
        Assert.Equal(new Rgb24(0, 0, 0), b[5, 5]);
    }
}
