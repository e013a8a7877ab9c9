namespace StyleTransfer.Cli;

/// <summary>
/// While alive, Ctrl-C cancels <see cref="Token"/> (and the run stops after its current
/// iteration) instead of killing the process.
/// </summary>
internal sealed class CtrlC : IDisposable
{
    private readonly CancellationTokenSource source;

    public CtrlC(CancellationToken linked)
    {
        source = CancellationTokenSource.CreateLinkedTokenSource(linked);
        Console.CancelKeyPress += OnCancel;
    }

    public CancellationToken Token => source.Token;

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancel;
        source.Dispose();
    }

    private void OnCancel(object? sender, ConsoleCancelEventArgs e)
    {
        e.Cancel = true;
        source.Cancel();
    }
}
