using System.Text.Json.Serialization;

namespace Runcible.Core.Contracts;

// The OCI seccomp profile model: what RuncSeccompProfile's file parses to (ContainerSettings carries it, validated)
// and what config.json's linux.seccomp holds.

/// <summary>The OCI <c>linux.seccomp</c> object (runc 1.1 reads every field here).</summary>
internal sealed class RuntimeSeccomp
{
    [JsonPropertyName("defaultAction")] public string DefaultAction { get; set; } = "";
    [JsonPropertyName("defaultErrnoRet")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public uint? DefaultErrnoRet { get; set; }
    [JsonPropertyName("architectures")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<string>? Architectures { get; set; }
    [JsonPropertyName("flags")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<string>? Flags { get; set; }
    [JsonPropertyName("listenerPath")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? ListenerPath { get; set; }
    [JsonPropertyName("listenerMetadata")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? ListenerMetadata { get; set; }
    [JsonPropertyName("syscalls")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<RuntimeSyscall>? Syscalls { get; set; }
}

internal sealed class RuntimeSyscall
{
    [JsonPropertyName("names")] public List<string> Names { get; set; } = [];
    [JsonPropertyName("action")] public string Action { get; set; } = "";
    [JsonPropertyName("errnoRet")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public uint? ErrnoRet { get; set; }
    [JsonPropertyName("args")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<RuntimeSyscallArg>? Args { get; set; }
}

internal sealed class RuntimeSyscallArg
{
    [JsonPropertyName("index")] public uint Index { get; set; }
    [JsonPropertyName("value")] public ulong Value { get; set; }
    [JsonPropertyName("valueTwo")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong ValueTwo { get; set; }
    [JsonPropertyName("op")] public string Op { get; set; } = "";
}
