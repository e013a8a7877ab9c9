namespace StyleTransfer;

/// <summary>What went wrong, so a front end can pick an exit code.</summary>
public enum FailureKind
{
    /// <summary>The user's input (a file, a number, a name) is wrong. Exit code 2.</summary>
    BadInput,

    /// <summary>The optimisation itself failed (the loss became NaN or infinite). Exit code 3.</summary>
    Diverged,

    /// <summary>The native engine could not start. Exit code 4.</summary>
    Engine,
}

/// <summary>
/// An error meant for the user: its message is one complete line that names the problem.
/// Everything else that escapes the library is a bug.
/// </summary>
public sealed class StyleTransferException : Exception
{
    public StyleTransferException(string message, FailureKind kind = FailureKind.BadInput)
        : base(message)
    {
        Kind = kind;
    }

    public StyleTransferException(string message, Exception inner, FailureKind kind = FailureKind.BadInput)
        : base(message, inner)
    {
        Kind = kind;
    }

    public FailureKind Kind { get; }
}
