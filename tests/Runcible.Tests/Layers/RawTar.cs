using System.Globalization;
using System.Text;

namespace Runcible.Tests.Layers;

/// <summary>
/// Writes tar archives byte by byte (512-byte ustar headers, checksums computed here) so tests can
/// build what TarWriter refuses to: names with '..' or NUL, '.' as a file, a symlink as the root,
/// GNU sparse and long-name entries, oversized PAX records, truncation and trailing garbage.
/// </summary>
internal sealed class RawTar
{
    public const int Block = 512;

    private readonly MemoryStream _bytes = new();

    /// <summary>A ustar entry. <paramref name="name"/> must fit the 100-byte name field (use <see cref="Pax"/> or <see cref="GnuLongName"/> for more).</summary>
    public RawTar Entry(string name, char type, byte[]? data = null, string linkName = "", int mode = 0x1A4)
    {
        data ??= [];
        _bytes.Write(Header(name, type, data.Length, linkName, mode));
        WritePadded(data);
        return this;
    }

    /// <summary>One 512-byte ustar header whose size field says <paramref name="size"/> (the data is the caller's).</summary>
    public static byte[] Header(string name, char type, long size, string linkName = "", int mode = 0x1A4)
    {
        var header = new byte[Block];
        Put(header, 0, 100, Encoding.UTF8.GetBytes(name));
        PutOctal(header, 100, 8, mode);
        PutOctal(header, 108, 8, 0);
        PutOctal(header, 116, 8, 0);
        PutOctal(header, 124, 12, size);
        PutOctal(header, 136, 12, 1_700_000_000);
        header[156] = (byte)type;
        Put(header, 157, 100, Encoding.UTF8.GetBytes(linkName));
        Put(header, 257, 6, "ustar\0"u8.ToArray());
        Put(header, 263, 2, "00"u8.ToArray());
        PutOctal(header, 329, 8, 0);
        PutOctal(header, 337, 8, 0);
        WriteChecksum(header);
        return header;
    }

    public RawTar File(string name, string content, int mode = 0x1A4) => Entry(name, '0', Encoding.UTF8.GetBytes(content), mode: mode);

    public RawTar Dir(string name, int mode = 0x1ED) => Entry(name, '5', mode: mode);

    public RawTar Symlink(string name, string target) => Entry(name, '2', linkName: target, mode: 0x1FF);

    public RawTar HardLink(string name, string target) => Entry(name, '1', linkName: target);

    /// <summary>A PAX extended header ('x') applying <paramref name="records"/> to the next entry.</summary>
    public RawTar Pax(params (string Key, string Value)[] records)
    {
        var body = new MemoryStream();
        foreach (var (key, value) in records)
        {
            body.Write(PaxRecord(key, value));
        }

        return Entry("PaxHeaders/next", 'x', body.ToArray());
    }

    /// <summary>A GNU long name ('L') entry naming the next entry, as GNU tar writes it (NUL-terminated).</summary>
    public RawTar GnuLongName(string name) => Entry("././@LongLink", 'L', Encoding.UTF8.GetBytes(name + "\0"));

    /// <summary>Raw bytes as they are (garbage, a partial header...).</summary>
    public RawTar Bytes(byte[] bytes)
    {
        _bytes.Write(bytes);
        return this;
    }

    /// <summary>The archive, with the two zero blocks that end it unless <paramref name="endMarker"/> is false.</summary>
    public byte[] Build(bool endMarker = true)
    {
        var result = new MemoryStream();
        _bytes.Position = 0;
        _bytes.CopyTo(result);
        if (endMarker)
        {
            result.Write(new byte[2 * Block]);
        }

        return result.ToArray();
    }

    /// <summary>Recomputes the checksum of every block that carries the ustar magic, so mutated headers still parse.</summary>
    public static byte[] FixChecksums(byte[] tar)
    {
        for (var offset = 0; offset + Block <= tar.Length; offset += Block)
        {
            if (tar.AsSpan(offset + 257, 5).SequenceEqual("ustar"u8))
            {
                var header = tar.AsSpan(offset, Block).ToArray();
                WriteChecksum(header);
                header.CopyTo(tar, offset);
            }
        }

        return tar;
    }

    /// <summary>One PAX record: "LEN key=value\n", where LEN counts itself.</summary>
    public static byte[] PaxRecord(string key, string value)
    {
        var payload = Encoding.UTF8.GetByteCount(" " + key + "=" + value + "\n");
        var length = payload + 1;
        while (length.ToString(CultureInfo.InvariantCulture).Length + payload != length)
        {
            length++;
        }

        return Encoding.UTF8.GetBytes(length.ToString(CultureInfo.InvariantCulture) + " " + key + "=" + value + "\n");
    }

    private void WritePadded(byte[] data)
    {
        _bytes.Write(data);
        var padding = (Block - data.Length % Block) % Block;
        _bytes.Write(new byte[padding]);
    }

    private static void Put(byte[] header, int offset, int length, byte[] value)
    {
        if (value.Length > length)
        {
            throw new ArgumentException($"{value.Length} bytes do not fit a {length}-byte header field");
        }

        value.CopyTo(header, offset);
    }

    private static void PutOctal(byte[] header, int offset, int length, long value)
    {
        var digits = Convert.ToString(value, 8).PadLeft(length - 1, '0');
        Put(header, offset, length, Encoding.ASCII.GetBytes(digits + "\0"));
    }

    /// <summary>The sum of the header's bytes with the checksum field counted as spaces, as six octal digits, NUL, space.</summary>
    private static void WriteChecksum(byte[] header)
    {
        Array.Fill(header, (byte)' ', 148, 8);
        var sum = header.Sum(b => (int)b);
        var digits = Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ");
        digits.CopyTo(header, 148);
    }
}
