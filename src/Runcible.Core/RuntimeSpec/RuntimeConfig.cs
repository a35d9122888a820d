using System.Text.Json.Serialization;
using Runcible.Core.Contracts;

namespace Runcible.Core.RuntimeSpec;

// The subset of the OCI runtime spec (config.json) Runcible writes. Property order is declaration order,
// which System.Text.Json keeps, so the output is stable.

internal sealed class RuntimeConfig
{
    [JsonPropertyName("ociVersion")] public string OciVersion { get; set; } = "1.0.2";
    [JsonPropertyName("process")] public RuntimeProcess Process { get; set; } = new();
    [JsonPropertyName("root")] public RuntimeRoot Root { get; set; } = new();
    [JsonPropertyName("hostname")] public string Hostname { get; set; } = "";
    [JsonPropertyName("mounts")] public List<RuntimeMount> Mounts { get; set; } = [];
    [JsonPropertyName("annotations")] public SortedDictionary<string, string>? Annotations { get; set; }
    [JsonPropertyName("linux")] public RuntimeLinux Linux { get; set; } = new();
}

internal sealed class RuntimeProcess
{
    [JsonPropertyName("terminal")] public bool Terminal { get; set; }
    [JsonPropertyName("user")] public RuntimeUser User { get; set; } = new();
    [JsonPropertyName("args")] public List<string> Args { get; set; } = [];
    [JsonPropertyName("env")] public List<string> Env { get; set; } = [];
    [JsonPropertyName("cwd")] public string Cwd { get; set; } = "/";
    [JsonPropertyName("capabilities")] public RuntimeCapabilities Capabilities { get; set; } = new();
    [JsonPropertyName("rlimits")] public List<RuntimeRlimit> Rlimits { get; set; } = [];
    [JsonPropertyName("noNewPrivileges")] public bool NoNewPrivileges { get; set; } = true;
}

internal sealed class RuntimeUser
{
    [JsonPropertyName("uid")] public uint Uid { get; set; }
    [JsonPropertyName("gid")] public uint Gid { get; set; }
    [JsonPropertyName("additionalGids")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<uint>? AdditionalGids { get; set; }
}

internal sealed class RuntimeCapabilities
{
    [JsonPropertyName("bounding")] public List<string> Bounding { get; set; } = [];
    [JsonPropertyName("effective")] public List<string> Effective { get; set; } = [];
    [JsonPropertyName("inheritable")] public List<string> Inheritable { get; set; } = [];
    [JsonPropertyName("permitted")] public List<string> Permitted { get; set; } = [];
    [JsonPropertyName("ambient")] public List<string> Ambient { get; set; } = [];
}

internal sealed class RuntimeRlimit
{
    [JsonPropertyName("type")] public string Type { get; set; } = "";
    [JsonPropertyName("hard")] public ulong Hard { get; set; }
    [JsonPropertyName("soft")] public ulong Soft { get; set; }
}

internal sealed class RuntimeRoot
{
    [JsonPropertyName("path")] public string Path { get; set; } = "rootfs";
    [JsonPropertyName("readonly")] public bool Readonly { get; set; } = true;
}

internal sealed class RuntimeMount
{
    [JsonPropertyName("destination")] public string Destination { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "";
    [JsonPropertyName("source")] public string Source { get; set; } = "";
    [JsonPropertyName("options")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<string>? Options { get; set; }
}

internal sealed class RuntimeIdMapping
{
    [JsonPropertyName("containerID")] public uint ContainerId { get; set; }
    [JsonPropertyName("hostID")] public uint HostId { get; set; }
    [JsonPropertyName("size")] public uint Size { get; set; } = 1;
}

internal sealed class RuntimeNamespace
{
    [JsonPropertyName("type")] public string Type { get; set; } = "";

    /// <summary>An existing namespace to join; <c>{netns}</c> for the network namespace the shim creates at each start.</summary>
    [JsonPropertyName("path")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Path { get; set; }
}

internal sealed class RuntimeLinux
{
    [JsonPropertyName("uidMappings")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<RuntimeIdMapping>? UidMappings { get; set; }
    [JsonPropertyName("gidMappings")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<RuntimeIdMapping>? GidMappings { get; set; }
    [JsonPropertyName("resources")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public RuntimeResources? Resources { get; set; }
    [JsonPropertyName("namespaces")] public List<RuntimeNamespace> Namespaces { get; set; } = [];
    [JsonPropertyName("maskedPaths")] public List<string> MaskedPaths { get; set; } = [];
    [JsonPropertyName("readonlyPaths")] public List<string> ReadonlyPaths { get; set; } = [];
    [JsonPropertyName("seccomp")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public RuntimeSeccomp? Seccomp { get; set; }
}

/// <summary><c>linux.resources</c>: the cgroup limits runc applies to the container.</summary>
internal sealed class RuntimeResources
{
    [JsonPropertyName("memory")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public RuntimeMemory? Memory { get; set; }
    [JsonPropertyName("cpu")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public RuntimeCpu? Cpu { get; set; }
    [JsonPropertyName("pids")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public RuntimePids? Pids { get; set; }
}

internal sealed class RuntimeMemory
{
    [JsonPropertyName("limit")] public long Limit { get; set; }

    /// <summary>Memory plus swap; equal to <see cref="Limit"/>: the app cannot swap past its limit.</summary>
    [JsonPropertyName("swap")] public long Swap { get; set; }
}

internal sealed class RuntimeCpu
{
    [JsonPropertyName("quota")] public long Quota { get; set; }
    [JsonPropertyName("period")] public ulong Period { get; set; }
}

internal sealed class RuntimePids
{
    [JsonPropertyName("limit")] public long Limit { get; set; }
}
