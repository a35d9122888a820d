using System.Globalization;
using System.Text.RegularExpressions;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.RuntimeSpec;

/// <summary>
/// <c>RuncMemoryLimit</c>, <c>RuncCpuLimit</c> and <c>RuncPidsLimit</c> parsed into the cgroup values of
/// config.json's <c>linux.resources</c> (docs/properties.md). The shim applies the same rules to the
/// operator's <c>limits</c> file (docs/operations.md).
/// </summary>
internal static partial class ResourceLimits
{
    /// <summary>The CFS period runc and systemd use (100 ms): <c>RuncCpuLimit=1.5</c> is quota 150000.</summary>
    public const ulong CpuPeriodMicroseconds = 100_000;

    /// <summary>podman's default <c>pids_limit</c>: a fork bomb stops here, a thread-heavy .NET server never gets close.</summary>
    public const long DefaultPidsLimit = 2048;

    // podman's floor: below 6 MiB runc cannot even start the container's init.
    private const long MinimumMemoryBytes = 6L * 1024 * 1024;

    // Linux's PID_MAX_LIMIT.
    private const long MaximumPids = 4_194_304;

    // The kernel's least CFS quota is 1 ms per period: 0.01 cores.
    private const long MinimumCpuQuota = 1000;
    private const long MaximumCpuQuota = 4096 * (long)CpuPeriodMicroseconds;

    [GeneratedRegex(@"^([0-9]+(?:\.[0-9]+)?)([KMGT]?)$", RegexOptions.CultureInvariant)]
    private static partial Regex MemoryPattern();

    [GeneratedRegex(@"^[0-9]+(?:\.[0-9]+)?$", RegexOptions.CultureInvariant)]
    private static partial Regex CoresPattern();

    /// <summary>Bytes of a systemd <c>MemoryMax=</c> size: plain bytes or K, M, G, T (1024-based), decimals allowed; null when empty.</summary>
    public static long? ParseMemory(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var match = MemoryPattern().Match(value.Trim());
        if (!match.Success)
        {
            throw Bad("RuncMemoryLimit", value, "a size in bytes or with K, M, G or T (1024-based, as systemd's MemoryMax=), e.g. 512M");
        }

        var unit = match.Groups[2].Value switch
        {
            "K" => 1024m,
            "M" => 1024m * 1024,
            "G" => 1024m * 1024 * 1024,
            "T" => 1024m * 1024 * 1024 * 1024,
            _ => 1m,
        };
        if (!decimal.TryParse(match.Groups[1].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number)
            || number * unit > long.MaxValue / 2 || decimal.Floor(number * unit) < MinimumMemoryBytes)
        {
            throw Bad("RuncMemoryLimit", value, "at least 6M (runc cannot start a container in less)");
        }

        return (long)decimal.Floor(number * unit);
    }

    /// <summary>The CFS quota (µs per 100 ms period) of a number of cores, e.g. 1.5 → 150000; null when empty.</summary>
    public static long? ParseCpu(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var trimmed = value.Trim();
        if (!CoresPattern().IsMatch(trimmed)
            || !decimal.TryParse(trimmed, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var cores)
            || cores > MaximumCpuQuota / (decimal)CpuPeriodMicroseconds
            || decimal.Round(cores * CpuPeriodMicroseconds) < MinimumCpuQuota)
        {
            throw Bad("RuncCpuLimit", value, "a number of cores from 0.01 to 4096, e.g. 1.5");
        }

        return (long)decimal.Round(cores * CpuPeriodMicroseconds);
    }

    /// <summary>The pids limit: the value, the rootful default when empty, none for rootless bundles.</summary>
    public static long? ParsePids(string? value, bool rootless)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return rootless ? null : DefaultPidsLimit;
        }

        if (rootless)
        {
            throw new RuncibleException(RuncibleErrors.PidsLimitRootless, value);
        }

        if (!long.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit < 1 || limit > MaximumPids)
        {
            throw Bad("RuncPidsLimit", value, "a whole number of processes and threads from 1 to 4194304");
        }

        return limit;
    }

    /// <summary>config.json's <c>linux.resources</c> for the settings; null when there is no limit at all.</summary>
    public static RuntimeResources? ToResources(RuntimeSpecSettings settings) =>
        settings.MemoryLimitBytes is null && settings.CpuQuotaMicroseconds is null && settings.PidsLimit is null
            ? null
            : new RuntimeResources
            {
                Memory = settings.MemoryLimitBytes is { } memory ? new RuntimeMemory { Limit = memory, Swap = memory } : null,
                Cpu = settings.CpuQuotaMicroseconds is { } quota ? new RuntimeCpu { Quota = quota, Period = CpuPeriodMicroseconds } : null,
                Pids = settings.PidsLimit is { } pids ? new RuntimePids { Limit = pids } : null,
            };

    private static RuncibleException Bad(string property, string value, string expected) =>
        new(RuncibleErrors.BadResourceLimit, property, value, expected);
}
