using Runcible.Core.Diagnostics;
using Runcible.Core.IO;

namespace Runcible.Core.Layers;

/// <summary>
/// Sits between a layer's uncompressed bytes and TarReader and follows the archive's block structure
/// as it passes (512-byte headers, each followed by its size in data rounded up to a block, a PAX
/// <c>size</c> record overriding the next entry's). TarReader reads a whole PAX record set or GNU long
/// name into memory before anything can look at it; a hostile header can claim up to 2 GiB, so
/// metadata entries are refused from their header, before their data is read, when they claim more
/// than <see cref="FlattenOptions.MaxMetadataBytes"/>. Stops watching at the end-of-archive block.
/// <para>
/// It also ends a layer as leniently as Go's archive/tar (which umoci, containerd and podman use): a
/// stream that ends at an entry boundary, or in the padding after the last entry's data, is the end
/// of the archive, and the missing padding and end-of-archive blocks are supplied to TarReader as
/// zeros (never hashed: the diff_id covers the publisher's bytes only). An end inside a header, inside
/// an entry's data, or right after a metadata entry (PAX 'x', GNU 'L'/'K', whose entry is missing)
/// stays a cut layer.
/// </para>
/// </summary>
internal sealed class TarMetadataGuard(Stream inner, long maxMetadataBytes, LayerReader owner) : ForwardReadStream
{
    private const int Block = 512;

    private readonly byte[] _header = new byte[Block];
    private int _headerFill;
    private long _dataRemaining;
    private MemoryStream? _paxData;
    private long _paxDataRemaining;
    private long? _sizeOverride;
    private bool _ended;
    private long _paddingOfCurrent;
    private bool _metadataPending;
    private long _suppliedZeros;

    public override int Read(Span<byte> buffer)
    {
        if (_suppliedZeros > 0)
        {
            return SupplyZeros(buffer);
        }

        var read = inner.Read(buffer);
        if (read == 0 && buffer.Length > 0 && !_ended && EndsAtEntryBoundary())
        {
            // Whatever padding is missing, then the two end-of-archive blocks.
            _suppliedZeros = _dataRemaining + (2 * Block);
            _ended = true;
            return SupplyZeros(buffer);
        }

        Observe(buffer[..read]);
        return read;
    }

    /// <summary>Whether the bytes so far end a whole entry: no header begun, no data missing but padding, no metadata entry waiting for its entry.</summary>
    private bool EndsAtEntryBoundary() => _headerFill == 0 && _dataRemaining <= _paddingOfCurrent && !_metadataPending;

    private int SupplyZeros(Span<byte> buffer)
    {
        var count = (int)Math.Min(buffer.Length, _suppliedZeros);
        buffer[..count].Clear();
        _suppliedZeros -= count;
        return count;
    }

    private void Observe(ReadOnlySpan<byte> bytes)
    {
        while (bytes.Length > 0 && !_ended)
        {
            if (_dataRemaining > 0)
            {
                var data = bytes[..(int)Math.Min(_dataRemaining, bytes.Length)];
                if (_paxData is not null)
                {
                    var record = data[..(int)Math.Min(_paxDataRemaining, data.Length)];
                    _paxData.Write(record);
                    _paxDataRemaining -= record.Length;
                    if (_paxDataRemaining == 0)
                    {
                        _sizeOverride = PaxSize(_paxData.GetBuffer().AsSpan(0, (int)_paxData.Length));
                        _paxData = null;
                    }
                }

                _dataRemaining -= data.Length;
                bytes = bytes[data.Length..];
                continue;
            }

            var part = bytes[..Math.Min(Block - _headerFill, bytes.Length)];
            part.CopyTo(_header.AsSpan(_headerFill));
            _headerFill += part.Length;
            bytes = bytes[part.Length..];
            if (_headerFill == Block)
            {
                _headerFill = 0;
                OnHeader();
            }
        }
    }

    private void OnHeader()
    {
        if (!_header.AsSpan().ContainsAnyExcept((byte)0))
        {
            // The end of the archive: what follows is hashed for the diff_id, never parsed.
            _ended = true;
            return;
        }

        var type = (char)_header[156];
        var size = ParseSize(_header.AsSpan(124, 12));
        if (type is 'x' or 'g' or 'L' or 'K')
        {
            if (size > maxMetadataBytes)
            {
                var kind = type switch { 'x' => "PAX extended header", 'g' => "PAX global header", 'L' => "GNU long name", _ => "GNU long link name" };
                throw new RuncibleException(RuncibleErrors.LayerMetadataTooLarge, owner.ImageName, owner.LayerNumber, kind, size, maxMetadataBytes);
            }

            if (type == 'x')
            {
                _paxData = new MemoryStream();
                _paxDataRemaining = size;
                _sizeOverride = null;
                if (size == 0)
                {
                    _paxData = null;
                }
            }
        }
        else
        {
            // A PAX size record applies to the entry that follows its header, as TarReader applies it.
            size = _sizeOverride ?? size;
            _sizeOverride = null;
        }

        _metadataPending = type is 'x' or 'L' or 'K';
        _dataRemaining = (size + Block - 1) / Block * Block;
        _paddingOfCurrent = _dataRemaining - size;
    }

    /// <summary>The size field: octal digits (space or NUL padded), or base-256 with the high bit set.</summary>
    private long ParseSize(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0)
        {
            if (field[0] != 0x80 || field[1..4].ContainsAnyExcept((byte)0))
            {
                throw Unreadable("a negative or oversized base-256 size");
            }

            long value = 0;
            foreach (var b in field[4..])
            {
                value = (value << 8) | b;
            }

            return value < 0 ? throw Unreadable("an oversized base-256 size") : value;
        }

        var text = field.Trim((byte)0).Trim((byte)' ').Trim((byte)0);
        long octal = 0;
        foreach (var digit in text)
        {
            if (digit is < (byte)'0' or > (byte)'7')
            {
                throw Unreadable("a size field that is not octal");
            }

            octal = (octal << 3) | (uint)(digit - '0');
        }

        return octal;
    }

    /// <summary>
    /// The value of the records' <c>size</c> key, if any. Records are "LEN key=value\n" with LEN
    /// counting the whole record; TarReader refuses malformed ones, so they are refused here too
    /// rather than guessed at (a guess could lose the block structure).
    /// </summary>
    private long? PaxSize(ReadOnlySpan<byte> records)
    {
        long? size = null;
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        while (records.Length > 0 && records.ContainsAnyExcept((byte)0))
        {
            var space = records.IndexOf((byte)' ');
            if (space <= 0
                || !int.TryParse(records[..space], System.Globalization.NumberStyles.None, invariant, out var length)
                || length <= space + 1 || length > records.Length || records[length - 1] != (byte)'\n')
            {
                throw Unreadable("a malformed PAX record");
            }

            var record = records[(space + 1)..(length - 1)];
            var equals = record.IndexOf((byte)'=');
            if (equals < 0)
            {
                throw Unreadable("a malformed PAX record");
            }

            if (record[..equals].SequenceEqual("size"u8))
            {
                size = long.TryParse(record[(equals + 1)..], System.Globalization.NumberStyles.None, invariant, out var value)
                    ? value
                    : throw Unreadable("a PAX size record that is not a number");
            }

            records = records[length..];
        }

        return size;
    }

    private RuncibleException Unreadable(string problem) => owner.Corrupt(new InvalidDataException("a tar header has " + problem));
}
