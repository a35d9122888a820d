using System.Formats.Tar;
using System.Text.Json;
using System.Text.Json.Nodes;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;

namespace Runcible.Core.Images;

/// <summary>Opens the local source a <see cref="LocalImageReference"/> names.</summary>
internal static class LocalSources
{
    public static IImageSource Open(LocalImageReference reference, string original) => reference.Kind switch
    {
        LocalSourceKind.OciLayout => new OciLayoutSource(original, new DirectoryFiles(reference.Path, original)),
        LocalSourceKind.OciArchive => new OciLayoutSource(original, TarArchiveFiles.Open(reference.Path, original)),
        _ => new DockerArchiveSource(original, TarArchiveFiles.Open(reference.Path, original), reference.Tag),
    };

    /// <summary>Copies at most <paramref name="limit"/>+1 bytes, so an oversized file shows up as such without being read whole.</summary>
    internal static async Task CopyBoundedAsync(Stream source, Stream destination, long limit, CancellationToken cancellationToken)
    {
        var buffer = new byte[1 << 16];
        long copied = 0;
        int read;
        while (copied <= limit && (read = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, limit + 1 - copied)), cancellationToken).ConfigureAwait(false)) > 0)
        {
            await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            copied += read;
        }
    }

    internal static byte[] ReadDocument(ILayoutFiles files, string path, string sourceName, string what)
    {
        using var stream = files.Open(path, out var length)
            ?? throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, sourceName, $"it has no {path}");
        ImageDocuments.CheckSize(length, what, sourceName);
        var bytes = new byte[length];
        stream.ReadExactly(bytes);
        return bytes;
    }
}

/// <summary>Read access to the files of an image layout, whether a directory or inside a tar archive.</summary>
internal interface ILayoutFiles : IDisposable
{
    /// <summary>Opens the regular file at a '/'-separated relative path, or returns null when there is none.</summary>
    Stream? Open(string relativePath, out long length);
}

/// <summary>An OCI image layout directory.</summary>
internal sealed class DirectoryFiles(string root, string sourceName) : ILayoutFiles
{
    private readonly string _root = Directory.Exists(root)
        ? Path.GetFullPath(root)
        : throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, sourceName, $"the directory '{root}' does not exist");

    public Stream? Open(string relativePath, out long length)
    {
        length = 0;
        var path = Path.GetFullPath(Path.Combine(_root, relativePath));
        if (!path.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            return null;
        }

        var info = new FileInfo(path);
        if (!info.Exists)
        {
            return null;
        }

        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        length = stream.Length;
        return stream;
    }

    public void Dispose()
    {
    }
}

/// <summary>
/// The regular files of a tar archive (an OCI archive or a docker save), indexed in one pass by their
/// data offsets and read in place: nothing is extracted to disk.
/// </summary>
internal sealed class TarArchiveFiles : ILayoutFiles
{
    private const int MaxEntries = 100_000;
    private readonly string _path;
    private readonly Dictionary<string, (long Offset, long Length)> _files;

    private TarArchiveFiles(string path, Dictionary<string, (long, long)> files)
    {
        _path = path;
        _files = files;
    }

    public static TarArchiveFiles Open(string path, string sourceName)
    {
        if (!File.Exists(path))
        {
            throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, sourceName, $"the file '{path}' does not exist");
        }

        var files = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            var magic = new byte[2];
            if (stream.Read(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
            {
                throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, sourceName, "it is gzip-compressed; give the uncompressed tar (gunzip it first)");
            }

            stream.Position = 0;
            using var raw = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
            using var reader = new TarReader(stream);
            while (reader.GetNextEntry() is { } entry)
            {
                if (files.Count >= MaxEntries)
                {
                    throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, sourceName, $"it has more than {MaxEntries} entries");
                }

                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile))
                {
                    continue;
                }

                var name = Normalise(entry.Name);
                if (name is null)
                {
                    throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, sourceName, $"its entry '{entry.Name}' is not a relative path inside the archive");
                }

                files[name] = (DataOffset(stream, entry, raw, sourceName), entry.Length);
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            throw new RuncibleException(e, RuncibleErrors.LocalSourceInvalid, sourceName, "it is not a readable tar archive: " + e.Message);
        }

        return new TarArchiveFiles(path, files);
    }

    // TarEntry.DataOffset is .NET 9+; on .NET 8 the reader leaves the archive stream at the entry's data or,
    // depending on the runtime, just past it. Take the candidate whose bytes are the entry's own.
    private static long DataOffset(FileStream archive, TarEntry entry, FileStream raw, string sourceName)
    {
        if (entry.Length == 0 || entry.DataStream is null)
        {
            return 0;
        }

        var position = archive.Position;
        var probe = new byte[(int)Math.Min(entry.Length, 512)];
        entry.DataStream.ReadExactly(probe);
        var candidate = new byte[probe.Length];
        foreach (var offset in new[] { position, position - ((entry.Length + 511) / 512 * 512) })
        {
            if (offset < 0)
            {
                continue;
            }

            raw.Position = offset;
            if (raw.ReadAtLeast(candidate, candidate.Length, throwOnEndOfStream: false) == candidate.Length && candidate.AsSpan().SequenceEqual(probe))
            {
                return offset;
            }
        }

        throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, sourceName, $"the data of its entry '{entry.Name}' cannot be located");
    }

    public Stream? Open(string relativePath, out long length)
    {
        length = 0;
        var name = Normalise(relativePath);
        if (name is null || !_files.TryGetValue(name, out var file))
        {
            return null;
        }

        length = file.Length;
        var stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        stream.Position = file.Offset;
        return new RangeStream(stream, file.Length);
    }

    public void Dispose()
    {
    }

    private static string? Normalise(string name)
    {
        var parts = new List<string>();
        foreach (var part in name.Split('/'))
        {
            if (part is "" or ".")
            {
                continue;
            }

            if (part == ".." || part.Contains('\0'))
            {
                return null;
            }

            parts.Add(part);
        }

        return parts.Count == 0 || name.StartsWith('/') ? null : string.Join('/', parts);
    }

    /// <summary>A window of a file stream: reads stop at the entry's end.</summary>
    private sealed class RangeStream(FileStream inner, long windowLength) : Stream
    {
        private readonly long _length = windowLength;
        private long _remaining = windowLength;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => _length;

        public override long Position
        {
            get => _length - _remaining;
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer[..(int)Math.Min(buffer.Length, _remaining)]);
            _remaining -= read;
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _remaining)], cancellationToken).ConfigureAwait(false);
            _remaining -= read;
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>
/// An OCI image layout (<c>oci-layout:</c> a directory, <c>oci-archive:</c> a tar of one): tags are the
/// <c>org.opencontainers.image.ref.name</c> annotations of index.json; with no tag, the layout's only image.
/// </summary>
internal sealed class OciLayoutSource : IImageSource
{
    private const string RefNameAnnotation = "org.opencontainers.image.ref.name";
    private readonly ILayoutFiles _files;
    private readonly ImageIndex _index;

    public OciLayoutSource(string name, ILayoutFiles files)
    {
        Name = name;
        _files = files;
        var layout = LocalSources.ReadDocument(files, "oci-layout", name, "oci-layout file");
        try
        {
            using var layoutJson = JsonDocument.Parse(layout);
            if (!layoutJson.RootElement.TryGetProperty("imageLayoutVersion", out _))
            {
                throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, name, "its oci-layout file has no imageLayoutVersion");
            }

            _index = JsonSerializer.Deserialize<ImageIndex>(LocalSources.ReadDocument(files, "index.json", name, "index.json"), OciJson.Options)
                ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new RuncibleException(e, RuncibleErrors.LocalSourceInvalid, name, "its oci-layout or index.json is not valid JSON: " + e.Message);
        }

        if (_index.Manifests is null)
        {
            throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, name, "its index.json has no manifests");
        }
    }

    public string Name { get; }

    public Task<ManifestContent> GetManifestAsync(string tagOrDigest, CancellationToken cancellationToken)
    {
        Descriptor descriptor;
        if (Digest.TryParse(tagOrDigest, out var wanted))
        {
            descriptor = _index.Manifests!.FirstOrDefault(d => d.Digest == tagOrDigest)
                ?? new Descriptor { Digest = wanted.ToString(), Size = -1 };
        }
        else
        {
            var candidates = string.IsNullOrEmpty(tagOrDigest)
                ? _index.Manifests!
                : _index.Manifests!.Where(d => d.Annotations?.GetValueOrDefault(RefNameAnnotation) == tagOrDigest).ToList();
            if (candidates.Count != 1)
            {
                var tags = _index.Manifests!.Select(d => d.Annotations?.GetValueOrDefault(RefNameAnnotation)).OfType<string>().Order(StringComparer.Ordinal).ToList();
                throw new RuncibleException(RuncibleErrors.LocalImageNotFound, Name, string.IsNullOrEmpty(tagOrDigest) ? "(no tag: the layout holds several images)" : tagOrDigest,
                    tags.Count == 0 ? "no tagged images" : string.Join(", ", tags));
            }

            descriptor = candidates[0];
        }

        var digest = Digest.TryParse(descriptor.Digest, out var parsed)
            ? parsed
            : throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, Name, $"its index.json names '{descriptor.Digest}', which is not a digest");
        var path = $"blobs/{digest.Algorithm}/{digest.Encoded}";
        using var stream = _files.Open(path, out var length)
            ?? throw new RuncibleException(RuncibleErrors.LocalImageNotFound, Name, tagOrDigest, $"no blob {digest} in the layout");
        ImageDocuments.CheckSize(length, "manifest", Name);
        var bytes = new byte[length];
        stream.ReadExactly(bytes);
        if (Digest.ComputeSha256(bytes) != digest && digest.Algorithm == "sha256")
        {
            throw new RuncibleException(RuncibleErrors.ImageDigestMismatch, Name, "manifest", digest, Digest.ComputeSha256(bytes), bytes.Length, descriptor.Size);
        }

        var mediaType = string.IsNullOrEmpty(descriptor.MediaType) ? null : descriptor.MediaType;
        return Task.FromResult(new ManifestContent(bytes, mediaType ?? "", digest));
    }

    public async Task CopyBlobAsync(Descriptor blob, Stream destination, CancellationToken cancellationToken)
    {
        var digest = blob.GetDigest();
        await using var stream = _files.Open($"blobs/{digest.Algorithm}/{digest.Encoded}", out _)
            ?? throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, Name, $"the blob {digest} its manifest lists is missing");
        await LocalSources.CopyBoundedAsync(stream, destination, blob.Size, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _files.Dispose();
}

/// <summary>
/// A <c>docker save</c> archive (<c>docker-archive:</c>): manifest.json names each image's config and layer
/// tars; Runcible presents the chosen image as a Docker schema 2 manifest over those files, with layer
/// digests computed from the archive (layers there are uncompressed tars, or gzip for some writers).
/// </summary>
internal sealed class DockerArchiveSource : IImageSource
{
    private readonly ILayoutFiles _files;
    private readonly Dictionary<string, string> _blobPaths = new(StringComparer.Ordinal);
    private readonly Lazy<ManifestContent> _manifest;

    public DockerArchiveSource(string name, ILayoutFiles files, string? tag)
    {
        Name = name;
        _files = files;
        _manifest = new Lazy<ManifestContent>(() =>
        {
            try
            {
                return Synthesize(tag);
            }
            catch (InvalidOperationException e)
            {
                // A JSON value of the wrong kind (a number where a path belongs).
                throw new RuncibleException(e, RuncibleErrors.LocalSourceInvalid, name, "its manifest.json is not valid: " + e.Message);
            }
        });
    }

    public string Name { get; }

    public Task<ManifestContent> GetManifestAsync(string tagOrDigest, CancellationToken cancellationToken)
    {
        var manifest = _manifest.Value;
        if (Digest.TryParse(tagOrDigest, out var digest) && digest != manifest.Digest)
        {
            throw new RuncibleException(RuncibleErrors.LocalImageNotFound, Name, tagOrDigest, manifest.Digest.ToString());
        }

        return Task.FromResult(manifest);
    }

    public async Task CopyBlobAsync(Descriptor blob, Stream destination, CancellationToken cancellationToken)
    {
        _ = _manifest.Value;
        if (!_blobPaths.TryGetValue(blob.Digest, out var path))
        {
            throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, Name, $"it has no blob {blob.Digest}");
        }

        await using var stream = _files.Open(path, out _)!;
        await LocalSources.CopyBoundedAsync(stream, destination, blob.Size, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _files.Dispose();

    private ManifestContent Synthesize(string? tag)
    {
        JsonArray images;
        try
        {
            images = JsonNode.Parse(LocalSources.ReadDocument(_files, "manifest.json", Name, "manifest.json")) as JsonArray
                ?? throw new JsonException("not an array");
        }
        catch (JsonException e)
        {
            throw new RuncibleException(e, RuncibleErrors.LocalSourceInvalid, Name, "its manifest.json is not valid: " + e.Message);
        }

        var entries = images.OfType<JsonObject>().ToList();
        var chosen = tag is null
            ? entries.Count == 1 ? entries[0] : null
            : entries.FirstOrDefault(e => Tags(e).Any(t => t == tag || t == "docker.io/" + tag || t == "docker.io/library/" + tag || t == "localhost/" + tag));
        if (chosen is null)
        {
            var all = entries.SelectMany(Tags).Order(StringComparer.Ordinal).ToList();
            throw new RuncibleException(RuncibleErrors.LocalImageNotFound, Name, tag ?? "(no tag: the archive holds several images)", all.Count == 0 ? "no tagged images" : string.Join(", ", all));
        }

        var configPath = chosen["Config"]?.GetValue<string>()
            ?? throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, Name, "its manifest.json entry has no Config");
        var config = LocalSources.ReadDocument(_files, configPath, Name, "config");
        var configDigest = Digest.ComputeSha256(config);
        _blobPaths[configDigest.ToString()] = configPath;

        var layers = new JsonArray();
        foreach (var layerPath in chosen["Layers"]?.AsArray().Select(l => l?.GetValue<string>()) ?? [])
        {
            if (layerPath is null)
            {
                throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, Name, "its manifest.json lists a null layer");
            }

            using var stream = _files.Open(layerPath, out var length)
                ?? throw new RuncibleException(RuncibleErrors.LocalSourceInvalid, Name, $"its layer {layerPath} is missing");
            var head = new byte[2];
            var headRead = stream.ReadAtLeast(head, 2, throwOnEndOfStream: false);
            var gzip = headRead == 2 && head[0] == 0x1f && head[1] == 0x8b;
            using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            hash.AppendData(head, 0, headRead);
            var buffer = new byte[1 << 16];
            int read;
            while ((read = stream.Read(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
            }

            var digest = Digest.FromSha256Hash(hash.GetHashAndReset());
            _blobPaths[digest.ToString()] = layerPath;
            layers.Add(new JsonObject
            {
                ["mediaType"] = gzip ? MediaTypes.DockerLayerGzip : MediaTypes.DockerLayer,
                ["size"] = length,
                ["digest"] = digest.ToString(),
            });
        }

        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.DockerManifest,
            ["config"] = new JsonObject { ["mediaType"] = MediaTypes.DockerConfig, ["size"] = config.Length, ["digest"] = configDigest.ToString() },
            ["layers"] = layers,
        };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(manifest);
        return new ManifestContent(bytes, MediaTypes.DockerManifest, Digest.ComputeSha256(bytes));
    }

    private static IEnumerable<string> Tags(JsonObject entry) =>
        entry["RepoTags"] is JsonArray tags ? tags.Select(t => t?.GetValue<string>()).OfType<string>() : [];
}
