using System.Text.Json;
using System.Text.Json.Serialization;

namespace Runcible.Core.Oci;

/// <summary>Shared serializer options for image documents: strict enough to read, stable to write.</summary>
internal static class OciJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        // Registries and tools emit exactly the case of the spec; accept nothing looser.
        PropertyNameCaseInsensitive = false,
        ReadCommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        MaxDepth = 64,
        WriteIndented = false,
        // The document types' metadata is generated at compile time: the reflection-based serializer's first use
        // cost every build ~40 ms before its first manifest was read. Only these types can be read with it.
        TypeInfoResolver = OciJsonContext.Default,
    };
}

[JsonSerializable(typeof(ImageManifest))]
[JsonSerializable(typeof(ImageIndex))]
[JsonSerializable(typeof(ImageConfiguration))]
internal sealed partial class OciJsonContext : JsonSerializerContext;
