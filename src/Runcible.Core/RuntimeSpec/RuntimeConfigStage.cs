using Runcible.Core.Contracts;
using Runcible.Core.Layers;
using Runcible.Core.Oci;

namespace Runcible.Core.RuntimeSpec;

/// <summary>
/// The runtime config stage as the bundle pipeline calls it: maps the validated bundle and container
/// settings (parsed by <see cref="ContainerSettingsValidator"/>; nothing is parsed here) to <see cref="RuntimeSpecSettings"/>, generates config.json
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
        AppCommandInstruction = container.AppCommandInstruction,
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
        OpenFilesLimit = container.OpenFilesLimit,
        Seccomp = Seccomp(container),
        Architecture = BundleSettingsValidator.OciArchitecture(settings.RuntimeIdentifier),
        MemoryLimitBytes = container.MemoryLimitBytes,
        CpuQuotaMicroseconds = container.CpuQuotaMicroseconds,
        PidsLimit = container.PidsLimit,
    };

    private static SeccompSetting Seccomp(ContainerSettings container) => container.SeccompProfile is { } profile
        ? SeccompSetting.FromProfile(profile)
        : container.SeccompUnconfined ? SeccompSetting.Unconfined : SeccompSetting.Default;
}
