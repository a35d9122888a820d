using System.Text.Json.Serialization;

namespace Runcible.Core.Oci;

/// <summary>The OCI image configuration (<c>application/vnd.oci.image.config.v1+json</c>), also Docker's.</summary>
internal sealed class ImageConfiguration
{
    [JsonPropertyName("created")]
    public string? Created { get; set; }

    [JsonPropertyName("author")]
    public string? Author { get; set; }

    [JsonPropertyName("architecture")]
    public string Architecture { get; set; } = "";

    [JsonPropertyName("os")]
    public string OS { get; set; } = "";

    [JsonPropertyName("os.version")]
    public string? OSVersion { get; set; }

    [JsonPropertyName("variant")]
    public string? Variant { get; set; }

    [JsonPropertyName("config")]
    public ContainerConfig? Config { get; set; }

    [JsonPropertyName("rootfs")]
    public RootFs? RootFs { get; set; }

    [JsonPropertyName("history")]
    public List<HistoryEntry>? History { get; set; }
}

/// <summary>The execution parameters of an image (the <c>config</c> member; Docker's capitalised names).</summary>
internal sealed class ContainerConfig
{
    [JsonPropertyName("User")]
    public string? User { get; set; }

    [JsonPropertyName("ExposedPorts")]
    public Dictionary<string, object?>? ExposedPorts { get; set; }

    [JsonPropertyName("Env")]
    public List<string>? Env { get; set; }

    [JsonPropertyName("Entrypoint")]
    public List<string>? Entrypoint { get; set; }

    [JsonPropertyName("Cmd")]
    public List<string>? Cmd { get; set; }

    [JsonPropertyName("Volumes")]
    public Dictionary<string, object?>? Volumes { get; set; }

    [JsonPropertyName("WorkingDir")]
    public string? WorkingDir { get; set; }

    [JsonPropertyName("Labels")]
    public Dictionary<string, string>? Labels { get; set; }

    [JsonPropertyName("StopSignal")]
    public string? StopSignal { get; set; }
}

internal sealed class RootFs
{
    [JsonPropertyName("type")]
    public string Type { get; set; } = "";

    [JsonPropertyName("diff_ids")]
    public List<string>? DiffIds { get; set; }
}

internal sealed class HistoryEntry
{
    [JsonPropertyName("created")]
    public string? Created { get; set; }

    [JsonPropertyName("created_by")]
    public string? CreatedBy { get; set; }

    [JsonPropertyName("author")]
    public string? Author { get; set; }

    [JsonPropertyName("comment")]
    public string? Comment { get; set; }

    [JsonPropertyName("empty_layer")]
    public bool? EmptyLayer { get; set; }
}
