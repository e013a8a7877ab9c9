// Stylise a photograph with the library's API: dotnet run --project samples/QuickStart -- CONTENT STYLE OUT.png
using StyleTransfer;

string content = args.Length > 0 ? args[0] : "examples/village.jpg";
string style = args.Length > 1 ? args[1] : "examples/swirls.jpg";
string output = args.Length > 2 ? args[2] : "quickstart.png";

using var engine = new StyleTransferEngine();
var progress = new Progress<StyleTransferProgress>(p => Console.Write($"\riteration {p.Iteration.Iteration}/{p.Iteration.Iterations}"));
using StyleTransferResult result = await engine.StylizeAsync(content, style, new StyleTransferOptions { Size = 256 }, progress);
result.Save(output);
Console.WriteLine($"\nwrote {output} with {result.Report.Network} in {result.Report.Elapsed.TotalSeconds:F0} s (seed {result.Report.Seed})");
