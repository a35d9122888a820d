using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Runcible.Core.Diagnostics;
using Runcible.Core.IO;
using Runcible.Core.Oci;

namespace Runcible.Core.Images;

/// <summary>
/// Verified content by digest, shared by every build of the user (the build cache's content store, see <see cref="CacheLayout"/>):
/// <c>blobs/&lt;alg&gt;/&lt;hex&gt;</c> hold manifests, configs and layers; <c>refs/</c> remember which
/// manifest a tag resolved to, for offline builds.
/// <para>
/// A blob is written to a unique temporary file in the same file system, its digest and size checked,
/// then renamed into place: an entry is complete and verified or absent, and two builds writing the
/// same blob at once both end with the same good file. An entry is re-hashed before this cache object
/// first hands it out (a truncated or altered file is deleted and fetched again), unless it is unchanged
/// since a verification recorded in <c>verified/&lt;alg&gt;/&lt;hex&gt;</c>: same device, inode, size,
/// modification and status-change times (see <see cref="FileIdentity"/>), recorded over a second after the
/// blob last changed, so a change within the file system's timestamp granularity cannot pass for none.
/// A republish then spends no time re-reading the base image's ~100 MiB of layers.
/// </para>
/// </summary>
internal sealed class ContentCache
{
    private const string VerifiedStampLabel = "runcible-verified/1";

    private readonly ConcurrentDictionary<string, bool> _verified = new(StringComparer.Ordinal);
    private long _hashedBytes;

    public ContentCache(string directory)
    {
        Directory = Path.GetFullPath(directory);
    }

    public string Directory { get; }

    /// <summary>Where <paramref name="digest"/>'s blob lives (the digest's grammar makes it a safe file name).</summary>
    public string BlobPath(Digest digest) => CacheLayout.BlobPath(Directory, digest.Algorithm, digest.Encoded);

    /// <summary>Bytes of cached blobs this object re-hashed to verify them (tests prove a recorded verification saves it).</summary>
    internal long HashedBytes => Interlocked.Read(ref _hashedBytes);

    private string StampPath(Digest digest) => CacheLayout.BlobRecordPath(Directory, digest.Algorithm, digest.Encoded);

    /// <summary>The verified blob's path, or null when it is absent or was damaged (then it is removed).</summary>
    public string? TryGetBlob(Digest digest, long? expectedSize)
    {
        var path = BlobPath(digest);
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null)
        {
            return null;
        }

        if (expectedSize is { } size && info.Length != size)
        {
            Discard(digest, path);
            return null;
        }

        if (_verified.ContainsKey(path) || IsVerificationRecorded(digest, path))
        {
            _verified[path] = true;
            return path;
        }

        // The identity is taken before the bytes are read and compared after: a file changed while it was
        // being hashed is never recorded as verified.
        var before = FileIdentity.Of(path);
        using (var hash = digest.CreateHash())
        using (var stream = OpenRead(path))
        {
            if (stream is null)
            {
                return null;
            }

            var buffer = new byte[81920];
            int read;
            while ((read = stream.Read(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                Interlocked.Add(ref _hashedBytes, read);
            }

            if (!digest.Matches(hash.GetHashAndReset()))
            {
                stream.Dispose();
                Discard(digest, path);
                return null;
            }
        }

        _verified[path] = true;
        if (before is not null && FileIdentity.Of(path) == before)
        {
            RecordVerification(digest, before);
        }

        return path;
    }

    /// <summary>
    /// Forgets the recorded verification of these blobs, so the next build re-hashes them (and discards a
    /// damaged one): for when reading one failed in a way a damaged file would explain.
    /// </summary>
    public void ForgetVerification(IEnumerable<Digest> digests)
    {
        foreach (var digest in digests)
        {
            _verified.TryRemove(BlobPath(digest), out _);
            TryDelete(StampPath(digest));
        }
    }

    /// <summary>Whether the blob is, by its <see cref="FileIdentity"/>, the file last verified, and the record is trustworthy.</summary>
    private bool IsVerificationRecorded(Digest digest, string path) =>
        VerificationRecord.Read(StampPath(digest), path) is (VerifiedStampLabel, true);

    /// <summary>Records that the blob as it is now hashed to its digest. Best effort: without a record it is hashed again.</summary>
    private void RecordVerification(Digest digest, FileIdentity blob)
    {
        try
        {
            VerificationRecord.Write(StampPath(digest), VerifiedStampLabel, blob);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException || (e is RuncibleException coded && coded.Error == RuncibleErrors.ContentCacheUnusable))
        {
        }
    }

    /// <summary>Reads a small verified blob (a manifest or config), or null when it is not cached.</summary>
    public byte[]? TryReadSmallBlob(Digest digest, long? expectedSize)
    {
        var path = TryGetBlob(digest, expectedSize);
        if (path is null)
        {
            return null;
        }

        var info = new FileInfo(path);
        ImageDocuments.CheckSize(info.Length, "cached document", digest.ToString());

        // Documents are hashed as read, whatever the record says: it costs microseconds, and these bytes
        // become the build's config.json directly.
        var bytes = File.ReadAllBytes(path);
        using var hash = digest.CreateHash();
        hash.AppendData(bytes);
        if (!digest.Matches(hash.GetHashAndReset()))
        {
            Discard(digest, path);
            return null;
        }

        return bytes;
    }

    /// <summary>
    /// Stores a blob that <paramref name="write"/> streams into the given stream, verifying digest and size
    /// (<paramref name="expectedSize"/> also caps what is accepted). On any failure nothing is left behind.
    /// Returns the blob's path.
    /// </summary>
    public async Task<string> AddBlobAsync(Digest digest, long expectedSize, string what, string imageName, Func<Stream, Task> write, CancellationToken cancellationToken)
    {
        var final = BlobPath(digest);
        var temp = CacheLayout.TemporaryBlobPath(Directory, $"{digest.Encoded}.{Environment.ProcessId}.{Guid.NewGuid():N}");
        try
        {
            CacheDirectory.Create(Path.GetDirectoryName(final)!);
            CacheDirectory.Create(Path.GetDirectoryName(temp)!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RuncibleException(e, RuncibleErrors.ContentCacheUnusable, Directory, e.Message);
        }

        try
        {
            using var hash = digest.CreateHash();
            long written;
            FileStream file;
            try
            {
                file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new RuncibleException(e, RuncibleErrors.ContentCacheUnusable, Directory, e.Message);
            }

            await using (file)
            await using (var verifying = new VerifyingWriteStream(file, hash, expectedSize))
            {
                try
                {
                    await write(verifying).ConfigureAwait(false);
                }
                catch (BlobTooLargeException)
                {
                    throw new RuncibleException(RuncibleErrors.ImageDigestMismatch, imageName, what, digest, "(not computed)", $"more than {expectedSize}", expectedSize);
                }

                cancellationToken.ThrowIfCancellationRequested();
                written = verifying.BytesWritten;
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            var actualHash = hash.GetHashAndReset();
            if (!digest.Matches(actualHash) || written != expectedSize)
            {
                var actual = digest.Algorithm + ":" + Convert.ToHexString(actualHash).ToLowerInvariant();
                throw new RuncibleException(RuncibleErrors.ImageDigestMismatch, imageName, what, digest, actual, written, expectedSize);
            }

            try
            {
                File.Move(temp, final, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new RuncibleException(e, RuncibleErrors.ContentCacheUnusable, Directory, e.Message);
            }

            _verified[final] = true;
            return final;
        }
        finally
        {
            TryDelete(temp);
        }
    }

    /// <summary>Stores bytes already in memory (manifests, configs) after verifying them.</summary>
    public Task<string> AddBlobAsync(Digest digest, byte[] content, string what, string imageName, CancellationToken cancellationToken) =>
        AddBlobAsync(digest, content.Length, what, imageName, stream => stream.WriteAsync(content, cancellationToken).AsTask(), cancellationToken);

    /// <summary>Remembers that <paramref name="tag"/> of <paramref name="source"/> resolved to <paramref name="manifest"/>.</summary>
    public void RememberTag(string source, string tag, Digest manifest)
    {
        try
        {
            AtomicFile.WriteText(RefPath(source, tag), manifest + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RuncibleException(e, RuncibleErrors.ContentCacheUnusable, Directory, e.Message);
        }
    }

    /// <summary>The manifest digest <paramref name="tag"/> last resolved to, if remembered.</summary>
    public Digest? TryResolveTag(string source, string tag)
    {
        var path = RefPath(source, tag);
        if (!File.Exists(path) || new FileInfo(path).Length > 256)
        {
            return null;
        }

        return Digest.TryParse(File.ReadAllText(path).Trim(), out var digest) ? digest : null;
    }

    // Source and tag are hashed: repository names and tags never become paths.
    private string RefPath(string source, string tag)
    {
        var key = Digest.ComputeSha256(Encoding.UTF8.GetBytes(source + "\n" + tag)).Encoded;
        return CacheLayout.RefPath(Directory, key);
    }

    private static FileStream? OpenRead(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    private void Discard(Digest digest, string path)
    {
        _verified.TryRemove(path, out _);
        TryDelete(path);
        TryDelete(StampPath(digest));
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Hashes what passes through and refuses more than the expected size, so a hostile blob cannot fill the disk.</summary>
    private sealed class VerifyingWriteStream(Stream inner, IncrementalHash hash, long limit) : ForwardWriteStream
    {
        public long BytesWritten { get; private set; }

        public override long Length => BytesWritten;

        public override long Position
        {
            get => BytesWritten;
            set => throw new NotSupportedException();
        }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (Accept(buffer.Length))
            {
                hash.AppendData(buffer);
                inner.Write(buffer);
            }
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Accept(buffer.Length))
            {
                hash.AppendData(buffer.Span);
                await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private bool Accept(int count)
        {
            if (BytesWritten + count > limit)
            {
                throw new BlobTooLargeException();
            }

            BytesWritten += count;
            return true;
        }
    }

    // Not an IOException: a source must not take it for a network error and retry.
    private sealed class BlobTooLargeException() : Exception("the blob is larger than its descriptor says");
}
