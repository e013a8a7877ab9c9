using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace StyleTransfer.Tests;

/// <summary>Small images the tests make themselves: no test depends on ../shared.</summary>
internal static class TestImages
{
    /// <summary>A smooth colour gradient with a bright square: structure for the content loss.</summary>
    public static Image<Rgb24> Scene(int width, int height)
    {
        var img = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                bool square = x > width / 3 && x < 2 * width / 3 && y > height / 3 && y < 2 * height / 3;
                img[x, y] = square
                    ? new Rgb24(240, 220, 60)
                    : new Rgb24((byte)(255 * x / width), (byte)(128 + (100 * y / height)), (byte)(200 - (150 * y / height)));
            }
        }

        return img;
    }

    /// <summary>Diagonal stripes: a texture for the style loss.</summary>
    public static Image<Rgb24> Stripes(int width, int height)
    {
        var img = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                img[x, y] = ((x + y) / 4 % 2 == 0) ? new Rgb24(20, 40, 160) : new Rgb24(250, 200, 30);
            }
        }

        return img;
    }

    public static string Save(Image<Rgb24> image, string path)
    {
        image.Save(path);
        image.Dispose();
        return path;
    }

    public static Tensor SceneTensor(int width, int height)
    {
        using Image<Rgb24> img = Scene(width, height);
        return Imaging.ImageIO.ToTensor(img);
    }

    public static Tensor StripesTensor(int width, int height)
    {
        using Image<Rgb24> img = Stripes(width, height);
        return Imaging.ImageIO.ToTensor(img);
    }
}
