using System.Text.Json.Serialization;

namespace Runcible.Core.Contracts;

/// <summary>
/// What the host runtime (shim, service files) needs beyond config.json; written as <c>runcible.json</c>
/// next to config.json. The contract is described in docs/runtime-config.md.
/// </summary>
internal sealed class BundleRuntimeInfo
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; set; } = 1;
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("version")] public string Version { get; set; } = "";
    [JsonPropertyName("stopSignal")] public string StopSignal { get; set; } = "SIGTERM";
    [JsonPropertyName("stopTimeoutSeconds")] public int StopTimeoutSeconds { get; set; } = 30;
    [JsonPropertyName("uid")] public uint Uid { get; set; }
    [JsonPropertyName("gid")] public uint Gid { get; set; }
    [JsonPropertyName("volumes")] public List<RuntimeVolume> Volumes { get; set; } = [];
    [JsonPropertyName("rootless")] public bool Rootless { get; set; }
    [JsonPropertyName("notify")] public bool Notify { get; set; }
    /// <summary><c>private</c> or <c>none</c>; absent for the host network (so host bundles read as before).</summary>
    [JsonPropertyName("network")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Network { get; set; }

    /// <summary>Private network: the ports published on the host (<c>[HOST_IP:]HOST_PORT:CONTAINER_PORT/PROTOCOL</c>), unless the operator's <c>ports</c> file replaces them.</summary>
    [JsonPropertyName("publishPorts")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<string>? PublishPorts { get; set; }
    [JsonPropertyName("writableRootfs")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public WritableRootfsLayout? WritableRootfs { get; set; }
    [JsonPropertyName("health")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public BundleHealthCheck? Health { get; set; }
}

/// <summary>
/// <c>RuncHealthCheck</c> for the shim (docs/health-checks.md): <see cref="Http"/> probed from the host in the
/// container's network namespace, or <see cref="Command"/> run with <c>runc exec</c>; one of the two is set.
/// </summary>
internal sealed class BundleHealthCheck
{
    [JsonPropertyName("http")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Http { get; set; }
    [JsonPropertyName("command")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<string>? Command { get; set; }
    [JsonPropertyName("intervalSeconds")] public int IntervalSeconds { get; set; }
    [JsonPropertyName("timeoutSeconds")] public int TimeoutSeconds { get; set; }
    [JsonPropertyName("retries")] public int Retries { get; set; }
    [JsonPropertyName("startPeriodSeconds")] public int StartPeriodSeconds { get; set; }
}

/// <summary>A volume: <c>data/&lt;name&gt;</c> in the bundle, bound at <see cref="ContainerPath"/>, owned by uid:gid.</summary>
internal sealed class RuntimeVolume
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("containerPath")] public string ContainerPath { get; set; } = "";
    [JsonPropertyName("uid")] public uint Uid { get; set; }
    [JsonPropertyName("gid")] public uint Gid { get; set; }
}

/// <summary>
/// The overlay the shim mounts before <c>runc run</c> when the root is writable: lower is the bundle's
/// read-only <c>rootfs</c>, upper and work live on a tmpfs (discarded on stop), merged is mounted over
/// <c>rootfs</c> itself so config.json's root.path does not change. <c>{runtimeDir}</c> is <c>/run</c> for a
/// rootful bundle and <c>$XDG_RUNTIME_DIR</c> for a rootless one.
/// </summary>
internal sealed class WritableRootfsLayout
{
    [JsonPropertyName("lower")] public string Lower { get; set; } = "rootfs";
    [JsonPropertyName("tmpfs")] public string Tmpfs { get; set; } = "";
    [JsonPropertyName("upper")] public string Upper { get; set; } = "";
    [JsonPropertyName("work")] public string Work { get; set; } = "";
    [JsonPropertyName("merged")] public string Merged { get; set; } = "rootfs";
}
