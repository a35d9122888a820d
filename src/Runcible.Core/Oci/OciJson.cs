using System.Text.Json;

namespace Runcible.Core.Oci;

/// <summary>Shared serializer options for image documents: strict enough to read, stable to write.</summary>
public static class OciJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        // Registries and tools emit exactly the case of the spec; accept nothing looser.
        PropertyNameCaseInsensitive = false,
        ReadCommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        MaxDepth = 64,
        WriteIndented = false,
    };
}
