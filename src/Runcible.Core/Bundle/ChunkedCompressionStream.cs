using ZstdSharp;
using Runcible.Core.Contracts;

namespace Runcible.Core.Bundle;

/// <summary>
/// A write-only stream that cuts what it is given into fixed-size chunks and compresses each as an
/// independent gzip member or zstd frame, several at a time on the thread pool, writing them in
/// order. Members and frames concatenate into one valid file, and fixed chunk boundaries keep the
/// output identical whatever the thread timing. <see cref="Finish"/> flushes the last chunk.
/// The level is <c>RuncBundleCompressionLevel</c>'s (see <see cref="BundleCompressionLevels"/>).
/// </summary>
internal sealed class ChunkedCompressionStream : Stream
{
    public const int DefaultChunkSize = 4 * 1024 * 1024;

    private readonly Stream _destination;
    private readonly BundleCompression _compression;
    private readonly int _level;
    private readonly int _chunkSize;
    private readonly int _maxInFlight;
    private readonly Queue<(Task Compressing, ChunkSlot Slot)> _inFlight = new();

    // Chunk buffers are reused, never allocated per chunk: a fresh 4 MiB array (and a growing output buffer)
    // per chunk costs page faults and zeroing on every one of them, and garbage collections on top.
    private readonly Stack<ChunkSlot> _freeSlots = new();
    private ChunkSlot? _slot;
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
        _slot = new ChunkSlot(compression == BundleCompression.None ? 0 : chunkSize);
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
            buffer[..take].CopyTo(_slot!.Input.AsSpan(_filled));
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
        ReleaseSlots();
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
            // An abandoned stream (an exception on the way) must not block on or publish its chunks;
            // each one's slot is released once its compression has stopped.
            _finished = true;
            foreach (var (compressing, slot) in _inFlight)
            {
                compressing.ContinueWith(_ => slot.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }

            _inFlight.Clear();
            ReleaseSlots();
        }

        base.Dispose(disposing);
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

    private void ReleaseSlots()
    {
        _slot?.Dispose();
        while (_freeSlots.Count > 0)
        {
            _freeSlots.Pop().Dispose();
        }
    }

    private void Dispatch()
    {
        var slot = _slot!;
        var length = _filled;
        var compression = _compression;
        var level = _level;
        _inFlight.Enqueue((Task.Run(() => slot.Compress(length, compression, level)), slot));

        // In flight now: should writing an older chunk fail below, the abandoned stream must not release this slot
        // under its running compression (its continuation does, see Dispose).
        _slot = null;
        while (_inFlight.Count > _maxInFlight)
        {
            WriteOldest();
        }

        _slot = _freeSlots.Count > 0 ? _freeSlots.Pop() : new ChunkSlot(_chunkSize);
        _filled = 0;
    }

    private void WriteOldest()
    {
        var (compressing, slot) = _inFlight.Dequeue();
        try
        {
            compressing.GetAwaiter().GetResult();
            _destination.Write(slot.Result.Span);
        }
        finally
        {
            // Its compression has ended, whatever happened: free for the next chunk, or for release.
            _freeSlots.Push(slot);
        }
    }

    /// <summary>One chunk's input buffer and its compressed output, reused chunk after chunk; the zstd context too.</summary>
    private sealed class ChunkSlot(int chunkSize) : IDisposable
    {
        private readonly MemoryStream _gzipOutput = new();
        private Compressor? _zstd;
        private byte[]? _zstdOutput;

        public byte[] Input { get; } = new byte[chunkSize];

        /// <summary>The last chunk's compressed bytes.</summary>
        public ReadOnlyMemory<byte> Result { get; private set; }

        public void Compress(int length, BundleCompression compression, int level)
        {
            var data = Input.AsSpan(0, length);
            if (compression == BundleCompression.Gzip)
            {
                _gzipOutput.SetLength(0);
                GzipMember.CompressTo(_gzipOutput, data, level);
                Result = _gzipOutput.GetBuffer().AsMemory(0, (int)_gzipOutput.Length);
                return;
            }

            // Zstd: one reused context (creating one allocates its tables, megabytes at higher levels) and an output
            // buffer of the worst case, allocated once.
            _zstd ??= NewZstd(level);
            _zstdOutput ??= new byte[Compressor.GetCompressBound(Input.Length)];
            var written = _zstd.Wrap(data, _zstdOutput);
            Result = _zstdOutput.AsMemory(0, written);
        }

        public void Dispose() => _zstd?.Dispose();
    }

    private static Compressor NewZstd(int level)
    {
        var compressor = new Compressor(level);
        compressor.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        return compressor;
    }
}
