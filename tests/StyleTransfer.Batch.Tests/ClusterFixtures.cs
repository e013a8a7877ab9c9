using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace StyleTransfer.Batch.Tests;

/// <summary>
/// A throwaway PostgreSQL from Debian's `postgresql` package: initdb in a temporary folder (as the
/// postgres user when running as root, since initdb refuses root), listening on a free loopback
/// port only, stopped and deleted at the end whatever happened.
/// </summary>
internal sealed class PostgresServer : IDisposable
{
    private readonly string bin;
    private readonly string dir;
    private readonly bool asPostgres;
    private bool started;

    public PostgresServer()
    {
        bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending(StringComparer.Ordinal).FirstOrDefault() ?? ""
            : "";
        if (bin.Length == 0)
        {
            throw new InvalidOperationException("PostgreSQL is not installed (apt-get install postgresql; .ci/run installs it)");
        }

        asPostgres = Environment.UserName == "root";
        dir = Directory.CreateTempSubdirectory("stylize-pg-").FullName;
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(dir, (UnixFileMode)Convert.ToInt32("777", 8));
        }
        Port = FreePort();
        try
        {
            Run("initdb", ["-D", Data, "-A", "trust", "-U", "postgres", "--no-sync"], 120);
            Run("pg_ctl", ["-D", Data, "-l", Path.Combine(dir, "log"), "-w", "-t", "60", "-o", $"-p {Port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60", "start"], 90);
            started = true;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Port { get; }

    public string Url => $"postgres://postgres@127.0.0.1:{Port}/postgres";

    private string Data => Path.Combine(dir, "data");

    public void Dispose()
    {
        if (started)
        {
            started = false;
            try
            {
                Run("pg_ctl", ["-D", Data, "-m", "immediate", "-w", "-t", "30", "stop"], 60);
            }
            catch (InvalidOperationException)
            {
            }
        }

        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private void Run(string tool, string[] args, int timeoutSeconds)
    {
        var psi = new ProcessStartInfo(asPostgres ? "runuser" : Path.Combine(bin, tool)) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        if (asPostgres)
        {
            foreach (string a in new[] { "-u", "postgres", "--", Path.Combine(bin, tool) })
            {
                psi.ArgumentList.Add(a);
            }
        }

        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        Task<string> output = p.StandardOutput.ReadToEndAsync();
        Task<string> errors = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            p.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{tool} did not finish in {timeoutSeconds} s");
        }

        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} failed ({p.ExitCode}): {output.Result} {errors.Result}");
        }
    }

    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

/// <summary>A `stylize` process (this build's stylize.dll under this dotnet), its output collected line by line; killed at Dispose if still running.</summary>
internal sealed class StylizeProcess : IDisposable
{
    private readonly Process process;
    private readonly ConcurrentQueue<string> lines = new();

    public StylizeProcess(params string[] args)
    {
        string dotnet = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "stylize.dll"));
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data != null)
            {
                lines.Enqueue(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data != null)
            {
                lines.Enqueue("stderr: " + e.Data);
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public IReadOnlyList<string> Lines => [.. lines];

    public string Output => string.Join("\n", lines);

    public bool HasExited => process.HasExited;

    public int ExitCode => process.ExitCode;

    /// <summary>Waits (bounded) until a line matches; false on timeout or exit.</summary>
    public bool WaitFor(Func<string, bool> match, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (lines.Any(match))
            {
                return true;
            }

            if (process.HasExited)
            {
                process.WaitForExit();
                return lines.Any(match);
            }

            Thread.Sleep(50);
        }

        return false;
    }

    public bool WaitForExit(TimeSpan timeout)
    {
        if (!process.WaitForExit(timeout))
        {
            return false;
        }

        process.WaitForExit(); // drains the output
        return true;
    }

    /// <summary>SIGKILL: no chance to clean up or report.</summary>
    public void Kill()
    {
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit(10_000);
        }
    }

    /// <summary>SIGTERM, then SIGKILL if it has not left in a few seconds.</summary>
    public void Stop()
    {
        if (!process.HasExited)
        {
            using var term = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            term.WaitForExit(5_000);
            if (!process.WaitForExit(10_000))
            {
                Kill();
            }
        }
    }

    public void Dispose()
    {
        try
        {
            Kill();
        }
        catch (InvalidOperationException)
        {
        }

        process.Dispose();
    }
}
