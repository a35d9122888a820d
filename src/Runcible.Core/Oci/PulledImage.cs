namespace Runcible.Core.Oci;

/// <summary>
/// What the fetch stage hands to the later stages: an image resolved to one platform, with its
/// config parsed and every layer blob verified and present on local disk (in the content cache).
/// </summary>
/// <param name="Reference">The reference as the user wrote it (or the local source string).</param>
/// <param name="ManifestDigest">Digest of the platform-specific manifest.</param>
/// <param name="IndexDigest">Digest of the index/manifest list it was chosen from, when there was one.</param>
internal sealed record PulledImage(
    string Reference,
    Digest ManifestDigest,
    Digest? IndexDigest,
    ImageManifest Manifest,
    Digest ConfigDigest,
    byte[] ConfigBytes,
    ImageConfiguration Config,
    IReadOnlyList<LocalLayer> Layers);

/// <summary>One layer blob on local disk, verified against <see cref="Descriptor"/>'s digest and size.</summary>
/// <param name="DiffId">The uncompressed digest the image config lists for this layer (its <c>diff_ids</c> entry).</param>
internal sealed record LocalLayer(Descriptor Descriptor, Digest DiffId, string BlobPath)
{
    public LayerCompression Compression =>
        MediaTypes.GetLayerCompression(Descriptor.MediaType)
        ?? throw new InvalidOperationException($"Not a layer media type: {Descriptor.MediaType}");
}
