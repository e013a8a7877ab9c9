using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace StyleTransfer.Batch.Tests;

/// <summary>A temporary folder, deleted at the end.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Path = Directory.CreateTempSubdirectory("stylize-batch-test-").FullName;

    public string Path { get; }

    public string File(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>Tiny synthetic images: distinct contents and styles.</summary>
internal static class Images
{
    public static void Content(string path, int variant)
    {
        using var img = new Image<Rgb24>(64, 48);
        for (int y = 0; y < img.Height; y++)
        {
            for (int x = 0; x < img.Width; x++)
            {
                bool square = x > 20 + (variant * 4) && x < 44 && y > 14 && y < 34;
                img[x, y] = square ? new Rgb24(240, 220, (byte)(60 * variant)) : new Rgb24((byte)(4 * x), (byte)(128 + (2 * y)), (byte)(200 - (3 * y)));
            }
        }

        img.SaveAsPng(path);
    }

    public static void Style(string path, int variant)
    {
        using var img = new Image<Rgb24>(48, 48);
        for (int y = 0; y < img.Height; y++)
        {
            for (int x = 0; x < img.Width; x++)
            {
                bool on = variant == 0 ? (x + y) / 4 % 2 == 0 : (x / 6 + y / 6) % 2 == 0;
                img[x, y] = on ? new Rgb24(20, 40, 160) : new Rgb24(250, 200, 30);
            }
        }

        img.SaveAsPng(path);
    }
}

/// <summary>A TextWriter that collects lines and runs an action on each (e.g. to interrupt a batch after its first render).</summary>
internal sealed class WatchingWriter(Action<string> onLine) : TextWriter
{
    private readonly System.Text.StringBuilder all = new();
    private readonly System.Text.StringBuilder line = new();

    public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

    public override void Write(char value)
    {
        lock (all)
        {
            all.Append(value);
            if (value != '\n')
            {
                line.Append(value);
                return;
            }
        }

        string done = line.ToString();
        line.Clear();
        onLine(done);
    }

    public override string ToString()
    {
        lock (all)
        {
            return all.ToString();
        }
    }
}
