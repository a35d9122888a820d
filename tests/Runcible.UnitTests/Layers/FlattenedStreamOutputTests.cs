using System.Formats.Tar;
using Runcible.Core.IO;
using Runcible.Core.Oci;

namespace Runcible.Tests.Layers;

/// <summary>Where the flattened stream can go: unseekable write-only compressors, and outputs that fail.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class FlattenedStreamOutputTests
{
    [Fact]
    public async Task TheFlattenedStreamIsWrittenIntoAnUnseekableWriteOnlyCompressor()
    {
        using var harness = new EscapeHarness();
        using var rootfs = harness.Flatten(new TestImage()
            .Layer(w =>
            {
                w.WriteEntry(TestImage.Dir("etc/"));
                w.WriteEntry(TestImage.File("etc/passwd", "root:x:0:0::/root:/bin/sh\n"));
                w.WriteEntry(TestImage.File("big", new string('b', 300_000)));
            })
            .Layer(w => w.WriteEntry(TestImage.Link(TarEntryType.HardLink, "passwd-link", "etc/passwd")), LayerCompression.Zstd));

        using var pipe = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.Out);
        using var readEnd = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.In, pipe.ClientSafePipeHandle);
        var received = Task.Run(() =>
        {
            var buffer = new MemoryStream();
            readEnd.CopyTo(buffer);
            return buffer.ToArray();
        }, TestContext.Current.CancellationToken);
        Assert.False(pipe.CanSeek);
        Assert.False(pipe.CanRead);
        using (var compressor = new ZstdSharp.CompressionStream(pipe, 3, leaveOpen: true))
        {
            using var writer = new TarWriter(compressor, TarEntryFormat.Gnu, leaveOpen: true);
            rootfs.WriteEntries(writer, "rootfs/");
        }

        pipe.Dispose();
        var tar = new MemoryStream(new ZstdSharp.Decompressor().Unwrap(await received.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken)).ToArray());
        using var reader = new TarReader(tar);
        var entries = new Dictionary<string, string>();
        while (reader.GetNextEntry(copyData: true) is { } entry)
        {
            entries[entry.Name] = entry.EntryType == TarEntryType.HardLink ? "-> " + entry.LinkName
                : entry.DataStream is null ? entry.EntryType.ToString() : new StreamReader(entry.DataStream).ReadToEnd();
        }

        Assert.Equal("root:x:0:0::/root:/bin/sh\n", entries["rootfs/etc/passwd"]);
        Assert.Equal(300_000, entries["rootfs/big"].Length);
        Assert.Equal("-> rootfs/etc/passwd", entries["rootfs/passwd-link"]);
    }

    [Fact]
    public void AFailingOutputSurfacesAsItselfNotAsACorruptLayer()
    {
        using var harness = new EscapeHarness();
        using var rootfs = harness.Flatten(new TestImage().Layer(w => w.WriteEntry(TestImage.File("f", new string('f', 100_000)))));
        var writer = new TarWriter(new FullDisk(capacity: 8192), TarEntryFormat.Gnu, leaveOpen: true);
        var error = Assert.Throws<IOException>(() => rootfs.WriteEntries(writer, "rootfs/"));
        Assert.Equal(FullDisk.Message, error.Message);
    }

    /// <summary>A write-only output that fails like a full disk once <c>capacity</c> bytes were written.</summary>
    private sealed class FullDisk(long capacity) : ForwardWriteStream
    {
        public const string Message = "No space left on device";

        private long _written;

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _written += buffer.Length;
            if (_written > capacity)
            {
                throw new IOException(Message);
            }
        }
    }
}

/// <summary>The write pass reads a layer a second time without hashing it: the first read verified its diff_id.</summary>
public class SecondReadTests
{
    [Fact]
    public void AReaderThatDoesNotHashReadsTheSameEntriesAndCannotClaimToVerify()
    {
        using var temp = new Infrastructure.TempDirectory();
        var image = new TestImage()
            .Layer(w =>
            {
                w.WriteEntry(TestImage.Dir("etc/"));
                w.WriteEntry(TestImage.File("etc/passwd", "root:x:0:0::/root:/bin/sh\n"));
            })
            .Pull(temp.Combine("layout"), temp.Combine("cache"));

        using (var hashing = new Core.Layers.LayerReader(image.Layers[0], 1, image.Reference, new Core.Layers.FlattenOptions()))
        using (var plain = new Core.Layers.LayerReader(image.Layers[0], 1, image.Reference, new Core.Layers.FlattenOptions(), hashContent: false))
        {
            while (hashing.Next() is { } expected)
            {
                var entry = plain.Next();
                Assert.NotNull(entry);
                Assert.Equal(expected.Name, entry.Name);
                Assert.Equal(expected.Length, entry.Length);
            }

            Assert.Null(plain.Next());
            hashing.VerifyDiffId();
            Assert.Throws<InvalidOperationException>(plain.VerifyDiffId);
        }
    }
}
