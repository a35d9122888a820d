using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.IO;
using Runcible.Core.Oci;

namespace Runcible.Core.Bundle;

/// <summary>The base image as recorded in bundle.json.</summary>
internal sealed record BundleBaseImage(string Reference, string ManifestDigest, IReadOnlyList<string> LayerDigests);

/// <summary>Everything one bundle is made of.</summary>
/// <param name="ConfigJson">The runtime config.json bytes, from the config stage.</param>
/// <param name="ContainerUid">Owner of the data/ and logs/ directories: the user the container runs as.</param>
/// <param name="DataDirectories">Volume names: one <c>data/&lt;name&gt;</c> directory each.</param>
internal sealed record BundleContent(
    BundleSettings Settings,
    IRootfsContent Rootfs,
    AppLayer App,
    BundleBaseImage BaseImage,
    byte[] ConfigJson,
    uint ContainerUid,
    uint ContainerGid,
    IReadOnlyList<string> DataDirectories,
    IReadOnlyList<BundleFile> ExtraFiles,
    IReadOnlyList<KeyValuePair<string, string>>? Labels = null);

internal sealed record BundleWriteResult(string Path, string AppLayerDigest, bool ReusedBaseChunk);

/// <summary>
/// Writes <c>&lt;name&gt;-&lt;version&gt;.tar[.gz|.zst]</c>: the base part (the bundle directory
/// and the flattened rootfs) as one compressed chunk, cached by the rootfs' key so a republish reuses
/// it verbatim, followed by a freshly compressed chunk with the app layer and the bundle's own files
/// and the tar end-of-archive marker. Gzip members and zstd frames concatenate, and the base part
/// ends on a tar record boundary without an end marker, so the file is one valid archive.
/// Written to a temporary file and renamed: a failure leaves no tarball and no cache entry.
/// </summary>
internal sealed class BundleWriter
{
    private const UnixFileMode DirectoryMode = (UnixFileMode)0b111_101_101;
    private const UnixFileMode ReadableFileMode = (UnixFileMode)0b110_100_100;

    // The bundle directory is its owner's alone: through it other host users would reach the image's setuid programs
    // and device nodes, and whatever the app leaves in its volumes (docs/security.md).
    private const UnixFileMode BundleDirectoryMode = (UnixFileMode)0b111_000_000;

    // config.json holds the ContainerEnvironmentVariable values (connection strings and the like).
    private const UnixFileMode PrivateFileMode = (UnixFileMode)0b110_000_000;

    private readonly string _cacheDirectory;
    private readonly string _toolVersion;
    private readonly IBuildLog _log;
    private readonly int _chunkSize;
    private long _basePartHashedBytes;

    /// <summary>
    /// Base parts this process wrote or hashed, with their identity and their record's then: one build's early base part
    /// is checked by the same build's bundle write without hashing it a second time (and without waiting out the
    /// record's one-second rule), as long as neither file changed since.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (FileIdentity Part, FileIdentity Record)> CheckedInThisProcess = new(StringComparer.Ordinal);

    private const string BasePartLabel = "runcible-base-part/1 ";

    /// <summary>
    /// Copies of cached base parts made ahead (<see cref="CopyBasePartAhead"/>), by part, in the trash directory: the
    /// bundle write renames one into place instead of copying the part while the build waits (without reflinks, as on
    /// ext4, the kernel copies every byte). At most one per part; never listed as trash while registered here.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, CopyAhead> CopiesAhead = new(StringComparer.Ordinal);

    /// <summary>The name ending of a copy made ahead: other processes leave it alone until it is <see cref="CopyAheadMaxAge"/> old.</summary>
    private const string CopyAheadSuffix = ".ahead";

    /// <summary>Longer than any build waits for its copy: an older one was abandoned (its process ended or built another part).</summary>
    private static readonly TimeSpan CopyAheadMaxAge = TimeSpan.FromHours(1);

    /// <param name="Copy">Null while the copy is being made.</param>
    private sealed record CopyAhead(string Path, FileIdentity Source, FileIdentity? Copy);

    /// <param name="cacheDirectory">Where compressed base chunks are kept (<c>RuncCacheDirectory</c>).</param>
    /// <param name="toolVersion">Runcible's version: part of the cache key and of bundle.json.</param>
    public BundleWriter(string cacheDirectory, string toolVersion, IBuildLog log, int chunkSize = ChunkedCompressionStream.DefaultChunkSize)
    {
        _cacheDirectory = cacheDirectory;
        _toolVersion = toolVersion;
        _log = log;
        _chunkSize = chunkSize;
    }

    /// <summary>
    /// Where a republish puts the tarball it replaced. Freeing a 100 MiB file's pages costs the kernel ~50 ms,
    /// which would be spent while the build waits; <see cref="EmptyTrash"/> frees them during the next build
    /// instead, on a core that is idle then.
    /// </summary>
    public string TrashDirectory => CacheLayout.TrashDirectory(_cacheDirectory);

    /// <summary>The tarballs earlier builds replaced, to be freed with <see cref="EmptyTrash"/>.</summary>
    public IReadOnlyList<string> ListTrash()
    {
        try
        {
            // Only regular files with the names this writer gives, in a real directory (never through a symlink).
            var directory = new DirectoryInfo(TrashDirectory);
            if (!directory.Exists || directory.LinkTarget is not null)
            {
                return [];
            }

            // A copy made ahead is another build's (or this process's) until it is older than any build waits for it.
            var copiesAhead = CopiesAhead.Values.Select(c => c.Path).ToHashSet(StringComparer.Ordinal);
            var abandoned = DateTime.UtcNow - CopyAheadMaxAge;
            return directory.EnumerateFiles()
                .Where(f => f.LinkTarget is null && (IsTrashName(f.Name) ||
                    (f.Name.EndsWith(CopyAheadSuffix, StringComparison.Ordinal) && IsTrashName(f.Name[..^CopyAheadSuffix.Length]) &&
                     !copiesAhead.Contains(f.FullName) && f.LastWriteTimeUtc < abandoned)))
                .Select(f => f.FullName)
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static bool IsTrashName(string name) => name.Length == 32 && name.All(char.IsAsciiHexDigitLower);

    /// <summary>Deletes the given trash files (listed at the start of a build, so never the one this build is about to put there); best effort.</summary>
    public static void EmptyTrash(IEnumerable<string> files)
    {
        foreach (var file in files)
        {
            TryDelete(file);
        }
    }

    /// <summary>The cache file the base part of <paramref name="content"/> is kept in.</summary>
    public string BaseChunkPath(BundleContent content) => BaseChunkPath(content.Settings, content.Rootfs);

    /// <summary>The cache file the base part of a bundle with <paramref name="settings"/> over <paramref name="rootfs"/> is kept in.</summary>
    public string BaseChunkPath(BundleSettings settings, IRootfsContent rootfs)
    {
        // The level is part of the key: a base part compressed at another level is not reused.
        // So is whether gzip levels are exact on this runtime: a .NET 8 MSBuild approximates them, and a cache
        // shared with it must not hand its bytes to a .NET 10 build (or the other way round).
        // The creation time too: the bundle's own directories at the start of the base part carry it (SOURCE_DATE_EPOCH).
        // The format version changes whenever the bytes of a base part do (2: no opt/ entries, a 0700 bundle directory).
        var key = string.Join("\n", "runcible-base-chunk/2", rootfs.CacheKey, settings.TreePrefix, settings.Created.ToUnixTimeSeconds(), settings.Compression, settings.CompressionLevel,
            settings.Compression == BundleCompression.Gzip && !GzipMember.HasNumericLevels ? "approximate-gzip-levels" : "exact-levels", _chunkSize, _toolVersion);
        var hash = Digest.ComputeSha256(Encoding.UTF8.GetBytes(key)).Encoded;
        return CacheLayout.BasePartPath(_cacheDirectory, hash + "." + settings.Compression.ToString().ToLowerInvariant());
    }

    /// <summary>
    /// Writes the whole tarball under a temporary name beside its final path, and stops there:
    /// <see cref="PendingBundle.Commit"/> renames it into place, disposing it uncommitted deletes it.
    /// (A republish writes while the registry confirms the base image it assumed; see <see cref="BundleBuilder"/>.)
    /// </summary>
    public PendingBundle Prepare(BundleContent content, string outputDirectory)
    {
        var settings = content.Settings;
        var finalPath = settings.TarballPath(outputDirectory);
        string tempPath;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(finalPath)!);
            tempPath = Path.Combine(Path.GetDirectoryName(finalPath)!, $".{settings.FileName}.{Guid.NewGuid():N}.tmp");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RuncibleException(e, RuncibleErrors.BundleOutputNotWritable, finalPath, e.Message);
        }

        if (settings.Compression == BundleCompression.Gzip && !GzipMember.HasNumericLevels)
        {
            _log.LogMessage(
                $"Runcible: this .NET runtime ({Environment.Version}) has no numeric gzip levels (.NET 9+); RuncBundleCompressionLevel {settings.CompressionLevel} is approximated by {GzipMember.Approximation(settings.CompressionLevel)}.",
                important: false);
        }

        try
        {
            var reused = !EnsureBasePart(settings, content.Rootfs, out var basePath);
            string appDigest;
            // The base part is copied by the kernel (copy_file_range, or a reflink where the file system
            // shares extents), not through a buffer here, unless a copy was made ahead; the rest is appended.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var copiedAhead = TryTakeCopyAhead(basePath, tempPath);
            if (!copiedAhead)
            {
                File.Copy(basePath, tempPath);
            }

            var copied = clock.Elapsed;
            var hashed = copied;
            using (var output = new FileStream(tempPath, FileMode.Append, FileAccess.Write, FileShare.None, 1 << 16))
            {
                appDigest = content.App.ComputeDigest();
                hashed = clock.Elapsed;
                using (var compressed = new ChunkedCompressionStream(output, settings.Compression, _chunkSize, level: settings.CompressionLevel))
                {
                    using (var normalized = new PaxHeaderNameNormalizer(compressed))
                    using (var tar = new TarWriter(normalized, TarEntryFormat.Gnu, leaveOpen: true))
                    {
                        WriteRest(tar, content, appDigest);
                    }

                    compressed.Finish();
                }

                // No fsync, as tar, cp and the .NET SDK's archive writer do not: the rename makes the
                // tarball appear whole or not at all, and syncing 100 MiB cost a republish ~0.1 s. The
                // cached base part (reused by every later build) is synced.
                output.Flush();
            }

            _log.LogMessage($"Runcible: base part {(copiedAhead ? "copied ahead, renamed into place in" : "copied in")} {copied.TotalMilliseconds:F0} ms, app layer hashed in {(hashed - copied).TotalMilliseconds:F0} ms, compressed and appended with the bundle files in {(clock.Elapsed - hashed).TotalMilliseconds:F0} ms");
            return new PendingBundle(tempPath, finalPath, TrashDirectory, new BundleWriteResult(finalPath, appDigest, reused), _log);
        }
        catch (Exception e)
        {
            TryDelete(tempPath);
            if (e is IOException or UnauthorizedAccessException)
            {
                throw new RuncibleException(e, RuncibleErrors.BundleOutputNotWritable, finalPath, e.Message);
            }

            throw;
        }
    }

    /// <summary>
    /// Compresses the base part (the bundle's parent directories and the flattened rootfs) into the cache unless
    /// it is there already; true when it wrote it. A publish that starts this before the app is published
    /// (see <see cref="BundleBuilder.PrepareBasePartAsync"/>) finds it done when it writes the bundle.
    /// </summary>
    public bool EnsureBasePart(BundleSettings settings, IRootfsContent rootfs, out string basePath, CancellationToken cancellationToken = default)
    {
        basePath = BaseChunkPath(settings, rootfs);
        if (File.Exists(basePath))
        {
            if (IsCachedBasePartIntact(basePath))
            {
                return false;
            }

            TryDelete(basePath);
        }

        CacheDirectory.Create(Path.GetDirectoryName(basePath)!);
        var temp = basePath + "." + Guid.NewGuid().ToString("N") + ".tmp";
        Digest digest;
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            using (var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256))
            {
                // Hashed as written: the digest the next builds check the cached file against.
                using (var hashing = new HashingWriteStream(hash, file))
                using (var compressed = new ChunkedCompressionStream(hashing, settings.Compression, _chunkSize, level: settings.CompressionLevel))
                {
                    using (var cut = new EndMarkerCutter(compressed, cancellationToken))
                    {
                        // Rootfs entries with xattrs or long names are PAX: keep their header names free of process ids.
                        var tar = new TarWriter(new PaxHeaderNameNormalizer(cut), TarEntryFormat.Gnu, leaveOpen: true);
                        var prefix = settings.TreePrefix;
                        // No entries for opt/ and opt/containers/: extracted with -C /, they would reset the host's own
                        // directories' owner, mode and time. tar creates them when they are missing.
                        tar.WriteEntry(Dir(prefix, 0, 0, settings.Created, BundleDirectoryMode));
                        tar.WriteEntry(Dir(prefix + "rootfs/", 0, 0, settings.Created));
                        rootfs.WriteEntries(tar, prefix + "rootfs/");

                        // Every entry is a whole number of 512-byte records; what the writer adds on
                        // dispose is the end-of-archive marker, which belongs only at the end of the bundle.
                        cut.Cut();
                        tar.Dispose();
                    }

                    compressed.Finish();
                }

                file.Flush(flushToDisk: true);
                digest = Digest.FromSha256Hash(hash.GetHashAndReset());
            }

            File.Move(temp, basePath, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        // Written just after the file, this record is not trusted as is (see VerificationRecord): the next build hashes
        // the file once, against the digest, and records it again; from then on a statx tells it is unchanged.
        RecordBasePart(basePath, digest);
        return true;
    }

    /// <summary>
    /// Copies the base part at <paramref name="basePath"/> (as <see cref="EnsureBasePart"/> left it) into the trash
    /// directory, for the bundle write of the same process to take (<see cref="Prepare"/>); best effort. The early base
    /// part does this while MSBuild publishes the app. A copy not taken is freed with the trash by a later build.
    /// </summary>
    public void CopyBasePartAhead(string basePath)
    {
        // Copies this process made but no build took (the early settings differed, say) become trash once abandoned.
        foreach (var (part, stale) in CopiesAhead)
        {
            if (stale.Copy is not null && File.GetLastWriteTimeUtc(stale.Path) < DateTime.UtcNow - CopyAheadMaxAge)
            {
                CopiesAhead.TryRemove(KeyValuePair.Create(part, stale));
            }
        }

        var path = Path.Combine(TrashDirectory, Guid.NewGuid().ToString("N") + CopyAheadSuffix);
        if (FileIdentity.Of(basePath) is not { } source || !CopiesAhead.TryAdd(basePath, new CopyAhead(path, source, null)))
        {
            return;
        }

        try
        {
            CacheDirectory.Create(TrashDirectory);
            if (new DirectoryInfo(TrashDirectory).LinkTarget is null)
            {
                File.Copy(basePath, path);
                File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
                if (FileIdentity.Of(path) is { } copy && FileIdentity.Of(basePath) == source)
                {
                    CopiesAhead[basePath] = new CopyAhead(path, source, copy);
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or RuncibleException)
        {
        }

        CopiesAhead.TryRemove(basePath, out _);
        TryDelete(path);
    }

    /// <summary>
    /// Renames the copy of <paramref name="basePath"/> made ahead to <paramref name="tempPath"/>, if there is one, and
    /// neither it nor the part changed since it was made; false (and the copy freed) otherwise.
    /// </summary>
    private static bool TryTakeCopyAhead(string basePath, string tempPath)
    {
        if (!CopiesAhead.TryGetValue(basePath, out var ahead) || ahead.Copy is null || !CopiesAhead.TryRemove(KeyValuePair.Create(basePath, ahead)))
        {
            return false;
        }

        if (FileIdentity.Of(basePath) == ahead.Source && FileIdentity.Of(ahead.Path) == ahead.Copy && PosixFileCalls.TryRename(ahead.Path, tempPath))
        {
            return true;
        }

        // Changed, gone, or on another file system than the output (the rename would not move it): copied the usual way.
        TryDelete(ahead.Path);
        return false;
    }

    /// <summary>Bytes of cached base parts this writer hashed to check them (tests prove an unchanged one costs none).</summary>
    internal long BasePartHashedBytes => Interlocked.Read(ref _basePartHashedBytes);

    /// <summary>
    /// Whether the cached base part is the one this cache wrote: its record vouches for the file as it is (one statx), or
    /// the file hashes to the digest recorded when it was written. Anything else (no record, another digest) is
    /// warned about, and the part is compressed again rather than shipped.
    /// </summary>
    private bool IsCachedBasePartIntact(string basePath)
    {
        var recordPath = CacheLayout.BasePartRecordPath(basePath);
        if (CheckedInThisProcess.TryGetValue(basePath, out var known)
            && FileIdentity.Of(basePath) == known.Part && FileIdentity.Of(recordPath) == known.Record)
        {
            return true;
        }

        var (label, vouches) = VerificationRecord.Read(recordPath, basePath);
        if (label is not null && label.StartsWith(BasePartLabel, StringComparison.Ordinal) && vouches)
        {
            return true;
        }

        if (label is null || !label.StartsWith(BasePartLabel, StringComparison.Ordinal)
            || !Digest.TryParse(label[BasePartLabel.Length..], out var recorded) || recorded.Algorithm != "sha256")
        {
            _log.LogWarning(RuncibleErrors.CachedBasePartMismatch, basePath, "has no record of the digest it was written with");
            return false;
        }

        // The identity is taken before the bytes are read and compared after: a file changed meanwhile is not recorded.
        var before = FileIdentity.Of(basePath);
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        try
        {
            using var stream = new FileStream(basePath, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16);
            var buffer = new byte[1 << 16];
            int read;
            while ((read = stream.Read(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                Interlocked.Add(ref _basePartHashedBytes, read);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning(RuncibleErrors.CachedBasePartMismatch, basePath, "cannot be read (" + e.Message + ")");
            return false;
        }

        var actual = Digest.FromSha256Hash(hash.GetHashAndReset());
        if (actual != recorded)
        {
            _log.LogWarning(RuncibleErrors.CachedBasePartMismatch, basePath, $"hashes to {actual}, not to {recorded} as written");
            return false;
        }

        if (before is not null && FileIdentity.Of(basePath) == before)
        {
            RecordBasePart(basePath, recorded);
        }

        return true;
    }

    /// <summary>Best effort: without a record the part is warned about and compressed again by the next build.</summary>
    private static void RecordBasePart(string basePath, Digest digest)
    {
        CheckedInThisProcess.TryRemove(basePath, out _);
        if (FileIdentity.Of(basePath) is not { } identity)
        {
            return;
        }

        try
        {
            var recordPath = CacheLayout.BasePartRecordPath(basePath);
            VerificationRecord.Write(recordPath, BasePartLabel + digest, identity);
            if (FileIdentity.Of(recordPath) is { } record && FileIdentity.Of(basePath) == identity)
            {
                CheckedInThisProcess[basePath] = (identity, record);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException || (e is RuncibleException coded && coded.Error == RuncibleErrors.ContentCacheUnusable))
        {
        }
    }

    private void WriteRest(TarWriter tar, BundleContent content, string appDigest)
    {
        var settings = content.Settings;
        var prefix = settings.TreePrefix;
        var time = settings.Created;
        content.App.WriteEntries(tar, prefix + "rootfs/");

        var entries = new SortedDictionary<string, Func<TarEntry>>(StringComparer.Ordinal)
        {
            ["config.json"] = () => FileEntry("config.json", content.ConfigJson, PrivateFileMode, time),
            ["bundle.json"] = () => FileEntry("bundle.json", BundleManifest(content, appDigest), ReadableFileMode, time),
            ["config"] = () => Dir("config/", 0, 0, time),
            ["data"] = () => Dir("data/", 0, 0, time),
            ["logs"] = () => Dir("logs/", content.ContainerUid, content.ContainerGid, time),
        };
        foreach (var volume in content.DataDirectories.Distinct(StringComparer.Ordinal))
        {
            entries["data/" + volume] = () => Dir($"data/{volume}/", content.ContainerUid, content.ContainerGid, time);
        }

        foreach (var extra in content.ExtraFiles)
        {
            entries[extra.RelativePath] = () => FileEntry(extra.RelativePath, extra.Content, extra.Mode, time);
        }

        foreach (var make in entries.Values)
        {
            var entry = make();
            entry.Name = prefix + entry.Name;
            tar.WriteEntry(entry);
        }
    }

    private byte[] BundleManifest(BundleContent content, string appDigest)
    {
        var s = content.Settings;
        var manifest = new BundleManifestDocument(
            SchemaVersion: 1,
            s.Name,
            s.Version,
            s.RuntimeIdentifier,
            new BundleManifestPlatform("linux", BundleSettingsValidator.OciArchitecture(s.RuntimeIdentifier)),
            new BundleManifestBase(content.BaseImage.Reference, content.BaseImage.ManifestDigest, content.BaseImage.LayerDigests),
            appDigest,
            s.Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
            _toolVersion,
            LabelsDocument(content.Labels));
        return JsonSerializer.SerializeToUtf8Bytes(manifest, BundleJsonContext.Default.BundleManifestDocument);
    }

    /// <summary>The labels as config.json's annotations get them (later wins), sorted by key; none: no property.</summary>
    private static SortedDictionary<string, string>? LabelsDocument(IReadOnlyList<KeyValuePair<string, string>>? labels)
    {
        if (labels is not { Count: > 0 })
        {
            return null;
        }

        var document = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in labels)
        {
            document[key] = value;
        }

        return document;
    }

    private static GnuTarEntry Dir(string name, uint uid, uint gid, DateTimeOffset time, UnixFileMode mode = DirectoryMode) => new(TarEntryType.Directory, name)
    {
        Mode = mode,
        Uid = (int)uid,
        Gid = (int)gid,
        ModificationTime = time,
    };

    private static GnuTarEntry FileEntry(string name, byte[] content, UnixFileMode mode, DateTimeOffset time)
    {
        var entry = AppLayer.RootOwnedEntry(TarEntryType.RegularFile, name, mode, time);
        entry.DataStream = new MemoryStream(content, writable: false);
        return entry;
    }

    private static void TryDelete(string path)
    {
        try
        {
            System.IO.File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>A tarball written in full under a temporary name: committed into place, or deleted.</summary>
    public sealed class PendingBundle : IDisposable
    {
        private readonly string _tempPath;
        private readonly string _finalPath;
        private readonly string _trashDirectory;
        private readonly BundleWriteResult _result;
        private readonly IBuildLog _log;
        private bool _done;

        internal PendingBundle(string tempPath, string finalPath, string trashDirectory, BundleWriteResult result, IBuildLog log)
        {
            _tempPath = tempPath;
            _finalPath = finalPath;
            _trashDirectory = trashDirectory;
            _result = result;
            _log = log;
        }

        public BundleWriteResult Commit()
        {
            ObjectDisposedException.ThrowIf(_done, this);
            try
            {
                // The final path always holds a whole tarball: the new one takes the old one's place in one step.
                // The old one, now under the temporary name, goes to the trash rather than being freed here.
                if (File.Exists(_finalPath) && PosixFileCalls.TryExchange(_tempPath, _finalPath))
                {
                    if (!TryMoveToTrash())
                    {
                        TryDelete(_tempPath);
                    }
                }
                else
                {
                    File.Move(_tempPath, _finalPath, overwrite: true);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Dispose();
                throw new RuncibleException(e, RuncibleErrors.BundleOutputNotWritable, _finalPath, e.Message);
            }

            _done = true;
            _log.LogMessage($"Runcible: wrote {_finalPath} (base part {(_result.ReusedBaseChunk ? "reused from cache" : "compressed")})", important: false);
            return _result;
        }

        private bool TryMoveToTrash()
        {
            try
            {
                CacheDirectory.Create(_trashDirectory);

                // Only a rename (File.Move would copy the whole file across mounts): anything else, and it is freed here.
                return new DirectoryInfo(_trashDirectory).LinkTarget is null
                    && PosixFileCalls.TryRename(_tempPath, Path.Combine(_trashDirectory, Guid.NewGuid().ToString("N")));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or RuncibleException)
            {
                // Another file system (the move would copy), not writable, or not private: freed here after all.
                return false;
            }
        }

        public void Dispose()
        {
            if (!_done)
            {
                _done = true;
                TryDelete(_tempPath);
            }
        }
    }

    /// <summary>Passes writes through until <see cref="Cut"/>, then swallows them (the tar end marker of the base part).</summary>
    /// <remarks>Also where a cancelled preparation stops: every write of the base part passes here.</remarks>
    private sealed class EndMarkerCutter(Stream inner, CancellationToken cancellationToken) : ForwardWriteStream
    {
        private bool _cut;
        private long _length;

        public void Cut()
        {
            if (_length % 512 != 0)
            {
                throw new InvalidOperationException("The base part does not end on a tar record boundary.");
            }

            _cut = true;
        }

        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (_cut)
            {
                return;
            }

            cancellationToken.ThrowIfCancellationRequested();
            _length += buffer.Length;
            inner.Write(buffer);
        }
    }
}

/// <summary>bundle.json (properties in this order, camelCase).</summary>
internal sealed record BundleManifestDocument(
    int SchemaVersion,
    string Name,
    string Version,
    string RuntimeIdentifier,
    BundleManifestPlatform Platform,
    BundleManifestBase Base,
    string AppLayerDigest,
    string Created,
    string ToolVersion,
    SortedDictionary<string, string>? Labels);

internal sealed record BundleManifestPlatform(string Os, string Architecture);

internal sealed record BundleManifestBase(string Reference, string Digest, IReadOnlyList<string> Layers);

// Compile-time metadata: the reflection-based serializer's first use costs a build ~40 ms.
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BundleManifestDocument))]
internal sealed partial class BundleJsonContext : JsonSerializerContext;
