using Runcible.Core.Contracts;

namespace Runcible.Core.RuntimeSpec;

/// <summary>A persistent volume: a directory in the bundle's <c>data/</c> bound at <see cref="ContainerPath"/>.</summary>
internal sealed record VolumeSetting(string ContainerPath, string? Name = null);

/// <summary>The project's settings for the runtime config; the MSBuild task fills it from properties and items.</summary>
internal sealed class RuntimeSpecSettings
{
    /// <summary>The bundle name (<c>RuncBundleName</c>): hostname, <c>/etc/&lt;name&gt;</c>, <c>/var/log/&lt;name&gt;</c>.</summary>
    public required string BundleName { get; init; }

    /// <summary><c>RuncBundleVersion</c>.</summary>
    public required string BundleVersion { get; init; }

    /// <summary>The project's <c>AssemblyName</c>: the default app command runs it.</summary>
    public required string AssemblyName { get; init; }

    /// <summary><c>SelfContained</c> (with an apphost): the default command is the apphost, not <c>dotnet app.dll</c>.</summary>
    public bool SelfContained { get; init; }

    /// <summary><c>ContainerAppCommand</c> items; empty means the default for the app.</summary>
    public IReadOnlyList<string> AppCommand { get; init; } = [];

    /// <summary><c>ContainerAppCommandArgs</c> items.</summary>
    public IReadOnlyList<string> AppCommandArgs { get; init; } = [];

    /// <summary><c>ContainerDefaultArgs</c> items.</summary>
    public IReadOnlyList<string> DefaultArgs { get; init; } = [];

    /// <summary><c>ContainerAppCommandInstruction</c>.</summary>
    public AppCommandInstruction AppCommandInstruction { get; init; }

    /// <summary><c>ContainerWorkingDirectory</c>; null means <c>/app</c>.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary><c>ContainerEnvironmentVariable</c> items in project order (later wins).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> EnvironmentVariables { get; init; } = [];

    /// <summary><c>ContainerLabel</c> items in project order (later wins).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Labels { get; init; } = [];

    /// <summary><c>ContainerPort</c> items as <c>8080/tcp</c>; added to the exposed ports annotation.</summary>
    public IReadOnlyList<string> Ports { get; init; } = [];

    /// <summary><c>ContainerUser</c>; null means the image's User, else its APP_UID, else root.</summary>
    public string? User { get; init; }

    /// <summary><c>RuncVolume</c> items.</summary>
    public IReadOnlyList<VolumeSetting> Volumes { get; init; } = [];

    /// <summary><c>RuncCapability</c> items, with or without the <c>CAP_</c> prefix.</summary>
    public IReadOnlyList<string> Capabilities { get; init; } = [];

    /// <summary><c>RuncBundleRootless</c>.</summary>
    public bool Rootless { get; init; }

    /// <summary>
    /// The host uid and gid the rootless user namespace maps to. runc without newuidmap maps exactly one id,
    /// the invoking user's, which is not known at build time: the shim rewrites these on install (see docs/runtime-config.md).
    /// </summary>
    public uint RootlessHostUid { get; init; } = 1000;

    /// <inheritdoc cref="RootlessHostUid"/>
    public uint RootlessHostGid { get; init; } = 1000;

    /// <summary><c>RuncWritableRootfs</c>: the shim mounts an overlay on the bundle's rootfs.</summary>
    public bool WritableRootfs { get; init; }

    /// <summary><c>RuncStopTimeout</c> in seconds; null means 30.</summary>
    public int? StopTimeoutSeconds { get; init; }

    /// <summary><c>RuncNotify</c>: the app reports readiness through <c>NOTIFY_SOCKET</c>.</summary>
    public bool Notify { get; init; }

    /// <summary><c>RuncHealthCheck</c> and its timing (validated); null without a check.</summary>
    public HealthCheckSettings? Health { get; init; }

    /// <summary>Where the bundle's <c>config/</c> appears; null means <c>/etc/&lt;name&gt;</c>.</summary>
    public string? ConfigPath { get; init; }

    /// <summary>Where the bundle's <c>logs/</c> appears; null means <c>/var/log/&lt;name&gt;</c>.</summary>
    public string? LogsPath { get; init; }

    /// <summary><c>RuncNetwork</c>.</summary>
    public BundleNetwork Network { get; init; } = BundleNetwork.Host;

    /// <summary><c>RuncPublishPort</c> items (validated); with <see cref="Ports"/> they make what a private network publishes.</summary>
    public IReadOnlyList<PublishedPort> PublishPorts { get; init; } = [];

    /// <summary>RLIMIT_NOFILE (soft and hard); a server default. runc cannot raise it above the host's hard limit without CAP_SYS_RESOURCE.</summary>
    public ulong OpenFilesLimit { get; init; } = 65536;

    /// <summary><c>RuncSeccompProfile</c>: the default profile, none, or a given one.</summary>
    public SeccompSetting Seccomp { get; init; } = SeccompSetting.Default;

    /// <summary>
    /// The bundle's OCI architecture (<c>amd64</c>, <c>arm64</c>…, from the runtime identifier), which picks the default
    /// seccomp profile's architectures and rules; null means the image's.
    /// </summary>
    public string? Architecture { get; init; }

    /// <summary><c>RuncMemoryLimit</c> in bytes (memory and memory plus swap); null means none.</summary>
    public long? MemoryLimitBytes { get; init; }

    /// <summary><c>RuncCpuLimit</c> as a CFS quota in microseconds per <see cref="ResourceLimits.CpuPeriodMicroseconds"/>; null means none.</summary>
    public long? CpuQuotaMicroseconds { get; init; }

    /// <summary><c>RuncPidsLimit</c>; null means none (the config stage fills the rootful default).</summary>
    public long? PidsLimit { get; init; }
}
