using ZstdSharp;

namespace Runcible.Core.Bundle;

/// <summary>
/// A write-only stream that cuts what it is given into fixed-size chunks and compresses each as an
/// independent gzip member or zstd frame, several at a time on the thread pool, writing them in
/// order. Members and frames concatenate into one valid file, and fixed chunk boundaries keep the
/// output identical whatever the thread timing. <see cref="Finish"/> flushes the last chunk.
/// The level is <c>RuncBundleCompressionLevel</c>'s (see <see cref="BundleCompressionLevels"/>).
/// </summary>
public sealed class ChunkedCompressionStream : Stream
{
    public const int DefaultChunkSize = 4 * 1024 * 1024;

    private readonly Stream _destination;
    private readonly BundleCompression _compression;
    private readonly int _level;
    private readonly int _chunkSize;
    private readonly int _maxInFlight;
    private readonly Queue<Task<byte[]>> _inFlight = new();
    private byte[] _buffer;
    private int _filled;
    private long _written;
    private bool _finished;

    /// <param name="level">The compression level; null for <see cref="BundleCompressionLevels.Default"/>.</param>
    public ChunkedCompressionStream(Stream destination, BundleCompression compression, int chunkSize = DefaultChunkSize, int? parallelism = null, int? level = null)
    {
        if (chunkSize < 512 || chunkSize % 512 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(chunkSize), "A multiple of the 512-byte tar record.");
        }

        _level = CheckLevel(compression, level);
        _destination = destination;
        _compression = compression;
        _chunkSize = chunkSize;
        _maxInFlight = Math.Max(1, parallelism ?? Environment.ProcessorCount);
        _buffer = compression == BundleCompression.None ? [] : new byte[chunkSize];
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => !_finished;

    public override long Length => throw new NotSupportedException();

    /// <summary>Uncompressed bytes accepted so far.</summary>
    public override long Position { get => _written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        _written += buffer.Length;
        if (_compression == BundleCompression.None)
        {
            _destination.Write(buffer);
            return;
        }

        while (!buffer.IsEmpty)
        {
            var take = Math.Min(buffer.Length, _chunkSize - _filled);
            buffer[..take].CopyTo(_buffer.AsSpan(_filled));
            _filled += take;
            buffer = buffer[take..];
            if (_filled == _chunkSize)
            {
                Dispatch();
            }
        }
    }

    /// <summary>Compresses what is buffered and writes every pending chunk. The stream takes no more writes after this.</summary>
    public void Finish()
    {
        if (_finished)
        {
            return;
        }

        if (_filled > 0)
        {
            Dispatch();
        }

        while (_inFlight.Count > 0)
        {
            WriteOldest();
        }

        _finished = true;
        _destination.Flush();
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_finished)
        {
            // An abandoned stream (an exception on the way) must not block on or publish its chunks.
            _finished = true;
            _inFlight.Clear();
        }

        base.Dispose(disposing);
    }

    /// <param name="level">The compression level; null for <see cref="BundleCompressionLevels.Default"/>.</param>
    public static byte[] CompressChunk(ReadOnlySpan<byte> data, BundleCompression compression, int? level = null)
    {
        var effective = CheckLevel(compression, level);
        switch (compression)
        {
            case BundleCompression.Gzip:
                return GzipMember.Compress(data, effective);

            case BundleCompression.Zstd:
                using (var compressor = new Compressor(effective))
                {
                    compressor.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
                    return compressor.Wrap(data).ToArray();
                }

            default:
                return data.ToArray();
        }
    }

    private static int CheckLevel(BundleCompression compression, int? level)
    {
        var effective = level ?? BundleCompressionLevels.Default(compression);
        if (!BundleCompressionLevels.IsValid(compression, effective))
        {
            var (min, max) = BundleCompressionLevels.Range(compression);
            throw new ArgumentOutOfRangeException(nameof(level), level, $"A {compression} level is {min} to {max}.");
        }

        return effective;
    }

    private void Dispatch()
    {
        var chunk = _buffer;
        var length = _filled;
        var compression = _compression;
        var level = _level;
        _inFlight.Enqueue(Task.Run(() => CompressChunk(chunk.AsSpan(0, length), compression, level)));
        _buffer = new byte[_chunkSize];
        _filled = 0;
        while (_inFlight.Count > _maxInFlight)
        {
            WriteOldest();
        }
    }

    private void WriteOldest()
    {
        var compressed = _inFlight.Dequeue().GetAwaiter().GetResult();
        _destination.Write(compressed);
    }
}
