using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using Runcible.Core.Diagnostics;
using Runcible.Core.IO;
using Runcible.Core.Oci;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace Runcible.Core.Layers;

/// <summary>Bounds that protect the build machine from hostile layers.</summary>
internal sealed record FlattenOptions
{
    /// <summary>File system entries of the whole image (every layer's entries count).</summary>
    public long MaxEntries { get; init; } = 2_000_000;

    /// <summary>Uncompressed bytes of one layer.</summary>
    public long MaxLayerBytes { get; init; } = 64L << 30;

    /// <summary>Uncompressed over compressed size of one layer, checked once past <see cref="RatioCheckFloor"/>.</summary>
    public long MaxCompressionRatio { get; init; } = 1000;

    /// <summary>Below this many uncompressed bytes the ratio is not checked (tiny layers compress absurdly well).</summary>
    public long RatioCheckFloor { get; init; } = 64L << 20;

    /// <summary>Bytes of an entry name or link target.</summary>
    public int MaxNameBytes { get; init; } = 4096;

    /// <summary>Bytes of one metadata entry (a PAX record set, a GNU long name), refused from its header before it is read.</summary>
    public long MaxMetadataBytes { get; init; } = 1 << 20;

    /// <summary>zstd window: 2^27 (128 MiB) is zstd's own default limit for decompression.</summary>
    public int MaxZstdWindowLog { get; init; } = 27;

    /// <summary>
    /// Layers the index reads at once, each on its own thread (applied in order on the caller's): the processor
    /// count, at most 4, since each reader may hold a zstd window (<see cref="MaxZstdWindowLog"/>) and a queue.
    /// </summary>
    public int MaxParallelLayers { get; init; } = Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>Entries one layer's reader may queue ahead of the index.</summary>
    public int MaxQueuedEntries { get; init; } = 8192;

    /// <summary>Estimated bytes (names, link names, PAX records, a fixed part per entry) one layer's reader may queue ahead of the index.</summary>
    public long MaxQueuedBytes { get; init; } = 32L << 20;
}

/// <summary>
/// Opens one layer blob as a stream of tar entries: decompressed (gzip, zstd, none), hashed for its
/// diff_id and bounded in size while read. Never extracts anything.
/// </summary>
internal sealed class LayerReader : IDisposable
{
    private readonly Stream _file;
    private readonly Stream _decompressed;
    private readonly BoundedHashingStream _bounded;
    private readonly TarMetadataGuard _guard;
    private long _entriesRead;

    /// <param name="stop">Checked before every read of the layer, so a reader on another thread stops within one read.</param>
    /// <param name="hashContent">
    /// false for a second read of a layer whose diff_id the first read verified (the bundle's write pass, which
    /// stops at the last file it needs and so could not check it anyway): SHA-256 of every byte is CPU spent for nothing.
    /// </param>
    public LayerReader(LocalLayer layer, int layerNumber, string imageName, FlattenOptions options, CancellationToken stop = default, bool hashContent = true)
    {
        LayerNumber = layerNumber;
        ImageName = imageName;
        Layer = layer;
        _file = new FileStream(layer.BlobPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            var compressedSize = _file.Length;
            _decompressed = layer.Compression switch
            {
                LayerCompression.Gzip => new GZipStream(_file, CompressionMode.Decompress, leaveOpen: true),
                LayerCompression.Zstd => Zstd(_file, options),
                _ => _file,
            };
            var limit = Math.Min(options.MaxLayerBytes, Math.Max(options.RatioCheckFloor, compressedSize * options.MaxCompressionRatio));
            _bounded = new BoundedHashingStream(_decompressed, limit, options.MaxLayerBytes, this, stop, hashContent ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null);
            // TarReader reads 512-byte headers one by one: buffered here, the decompressor and the hash see
            // 64 KiB reads instead of a call per header (the guard still sees every byte before TarReader).
            _guard = new TarMetadataGuard(new BufferedStream(_bounded, 1 << 16), options.MaxMetadataBytes, this);
            Tar = new TarReader(_guard, leaveOpen: true);
        }
        catch
        {
            // No Dispose follows a constructor that throws: the layer's file must not stay open.
            _file.Dispose();
            throw;
        }
    }

    public int LayerNumber { get; }

    public string ImageName { get; }

    public LocalLayer Layer { get; }

    public TarReader Tar { get; }

    /// <summary>The next entry, with format errors, truncation and bound violations as coded errors.</summary>
    public TarEntry? Next()
    {
        try
        {
            var entry = Tar.GetNextEntry(copyData: false);
            if (entry is not null)
            {
                _entriesRead++;
            }

            return entry;
        }
        catch (NotSupportedException e)
        {
            // TarReader refuses some entry kinds itself (GNU sparse 'S', multi-volume) before we see a name.
            throw new RuncibleException(e, RuncibleErrors.UnsupportedLayerEntry, ImageName, LayerNumber, $"entry {_entriesRead + 1}", e.Message);
        }
        catch (Exception e) when (IsFormatProblem(e))
        {
            throw Corrupt(e);
        }
    }

    /// <summary>Reads whatever follows the tar's end (padding, or garbage) into the hash, then checks the diff_id.</summary>
    public void VerifyDiffId()
    {
        try
        {
            var buffer = new byte[1 << 16];
            while (_bounded.Read(buffer) > 0)
            {
            }
        }
        catch (Exception e) when (IsFormatProblem(e))
        {
            throw Corrupt(e);
        }

        var actual = Digest.FromSha256Hash(_bounded.Hash());
        if (actual != Layer.DiffId)
        {
            throw new RuncibleException(RuncibleErrors.LayerDiffIdMismatch, ImageName, LayerNumber, actual, Layer.DiffId);
        }
    }

    /// <summary>The entry's data, whose read errors (truncation, decompression, bounds) are coded errors.</summary>
    public Stream DataOf(TarEntry entry) => entry.DataStream is { } data ? new TranslatingReadStream(data, this) : Stream.Null;

    public RuncibleException Corrupt(Exception e) =>
        e as RuncibleException ?? new RuncibleException(e, RuncibleErrors.CorruptLayer, ImageName, LayerNumber, e.Message, Layer.Compression.ToString().ToLowerInvariant());

    /// <summary>
    /// Whether an exception thrown while reading layer data (decompressor, tar parser) is that data's
    /// fault. Hostile bytes can drive those libraries into any exception type (InvalidData, EndOfStream,
    /// Format, Overflow, Argument, IndexOutOfRange...), so all count except cancellation and memory
    /// exhaustion. Only wrap calls that read layer data: our own logic's bugs and output errors must
    /// not be reported as a corrupt image.
    /// </summary>
    public static bool IsFormatProblem(Exception e) => e is not (OperationCanceledException or OutOfMemoryException);

    public void Dispose()
    {
        Tar.Dispose();
        _guard.Dispose();
        _bounded.Dispose();
        _decompressed.Dispose();
        _file.Dispose();
    }

    private static Stream Zstd(Stream file, FlattenOptions options)
    {
        var stream = new DecompressionStream(file, bufferSize: 1 << 16, checkEndOfStream: true, leaveOpen: true);
        // A frame may ask for a window of up to 2 GiB: refuse more than the bound instead of allocating it.
        stream.SetParameter(ZSTD_dParameter.ZSTD_d_windowLogMax, options.MaxZstdWindowLog);
        return stream;
    }

    /// <summary>Reads an entry's data, turning the layer's read failures into coded errors.</summary>
    private sealed class TranslatingReadStream(Stream inner, LayerReader owner) : ForwardReadStream
    {
        public override int Read(Span<byte> buffer)
        {
            try
            {
                return inner.Read(buffer);
            }
            catch (Exception e) when (IsFormatProblem(e))
            {
                throw owner.Corrupt(e);
            }
        }
    }

    /// <summary>Hashes the uncompressed bytes and stops at the size bounds.</summary>
    private sealed class BoundedHashingStream(Stream inner, long limit, long absoluteLimit, LayerReader owner, CancellationToken stop, IncrementalHash? hash) : ForwardReadStream
    {
        private long _read;

        public override long Position
        {
            get => _read;
            set => throw new NotSupportedException();
        }

        public byte[] Hash() => (hash ?? throw new InvalidOperationException("This reader does not hash the layer.")).GetHashAndReset();

        public override int Read(Span<byte> buffer)
        {
            // Not a format problem (IsFormatProblem): passes through Next and VerifyDiffId as it is.
            stop.ThrowIfCancellationRequested();
            var read = inner.Read(buffer);
            _read += read;
            if (_read > limit)
            {
                throw new RuncibleException(
                    RuncibleErrors.LayerTooLarge,
                    owner.ImageName,
                    owner.LayerNumber,
                    limit,
                    limit >= absoluteLimit ? "the absolute bound" : $"more than {limit / Math.Max(1, owner._file.Length)} times its compressed size");
            }

            hash?.AppendData(buffer[..read]);
            return read;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                hash?.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
