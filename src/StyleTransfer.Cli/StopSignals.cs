using System.Runtime.InteropServices;

namespace StyleTransfer.Cli;

/// <summary>
/// While alive, Ctrl-C (SIGINT) and SIGTERM cancel <see cref="Token"/> instead of killing the
/// process: the run stops after its current iteration and writes what it has (exit 130 for
/// Ctrl-C, 143 for SIGTERM, as a shell reports a process killed by them).
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource source;
    private readonly PosixSignalRegistration? term;
    private volatile bool terminated;

    public StopSignals(CancellationToken linked)
    {
        source = CancellationTokenSource.CreateLinkedTokenSource(linked);
        Console.CancelKeyPress += OnCancel;
        try
        {
            term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnTerm);
        }
        catch (PlatformNotSupportedException)
        {
            term = null;
        }
    }

    public CancellationToken Token => source.Token;

    /// <summary>"SIGTERM" when that stopped the run, else "Ctrl-C" (also for a cancellation from the caller's token).</summary>
    public string Name => terminated ? "SIGTERM" : "Ctrl-C";

    /// <summary>The exit code of a stopped run: 143 after SIGTERM, 130 otherwise.</summary>
    public int ExitCode => terminated ? CliApp.ExitTerminated : CliApp.ExitCancelled;

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancel;
        term?.Dispose();
        source.Dispose();
    }

    private void OnCancel(object? sender, ConsoleCancelEventArgs e)
    {
        e.Cancel = true;
        source.Cancel();
    }

    private void OnTerm(PosixSignalContext context)
    {
        context.Cancel = true;
        if (!source.IsCancellationRequested)
        {
            terminated = true;
        }

        source.Cancel();
    }
}
