namespace Runcible.Core.Diagnostics;

/// <summary>
/// A user-facing failure carrying a code from <see cref="RuncibleErrors"/>. The MSBuild tasks turn
/// it into an error with that code and the message only (never a stack trace).
/// </summary>
internal class RuncibleException : Exception
{
    public RuncibleException(ErrorDescriptor error, params object?[] args)
        : base(error.Format(args))
    {
        Error = error;
    }

    public RuncibleException(Exception? innerException, ErrorDescriptor error, params object?[] args)
        : base(error.Format(args), innerException)
    {
        Error = error;
    }

    public ErrorDescriptor Error { get; }

    public string Code => Error.Code;
}
