using System.Net;

namespace StyleTransfer.Web;

/// <summary>How `stylize serve` runs: where it listens, where it keeps jobs, and its limits. Defaults live here.</summary>
public sealed record WebSettings
{
    public const string DefaultHost = "127.0.0.1";
    public const int DefaultPort = 5000;
    public const long DefaultMaxUploadBytes = 25L * 1024 * 1024;
    public const double DefaultMaxMegapixels = 40;
    public const int DefaultMaxStyles = 8;
    public const int DefaultMaxJobsPerClient = 5;
    public const int DefaultPreviewEvery = 5;

    /// <summary>The jobs database (jobs.db) and the uploads/ and results/ folders.</summary>
    public string DataDir { get; init; } = DefaultDataDir;

    public string Host { get; init; } = DefaultHost;

    /// <summary>0: any free port (tests); the bound address is then in <see cref="WebServer.Urls"/>.</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>Required when <see cref="Host"/> is not a loopback address: every request must carry it.</summary>
    public string? Token { get; init; }

    /// <summary>Largest uploaded image file, in bytes.</summary>
    public long MaxUploadBytes { get; init; } = DefaultMaxUploadBytes;

    /// <summary>Largest uploaded image, in megapixels (its stored width × height).</summary>
    public double MaxMegapixels { get; init; } = DefaultMaxMegapixels;

    public int MaxStyles { get; init; } = DefaultMaxStyles;

    /// <summary>Queued and running jobs one client (remote address) may have at once.</summary>
    public int MaxJobsPerClient { get; init; } = DefaultMaxJobsPerClient;

    /// <summary>libtorch CPU threads for every job (null: one per core).</summary>
    public int? Threads { get; init; }

    /// <summary>A preview image every this many iterations.</summary>
    public int PreviewEvery { get; init; } = DefaultPreviewEvery;

    /// <summary>Under the user's data folder: ~/.local/share/stylize/web on Linux.</summary>
    public static string DefaultDataDir =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "stylize", "web");

    /// <summary>Whether <see cref="Host"/> is reachable only from this machine.</summary>
    public bool IsLoopback => Host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(Host.Trim('[', ']'), out IPAddress? ip) && IPAddress.IsLoopback(ip));

    /// <summary>Checks the settings; throws <see cref="StyleTransferException"/> with the one line to print.</summary>
    public WebSettings Validate()
    {
        Require(Port is >= 0 and <= 65535, $"--port must be from 0 to 65535, not {Port}");
        Require(IsLoopback || !string.IsNullOrEmpty(Token), $"--host {Host} is not a loopback address: give --token SECRET as well (every request must then carry it)");
        Require(Token is null || Token.Length >= 8, "--token must be at least 8 characters long");
        Require(MaxUploadBytes >= 1024, $"--max-upload-mb must be above 0");
        Require(MaxMegapixels > 0 && double.IsFinite(MaxMegapixels), $"--max-megapixels must be a number above 0");
        Require(MaxJobsPerClient >= 1, $"--max-jobs-per-client must be at least 1, not {MaxJobsPerClient}");
        Require(PreviewEvery >= 1, $"--preview-every must be at least 1, not {PreviewEvery}");
        Require(Threads is null or >= 1, $"--threads must be at least 1, not {Threads}");
        return this;
    }

    private static void Require(bool ok, string message)
    {
        if (!ok)
        {
            throw new StyleTransferException(message);
        }
    }
}

/// <summary>
/// Turns a job's form fields (named like the CLI's long options without dashes: size, iterations,
/// style-weight, …) into validated options. The CLI supplies it, so that every refusal is the very
/// line the CLI prints (after "error: "), thrown as a <see cref="StyleTransferException"/>.
/// </summary>
public interface IJobOptionsParser
{
    StyleTransferOptions Parse(IReadOnlyList<KeyValuePair<string, string>> fields, int styleCount);

    /// <summary>A library error as the page shows it: the CLI names settings by its flags (<see cref="StyleTransferException.FormatMessage"/>).</summary>
    string Describe(StyleTransferException error) => error.Message;
}
