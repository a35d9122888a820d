using Runcible.Core.Bundle;
using Runcible.Core.Contracts;

namespace Runcible.Tests.Bundle;

/// <summary>Tests that measure the process's allocations, so nothing else may run beside them.</summary>
[CollectionDefinition(nameof(AllocationMeasurements), DisableParallelization = true)]
public sealed class AllocationMeasurements;

[Collection(nameof(AllocationMeasurements))]
public class ChunkedCompressionAllocationTests
{
    private const int ChunkSize = 256 * 1024;

    [Theory]
    [InlineData(nameof(BundleCompression.Gzip))]
    [InlineData(nameof(BundleCompression.Zstd))]
    public void ChunkBuffersAreReusedNotAllocatedPerChunk(string compressionName)
    {
        var compression = Enum.Parse<BundleCompression>(compressionName);
        // A fresh chunk buffer, output buffer (and zstd context) per chunk cost a cold build about a second in
        // page faults, zeroing and garbage collections; the stream keeps one set per chunk in flight instead.
        var input = new byte[48 * ChunkSize];
        var random = new Random(5);
        for (var i = 0; i < input.Length; i++)
        {
            input[i] = (byte)('a' + random.Next(6));
        }

        CompressAll(input, compression);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        CompressAll(input, compression);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        // 48 chunks of input alone would be 12 MiB; three chunks in flight plus one filling, with their output
        // buffers, need about 2 MiB, and a gzip member's stream object or a task per chunk are small.
        Assert.True(allocated < 16 * ChunkSize, $"{allocated} bytes allocated to compress {input.Length}");
    }

    private static void CompressAll(byte[] input, BundleCompression compression)
    {
        using var stream = new ChunkedCompressionStream(Stream.Null, compression, ChunkSize, parallelism: 3);
        for (var offset = 0; offset < input.Length; offset += 65536)
        {
            stream.Write(input, offset, 65536);
        }

        stream.Finish();
    }
}
