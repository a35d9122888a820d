using System.Globalization;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Host;

/// <summary>A stop signal from runcible.json (<c>SIGTERM</c> or a number) with its Linux number, for the service files.</summary>
internal sealed record StopSignal(string Name, int Number)
{
    // Linux numbers (the same on x86-64 and arm64 for these).
    private static readonly Dictionary<string, int> Numbers = new(StringComparer.Ordinal)
    {
        ["SIGHUP"] = 1, ["SIGINT"] = 2, ["SIGQUIT"] = 3, ["SIGILL"] = 4, ["SIGTRAP"] = 5, ["SIGABRT"] = 6,
        ["SIGBUS"] = 7, ["SIGFPE"] = 8, ["SIGKILL"] = 9, ["SIGUSR1"] = 10, ["SIGSEGV"] = 11, ["SIGUSR2"] = 12,
        ["SIGPIPE"] = 13, ["SIGALRM"] = 14, ["SIGTERM"] = 15, ["SIGSTKFLT"] = 16, ["SIGCHLD"] = 17, ["SIGCONT"] = 18,
        ["SIGSTOP"] = 19, ["SIGTSTP"] = 20, ["SIGTTIN"] = 21, ["SIGTTOU"] = 22, ["SIGURG"] = 23, ["SIGXCPU"] = 24,
        ["SIGXFSZ"] = 25, ["SIGVTALRM"] = 26, ["SIGPROF"] = 27, ["SIGWINCH"] = 28, ["SIGIO"] = 29, ["SIGPWR"] = 30,
        ["SIGSYS"] = 31,
    };

    /// <summary>What <c>runc run</c> exits with when the app dies of this signal (128 + n).</summary>
    public int ExitStatus => 128 + Number;

    /// <summary>The name without <c>SIG</c>, as OpenRC's <c>retry</c> schedule writes it.</summary>
    public string ShortName => Name.StartsWith("SIG", StringComparison.Ordinal) ? Name[3..] : Name;

    public static StopSignal Parse(string value, string bundleName)
    {
        var text = value.Trim().ToUpperInvariant();
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            var known = Numbers.FirstOrDefault(kv => kv.Value == number);
            if (known.Key is not null)
            {
                return new StopSignal(known.Key, number);
            }

            // Real-time signals have no fixed name a unit file could use.
            throw new RuncibleException(RuncibleErrors.HostStopSignalUnknown, value, bundleName);
        }

        var name = text.StartsWith("SIG", StringComparison.Ordinal) ? text : "SIG" + text;
        if (Numbers.TryGetValue(name, out var n) && name is not "SIGKILL" and not "SIGSTOP")
        {
            return new StopSignal(name, n);
        }

        throw new RuncibleException(RuncibleErrors.HostStopSignalUnknown, value, bundleName);
    }
}
