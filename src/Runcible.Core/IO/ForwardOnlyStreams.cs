namespace Runcible.Core.IO;

/// <summary>A read-only, unseekable stream wrapper: subclasses write only <see cref="Read(Span{byte})"/> instead of repeating the members a forward reader refuses.</summary>
internal abstract class ForwardReadStream : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    /// <summary>Unknown unless a subclass knows it.</summary>
    public override long Length => throw new NotSupportedException();

    /// <summary>Unknown unless a subclass tracks it.</summary>
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public abstract override int Read(Span<byte> buffer);

    /// <summary>One read path: the array overload goes through the span one.</summary>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <summary>Nothing is buffered for writing.</summary>
    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>A write-only, unseekable stream wrapper: subclasses write only <see cref="Write(ReadOnlySpan{byte})"/> instead of repeating the members a forward writer refuses.</summary>
internal abstract class ForwardWriteStream : Stream
{
    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    /// <summary>Unknown unless a subclass counts what was written.</summary>
    public override long Length => throw new NotSupportedException();

    /// <summary>Unknown unless a subclass counts what was written.</summary>
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public abstract override void Write(ReadOnlySpan<byte> buffer);

    /// <summary>One write path: the array overload goes through the span one.</summary>
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <summary>Nothing buffered by default; a subclass wrapping a stream flushes it.</summary>
    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
