using System.Buffers;
using System.Net;
using System.Text.Json;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Oci;
using Runcible.Core.Registry.Pipeline;

namespace Runcible.Core.Registry;

/// <summary>
/// One repository on a registry, as an <see cref="IImageSource"/>: manifests by tag or digest (size-capped,
/// verified when asked by digest), blobs streamed to the caller's stream with resumption and retries.
/// Made by <see cref="RegistryClient.Open"/>; disposing it leaves the client (and its connections, tokens) alone.
/// </summary>
internal sealed class RegistryImageSource : IImageSource
{
    /// <summary>What the client accepts for a manifest: OCI manifest and index, Docker schema 2 manifest and manifest list.</summary>
    public static readonly IReadOnlyList<string> ManifestMediaTypes =
    [
        MediaTypes.OciManifest,
        MediaTypes.OciIndex,
        MediaTypes.DockerManifest,
        MediaTypes.DockerManifestList,
    ];

    private const int CopyBufferSize = 128 * 1024;

    private readonly RegistryClient _client;
    private int _rangeIgnoredNoted;

    internal RegistryImageSource(RegistryClient client, string registry, string repository)
    {
        _client = client;
        Registry = registry;
        Repository = repository;
        Name = registry + "/" + repository;
    }

    public string Name { get; }

    public string Registry { get; }

    public string Repository { get; }

    public async Task<ManifestContent> GetManifestAsync(string tagOrDigest, CancellationToken cancellationToken)
    {
        RegistryNames.ValidateTagOrDigest(tagOrDigest);
        Digest? asked = Digest.TryParse(tagOrDigest, out var parsed) ? parsed : null;
        var what = $"manifest '{tagOrDigest}'";
        var path = $"v2/{Repository}/manifests/{tagOrDigest}";

        // Bytes damaged on the way are fetched once more, as the puller does for blobs, then reported.
        for (var attempt = 1; ; attempt++)
        {
            var context = _client.CreateContext(Name, Registry, Repository, what);
            var (bytes, contentType, announced) = await _client.WithRetriesAsync(context, async () =>
            {
                using var response = await _client.SendAsync(context, path, ManifestMediaTypes, null, cancellationToken).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.NotFound)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryManifestNotFound, Name, tagOrDigest);
                }

                if (!response.IsSuccessStatusCode)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryRequestFailed, Name, what, (int)response.StatusCode, await ErrorExcerptAsync(response, cancellationToken).ConfigureAwait(false));
                }

                var body = await RegistryClient.ReadCappedAsync(response.Content, RegistryClient.MaxDocumentBytes, Name, what, cancellationToken,
                    _client.Options.RequestTimeout).ConfigureAwait(false);
                return (body, response.Content.Headers.ContentType?.MediaType, AnnouncedDigest(response));
            }, null, cancellationToken).ConfigureAwait(false);

            // The bytes must hash to the digest asked for or, by tag, to the registry's Docker-Content-Digest when it
            // sends one (schema 1's covers the payload without its signatures: that type is refused below anyway).
            var expected = asked ?? (IsSchema1(contentType) ? null : announced);
            if (expected is { } wanted && HashAs(wanted, bytes) is var actual && actual != wanted.ToString())
            {
                if (attempt >= 2)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryManifestDigestMismatch, Name, tagOrDigest, actual, wanted);
                }

                _client.Options.Log.LogMessage($"{Name}: manifest '{tagOrDigest}' arrived with digest {actual}, not {wanted}; fetching it again.");
                continue;
            }

            var mediaType = DetermineMediaType(bytes, contentType, tagOrDigest);
            return new ManifestContent(bytes, mediaType, asked ?? Digest.ComputeSha256(bytes));
        }
    }

    /// <summary>The <c>Docker-Content-Digest</c> header, when present and a valid digest.</summary>
    private static Digest? AnnouncedDigest(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Docker-Content-Digest", out var values)
        && values.FirstOrDefault() is { } value && Digest.TryParse(value.Trim(), out var digest)
            ? digest
            : null;

    private static bool IsSchema1(string? contentType) =>
        contentType?.StartsWith("application/vnd.docker.distribution.manifest.v1", StringComparison.Ordinal) == true;

    /// <summary><paramref name="bytes"/>' digest with <paramref name="algorithmOf"/>'s algorithm.</summary>
    private static string HashAs(Digest algorithmOf, byte[] bytes)
    {
        using var hash = algorithmOf.CreateHash();
        hash.AppendData(bytes);
        return algorithmOf.Algorithm + ":" + Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    /// <summary>The served Content-Type when it is a manifest type; else the document's own <c>mediaType</c>.</summary>
    private string DetermineMediaType(byte[] bytes, string? contentType, string reference)
    {
        if (contentType is not null && ManifestMediaTypes.Contains(contentType))
        {
            return contentType;
        }

        string? declared = null;
        try
        {
            using var document = JsonDocument.Parse(bytes);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("mediaType", out var value) && value.ValueKind == JsonValueKind.String)
            {
                declared = value.GetString();
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string that is not valid text, which JsonElement finds only when reading it.
            throw new RuncibleException(e, RuncibleErrors.RegistryMalformedResponse, Name, $"manifest '{reference}'", "it is not JSON");
        }

        if (declared is not null && ManifestMediaTypes.Contains(declared))
        {
            return declared;
        }

        throw new RuncibleException(RuncibleErrors.RegistryUnsupportedManifest, Name, reference, declared ?? contentType ?? "no media type");
    }

    public async Task CopyBlobAsync(Descriptor blob, Stream destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        ArgumentNullException.ThrowIfNull(destination);
        if (!Digest.TryParse(blob.Digest, out var digest))
        {
            throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, Name, "a blob", $"the descriptor's digest '{blob.Digest}' is not a valid digest");
        }

        if (blob.Size < 0)
        {
            throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, Name, $"blob {digest}", $"the descriptor's size {blob.Size} is negative");
        }

        var what = $"blob {digest}";
        var path = $"v2/{Repository}/blobs/{digest}";
        long written = 0;
        var context = _client.CreateContext(Name, Registry, Repository, what);
        await _client.WithRetriesAsync(context, async () =>
        {
            if (written > 0 && written == blob.Size)
            {
                return true;
            }

            using var response = await _client.SendAsync(context, path, null, written > 0 ? written : null, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                throw new RuncibleException(RuncibleErrors.RegistryBlobNotFound, Name, digest);
            }

            long skip = 0;
            if (response.StatusCode == HttpStatusCode.PartialContent)
            {
                var range = response.Content.Headers.ContentRange;
                var start = range?.From ?? throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, Name, what, "a 206 answer without Content-Range");
                if (start > written)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, Name, what, $"asked for bytes from {written}, got bytes from {start}");
                }

                if (range.Length is { } total && total != blob.Size)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryBlobSizeMismatch, Name, digest, total, blob.Size);
                }

                skip = written - start;
            }
            else if (response.StatusCode == HttpStatusCode.OK)
            {
                if (response.Content.Headers.ContentLength is { } length && length != blob.Size)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryBlobSizeMismatch, Name, digest, length, blob.Size);
                }

                // A server that ignores Range sends everything again: skip what the destination already has.
                skip = written;
                if (written > 0 && Interlocked.Exchange(ref _rangeIgnoredNoted, 1) == 0)
                {
                    _client.Options.Log.LogMessage($"{Name}: the registry ignored a Range request; skipping the {written} bytes already written.");
                }
            }
            else
            {
                throw new RuncibleException(RuncibleErrors.RegistryRequestFailed, Name, what, (int)response.StatusCode, await ErrorExcerptAsync(response, cancellationToken).ConfigureAwait(false));
            }

            using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
            try
            {
                using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                while (true)
                {
                    stall.CancelAfter(_client.Options.RequestTimeout);
                    var read = await body.ReadAsync(buffer.AsMemory(0, CopyBufferSize), stall.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    var offset = 0;
                    if (skip > 0)
                    {
                        offset = (int)Math.Min(skip, read);
                        skip -= offset;
                    }

                    var count = read - offset;
                    if (count == 0)
                    {
                        continue;
                    }

                    if (written + count > blob.Size)
                    {
                        throw new RuncibleException(RuncibleErrors.RegistryBlobSizeMismatch, Name, digest, $"more than {blob.Size}", blob.Size);
                    }

                    await destination.WriteAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false);
                    written += count;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            if (written != blob.Size)
            {
                throw new RuncibleException(RuncibleErrors.RegistryBlobSizeMismatch, Name, digest, written, blob.Size);
            }

            return true;
        }, () => written, cancellationToken).ConfigureAwait(false);
    }

    private async Task<string> ErrorExcerptAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var body = await RegistryClient.ReadCappedAsync(response.Content, 64 * 1024, "", "error body", cancellationToken,
                _client.Options.RequestTimeout).ConfigureAwait(false);
            var text = System.Text.Encoding.UTF8.GetString(body).Trim();
            text = text.Length > 300 ? text[..300] + "…" : text;
            return text.Length == 0 ? response.ReasonPhrase ?? "" : text;
        }
        catch (Exception e) when (e is RuncibleException or IOException or HttpRequestException or TransientRegistryException)
        {
            return response.ReasonPhrase ?? "";
        }
    }

    public void Dispose()
    {
        // The client owns the connections and the token cache; a source holds nothing of its own.
    }
}
