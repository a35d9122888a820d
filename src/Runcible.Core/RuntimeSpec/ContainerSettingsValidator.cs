using System.Globalization;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.RuntimeSpec;

/// <summary>
/// The rules of the container settings the config stage maps: everything about them that can be checked without
/// the image (instruction, open files, the form of the user, capabilities, resource limits, the seccomp profile
/// file). The settings normalizer runs them before any network access; the config stage gets their parsed values.
/// </summary>
internal static class ContainerSettingsValidator
{
    /// <summary>The container settings of <paramref name="raw"/>, parsed; throws the first mistake's coded error.</summary>
    public static ContainerSettings Validate(RawBundleSettings raw, BundleSettings settings)
    {
        var user = string.IsNullOrWhiteSpace(raw.User) ? null : raw.User;
        if (user is not null)
        {
            UserResolver.CheckSyntax(user);
        }

        var seccomp = ParseSeccomp(raw.SeccompProfile, raw.ProjectDirectory);
        return new ContainerSettings
        {
            AssemblyName = raw.AssemblyName,
            SelfContained = raw.SelfContained,
            AppHostName = string.IsNullOrEmpty(raw.AppHostName) ? null : raw.AppHostName,
            User = user,
            Ports = raw.Ports,
            EnvironmentVariables = raw.EnvironmentVariables,
            Labels = raw.Labels,
            AppCommand = raw.AppCommand,
            AppCommandArgs = raw.AppCommandArgs,
            DefaultArgs = raw.DefaultArgs,
            AppCommandInstruction = ParseInstruction(raw.AppCommandInstruction),
            Capabilities = raw.Capabilities.Select(NormalizeCapability).ToList(),
            OpenFilesLimit = ParseOpenFilesLimit(raw.OpenFilesLimit),
            SeccompProfile = seccomp.Profile,
            SeccompUnconfined = seccomp.IsUnconfined,
            MemoryLimitBytes = ResourceLimits.ParseMemory(raw.MemoryLimit),
            CpuQuotaMicroseconds = ResourceLimits.ParseCpu(raw.CpuLimit),
            PidsLimit = ResourceLimits.ParsePids(raw.PidsLimit, settings.Rootless),
        };
    }

    /// <summary>
    /// <c>RuncSeccompProfile</c>: empty is the default profile, <c>unconfined</c> (any case) none, anything else a profile
    /// file (relative to <paramref name="projectDirectory"/>), read and validated now (RUNCIBLE3012).
    /// </summary>
    public static SeccompSetting ParseSeccomp(string? value, string? projectDirectory = null)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return SeccompSetting.Default;
        }

        var trimmed = value.Trim();
        if (string.Equals(trimmed, "unconfined", StringComparison.OrdinalIgnoreCase))
        {
            return SeccompSetting.Unconfined;
        }

        var path = string.IsNullOrWhiteSpace(projectDirectory) ? Path.GetFullPath(trimmed) : Path.GetFullPath(BundleSettingsValidator.PlatformPath(trimmed), BundleSettingsValidator.PlatformPath(projectDirectory));
        return SeccompSetting.FromProfile(SeccompProfiles.LoadProfile(path));
    }

    /// <summary><c>ContainerAppCommandInstruction</c> as the .NET SDK spells it (case-insensitive); empty is the default.</summary>
    public static AppCommandInstruction ParseInstruction(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return AppCommandInstruction.Default;
        }

        return value.Trim().ToLowerInvariant() switch
        {
            "entrypoint" => AppCommandInstruction.Entrypoint,
            "defaultargs" => AppCommandInstruction.DefaultArgs,
            "none" => AppCommandInstruction.None,
            _ => throw new RuncibleException(RuncibleErrors.BadAppCommand, $"ContainerAppCommandInstruction '{value}' is not one of Entrypoint, DefaultArgs, None"),
        };
    }

    // runc sets soft and hard; 64 is the least any .NET server survives with, 2^20 is Linux's default nr_open.
    public static ulong ParseOpenFilesLimit(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return ContainerSettings.DefaultOpenFilesLimit;
        }

        if (!ulong.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit < 64 || limit > 1048576)
        {
            throw new RuncibleException(RuncibleErrors.BadRuntimeSetting, "RuncOpenFilesLimit", value, "a whole number of open files from 64 to 1048576");
        }

        return limit;
    }

    // Linux capabilities up to 6.x; runc rejects names it does not know.
    private static readonly HashSet<string> KnownCapabilities = new(StringComparer.Ordinal)
    {
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE",
    };

    /// <summary>A <c>RuncCapability</c> as runc names it (<c>CAP_NET_ADMIN</c>), with or without the prefix, any case; else RUNCIBLE3008.</summary>
    public static string NormalizeCapability(string capability)
    {
        var upper = capability.Trim().ToUpperInvariant();
        var bare = upper.StartsWith("CAP_", StringComparison.Ordinal) ? upper[4..] : upper;
        if (!KnownCapabilities.Contains(bare))
        {
            throw new RuncibleException(RuncibleErrors.BadCapability, capability);
        }

        return "CAP_" + bare;
    }
}
