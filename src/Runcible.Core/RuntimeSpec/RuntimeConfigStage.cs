using System.Globalization;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Layers;
using Runcible.Core.Oci;

namespace Runcible.Core.RuntimeSpec;

/// <summary>
/// The runtime config stage as the bundle pipeline calls it: maps the validated bundle settings and
/// the project's raw container settings to <see cref="RuntimeSpecSettings"/>, generates config.json
/// and the host runtime contract, and tells the bundle writer who owns <c>data/</c> and <c>logs/</c>.
/// </summary>
internal sealed class RuntimeConfigStage : IRuntimeConfigProvider
{
    private readonly RuntimeSpecGenerator _generator = new();

    public RuntimeConfigOutput Create(PulledImage image, IRootfsReader rootfs, BundleSettings settings, ContainerSettings container)
    {
        var result = _generator.Generate(image.Config, rootfs, ToSpecSettings(settings, container));
        return new RuntimeConfigOutput(
            RuntimeSpecGenerator.Serialize(result.Config),
            result.Info.Uid,
            result.Info.Gid,
            result.Info.Volumes.Select(v => v.Name).ToList())
        {
            RuntimeInfo = result.Info,
        };
    }

    public static RuntimeSpecSettings ToSpecSettings(BundleSettings settings, ContainerSettings container) => new()
    {
        BundleName = settings.Name,
        BundleVersion = settings.Version,
        AssemblyName = container.AssemblyName,
        // The default command is the apphost only when there is one to run.
        SelfContained = container.SelfContained && container.AppHostName is not null,
        AppCommand = container.AppCommand,
        AppCommandArgs = container.AppCommandArgs,
        DefaultArgs = container.DefaultArgs,
        AppCommandInstruction = ParseInstruction(container.AppCommandInstruction),
        WorkingDirectory = settings.WorkingDirectory,
        EnvironmentVariables = container.EnvironmentVariables,
        Labels = container.Labels,
        Ports = container.Ports,
        User = container.User,
        Volumes = settings.Volumes.Select(v => new VolumeSetting(v.ContainerPath, v.Name)).ToList(),
        Capabilities = container.Capabilities,
        Rootless = settings.Rootless,
        WritableRootfs = settings.WritableRootfs,
        StopTimeoutSeconds = settings.StopTimeoutSeconds,
        Notify = settings.Notify,
        Network = settings.Network,
        PublishPorts = settings.PublishPorts,
        Health = settings.Health,
        OpenFilesLimit = ParseOpenFilesLimit(container.OpenFilesLimit),
        Seccomp = ParseSeccomp(container.SeccompProfile),
        Architecture = BundleSettingsValidator.OciArchitecture(settings.RuntimeIdentifier),
        MemoryLimitBytes = ResourceLimits.ParseMemory(container.MemoryLimit),
        CpuQuotaMicroseconds = ResourceLimits.ParseCpu(container.CpuLimit),
        PidsLimit = ResourceLimits.ParsePids(container.PidsLimit, settings.Rootless),
    };

    /// <summary><c>RuncSeccompProfile</c>: empty is the default profile, <c>unconfined</c> (any case) none, anything else a profile file (RUNCIBLE3012).</summary>
    public static SeccompSetting ParseSeccomp(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return SeccompSetting.Default;
        }

        var trimmed = value.Trim();
        return string.Equals(trimmed, "unconfined", StringComparison.OrdinalIgnoreCase)
            ? SeccompSetting.Unconfined
            : SeccompSetting.FromProfile(SeccompProfiles.LoadProfile(Path.GetFullPath(trimmed)));
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

    private const ulong DefaultOpenFilesLimit = 65536;

    // runc sets soft and hard; 64 is the least any .NET server survives with, 2^20 is Linux's default nr_open.
    public static ulong ParseOpenFilesLimit(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return DefaultOpenFilesLimit;
        }

        if (!ulong.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit < 64 || limit > 1048576)
        {
            throw new RuncibleException(RuncibleErrors.BadRuntimeSetting, "RuncOpenFilesLimit", value, "a whole number of open files from 64 to 1048576");
        }

        return limit;
    }
}
