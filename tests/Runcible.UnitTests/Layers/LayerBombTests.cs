using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using Runcible.Core.IO;
using Runcible.Core.Layers;
using Runcible.Core.Oci;

namespace Runcible.Tests.Layers;

/// <summary>
/// Decompression bombs and damaged layers: every one ends in a coded error (or, where the rule
/// keeps it, a correct tree) quickly and in bounded memory, and leaves nothing behind.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class LayerBombTests
{
    // Generous for a loaded 2-core CI run; the quadratic and exponential behaviours these guard against took 40 s to minutes.
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(30);

    [Fact]
    public void ALayerPastTheAbsoluteBoundIsRefused()
    {
        using var harness = new EscapeHarness();
        var image = new TestImage().RawLayer(new RawTar().File("big", new string('x', 2 << 20)).Build());
        var error = harness.AssertRefused(image, "RUNCIBLE2007", new FlattenOptions { MaxLayerBytes = 1 << 20 });
        Assert.Contains("absolute bound", error.Message);
    }

    [Theory]
    [InlineData(nameof(LayerCompression.Gzip))]
    [InlineData(nameof(LayerCompression.Zstd))]
    public void ALayerPastTheCompressionRatioIsRefused(string compressionName)
    {
        var compression = Enum.Parse<LayerCompression>(compressionName);
        using var harness = new EscapeHarness();
        var image = new TestImage().RawLayer(new RawTar().Entry("zeros", '0', new byte[8 << 20]).Build(), compression);
        var error = harness.AssertRefused(image, "RUNCIBLE2007", new FlattenOptions { RatioCheckFloor = 1 << 16, MaxCompressionRatio = 100 });
        Assert.Contains("times its compressed size", error.Message);
    }

    /// <summary>1 GiB of zeros is ~40 KiB of zstd: with the default bounds it stops at the ratio floor (64 MiB) long before.</summary>
    [Fact]
    public void AZstdBombWithDefaultBoundsStopsEarly()
    {
        using var harness = new EscapeHarness();
        const long size = 1L << 30;
        var (blob, diffId) = Compress(LayerCompression.Zstd, output =>
        {
            output.Write(RawTar.Header("bomb", '0', size));
            var zeros = new byte[1 << 20];
            for (long written = 0; written < size; written += zeros.Length)
            {
                output.Write(zeros);
            }

            output.Write(new byte[2 * RawTar.Block]);
        });
        Assert.True(blob.Length < 1 << 20, $"the bomb is {blob.Length} bytes compressed");
        var clock = Stopwatch.StartNew();
        harness.AssertRefused(new TestImage().CompressedBlob(blob, LayerCompression.Zstd, diffId), "RUNCIBLE2007");
        Assert.True(clock.Elapsed < Budget, $"took {clock.Elapsed}");
    }

    /// <summary>A zstd frame header can ask for a window of up to 2 GiB, which the decoder would allocate.</summary>
    [Theory]
    [InlineData(28)]
    [InlineData(31)]
    public void AZstdFrameAskingForAHugeWindowIsRefused(int windowLog)
    {
        using var harness = new EscapeHarness();
        var tar = new RawTar().File("a", "a").Build();
        var frame = new MemoryStream();
        frame.Write([0x28, 0xB5, 0x2F, 0xFD]);
        frame.WriteByte(0x00); // frame header descriptor: no single segment, no content size, no checksum
        frame.WriteByte((byte)((windowLog - 10) << 3)); // window descriptor: 2^windowLog bytes
        var blockHeader = (tar.Length << 3) | 1; // last block, raw
        frame.Write([(byte)blockHeader, (byte)(blockHeader >> 8), (byte)(blockHeader >> 16)]);
        frame.Write(tar);
        var error = harness.AssertRefused(new TestImage().CompressedBlob(frame.ToArray(), LayerCompression.Zstd, DiffId(tar)), "RUNCIBLE2009");
        Assert.Contains("zstd", error.Message);
    }

    [Theory]
    [InlineData(nameof(LayerCompression.Gzip))]
    [InlineData(nameof(LayerCompression.Zstd))]
    public void ATruncatedCompressedLayerIsRefused(string compressionName)
    {
        var compression = Enum.Parse<LayerCompression>(compressionName);
        using var harness = new EscapeHarness();
        var tar = new RawTar().Dir("etc/").File("etc/a", new string('a', 100_000)).File("etc/b", RandomText(100_000)).Build();
        var (blob, diffId) = Compress(compression, output => output.Write(tar));
        harness.AssertRefused(new TestImage().CompressedBlob(blob[..(blob.Length / 2)], compression, diffId), "RUNCIBLE2009");
        harness.AssertRefused(new TestImage().CompressedBlob(blob[..(blob.Length - 20)], compression, diffId), "RUNCIBLE2009");
    }

    [Fact]
    public void AZstdFrameCutInItsChecksumIsRefused()
    {
        using var harness = new EscapeHarness();
        var tar = new RawTar().File("a", "a").Build();
        var (blob, diffId) = Compress(LayerCompression.Zstd, output => output.Write(tar));
        harness.AssertRefused(new TestImage().CompressedBlob(blob[..^2], LayerCompression.Zstd, diffId), "RUNCIBLE2009");
    }

    [Fact]
    public void ATruncatedTarIsRefused()
    {
        using var harness = new EscapeHarness();
        var tar = new RawTar().Dir("etc/").File("etc/a", new string('a', 5000)).File("etc/b", "b").Build(endMarker: false);
        // Cut inside the data of etc/a, and inside the header of etc/b: the diff_ids match what is there.
        harness.AssertRefused(new TestImage().RawLayer(tar[..(3 * RawTar.Block)], LayerCompression.None), "RUNCIBLE2009");
        harness.AssertRefused(new TestImage().RawLayer(tar[..(3 * RawTar.Block)]), "RUNCIBLE2009");
        harness.AssertRefused(new TestImage().RawLayer(tar[..(RawTar.Block * 12 + 100)]), "RUNCIBLE2009");
    }

    /// <summary>
    /// As Go's archive/tar reads it (umoci 0.4.7's insert writes such layers): a tar that ends at an entry
    /// boundary without its end blocks, with one end block only, or without the last entry's padding, ends there.
    /// </summary>
    [Theory]
    [InlineData(nameof(LayerCompression.None))]
    [InlineData(nameof(LayerCompression.Gzip))]
    [InlineData(nameof(LayerCompression.Zstd))]
    public void ATarEndingAtAnEntryBoundaryEndsThere(string compressionName)
    {
        var compression = Enum.Parse<LayerCompression>(compressionName);
        using var harness = new EscapeHarness();
        var withoutEnd = new RawTar().Dir("etc/").File("etc/a", new string('a', 700)).File("etc/b", "bb").Build(endMarker: false);
        var cuts = new[]
        {
            withoutEnd, // no end-of-archive blocks
            withoutEnd.Concat(new byte[RawTar.Block]).ToArray(), // one of the two
            withoutEnd[..^(RawTar.Block - 2)], // the last entry's data, no padding
            withoutEnd[..^100], // part of its padding
        };
        foreach (var tar in cuts)
        {
            var rootfs = harness.FlattenAndExtract(new TestImage().RawLayer(tar, compression));
            Assert.Equal(new string('a', 700), File.ReadAllText(Path.Combine(rootfs, "etc/a")));
            Assert.Equal("bb", File.ReadAllText(Path.Combine(rootfs, "etc/b")));
            Directory.Delete(rootfs, recursive: true);
        }

        // An empty layer is an empty archive; the files of a layer above it still land.
        var empty = harness.FlattenAndExtract(new TestImage().RawLayer([], compression).RawLayer(withoutEnd, compression));
        Assert.Equal("bb", File.ReadAllText(Path.Combine(empty, "etc/b")));
    }

    /// <summary>Lenient at the end, strict inside an entry; the diff_id still covers exactly the bytes there are.</summary>
    [Fact]
    public void ATarCutInsideAnEntryIsRefusedAndTheDiffIdStaysChecked()
    {
        using var harness = new EscapeHarness();
        var withoutEnd = new RawTar().File("a", new string('a', 700)).File("b", "bb").Build(endMarker: false);
        // Inside the last header, inside the last entry's data (its data is 2 bytes: cut after 1), inside the first entry's data.
        harness.AssertRefused(new TestImage().RawLayer(withoutEnd[..^(RawTar.Block + 100)]), "RUNCIBLE2009");
        harness.AssertRefused(new TestImage().RawLayer(withoutEnd[..^(RawTar.Block - 1)]), "RUNCIBLE2009");
        harness.AssertRefused(new TestImage().RawLayer(withoutEnd[..(RawTar.Block + 600)], LayerCompression.Zstd), "RUNCIBLE2009");

        // A PAX header or a GNU long name whose entry is missing is an entry cut short.
        harness.AssertRefused(new TestImage().RawLayer(new RawTar().File("a", "a").Pax(("path", "named")).Build(endMarker: false)), "RUNCIBLE2009");
        harness.AssertRefused(new TestImage().RawLayer(new RawTar().File("a", "a").GnuLongName(new string('n', 200)).Build(endMarker: false)), "RUNCIBLE2009");

        // The zeros supplied for the missing end are not the publisher's bytes: the diff_id is of what is there.
        harness.AssertRefused(new TestImage().RawLayer(withoutEnd, diffId: DiffId(withoutEnd.Concat(new byte[2 * RawTar.Block]).ToArray())), "RUNCIBLE2010");
    }

    [Fact]
    public void TrailingGarbageAfterTheTarEndIsHashedButNotRead()
    {
        using var harness = new EscapeHarness();
        var garbage = new RawTar().File("hidden", "after the end").Build();
        var tar = new RawTar().File("kept", "kept").Build().Concat(garbage).Concat(RandomBytes(10_000)).ToArray();
        var rootfs = harness.FlattenAndExtract(new TestImage().RawLayer(tar));
        Assert.Equal("kept", File.ReadAllText(Path.Combine(rootfs, "kept")));
        Assert.False(File.Exists(Path.Combine(rootfs, "hidden")));

        // The garbage counts against the bounds, and is part of the diff_id.
        harness.AssertRefused(new TestImage().RawLayer(tar), "RUNCIBLE2007", new FlattenOptions { MaxLayerBytes = 4 * RawTar.Block });
        harness.AssertRefused(new TestImage().RawLayer(tar, diffId: DiffId(tar[..(4 * RawTar.Block)])), "RUNCIBLE2010");
    }

    /// <summary>
    /// After the last gzip member, bytes that do not start another member are never decompressed
    /// (GZipStream's rule; the blob digest covers them and the diff_id proves the tar whole); bytes
    /// that start a member must be a valid one.
    /// </summary>
    [Fact]
    public void GarbageAfterTheGzipStreamNeverReachesTheTree()
    {
        using var harness = new EscapeHarness();
        var tar = new RawTar().File("kept", "kept").Build();
        var (blob, diffId) = Compress(LayerCompression.Gzip, output => output.Write(tar));
        var garbage = RandomBytes(1000);
        garbage[0] = 0;
        var rootfs = harness.FlattenAndExtract(new TestImage().CompressedBlob([.. blob, .. garbage], LayerCompression.Gzip, diffId));
        Assert.Equal(["kept"], Directory.GetFileSystemEntries(rootfs).Select(Path.GetFileName).Where(n => n is not ("dev" or "proc" or "sys")));
        harness.AssertRefused(new TestImage().CompressedBlob([.. blob, 0x1F, 0x8B, 0x08, 0x00, .. garbage], LayerCompression.Gzip, diffId), "RUNCIBLE2009");
    }

    /// <summary>
    /// A PAX header or GNU long name claiming 256 MiB (zeros, ~10 KiB of zstd): TarReader would allocate
    /// the whole record before any name check, so the size is refused from the header, allocating
    /// nearly nothing.
    /// </summary>
    [Theory]
    [InlineData('x')]
    [InlineData('g')]
    [InlineData('L')]
    [InlineData('K')]
    public void AHugeMetadataRecordIsRefusedBeforeItIsRead(char type)
    {
        using var harness = new EscapeHarness();
        const long size = 256L << 20;
        var (blob, diffId) = Compress(LayerCompression.Zstd, output =>
        {
            output.Write(RawTar.Header("huge", type, size));
            var zeros = new byte[1 << 20];
            for (long written = 0; written < size; written += zeros.Length)
            {
                output.Write(zeros);
            }

            output.Write(new RawTar().File("next", "next").Build());
        });
        var pulled = harness.Pull(new TestImage().CompressedBlob(blob, LayerCompression.Zstd, diffId));
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<Runcible.Core.Diagnostics.RuncibleException>(() => FlattenAssertions.Flatten(pulled));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        Assert.Equal("RUNCIBLE2020", error.Code);
        Assert.True(allocated < 64 << 20, $"allocated {allocated} bytes");
    }

    /// <summary>
    /// The guard follows the block structure as TarReader does (data skipped, a PAX size record
    /// overriding the header's size field), so file contents that look like huge metadata headers
    /// are only contents.
    /// </summary>
    [Fact]
    public void FileContentsThatLookLikeHugeHeadersAreKept()
    {
        using var harness = new EscapeHarness();
        var lookalike = RawTar.Header("fake", 'L', 512L << 20).Concat(RawTar.Header("fake", 'x', 512L << 20)).ToArray();
        var tar = new RawTar()
            .Entry("plain", '0', lookalike)
            .Pax(("size", lookalike.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            .Bytes(RawTar.Header("overridden", '0', 0))
            .Bytes(lookalike)
            .Build();
        var rootfs = harness.FlattenAndExtract(new TestImage().RawLayer(tar));
        Assert.Equal(lookalike, File.ReadAllBytes(Path.Combine(rootfs, "plain")));
        Assert.Equal(lookalike, File.ReadAllBytes(Path.Combine(rootfs, "overridden")));
    }

    /// <summary>
    /// A layer that names the same directory opaque 50,000 times and whites out a directory it added
    /// itself 50,000 times, over 200,000 files: each subtree is walked once, not once per whiteout.
    /// </summary>
    [Fact]
    public void RepeatedWhiteoutsOfABigDirectoryTakeLinearTime()
    {
        using var harness = new EscapeHarness();
        const int files = 100_000;
        const int repeats = 50_000;
        var (lower, lowerDiffId) = Compress(LayerCompression.Gzip, output =>
        {
            output.Write(RawTar.Header("big/", '5', 0, mode: 0x1ED));
            output.Write(RawTar.Header("big/inner/", '5', 0, mode: 0x1ED));
            for (var file = 0; file < files; file++)
            {
                output.Write(RawTar.Header($"big/inner/f{file}", '0', 0));
            }

            output.Write(new byte[2 * RawTar.Block]);
        });
        var (upper, upperDiffId) = Compress(LayerCompression.Gzip, output =>
        {
            output.Write(RawTar.Header("big/", '5', 0, mode: 0x1ED));
            output.Write(RawTar.Header("big/inner/", '5', 0, mode: 0x1ED));
            for (var file = 0; file < files; file++)
            {
                output.Write(RawTar.Header($"big/inner/g{file}", '0', 0));
            }

            for (var repeat = 0; repeat < repeats; repeat++)
            {
                output.Write(RawTar.Header("big/inner/.wh..wh..opq", '0', 0));
                output.Write(RawTar.Header("big/.wh.inner", '0', 0));
            }

            output.Write(new byte[2 * RawTar.Block]);
        });
        var pulled = harness.Pull(new TestImage().CompressedBlob(lower, LayerCompression.Gzip, lowerDiffId).CompressedBlob(upper, LayerCompression.Gzip, upperDiffId));
        var clock = Stopwatch.StartNew();
        using var rootfs = FlattenAssertions.Flatten(pulled);
        Assert.True(clock.Elapsed < Budget, $"took {clock.Elapsed}");
        var inner = rootfs.Resolve("/big/inner")!;
        Assert.Equal(files, inner.Children!.Count);
        Assert.All(inner.Children.Keys, name => Assert.StartsWith("g", name, StringComparison.Ordinal));
    }

    /// <summary>
    /// 20,000 files 1,900 directories deep (names within the bound): writing each path must cost its
    /// length, not its depth times its length.
    /// </summary>
    [Fact]
    public void DeepPathsAreWrittenInTimeLinearInTheirLength()
    {
        using var harness = new EscapeHarness();
        var deep = string.Concat(Enumerable.Repeat("d/", 1900));
        var (blob, diffId) = Compress(LayerCompression.Gzip, output =>
        {
            for (var file = 0; file < 20_000; file++)
            {
                output.Write(new RawTar().Pax(("path", $"{deep}f{file}")).Entry("placeholder", '0').Build(endMarker: false));
            }

            output.Write(new byte[2 * RawTar.Block]);
        });
        var pulled = harness.Pull(new TestImage().CompressedBlob(blob, LayerCompression.Gzip, diffId));
        var clock = Stopwatch.StartNew();
        using var rootfs = FlattenAssertions.Flatten(pulled);
        var output = new CountingStream();
        using (var writer = new System.Formats.Tar.TarWriter(output, System.Formats.Tar.TarEntryFormat.Gnu, leaveOpen: true))
        {
            rootfs.WriteEntries(writer, "rootfs/");
        }

        Assert.True(clock.Elapsed < Budget, $"took {clock.Elapsed}");
        Assert.True(output.Written > 20_000L * deep.Length);
    }

    /// <summary>
    /// Symlinks whose targets are long relative paths, each planted at the end of the one before: a
    /// short entry name resolves 40 links deep to a path of 80,000 bytes. Paths of the tree are held
    /// to the name bound wherever they come from.
    /// </summary>
    [Fact]
    public void PathsLengthenedThroughSymlinksAreHeldToTheNameBound()
    {
        using var harness = new EscapeHarness();
        var target = string.Join('/', Enumerable.Repeat("d", 1000));
        var layer = new RawTar();
        for (var level = 1; level <= 40; level++)
        {
            layer.Pax(("linkpath", target)).Symlink(string.Join('/', Enumerable.Repeat("s", level)), "placeholder");
        }

        layer.File(string.Join('/', Enumerable.Repeat("s", 40)) + "/x", "x");
        var error = harness.AssertRefused(new TestImage().RawLayer(layer.Build()), "RUNCIBLE2021");
        Assert.Contains("4096", error.Message);
    }

    /// <summary>A million empty files (512 MiB of headers, a few MiB gzipped): stopped by the entry bound, fast and small.</summary>
    [Fact]
    public void AMillionTinyEntriesStopAtTheEntryBound()
    {
        using var harness = new EscapeHarness();
        var image = MillionEntries();
        var pulled = harness.Pull(image);
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<Runcible.Core.Diagnostics.RuncibleException>(() => FlattenAssertions.Flatten(pulled, options: new FlattenOptions { MaxEntries = 100_000 }));
        Assert.Equal("RUNCIBLE2008", error.Code);
        Assert.True(clock.Elapsed < Budget, $"took {clock.Elapsed}");
    }

    /// <summary>The same million entries within the default bounds: indexed in time, with the index's memory per entry small.</summary>
    [Fact]
    public void AMillionTinyEntriesWithinTheBoundsAreIndexedInBoundedTimeAndMemory()
    {
        using var harness = new EscapeHarness();
        var pulled = harness.Pull(MillionEntries());
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        using var rootfs = FlattenAssertions.Flatten(pulled);
        Assert.True(clock.Elapsed < Budget, $"took {clock.Elapsed}");
        var held = GC.GetTotalMemory(forceFullCollection: true) - before;
        TestContext.Current.TestOutputHelper?.WriteLine($"a million entries: {clock.Elapsed}, index {held} bytes");
        Assert.True(held < 1_000_000 * 500L, $"the index of a million entries holds {held} bytes");
        Assert.Equal(1_000_000 + 1_000 + 3, rootfs.Nodes().Count());
        GC.KeepAlive(rootfs);
    }

    private static TestImage MillionEntries()
    {
        var (blob, diffId) = Compress(LayerCompression.Gzip, output =>
        {
            for (var directory = 0; directory < 1000; directory++)
            {
                output.Write(RawTar.Header($"d{directory:D3}/", '5', 0, mode: 0x1ED));
                for (var file = 0; file < 1000; file++)
                {
                    output.Write(RawTar.Header($"d{directory:D3}/f{file:D3}", '0', 0));
                }
            }

            output.Write(new byte[2 * RawTar.Block]);
        });
        return new TestImage().CompressedBlob(blob, LayerCompression.Gzip, diffId);
    }

    /// <summary>Compresses what <paramref name="write"/> writes, returning the blob and the diff_id of the uncompressed bytes.</summary>
    private static (byte[] Blob, string DiffId) Compress(LayerCompression compression, Action<Stream> write)
    {
        var blob = new MemoryStream();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (Stream compressor = compression == LayerCompression.Gzip
            ? new GZipStream(blob, CompressionLevel.Fastest, leaveOpen: true)
            : new ZstdSharp.CompressionStream(blob, 3, leaveOpen: true))
        {
            using var hashing = new HashingWriteStream(compressor, hash);
            write(hashing);
        }

        return (blob.ToArray(), "sha256:" + Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant());
    }

    private static string DiffId(byte[] uncompressed) => "sha256:" + Convert.ToHexString(SHA256.HashData(uncompressed)).ToLowerInvariant();

    private static byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        new Random(42).NextBytes(bytes);
        return bytes;
    }

    private static string RandomText(int count) => Convert.ToBase64String(RandomBytes(count))[..count];

    private sealed class CountingStream : ForwardWriteStream
    {
        public long Written { get; private set; }

        public override void Write(ReadOnlySpan<byte> buffer) => Written += buffer.Length;
    }

    private sealed class HashingWriteStream(Stream inner, IncrementalHash hash) : ForwardWriteStream
    {
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            hash.AppendData(buffer);
            inner.Write(buffer);
        }

        public override void Flush() => inner.Flush();
    }
}
