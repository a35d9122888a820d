using System.Text.Json;
using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;

namespace Runcible.Core.Images;

/// <summary>A manifest or index document, classified and checked.</summary>
internal sealed record ImageDocument(string MediaType, ImageManifest? Manifest, ImageIndex? Index)
{
    public bool IsIndex => Index is not null;
}

/// <summary>
/// Parses manifests, indexes and configs, which are hostile input: size-capped, strict JSON, the kind
/// decided by the media type the body declares (or the one it was served with) and by its fields, and a
/// document that is both an index and a manifest rejected (the ambiguity behind GHSA-77vh-xpmg-72qh).
/// </summary>
internal static class ImageDocuments
{
    public const int MaxDocumentBytes = 4 * 1024 * 1024;

    public static ImageDocument ParseManifestOrIndex(byte[] bytes, string? servedMediaType, string imageName)
    {
        CheckSize(bytes.Length, "manifest", imageName);
        RequireUtf8(bytes, imageName, "manifest");
        try
        {
            return ClassifyManifestOrIndex(bytes, servedMediaType, imageName);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            // JsonElement checks a string's escapes (a lone surrogate) and a number's range only when read.
            throw Malformed(imageName, "manifest", e.Message);
        }
    }

    private static ImageDocument ClassifyManifestOrIndex(byte[] bytes, string? servedMediaType, string imageName)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 64 });
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new RuncibleException(RuncibleErrors.MalformedImageDocument, imageName, "manifest", "not JSON: " + e.Message);
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw Malformed(imageName, "manifest", "not a JSON object");
        }

        var hasManifests = root.TryGetProperty("manifests", out _);
        var hasLayersOrConfig = root.TryGetProperty("layers", out _) || root.TryGetProperty("config", out _);
        if (hasManifests && hasLayersOrConfig)
        {
            throw Malformed(imageName, "manifest", "it has both 'manifests' (an index) and 'layers'/'config' (a manifest), so its meaning is ambiguous");
        }

        var declared = root.TryGetProperty("mediaType", out var mediaTypeElement) && mediaTypeElement.ValueKind == JsonValueKind.String
            ? mediaTypeElement.GetString()
            : null;
        var mediaType = declared ?? (MediaTypes.IsIndex(servedMediaType) || MediaTypes.IsManifest(servedMediaType)
            ? servedMediaType
            : hasManifests ? MediaTypes.OciIndex : MediaTypes.OciManifest);
        if (declared is not null && (MediaTypes.IsIndex(servedMediaType) || MediaTypes.IsManifest(servedMediaType)) && declared != servedMediaType)
        {
            throw Malformed(imageName, "manifest", $"it was served as '{servedMediaType}' but declares '{declared}'");
        }

        if (root.TryGetProperty("schemaVersion", out var schema) && (schema.ValueKind != JsonValueKind.Number || !schema.TryGetInt32(out var version) || version != 2))
        {
            throw Malformed(imageName, "manifest", "schemaVersion is not 2 (Docker schema 1 images are not supported)");
        }

        if (MediaTypes.IsIndex(mediaType))
        {
            if (hasLayersOrConfig)
            {
                throw Malformed(imageName, "manifest", $"it declares '{mediaType}' but has layers");
            }

            var index = Deserialize<ImageIndex>(bytes, imageName, "index");
            if (index.Manifests is null)
            {
                throw Malformed(imageName, "index", "'manifests' is missing");
            }

            foreach (var descriptor in index.Manifests)
            {
                CheckDescriptor(descriptor, imageName, "index");
            }

            return new ImageDocument(mediaType!, null, index);
        }

        if (MediaTypes.IsManifest(mediaType))
        {
            if (hasManifests)
            {
                throw Malformed(imageName, "manifest", $"it declares '{mediaType}' but has 'manifests'");
            }

            var manifest = Deserialize<ImageManifest>(bytes, imageName, "manifest");
            if (manifest.Config is null || manifest.Layers is null)
            {
                throw Malformed(imageName, "manifest", "'config' or 'layers' is missing");
            }

            CheckDescriptor(manifest.Config, imageName, "manifest");
            foreach (var layer in manifest.Layers)
            {
                CheckDescriptor(layer, imageName, "manifest");
            }

            return new ImageDocument(mediaType!, manifest, null);
        }

        throw Malformed(imageName, "manifest", $"its media type '{mediaType}' is not an OCI or Docker schema 2 manifest or index");
    }

    public static ImageConfiguration ParseConfig(byte[] bytes, string imageName, int layerCount)
    {
        CheckSize(bytes.Length, "config", imageName);
        RequireUtf8(bytes, imageName, "config");
        var config = Deserialize<ImageConfiguration>(bytes, imageName, "config");
        if (config.RootFs is not { Type: "layers", DiffIds: { } diffIds })
        {
            throw Malformed(imageName, "config", "rootfs.type is not 'layers' or rootfs.diff_ids is missing");
        }

        if (diffIds.Count != layerCount)
        {
            throw Malformed(imageName, "config", $"it lists {diffIds.Count} diff_ids for {layerCount} layers");
        }

        foreach (var diffId in diffIds)
        {
            if (!Digest.TryParse(diffId, out _))
            {
                throw Malformed(imageName, "config", $"'{diffId}' is not a digest");
            }
        }

        return config;
    }

    public static void CheckSize(long size, string what, string imageName)
    {
        if (size > MaxDocumentBytes)
        {
            throw new RuncibleException(RuncibleErrors.ImageDocumentTooLarge, imageName, what, size, MaxDocumentBytes);
        }
    }

    /// <summary>
    /// Documents are UTF-8 (RFC 8259), and System.Text.Json checks a string's bytes only when it is read:
    /// bytes damaged on the way (a flipped bit is rarely valid UTF-8) are a malformed document up front.
    /// </summary>
    private static void RequireUtf8(byte[] bytes, string imageName, string what)
    {
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            throw Malformed(imageName, what, "it is not valid UTF-8 text");
        }
    }

    private static void CheckDescriptor(Descriptor descriptor, string imageName, string what)
    {
        if (!Digest.TryParse(descriptor.Digest, out _))
        {
            throw Malformed(imageName, what, $"'{descriptor.Digest}' is not a digest");
        }

        if (descriptor.Size < 0)
        {
            throw Malformed(imageName, what, $"the size of {descriptor.Digest} is negative");
        }
    }

    private static T Deserialize<T>(byte[] bytes, string imageName, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(bytes, OciJson.Options) ?? throw Malformed(imageName, what, "null");
        }
        catch (JsonException e)
        {
            throw Malformed(imageName, what, e.Message);
        }
    }

    private static RuncibleException Malformed(string imageName, string what, string problem) =>
        new(RuncibleErrors.MalformedImageDocument, imageName, what, problem);
}
