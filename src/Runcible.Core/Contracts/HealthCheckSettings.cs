using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Contracts;

/// <summary>
/// A validated <c>RuncHealthCheck</c>: an HTTP URL probed from the host in the container's network namespace, or a
/// command run in the container with <c>runc exec</c> (exec'd directly: no shell unless the command names one).
/// </summary>
/// <param name="Check">The property as written (trimmed): what the build stamp compares.</param>
/// <param name="HttpUrl">The URL for an HTTP check, else null.</param>
/// <param name="Command">The words of a command check, else empty.</param>
internal sealed record HealthCheckSettings(
    string Check,
    string? HttpUrl,
    IReadOnlyList<string> Command,
    int IntervalSeconds,
    int TimeoutSeconds,
    int Retries,
    int StartPeriodSeconds)
{
    /// <summary>Docker's and podman's HEALTHCHECK defaults, so a check moved from a Dockerfile behaves as it did.</summary>
    public const int DefaultIntervalSeconds = 30;

    /// <inheritdoc cref="DefaultIntervalSeconds"/>
    public const int DefaultTimeoutSeconds = 30;

    /// <inheritdoc cref="DefaultIntervalSeconds"/>
    public const int DefaultRetries = 3;

    /// <inheritdoc cref="DefaultIntervalSeconds"/>
    public const int DefaultStartPeriodSeconds = 0;
}

/// <summary>Parses the <c>RuncHealth*</c> properties (RUNCIBLE4050, RUNCIBLE4051).</summary>
internal static partial class HealthCheckParser
{
    // http://<IPv4 or localhost>[:port][/path]: the shim's HTTP clients (bash /dev/tcp, wget, curl) all take
    // these, and the path carries nothing a shell or the request line could misread (no quotes, $, spaces, `).
    [GeneratedRegex(@"^http://(?<host>localhost|\d{1,3}(\.\d{1,3}){3})(:(?<port>\d{1,5}))?(?<path>/[A-Za-z0-9._~!&()*+,;=:@%/?-]*)?$", RegexOptions.CultureInvariant)]
    private static partial Regex HttpUrlGrammar();

    [GeneratedRegex(@"^(?<n>\d{1,6})(?<unit>s|m|h)?$", RegexOptions.CultureInvariant)]
    private static partial Regex DurationGrammar();

    /// <summary>The settings, or null when <paramref name="check"/> is empty (no health check; the others must then be unset too).</summary>
    public static HealthCheckSettings? Parse(string? check, string? interval, string? timeout, string? retries, string? startPeriod)
    {
        if (string.IsNullOrWhiteSpace(check))
        {
            foreach (var (property, value) in new[] { ("RuncHealthInterval", interval), ("RuncHealthTimeout", timeout), ("RuncHealthRetries", retries), ("RuncHealthStartPeriod", startPeriod) })
            {
                if (!string.IsNullOrWhiteSpace(value))
                {
                    throw new RuncibleException(RuncibleErrors.InvalidHealthTiming, property, value, "it has no effect without RuncHealthCheck; set RuncHealthCheck or remove it");
                }
            }

            return null;
        }

        var trimmed = check.Trim();
        string? url = null;
        IReadOnlyList<string> command = [];
        if (trimmed.StartsWith("http", StringComparison.OrdinalIgnoreCase) && trimmed.Contains("://", StringComparison.Ordinal))
        {
            url = ParseUrl(trimmed);
        }
        else
        {
            command = SplitCommand(trimmed);
        }

        return new HealthCheckSettings(
            trimmed,
            url,
            command,
            Duration("RuncHealthInterval", interval, HealthCheckSettings.DefaultIntervalSeconds, 1, 86400),
            Duration("RuncHealthTimeout", timeout, HealthCheckSettings.DefaultTimeoutSeconds, 1, 3600),
            Count("RuncHealthRetries", retries, HealthCheckSettings.DefaultRetries, 1, 100),
            Duration("RuncHealthStartPeriod", startPeriod, HealthCheckSettings.DefaultStartPeriodSeconds, 0, 86400));
    }

    private static string ParseUrl(string value)
    {
        var match = HttpUrlGrammar().Match(value);
        if (!match.Success)
        {
            throw new RuncibleException(RuncibleErrors.InvalidHealthCheck, value, "an HTTP check is http://<IPv4 address or localhost>[:port]/<path> (no https, no host names: the probe runs on the host, in the container's network namespace; path characters: letters, digits and ._~!&()*+,;=:@%/?-)");
        }

        if (match.Groups["host"].Value != "localhost" && match.Groups["host"].Value.Split('.').Any(part => int.Parse(part, CultureInfo.InvariantCulture) > 255))
        {
            throw new RuncibleException(RuncibleErrors.InvalidHealthCheck, value, "the host is not an IPv4 address");
        }

        if (match.Groups["port"].Success && int.Parse(match.Groups["port"].Value, CultureInfo.InvariantCulture) is < 1 or > 65535)
        {
            throw new RuncibleException(RuncibleErrors.InvalidHealthCheck, value, "the port is not between 1 and 65535");
        }

        return value;
    }

    /// <summary>
    /// Words separated by blanks; '…' groups literally, "…" groups with \" and \\ escapes. Nothing is expanded: the
    /// words are exec'd as they are (a shell only when the command names one, e.g. sh -c "…").
    /// </summary>
    public static IReadOnlyList<string> SplitCommand(string value)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsControl(c) && c is not ' ' and not '\t')
            {
                throw new RuncibleException(RuncibleErrors.InvalidHealthCheck, value.Replace("\n", "\\n", StringComparison.Ordinal), "a command has no control characters (line breaks, tabs inside words)");
            }

            if (c is ' ' or '\t')
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }

                continue;
            }

            inWord = true;
            if (c is '\'' or '"')
            {
                var close = c;
                i++;
                while (i < value.Length && value[i] != close)
                {
                    if (close == '"' && value[i] == '\\' && i + 1 < value.Length && value[i + 1] is '"' or '\\')
                    {
                        i++;
                    }

                    word.Append(value[i]);
                    i++;
                }

                if (i >= value.Length)
                {
                    throw new RuncibleException(RuncibleErrors.InvalidHealthCheck, value, $"a {close} quote is not closed");
                }

                continue;
            }

            word.Append(c);
        }

        if (inWord)
        {
            words.Add(word.ToString());
        }

        if (words.Count == 0)
        {
            throw new RuncibleException(RuncibleErrors.InvalidHealthCheck, value, "the command is empty");
        }

        return words;
    }

    private static int Duration(string property, string? value, int fallback, int min, int max)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return fallback;
        }

        var match = DurationGrammar().Match(value.Trim());
        if (match.Success)
        {
            var seconds = long.Parse(match.Groups["n"].Value, CultureInfo.InvariantCulture) * match.Groups["unit"].Value switch
            {
                "m" => 60,
                "h" => 3600,
                _ => 1,
            };
            if (seconds >= min && seconds <= max)
            {
                return (int)seconds;
            }
        }

        throw new RuncibleException(RuncibleErrors.InvalidHealthTiming, property, value, $"use whole seconds from {min} to {max} (30, 30s, 2m, 1h)");
    }

    private static int Count(string property, string? value, int fallback, int min, int max)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return fallback;
        }

        if (int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count >= min && count <= max)
        {
            return count;
        }

        throw new RuncibleException(RuncibleErrors.InvalidHealthTiming, property, value, $"use a whole number from {min} to {max}");
    }
}
