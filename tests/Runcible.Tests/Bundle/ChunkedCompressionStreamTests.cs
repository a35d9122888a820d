using System.IO.Compression;
using Runcible.Core.Bundle;

namespace Runcible.Tests.Bundle;

public class ChunkedCompressionStreamTests
{
    private static byte[] Input()
    {
        var data = new byte[3 * 1024 * 1024 + 777];
        new Random(7).NextBytes(data.AsSpan(0, data.Length / 3));
        return data;
    }

    private static byte[] Compress(byte[] input, BundleCompression compression, int parallelism, int writeSize)
    {
        var output = new MemoryStream();
        using (var stream = new ChunkedCompressionStream(output, compression, 256 * 1024, parallelism))
        {
            for (var offset = 0; offset < input.Length; offset += writeSize)
            {
                stream.Write(input, offset, Math.Min(writeSize, input.Length - offset));
            }

            stream.Finish();
        }

        return output.ToArray();
    }

    [Theory]
    [InlineData(BundleCompression.Gzip)]
    [InlineData(BundleCompression.Zstd)]
    public void OutputIsTheSameWhateverTheParallelismAndWritePattern(BundleCompression compression)
    {
        var input = Input();
        var serial = Compress(input, compression, 1, 1 << 20);
        Assert.Equal(serial, Compress(input, compression, 4, 4096));
        Assert.Equal(serial, Compress(input, compression, 2, 100_003));
    }

    [Fact]
    public void GzipMembersHaveAFixedHeaderAndConcatenateToTheInput()
    {
        var input = Input();
        var compressed = Compress(input, BundleCompression.Gzip, 2, 65536);

        // Every member starts 1f 8b 08 00, mtime 0, xfl 0, OS 3 (Unix); there are several members.
        Assert.Equal(new byte[] { 0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3 }, compressed[..10]);
        var members = 0;
        for (var i = 0; i + 10 <= compressed.Length; i++)
        {
            if (compressed.AsSpan(i, 10).SequenceEqual(new byte[] { 0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3 }))
            {
                members++;
            }
        }

        Assert.True(members >= 13, $"{members} members");
        using var gzip = new GZipStream(new MemoryStream(compressed), CompressionMode.Decompress);
        var roundTrip = new MemoryStream();
        gzip.CopyTo(roundTrip);
        Assert.Equal(input, roundTrip.ToArray());
    }

    [Fact]
    public void ZstdFramesConcatenateToTheInput()
    {
        var input = Input();
        var compressed = Compress(input, BundleCompression.Zstd, 2, 65536);
        using var zstd = new ZstdSharp.DecompressionStream(new MemoryStream(compressed));
        var roundTrip = new MemoryStream();
        zstd.CopyTo(roundTrip);
        Assert.Equal(input, roundTrip.ToArray());
    }
}
