using Spectre.Console;
using StyleTransfer.Cli;

bool interactive = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
return CliApp.Run(args, Console.Out, Console.Error, interactive);
