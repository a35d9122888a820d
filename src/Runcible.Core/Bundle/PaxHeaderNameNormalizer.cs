using System.Buffers.Binary;
using System.Text;
using Runcible.Core.IO;

namespace Runcible.Core.Bundle;

/// <summary>
/// Sits between a <see cref="System.Formats.Tar.TarWriter"/> and its output and rewrites the names
/// of PAX extended headers (<c>x</c>/<c>g</c>): .NET writes <c>dir/PaxHeaders.&lt;process id&gt;/file</c>,
/// which would make two builds differ. The name becomes <c>dir/PaxHeaders/file</c> (what
/// reproducible-build tar invocations use; readers ignore it) and the header checksum is recomputed.
/// Everything else passes through untouched; data records are not copied.
/// </summary>
internal sealed class PaxHeaderNameNormalizer(Stream inner) : ForwardWriteStream
{
    private const int Record = 512;
    private readonly byte[] _header = new byte[Record];
    private int _headerFilled;
    private long _dataBytesLeft;

    public override void Flush() => inner.Flush();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            if (_dataBytesLeft > 0)
            {
                var pass = (int)Math.Min(_dataBytesLeft, buffer.Length);
                inner.Write(buffer[..pass]);
                _dataBytesLeft -= pass;
                buffer = buffer[pass..];
                continue;
            }

            var take = Math.Min(Record - _headerFilled, buffer.Length);
            buffer[..take].CopyTo(_header.AsSpan(_headerFilled));
            _headerFilled += take;
            buffer = buffer[take..];
            if (_headerFilled == Record)
            {
                ProcessHeader();
                inner.Write(_header);
                _headerFilled = 0;
            }
        }
    }

    private void ProcessHeader()
    {
        if (_header.AsSpan().IndexOfAnyExcept((byte)0) < 0)
        {
            return; // end-of-archive record
        }

        var size = ParseNumber(_header.AsSpan(124, 12));
        _dataBytesLeft = (size + Record - 1) / Record * Record;
        var type = _header[156];
        if (type is not ((byte)'x' or (byte)'g'))
        {
            return;
        }

        var nameField = _header.AsSpan(0, 100);
        var end = nameField.IndexOf((byte)0);
        var name = Encoding.UTF8.GetString(end < 0 ? nameField : nameField[..end]);
        var marker = name.IndexOf("PaxHeaders.", StringComparison.Ordinal);
        if (marker < 0)
        {
            return;
        }

        var afterDigits = marker + "PaxHeaders.".Length;
        while (afterDigits < name.Length && char.IsAsciiDigit(name[afterDigits]))
        {
            afterDigits++;
        }

        var normalized = Encoding.UTF8.GetBytes(name[..marker] + "PaxHeaders" + name[afterDigits..]);
        nameField.Clear();
        normalized.AsSpan(0, Math.Min(normalized.Length, 100)).CopyTo(nameField);

        var checksumField = _header.AsSpan(148, 8);
        checksumField.Fill((byte)' ');
        var sum = 0;
        foreach (var b in _header)
        {
            sum += b;
        }

        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0')).CopyTo(checksumField);
        checksumField[6] = 0;
        checksumField[7] = (byte)' ';
    }

    private static long ParseNumber(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0)
        {
            // GNU base-256: big-endian in the last 8 bytes for the sizes TarWriter writes.
            return BinaryPrimitives.ReadInt64BigEndian(field[^8..]);
        }

        long value = 0;
        var started = false;
        foreach (var b in field)
        {
            if (b is >= (byte)'0' and <= (byte)'7')
            {
                value = value * 8 + (b - '0');
                started = true;
            }
            else if (started)
            {
                break; // the terminating space or NUL
            }
        }

        return value;
    }
}
