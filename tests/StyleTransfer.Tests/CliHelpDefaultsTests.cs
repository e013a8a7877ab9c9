using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using StyleTransfer.Cli;
using StyleTransfer.Networks;

namespace StyleTransfer.Tests;

/// <summary>
/// `--help` cannot disagree with the library: for every option that sets a
/// <see cref="StyleTransferOptions"/> property with a default (found through the CLI's one table
/// of flags, <see cref="OptionFlags"/>), each help page that lists it shows the library's value
/// for every network, read here from the library itself.
/// </summary>
public sealed class CliHelpDefaultsTests
{
    /// <summary>Help pages with the shared options; texture and metrics have a --size of their own.</summary>
    public static TheoryData<string, string> Pages => new()
    {
        { "", "" },
        { "video", "" },
        { "batch", "" },
        { "reconstruct", "" },
        { "figure1", "" },
        { "grid", "" },
        { "texture", "--size" },
        { "metrics", "--size" },
    };

    [Theory]
    [MemberData(nameof(Pages))]
    public void HelpShowsTheLibrarysDefaultForEveryNetwork(string command, string ownOption)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(command == "" ? ["--help"] : [command, "--help"], stdout, stderr);
        Assert.Equal((CliApp.ExitOk, ""), (code, stderr.ToString()));
        Dictionary<string, string> entries = Entries(stdout.ToString());

        int checkedOptions = 0;
        foreach ((string flag, PropertyInfo property) in DefaultedProperties())
        {
            if (flag == ownOption || !entries.TryGetValue(flag, out string? entry))
            {
                Assert.NotEqual("", command); // the stylize command itself lists every one of them
                continue;
            }

            string[] values = [.. NetworkFactory.Names.Select(n => Text(property, new StyleTransferOptions { Network = n }))];
            if (values.Distinct().Count() == 1)
            {
                Assert.True(entry.EndsWith($" [default: {values[0]}]", StringComparison.Ordinal), $"{flag}: '{entry}' does not end with the library's default '{values[0]}'");
            }
            else
            {
                for (int i = 0; i < values.Length; i++)
                {
                    string network = NetworkFactory.Names[i];
                    string pattern = $@"[\[ ]{Regex.Escape(values[i])} for ([a-z0-9]+/)*{network}(/[a-z0-9]+)*(, |\]$)";
                    Assert.True(Regex.IsMatch(entry, pattern), $"{flag}: '{entry}' does not give {network}'s default '{values[i]}'");
                }
            }

            checkedOptions++;
        }

        Assert.True(checkedOptions >= (command == "" ? 30 : 15), $"only {checkedOptions} options checked on '{command} --help'");
    }

    [Theory]
    [InlineData("--init", "Content", "error: Argument 'Content' not recognized. Must be one of: 'noise' 'content' 'style' (see 'stylize --help')")]
    [InlineData("--init", "1", "error: Argument '1' not recognized. Must be one of: 'noise' 'content' 'style' (see 'stylize --help')")]
    [InlineData("--precision", "fp64", "error: Argument 'fp64' not recognized. Must be one of: 'fp32' 'bf16' 'fp16' (see 'stylize --help')")]
    [InlineData("--mask-fit", "Stretch", "error: Argument 'Stretch' not recognized. Must be one of: 'exact' 'stretch' (see 'stylize --help')")]
    public void EnumOptionsTakeOnlyTheirLowerCaseNames(string option, string value, string expected)
    {
        var stderr = new StringWriter();
        int code = CliApp.Run(["a.png", "b.png", "-o", "out.png", option, value], new StringWriter(), stderr);
        Assert.Equal((CliApp.ExitBadInput, expected + Environment.NewLine), (code, stderr.ToString()));
    }

    /// <summary>The flags whose property has a default other than "none" for some network (the network itself aside).</summary>
    private static IEnumerable<(string Flag, PropertyInfo Property)> DefaultedProperties()
    {
        foreach (PropertyInfo property in typeof(StyleTransferOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (OptionFlags.Of(property.Name) is { } flag && property.Name != nameof(StyleTransferOptions.Network)
                && NetworkFactory.Names.Any(n => property.GetValue(new StyleTransferOptions { Network = n }) is not null))
            {
                yield return (flag, property);
            }
        }
    }

    /// <summary>A value as it is typed on the command line: 1000, 1E+08, true, noise, relu1_1,relu2_1; scales 0 is auto.</summary>
    private static string Text(PropertyInfo property, StyleTransferOptions options) => property.GetValue(options) switch
    {
        int s when property.Name == nameof(StyleTransferOptions.Scales) && s == StyleTransferOptions.AutoScales => "auto",
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        Enum e => e.ToString().ToLowerInvariant(),
        IEnumerable<string> list => string.Join(",", list),
        object o => Convert.ToString(o, CultureInfo.InvariantCulture)!,
        null => throw new InvalidOperationException(property.Name),
    };

    /// <summary>Each option's description by each of its names ("-n, --iterations &lt;iterations&gt;  text"; lines wrapped on a narrow terminal joined).</summary>
    private static Dictionary<string, string> Entries(string help)
    {
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        string[] names = [];
        foreach (string line in help.Split('\n').Select(l => l.TrimEnd('\r')))
        {
            Match m = Regex.Match(line, @"^  (-[^ ]*(?:, -[^ ]*)*)(?: <[^>]*>)?(?: \(REQUIRED\))?\s{2,}(\S.*)$");
            if (m.Success)
            {
                names = m.Groups[1].Value.Split(", ");
                Array.ForEach(names, n => entries[n] = m.Groups[2].Value);
            }
            else if (names.Length > 0 && line.StartsWith("    ", StringComparison.Ordinal) && line.Trim().Length > 0)
            {
                Array.ForEach(names, n => entries[n] += " " + line.Trim());
            }
            else
            {
                names = [];
            }
        }

        return entries;
    }
}
