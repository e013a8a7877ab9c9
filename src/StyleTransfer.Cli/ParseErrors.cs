using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace StyleTransfer.Cli;

/// <summary>
/// The first parse error as one line for users: an unknown option is called one (System.CommandLine
/// would take it for an image argument, or say "Unrecognized command or argument"), and a value of
/// the wrong type names the type in words ("an integer"), not as a .NET type name.
/// </summary>
internal static class ParseErrors
{
    /// <summary>The line to print after "error: ", or null when <paramref name="parsed"/> has no error.</summary>
    public static string? First(ParseResult parsed)
    {
        string help = parsed.CommandResult.Command is RootCommand ? "stylize --help" : $"stylize {(parsed.CommandResult.Parent is CommandResult { Command: not RootCommand } parent ? parent.Command.Name + " " : "")}{parsed.CommandResult.Command.Name} --help";
        if (UnknownOption(parsed) is { } unknown)
        {
            return $"unknown option '{unknown}' (see '{help}')";
        }

        if (parsed.Errors.Count == 0)
        {
            return null;
        }

        ParseError first = parsed.Errors[0];
        string message = WrongType(first) ?? string.Join(' ', first.Message.Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return $"{message} (see '{help}')";
    }

    /// <summary>
    /// A token that looks like an option (starts with '-', is not a negative number) and was taken
    /// as an image argument or matched nothing; tokens after "--" are arguments, as usual.
    /// </summary>
    private static string? UnknownOption(ParseResult parsed)
    {
        int doubleDash = parsed.Tokens.ToList().FindIndex(t => t.Type == TokenType.DoubleDash);
        IEnumerable<Token> beforeDoubleDash = doubleDash < 0 ? parsed.Tokens : parsed.Tokens.Take(doubleDash);
        var asArguments = new HashSet<Token>(ReferenceEqualityComparer.Instance);
        for (SymbolResult? r = parsed.CommandResult; r != null; r = r.Parent)
        {
            foreach (ArgumentResult a in r is CommandResult c ? c.Children.OfType<ArgumentResult>() : [])
            {
                asArguments.UnionWith(a.Tokens);
            }
        }

        var unmatched = new HashSet<string>(parsed.UnmatchedTokens, StringComparer.Ordinal);
        return beforeDoubleDash
            .Where(t => (asArguments.Contains(t) || unmatched.Contains(t.Value)) && LooksLikeOption(t.Value))
            .Select(t => t.Value)
            .FirstOrDefault();
    }

    private static bool LooksLikeOption(string token) =>
        token.Length > 1 && token[0] == '-' && !double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    /// <summary>"--size: 'abc' is not an integer" for a value that does not convert to its option's type.</summary>
    private static string? WrongType(ParseError error)
    {
        OptionResult? option = error.SymbolResult as OptionResult ?? (error.SymbolResult as ArgumentResult)?.Parent as OptionResult;
        if (option is null)
        {
            return null;
        }

        Type type = Nullable.GetUnderlyingType(option.Option.ValueType) ?? option.Option.ValueType;
        if (type.IsEnum)
        {
            return null; // its values are checked by name (Binding.EnumOption); the parser's line says which
        }

        Func<string, bool>? parses = Type.GetTypeCode(type) switch
        {
            TypeCode.Int32 => v => int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            TypeCode.Int64 => v => long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            TypeCode.Double => v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out _),
            TypeCode.Boolean => v => bool.TryParse(v, out _),
            _ => null,
        };
        if (parses is null || option.Tokens.FirstOrDefault(t => !parses(t.Value)) is not { } bad)
        {
            return null;
        }

        bool integer = type == typeof(int) || type == typeof(long);
        return integer && System.Numerics.BigInteger.TryParse(bad.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
            ? $"{option.Option.Name}: {bad.Value} is out of range (at most {(type == typeof(int) ? int.MaxValue : long.MaxValue)})"
            : $"{option.Option.Name}: '{bad.Value}' is not {InWords(type)}";
    }

    private static string InWords(Type type) => Type.GetTypeCode(type) switch
    {
        TypeCode.Int32 or TypeCode.Int64 => "an integer",
        TypeCode.Double => "a number",
        TypeCode.Boolean => "true or false",
        _ => type.Name,
    };
}
