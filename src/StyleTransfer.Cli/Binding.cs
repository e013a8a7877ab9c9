using System.CommandLine;
using System.Globalization;
using StyleTransfer.Networks;

namespace StyleTransfer.Cli;

/// <summary>What every command's action writes to and whether it may draw a live progress bar.</summary>
/// <param name="Args">The command line as given (batch re-parses it once per sweep value).</param>
internal sealed record CliContext(TextWriter Stdout, TextWriter Stderr, bool Interactive, string[] Args);

/// <summary>
/// How the commands are bound to System.CommandLine: each command carries its own action, which gets
/// the invocation's <see cref="CancellationToken"/> (the caller's; Ctrl-C and SIGTERM are turned into
/// it by <see cref="StopSignals"/> while a run is going), and enum options are typed.
/// </summary>
internal static class Binding
{
    /// <summary>
    /// Makes <paramref name="body"/> <paramref name="command"/>'s action: library errors become one
    /// stderr line and their exit code (<see cref="CliApp.Guarded"/>).
    /// </summary>
    /// <remarks>
    /// The bodies run synchronously on the caller's thread; System.CommandLine's own termination
    /// handling is off (<see cref="CliApp.Run"/>), as it would end the invocation after a timeout
    /// without the partial output and cannot tell Ctrl-C's exit code from SIGTERM's in the message.
    /// </remarks>
    public static void Bind(this Command command, CliContext context, Func<ParseResult, CancellationToken, int> body) =>
        command.SetAction((p, cancellation) => Task.FromResult(CliApp.Guarded(context.Stderr, () => body(p, cancellation))));

    /// <summary>The value of <paramref name="option"/> when it was given, else <paramref name="fallback"/> (the library's default).</summary>
    public static T ValueOr<T>(this ParseResult p, Option<T> option, T fallback) => p.GetResult(option) is { Implicit: false } ? p.GetValue(option)! : fallback;

    /// <summary>
    /// An option of an enum type whose values are its members' names in lower case, in declaration
    /// order (<c>--init noise|content|style</c>); any other value is refused by the parser with its
    /// one line ("Argument 'x' not recognized. Must be one of: ...").
    /// </summary>
    public static Option<T> EnumOption<T>(string name, string description, params string[] aliases)
        where T : struct, Enum =>
        new Option<T>(name, aliases) { Description = description }.AcceptOnlyFromAmong([.. Enum.GetNames<T>().Select(n => n.ToLowerInvariant())]);
}

/// <summary>
/// Help text for the defaults, generated from the library's own (<see cref="NetworkFactory.DefaultOptions"/>,
/// i.e. <see cref="StyleTransferOptions"/> and the per-network table behind it), so <c>--help</c> cannot
/// disagree with what a run uses.
/// </summary>
internal static class LibraryDefaults
{
    /// <summary>
    /// " [default: 512]" when every network has the same value, else one entry per value naming its
    /// networks: " [default: 500 for vgg19, 150 for resnet18, 200 for alexnet/googlenet/resnet50]".
    /// </summary>
    public static string Of<T>(Func<StyleTransferOptions, T> property)
    {
        List<(string Network, string Value)> values = [.. NetworkFactory.Names.Select(n => (n, Text(property(NetworkFactory.DefaultOptions(n)))))];
        if (values.Select(v => v.Value).Distinct().Count() == 1)
        {
            return $" [default: {values[0].Value}]";
        }

        IEnumerable<string> groups = values.GroupBy(v => v.Value).Select(g => $"{g.Key} for {string.Join("/", g.Select(v => v.Network))}");
        return $" [default: {string.Join(", ", groups)}]";
    }

    /// <summary>A default as the command line would take it: 1000, 1E+08, true, noise, relu1_1,relu2_1, auto (scales).</summary>
    public static string Text(object? value) => value switch
    {
        null => "none",
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        Enum e => e.ToString().ToLowerInvariant(),
        string s => s,
        IEnumerable<string> list => string.Join(",", list),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
