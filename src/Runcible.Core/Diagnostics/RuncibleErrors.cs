namespace Runcible.Core.Diagnostics;

/// <summary>
/// The error table. Each stage declares its rows in its own file (<c>RuncibleErrors.Fetch.cs</c>,
/// <c>RuncibleErrors.Unpack.cs</c>, …) as <c>public static readonly ErrorDescriptor</c> fields;
/// a test checks the codes are unique, in their stage's range, and documented in docs/errors.md.
/// </summary>
internal static partial class RuncibleErrors
{
    public static readonly ErrorDescriptor InternalError = new(
        "RUNCIBLE9001",
        "Runcible failed unexpectedly: {0}. This is a bug; please report it with the build log.");
}
