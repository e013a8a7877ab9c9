namespace StyleTransfer.Tests;

internal static class TestPaths
{
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    public static string NarrowPth => Fixture("vgg19_narrow.pth");

    public static string NarrowSafetensors => Fixture("vgg19_narrow.safetensors");

    public static string Reference => Fixture("vgg19_reference.safetensors");
}

/// <summary>A temporary folder deleted with the test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "stylize-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// The CLI test classes' common ground: a temporary folder holding a 60×40 scene as content.png and
/// 48×48 stripes as style.png, deleted after each test.
/// </summary>
public abstract class CliImagesTest : IDisposable
{
    private protected readonly TempDir dir = new();
    private protected readonly string content;
    private protected readonly string style;

    private protected CliImagesTest()
    {
        content = TestImages.Save(TestImages.Scene(60, 40), dir.File("content.png"));
        style = TestImages.Save(TestImages.Stripes(48, 48), dir.File("style.png"));
    }

    public void Dispose()
    {
        dir.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The CLI run in-process, as the CLI test classes run it: options they leave out get test defaults.</summary>
internal static class CliRun
{
    /// <summary>
    /// Appends each default whose flag is absent from <paramref name="args"/> (a flag may list
    /// aliases, "-n|--iterations"; the first is the one added), runs <see cref="Cli.CliApp.Run"/>
    /// and returns its exit code and what it wrote.
    /// </summary>
    public static (int Code, string Stdout, string Stderr) WithDefaults(IEnumerable<string> args, params (string Flag, string Value)[] defaults)
    {
        var list = new List<string>(args);
        foreach ((string flag, string value) in defaults)
        {
            string[] names = flag.Split('|');
            if (!names.Any(list.Contains))
            {
                list.AddRange([names[0], value]);
            }
        }

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Cli.CliApp.Run([.. list], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
