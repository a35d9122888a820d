using System.IO.Compression;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;

namespace Runcible.Tests.Bundle;

public class ChunkedCompressionStreamTests
{
    private static byte[] Input()
    {
        var data = new byte[3 * 1024 * 1024 + 777];
        new Random(7).NextBytes(data.AsSpan(0, data.Length / 3));
        return data;
    }

    /// <summary>
    /// Text-like data (words from a small vocabulary, numbers, punctuation): compressible, with
    /// matches that the levels' search effort finds to different degrees, unlike zeros or noise.
    /// </summary>
    private static byte[] TextInput(int length = 1024 * 1024 + 333)
    {
        string[] words = ["runc", "bundle", "layer", "rootfs", "config", "json", "gzip", "member", "chunk", "level", "tar", "entry",
            "header", "digest", "sha256", "manifest", "image", "registry", "the", "a", "of", "and", "to", "in", "is", "with"];
        var random = new Random(11);
        var text = new System.Text.StringBuilder(length + 64);
        while (text.Length < length)
        {
            text.Append(words[random.Next(words.Length)]);
            text.Append(random.Next(8) switch { 0 => ", ", 1 => ".\n", 2 => " " + random.Next(100_000) + " ", _ => " " });
        }

        return System.Text.Encoding.ASCII.GetBytes(text.ToString(0, length));
    }

    private static byte[] Decompress(byte[] compressed, BundleCompression compression)
    {
        using Stream decompressor = compression == BundleCompression.Gzip
            ? new GZipStream(new MemoryStream(compressed), CompressionMode.Decompress)
            : new ZstdSharp.DecompressionStream(new MemoryStream(compressed));
        var output = new MemoryStream();
        decompressor.CopyTo(output);
        return output.ToArray();
    }

    private static byte[] Compress(byte[] input, BundleCompression compression, int parallelism, int writeSize, int? level = null)
    {
        var output = new MemoryStream();
        using (var stream = new ChunkedCompressionStream(output, compression, 256 * 1024, parallelism, level))
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
    [InlineData(nameof(BundleCompression.Gzip))]
    [InlineData(nameof(BundleCompression.Zstd))]
    public void OutputIsTheSameWhateverTheParallelismAndWritePattern(string compressionName)
    {
        var compression = Enum.Parse<BundleCompression>(compressionName);
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

    private static readonly byte[] GzipMemberHeader = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3];

    [Fact]
    public void TheGzipLevelReachesTheCompressor()
    {
        var input = TextInput();
        var byLevel = Enumerable.Range(1, 9).ToDictionary(level => level, level => Compress(input, BundleCompression.Gzip, 2, 65536, level));
        foreach (var (level, compressed) in byLevel)
        {
            // Fixed headers at every level (zlib's XFL byte differs by level) and several members.
            Assert.Equal(GzipMemberHeader, compressed[..10]);
            Assert.True(compressed.Length < input.Length / 2, $"level {level}: {compressed.Length} bytes");
            Assert.Equal(input, Decompress(compressed, BundleCompression.Gzip));
        }

        Assert.NotEqual(byLevel[1], byLevel[9]);
        Assert.True(byLevel[9].Length <= byLevel[1].Length, $"level 9 {byLevel[9].Length} bytes, level 1 {byLevel[1].Length}");

        // The default is level 2.
        Assert.Equal(byLevel[BundleCompressionLevels.DefaultGzip], Compress(input, BundleCompression.Gzip, 2, 65536));
        Assert.Equal(2, BundleCompressionLevels.DefaultGzip);
    }

    [Fact]
    public void GzipLevelsAreExactOnThisRuntimeNotTheNet8Approximation()
    {
        // .NET 8 has only Fastest (levels 1-3) and Optimal (4-9): 1, 2 and 6 could not give three different outputs.
        Assert.True(GzipMember.HasNumericLevels, $".NET {Environment.Version} should have ZLibCompressionOptions");
        var input = TextInput();
        var one = Compress(input, BundleCompression.Gzip, 2, 65536, 1);
        var two = Compress(input, BundleCompression.Gzip, 2, 65536, 2);
        var six = Compress(input, BundleCompression.Gzip, 2, 65536, 6);
        Assert.NotEqual(one, two);
        Assert.NotEqual(two, six);
        Assert.NotEqual(one, six);
    }

    [Fact]
    public void TheNet8ApproximationMapsLevelsToFastestAndOptimal()
    {
        var input = TextInput(256 * 1024);
        var approximated = Enumerable.Range(1, 9).Select(level => GzipMember.Compress(input, level, numericLevels: false)).ToList();
        Assert.All(approximated.Take(3), bytes => Assert.Equal(approximated[0], bytes));
        Assert.All(approximated.Skip(3), bytes => Assert.Equal(approximated[3], bytes));
        Assert.NotEqual(approximated[0], approximated[3]);
        Assert.All(approximated, bytes => Assert.Equal(GzipMemberHeader, bytes[..10]));
        Assert.Equal(input, Decompress(approximated[0], BundleCompression.Gzip));
        Assert.Equal(input, Decompress(approximated[8], BundleCompression.Gzip));
    }

    [Fact]
    public void TheZstdLevelReachesTheCompressor()
    {
        var input = TextInput();
        var byLevel = new[] { 1, 3, 19 }.ToDictionary(level => level, level => Compress(input, BundleCompression.Zstd, 2, 65536, level));
        foreach (var (level, compressed) in byLevel)
        {
            Assert.True(compressed.Length < input.Length / 2, $"level {level}: {compressed.Length} bytes");
            Assert.Equal(input, Decompress(compressed, BundleCompression.Zstd));
        }

        Assert.NotEqual(byLevel[1], byLevel[3]);
        Assert.NotEqual(byLevel[3], byLevel[19]);
        Assert.True(byLevel[19].Length <= byLevel[1].Length, $"level 19 {byLevel[19].Length} bytes, level 1 {byLevel[1].Length}");

        // The default stays zstd's own 3.
        Assert.Equal(byLevel[3], Compress(input, BundleCompression.Zstd, 2, 65536));
    }

    [Theory]
    [InlineData(nameof(BundleCompression.Gzip))]
    [InlineData(nameof(BundleCompression.Zstd))]
    public void EachChunkIsTheSameAsCompressedAlone(string compressionName)
    {
        var compression = Enum.Parse<BundleCompression>(compressionName);
        // Buffers and zstd contexts are reused from chunk to chunk: nothing of one chunk may reach the next.
        var input = TextInput(5 * 256 * 1024 + 1000);
        var expected = new MemoryStream();
        for (var offset = 0; offset < input.Length; offset += 256 * 1024)
        {
            expected.Write(CompressAlone(input.AsSpan(offset, Math.Min(256 * 1024, input.Length - offset)), compression));
        }

        Assert.Equal(expected.ToArray(), Compress(input, compression, 2, 65536));
        Assert.Equal(expected.ToArray(), Compress(input, compression, 1, 4096));
    }

    /// <summary>One chunk compressed on its own, with a fresh compressor: a gzip member as the stream writes it, or a zstd frame with a checksum at the default level.</summary>
    private static byte[] CompressAlone(ReadOnlySpan<byte> data, BundleCompression compression)
    {
        if (compression == BundleCompression.Gzip)
        {
            return GzipMember.Compress(data, BundleCompressionLevels.DefaultGzip);
        }

        using var zstd = new ZstdSharp.Compressor(BundleCompressionLevels.DefaultZstd);
        zstd.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        return zstd.Wrap(data).ToArray();
    }

    [Fact]
    public void AnAbandonedStreamCanBeDisposedWithChunksInFlight()
    {
        var output = new MemoryStream();
        var stream = new ChunkedCompressionStream(output, BundleCompression.Zstd, 256 * 1024, parallelism: 4);
        stream.Write(TextInput(3 * 256 * 1024));
        stream.Dispose();
        Assert.Equal(0, output.Length);
        Assert.Throws<ObjectDisposedException>(() => stream.Write(new byte[1]));
    }

    [Theory]
    [InlineData(nameof(BundleCompression.Gzip))]
    [InlineData(nameof(BundleCompression.Zstd))]
    public void AFailingDestinationSurfacesItsErrorAndTheStreamCanStillBeDisposed(string compressionName)
    {
        var compression = Enum.Parse<BundleCompression>(compressionName);
        var stream = new ChunkedCompressionStream(new FailingStream(), compression, 256 * 1024, parallelism: 2);
        var input = TextInput(8 * 256 * 1024);
        Assert.Throws<IOException>(() =>
        {
            for (var offset = 0; offset < input.Length; offset += 65536)
            {
                stream.Write(input, offset, 65536);
            }
        });
        stream.Dispose();
        Assert.Throws<ObjectDisposedException>(() => stream.Write(new byte[1]));
    }

    private sealed class FailingStream : MemoryStream
    {
        public override void Write(ReadOnlySpan<byte> buffer) => throw new IOException("disk full");

        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("disk full");
    }

    [Theory]
    [InlineData(nameof(BundleCompression.Gzip), 0)]
    [InlineData(nameof(BundleCompression.Gzip), 10)]
    [InlineData(nameof(BundleCompression.Zstd), 0)]
    [InlineData(nameof(BundleCompression.Zstd), 20)]
    [InlineData(nameof(BundleCompression.None), 1)]
    public void LevelsOutOfRangeAreRefused(string compressionName, int level) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChunkedCompressionStream(new MemoryStream(), Enum.Parse<BundleCompression>(compressionName), level: level));
}
