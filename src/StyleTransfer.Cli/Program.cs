using Spectre.Console;
using StyleTransfer.Cli;

HugePages.ReExecIfRecommended(args); // first: glibc reads its tunables only at process start
bool interactive = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
return CliApp.Run(args, Console.Out, Console.Error, interactive);
