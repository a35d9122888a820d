using System.Globalization;

namespace Runcible.Core.Diagnostics;

/// <summary>
/// One row of the error table: a stable code and a message template that tells the user what to do.
/// Codes are grouped by stage: 1xxx fetch, 2xxx unpack, 3xxx runtime config, 4xxx publish/bundle,
/// 5xxx host runtime (services, shim), 9xxx internal.
/// </summary>
internal sealed class ErrorDescriptor
{
    public ErrorDescriptor(string code, string messageFormat)
    {
        Code = code;
        MessageFormat = messageFormat;
    }

    /// <summary>The code, <c>RUNCIBLEnnnn</c>.</summary>
    public string Code { get; }

    /// <summary>A composite format string (<c>{0}</c>, <c>{1}</c>…) for the message.</summary>
    public string MessageFormat { get; }

    public string Format(params object?[] args) =>
        args.Length == 0 ? MessageFormat : string.Format(CultureInfo.InvariantCulture, MessageFormat, args);

    public override string ToString() => Code;
}
