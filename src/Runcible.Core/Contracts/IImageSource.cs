using Runcible.Core.Oci;

namespace Runcible.Core.Contracts;

/// <summary>A manifest or index as fetched: its exact bytes, the media type it was served with, its digest.</summary>
internal sealed record ManifestContent(byte[] Bytes, string MediaType, Digest Digest);

/// <summary>
/// A place one image repository's content comes from: a registry repository, or a local OCI layout,
/// OCI archive or docker archive. Sources only move bytes; the puller verifies and caches them.
/// </summary>
internal interface IImageSource : IDisposable
{
    /// <summary>For messages: <c>registry/repository</c>, or the local source string.</summary>
    string Name { get; }

    /// <summary>
    /// Fetches the manifest or index named by a tag or a digest string, size-capped (4 MiB).
    /// When asked by digest the bytes are verified against it.
    /// </summary>
    Task<ManifestContent> GetManifestAsync(string tagOrDigest, CancellationToken cancellationToken);

    /// <summary>
    /// Writes the blob's bytes to <paramref name="destination"/> (a fresh, writable stream),
    /// handling retries and resumption itself. The caller verifies digest and size and must not
    /// trust the bytes before that.
    /// </summary>
    Task CopyBlobAsync(Descriptor blob, Stream destination, CancellationToken cancellationToken);
}

/// <summary>Opens a source for a repository on a registry (registry host as written in the reference, e.g. <c>docker.io</c>, <c>localhost:5000</c>).</summary>
internal delegate IImageSource RegistrySourceFactory(string registry, string repository);
