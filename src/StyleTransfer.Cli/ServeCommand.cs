using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using StyleTransfer.Web;

namespace StyleTransfer.Cli;

/// <summary>
/// `stylize serve`: the web app (src/StyleTransfer.Web) on 127.0.0.1:5000 until Ctrl-C. Jobs'
/// form fields are parsed by <see cref="FormOptions"/>, through this CLI's own option definitions.
/// </summary>
internal sealed class ServeCommand
{
    public readonly Option<string> Host = new("--host") { Description = "Address to listen on; anything but loopback needs --token", DefaultValueFactory = _ => WebSettings.DefaultHost };
    public readonly Option<int> Port = new("--port") { Description = "Port to listen on", DefaultValueFactory = _ => WebSettings.DefaultPort };
    public readonly Option<string?> Token = new("--token") { Description = "Secret every request must carry (Authorization: Bearer …, or ?token=… once in the browser); required off loopback" };
    public readonly Option<string?> Data = new("--data") { Description = "Folder of the job database, uploads and results (default: ~/.local/share/stylize/web)" };
    public readonly Option<int?> Threads = new("--threads") { Description = "CPU threads per job (default: one per core)" };
    public readonly Option<double> MaxUploadMb = new("--max-upload-mb") { Description = "Largest image file accepted, in MB", DefaultValueFactory = _ => WebSettings.DefaultMaxUploadBytes / (1024.0 * 1024.0) };
    public readonly Option<double> MaxMegapixels = new("--max-megapixels") { Description = "Largest image accepted, in megapixels", DefaultValueFactory = _ => WebSettings.DefaultMaxMegapixels };
    public readonly Option<int> MaxJobs = new("--max-jobs-per-client") { Description = "Queued and running jobs one client may have", DefaultValueFactory = _ => WebSettings.DefaultMaxJobsPerClient };
    public readonly Option<int> PreviewEvery = new("--preview-every") { Description = "A preview image every N iterations", DefaultValueFactory = _ => WebSettings.DefaultPreviewEvery };

    public ServeCommand()
    {
        Command = new Command("serve", "A local web app: upload images, watch the image form, download it; jobs queued and kept (docs/web.md)")
        {
            Host, Port, Token, Data, Threads, MaxUploadMb, MaxMegapixels, MaxJobs, PreviewEvery,
        };
    }

    public Command Command { get; }

    public int Run(ParseResult p, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        double mb = p.GetValue(MaxUploadMb);
        if (!(double.IsFinite(mb) && mb > 0))
        {
            throw new StyleTransferException($"--max-upload-mb must be a number above 0, not {mb.ToString(CultureInfo.InvariantCulture)}");
        }

        var settings = new WebSettings
        {
            Host = p.GetValue(Host)!,
            Port = p.GetValue(Port),
            Token = p.GetValue(Token),
            DataDir = Path.GetFullPath(p.GetValue(Data) ?? WebSettings.DefaultDataDir),
            Threads = p.GetValue(Threads),
            MaxUploadBytes = (long)(mb * 1024 * 1024),
            MaxMegapixels = p.GetValue(MaxMegapixels),
            MaxJobsPerClient = p.GetValue(MaxJobs),
            PreviewEvery = p.GetValue(PreviewEvery),
        }.Validate();

        string version = StyleEngine.EnsureLoaded();
        using var stop = new StopSignals(cancellation);
        Microsoft.AspNetCore.Builder.WebApplication app = WebServer.Create(settings, new FormOptions());
        try
        {
            app.StartAsync(stop.Token).GetAwaiter().GetResult();
        }
        catch (IOException e)
        {
            throw new StyleTransferException($"cannot listen on {settings.Host}:{settings.Port} ({e.Message.Split('\n')[0].Trim().TrimEnd('.')}); choose another --port");
        }

        if (!settings.IsLoopback)
        {
            stderr.WriteLine($"warning: listening on {settings.Host}, reachable from other machines; every request must carry the token");
        }

        string url = app.Urls.FirstOrDefault() ?? $"http://{settings.Host}:{settings.Port}";
        stdout.WriteLine($"stylize serve: {url}/{(settings.Token is null ? "" : "?token=" + Uri.EscapeDataString(settings.Token))} (libtorch {version}, data in {settings.DataDir}); Ctrl-C stops");
        try
        {
            stop.Token.WaitHandle.WaitOne();
        }
        finally
        {
            app.StopAsync().GetAwaiter().GetResult();
            ((IDisposable)app).Dispose();
        }

        stdout.WriteLine("stylize serve: stopped");
        return CliApp.ExitOk;
    }

    /// <summary>
    /// A job's form fields as the stylize command's own options: each field NAME=VALUE is the
    /// argument pair --NAME VALUE, parsed and validated by the same definitions, so a refusal is
    /// the very line the CLI prints. Fields that name files or write beside the output (weights,
    /// mask, save-every, …) and the server's own (threads) are not jobs' to set.
    /// </summary>
    internal sealed class FormOptions : IJobOptionsParser
    {
        private static readonly HashSet<string> NotFromTheWeb = new(StringComparer.Ordinal) { "weights", "mask", "mask-fit", "save-every", "threads", "output", "o", "resume", "help", "version" };

        public StyleTransferOptions Parse(IReadOnlyList<KeyValuePair<string, string>> fields, int styleCount)
        {
            var set = new OptionSet();
            var styles = new StyleInputOptions();
            var root = new RootCommand();
            set.AddTo(root);
            styles.AddTo(root);
            set.AddPipelineTo(root);
            var known = new HashSet<string>(root.Options.SelectMany(o => o.Aliases.Append(o.Name)), StringComparer.Ordinal);
            var args = new List<string>();
            foreach ((string name, string value) in fields)
            {
                if (NotFromTheWeb.Contains(name))
                {
                    throw new StyleTransferException($"--{name} cannot be set through the web app");
                }

                if (!known.Contains("--" + name))
                {
                    throw new StyleTransferException($"unknown option '--{Uploads.DisplayName(name)}' (see 'stylize --help')");
                }

                // Each field is one option and one value: a value is never read as an option or a response file.
                args.Add($"--{name}={value}");
            }

            ParseResult parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
            if (ParseErrors.First(parsed) is { } error)
            {
                throw new StyleTransferException(error);
            }

            try
            {
                StyleTransferOptions options = set.Build(parsed);
                string[] names = [.. Enumerable.Range(1, styleCount).Select(i => $"style{i}")];
                return styles.Apply(parsed, options, names);
            }
            catch (StyleTransferException e)
            {
                // The library names properties (Iterations); the page shows the CLI's line (--iterations).
                throw new StyleTransferException(OptionFlags.Message(e), e, e.Kind);
            }
        }

        public string Describe(StyleTransferException error) => OptionFlags.Message(error);
    }
}
