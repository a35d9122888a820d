using System.Security.Cryptography;
using System.Text.Json;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Bundle;

public class BundleWriterTests
{
    // Small chunks so the 3 MiB test base spans several gzip members / zstd frames.
    private const int ChunkSize = 512 * 1024;

    private static BundleSettings Settings(BundleCompression compression, string? level = null, string sourceDateEpoch = "1700000000") => new BundleSettingsValidator().Validate(new RawBundleSettings
    {
        AssemblyName = "HelloWeb",
        BundleVersion = "1.0.0",
        RuntimeIdentifier = "linux-x64",
        TargetFramework = "net10.0",
        Compression = compression.ToString(),
        CompressionLevel = level,
        SourceDateEpoch = sourceDateEpoch,
        Volumes = [new BundleVolume("state", "/var/lib/helloweb")],
    });

    private static BundleContent Content(BundleCompression compression, IRootfsContent rootfs, string publish, string? level = null) => new(
        Settings(compression, level),
        rootfs,
        new AppLayer(publish, "/app", "HelloWeb", DateTimeOffset.FromUnixTimeSeconds(1700000000)),
        new BundleBaseImage("localhost:5000/runtime:latest", "sha256:" + new string('a', 64), ["sha256:" + new string('b', 64)]),
        """{"ociVersion":"1.0.2"}"""u8.ToArray(),
        1654,
        1654,
        ["state"],
        [new BundleFile("runcible", "#!/bin/sh\n"u8.ToArray(), (UnixFileMode)0b111_101_101)]);

    private static string Sha256(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    [Theory]
    [InlineData(nameof(BundleCompression.Gzip))]
    [InlineData(nameof(BundleCompression.Zstd))]
    [InlineData(nameof(BundleCompression.None))]
    public void GnuTarReadsTheBundleWithOwnersModesAndContent(string compressionName)
    {
        var compression = Enum.Parse<BundleCompression>(compressionName);
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var result = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize)
            .Write(Content(compression, new TestRootfs("base-1"), temp.Combine("publish")), temp.Combine("out"));

        var expectedName = compression switch { BundleCompression.Gzip => "helloweb-1.0.0.tar.gz", BundleCompression.Zstd => "helloweb-1.0.0.tar.zst", _ => "helloweb-1.0.0.tar" };
        Assert.Equal(temp.Combine("out", expectedName), result.Path);
        Assert.Equal([expectedName], Directory.GetFiles(temp.Combine("out")).Select(Path.GetFileName));

        var listing = ProcessRunner.Run("tar", ["--numeric-owner", "-tvf", result.Path]).EnsureSuccess("tar -tvf").StandardOutput;
        var lines = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var p = "opt/containers/helloweb-1.0.0/";
        string Line(string name) => Assert.Single(lines, l => l.EndsWith(" " + name, StringComparison.Ordinal) || l.Contains(" " + name + " -> ", StringComparison.Ordinal));
        Assert.StartsWith("drwxr-xr-x 1654/1654", Line(p + "data/state/"));
        Assert.StartsWith("drwxr-xr-x 1654/1654", Line(p + "logs/"));
        Assert.StartsWith("drwxr-xr-x 0/0", Line(p + "config/"));
        Assert.StartsWith("-rw------- 0/0", Line(p + "config.json"));
        Assert.StartsWith("drwx------ 0/0", Line(p));
        Assert.StartsWith("-rwxr-xr-x 0/0", Line(p + "runcible"));
        Assert.StartsWith("-rwxr-xr-x 0/0", Line(p + "rootfs/app/HelloWeb"));
        Assert.StartsWith("-rw-r--r-- 0/0", Line(p + "rootfs/app/HelloWeb.dll"));
        Assert.StartsWith("-rwxr-xr-x 0/0", Line(p + "rootfs/usr/bin/big"));
        Assert.Contains("2023-11-14", Line(p + "bundle.json"));
        // The bundle directory comes first; opt/ and opt/containers/ are the host's, not the tarball's.
        Assert.Equal(p, lines[0].Split(' ').Last());
        Assert.DoesNotContain(lines, l => l.EndsWith(" opt/", StringComparison.Ordinal) || l.EndsWith(" opt/containers/", StringComparison.Ordinal));

        // Extract as GNU tar would on a host and check contents survived the chunking.
        Directory.CreateDirectory(temp.Combine("root"));
        ProcessRunner.Run("tar", ["-xf", result.Path, "-C", temp.Combine("root")]).EnsureSuccess("tar -xf");
        var big = File.ReadAllBytes(temp.Combine("root", p, "rootfs/usr/bin/big"));
        Assert.Equal(3 * 1024 * 1024, big.Length);
        var expected = new byte[big.Length];
        new Random(42).NextBytes(expected.AsSpan(0, expected.Length / 2));
        Assert.Equal(expected, big);
        Assert.Equal("dll v1", File.ReadAllText(temp.Combine("root", p, "rootfs/app/HelloWeb.dll")));

        using var manifest = JsonDocument.Parse(File.ReadAllBytes(temp.Combine("root", p, "bundle.json")));
        var json = manifest.RootElement;
        Assert.Equal("helloweb", json.GetProperty("name").GetString());
        Assert.Equal("1.0.0", json.GetProperty("version").GetString());
        Assert.Equal("linux-x64", json.GetProperty("runtimeIdentifier").GetString());
        Assert.Equal("amd64", json.GetProperty("platform").GetProperty("architecture").GetString());
        Assert.Equal("localhost:5000/runtime:latest", json.GetProperty("base").GetProperty("reference").GetString());
        Assert.Equal(result.AppLayerDigest, json.GetProperty("appLayerDigest").GetString());
        Assert.Equal("2023-11-14T22:13:20Z", json.GetProperty("created").GetString());
        Assert.Equal("0.1.0", json.GetProperty("toolVersion").GetString());
        Assert.Equal(["schemaVersion", "name", "version", "runtimeIdentifier", "platform", "base", "appLayerDigest", "created", "toolVersion"], json.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["reference", "digest", "layers"], json.GetProperty("base").EnumerateObject().Select(p => p.Name));
        Assert.Equal(["os", "architecture"], json.GetProperty("platform").EnumerateObject().Select(p => p.Name));
        Assert.Equal(1, json.GetProperty("schemaVersion").GetInt32());

        if (compression != BundleCompression.None)
        {
            var tool = compression == BundleCompression.Gzip ? "gzip" : "zstd";
            ProcessRunner.Run(tool, ["-t", result.Path]).EnsureSuccess(tool + " -t");
        }
    }

    [Theory]
    [InlineData(nameof(BundleCompression.Gzip), null)]
    [InlineData(nameof(BundleCompression.Zstd), null)]
    [InlineData(nameof(BundleCompression.Gzip), "1")]
    [InlineData(nameof(BundleCompression.Gzip), "9")]
    [InlineData(nameof(BundleCompression.Zstd), "9")]
    public void TwoCleanBuildsInDifferentDirectoriesAreByteIdentical(string compressionName, string? level)
    {
        var compression = Enum.Parse<BundleCompression>(compressionName);
        using var a = new TempDirectory();
        using var b = new TempDirectory();
        TestPublishDirectory.Create(a.Combine("publish"));
        TestPublishDirectory.Create(b.Combine("publish"));
        var first = new BundleWriter(a.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize).Write(Content(compression, new TestRootfs("base-1"), a.Combine("publish"), level), a.Combine("out"));
        var second = new BundleWriter(b.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize).Write(Content(compression, new TestRootfs("base-1"), b.Combine("publish"), level), b.Combine("out"));
        Assert.False(first.ReusedBaseChunk);
        Assert.False(second.ReusedBaseChunk);
        Assert.Equal(Sha256(first.Path), Sha256(second.Path));

        // A warm rebuild (base chunk from the cache) gives the very same bytes as the cold one.
        var warm = new BundleWriter(a.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize).Write(Content(compression, new TestRootfs("base-1"), a.Combine("publish"), level), a.Combine("out2"));
        Assert.True(warm.ReusedBaseChunk);
        Assert.Equal(Sha256(first.Path), Sha256(warm.Path));
    }

    [Theory]
    [InlineData(nameof(BundleCompression.Gzip))]
    [InlineData(nameof(BundleCompression.Zstd))]
    [InlineData(nameof(BundleCompression.None))]
    public void AChangedAppReusesTheCachedBasePartVerbatim(string compressionName)
    {
        var compression = Enum.Parse<BundleCompression>(compressionName);
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"), "v1");
        var writer = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize);
        var rootfs = new TestRootfs("base-1");
        var first = writer.Write(Content(compression, rootfs, temp.Combine("publish")), temp.Combine("out"));
        var firstBytes = File.ReadAllBytes(first.Path);

        File.WriteAllText(temp.Combine("publish", "HelloWeb.dll"), "dll v2 with more bytes");
        var second = writer.Write(Content(compression, rootfs, temp.Combine("publish")), temp.Combine("out"));
        var secondBytes = File.ReadAllBytes(second.Path);

        Assert.True(second.ReusedBaseChunk);
        Assert.Equal(1, rootfs.WriteCount);
        Assert.NotEqual(first.AppLayerDigest, second.AppLayerDigest);
        Assert.NotEqual(firstBytes, secondBytes);

        var baseChunk = File.ReadAllBytes(writer.BaseChunkPath(Content(compression, rootfs, temp.Combine("publish"))));
        Assert.True(baseChunk.Length > 10_000);
        Assert.Equal(baseChunk, firstBytes.AsSpan(0, baseChunk.Length).ToArray());
        Assert.Equal(baseChunk, secondBytes.AsSpan(0, baseChunk.Length).ToArray());

        // The new file is a valid archive with the new app.
        using var root = new TempDirectory();
        ProcessRunner.Run("tar", ["-xf", second.Path, "-C", root.Path]).EnsureSuccess("tar -xf");
        Assert.Equal("dll v2 with more bytes", File.ReadAllText(root.Combine("opt/containers/helloweb-1.0.0/rootfs/app/HelloWeb.dll")));

        // A different base (another cache key) is written afresh.
        var other = writer.Write(Content(compression, new TestRootfs("base-2"), temp.Combine("publish")), temp.Combine("out"));
        Assert.False(other.ReusedBaseChunk);
    }

    [Theory]
    [InlineData(nameof(BundleCompression.Gzip), "1", "9")]
    [InlineData(nameof(BundleCompression.Zstd), "1", "9")]
    public void ABasePartCompressedAtAnotherLevelIsNotReused(string compressionName, string level, string otherLevel)
    {
        var compression = Enum.Parse<BundleCompression>(compressionName);
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var writer = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize);
        var rootfs = new TestRootfs("base-1");
        var atLevel = Content(compression, rootfs, temp.Combine("publish"), level);
        var atOtherLevel = Content(compression, rootfs, temp.Combine("publish"), otherLevel);
        Assert.NotEqual(writer.BaseChunkPath(atLevel), writer.BaseChunkPath(atOtherLevel));

        var first = writer.Write(atLevel, temp.Combine("out"));
        var firstBytes = File.ReadAllBytes(first.Path);
        Assert.False(first.ReusedBaseChunk);

        // Another level: the base part is compressed afresh, at that level.
        var other = writer.Write(atOtherLevel, temp.Combine("out"));
        Assert.False(other.ReusedBaseChunk);
        Assert.Equal(2, rootfs.WriteCount);
        var levelBase = File.ReadAllBytes(writer.BaseChunkPath(atLevel));
        var otherBase = File.ReadAllBytes(writer.BaseChunkPath(atOtherLevel));
        Assert.NotEqual(levelBase, otherBase);
        Assert.Equal(otherBase, File.ReadAllBytes(other.Path).AsSpan(0, otherBase.Length).ToArray());
        var tool = compression == BundleCompression.Gzip ? "gzip" : "zstd";
        ProcessRunner.Run(tool, ["-t", other.Path]).EnsureSuccess(tool + " -t");

        // The first level again: its base part is reused and the tarball is the first one, byte for byte.
        var again = writer.Write(atLevel, temp.Combine("out"));
        Assert.True(again.ReusedBaseChunk);
        Assert.Equal(2, rootfs.WriteCount);
        Assert.Equal(firstBytes, File.ReadAllBytes(again.Path));
    }

    [Fact]
    public void AnotherSourceDateEpochIsNotServedTheBasePartOfTheFirst()
    {
        // The base part holds the bundle's own directories (opt/ ... rootfs/), stamped with SOURCE_DATE_EPOCH:
        // a build at another epoch must give what a clean build at that epoch gives, not the cached part's times.
        using var temp = new TempDirectory();
        using var clean = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var rootfs = new TestRootfs("base-1");
        BundleContent At(string epoch) => Content(BundleCompression.Gzip, rootfs, temp.Combine("publish")) with { Settings = Settings(BundleCompression.Gzip, sourceDateEpoch: epoch) };
        var writer = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize);
        writer.Write(At("1700000000"), temp.Combine("out"));
        var later = writer.Write(At("1750000000"), temp.Combine("out"));
        Assert.False(later.ReusedBaseChunk);

        var fromClean = new BundleWriter(clean.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize).Write(At("1750000000"), clean.Combine("out"));
        Assert.Equal(Sha256(fromClean.Path), Sha256(later.Path));
        var listing = ProcessRunner.Run("tar", ["--numeric-owner", "--full-time", "-tvf", later.Path]).EnsureSuccess("tar -tvf").StandardOutput;
        Assert.Contains("2025-06-15 ", Assert.Single(listing.Split('\n'), l => l.EndsWith(" opt/containers/helloweb-1.0.0/rootfs/", StringComparison.Ordinal)));
    }

    [Fact]
    public void TheCachedBasePartEndsOnARecordBoundaryWithoutEndMarker()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var writer = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize);
        var content = Content(BundleCompression.None, new TestRootfs("base-1"), temp.Combine("publish"));
        writer.Write(content, temp.Combine("out"));
        var baseTar = File.ReadAllBytes(writer.BaseChunkPath(content));
        Assert.Equal(0, baseTar.Length % 512);
        Assert.Contains(baseTar.AsSpan(baseTar.Length - 512).ToArray(), b => b != 0);
    }

    [Fact]
    public void AFailedBuildLeavesNoTarballNoTemporaryFileAndNoCacheEntry()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var writer = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize);
        Assert.Throws<InvalidDataException>(() =>
            writer.Write(Content(BundleCompression.Gzip, new FailingRootfs(), temp.Combine("publish")), temp.Combine("out")));
        Assert.Empty(Directory.GetFiles(temp.Combine("out"), "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(temp.Combine("cache"), "*", SearchOption.AllDirectories));

        // An existing good tarball is not replaced by a failed rebuild.
        var good = writer.Write(Content(BundleCompression.Gzip, new TestRootfs("base-1"), temp.Combine("publish")), temp.Combine("out"));
        var goodHash = Sha256(good.Path);
        Directory.Delete(temp.Combine("publish"), recursive: true);
        var error = Assert.Throws<RuncibleException>(() => writer.Write(Content(BundleCompression.Gzip, new TestRootfs("base-1"), temp.Combine("publish")), temp.Combine("out")));
        Assert.Equal("RUNCIBLE4016", error.Code);
        Assert.Equal(goodHash, Sha256(good.Path));
        Assert.Single(Directory.GetFiles(temp.Combine("out")));
    }

    [Fact]
    public void ARepublishSwapsTheNewTarballInAndLeavesTheReplacedOneForALaterBuildToFree()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var writer = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize);
        var first = writer.Write(Content(BundleCompression.Gzip, new TestRootfs("base-1"), temp.Combine("publish")), temp.Combine("out"));
        var firstHash = Sha256(first.Path);
        Assert.Empty(writer.ListTrash());

        File.WriteAllText(temp.Combine("publish", "HelloWeb.dll"), "dll v2");
        var second = writer.Write(Content(BundleCompression.Gzip, new TestRootfs("base-1"), temp.Combine("publish")), temp.Combine("out"));
        Assert.NotEqual(firstHash, Sha256(second.Path));
        Assert.Equal([second.Path], Directory.GetFiles(temp.Combine("out")));

        // The replaced tarball was not freed in this build: it waits in the cache's trash.
        var trashed = Assert.Single(writer.ListTrash());
        Assert.StartsWith(writer.TrashDirectory, trashed);
        Assert.Equal(firstHash, Sha256(trashed));
        BundleWriter.EmptyTrash(writer.ListTrash());
        Assert.Empty(writer.ListTrash());

        // A trash directory that is a symlink is never listed (nor emptied): its target's files are not ours.
        Directory.Delete(writer.TrashDirectory);
        Directory.CreateDirectory(temp.Combine("elsewhere"));
        File.WriteAllText(temp.Combine("elsewhere", new string('a', 32)), "not a tarball");
        Directory.CreateSymbolicLink(writer.TrashDirectory, temp.Combine("elsewhere"));
        Assert.Empty(writer.ListTrash());
    }

    private sealed class FailingRootfs : IRootfsContent
    {
        public string CacheKey => "failing";

        public void WriteEntries(System.Formats.Tar.TarWriter writer, string prefix)
        {
            new TestRootfs("x", 1024 * 1024).WriteEntries(writer, prefix);
            throw new InvalidDataException("layer digest mismatch");
        }
    }
}

public class PaxRootfsTests
{
    /// <summary>A rootfs whose entries need PAX (long names, xattrs), as a flattened image's do.</summary>
    private sealed class PaxRootfs : IRootfsContent
    {
        public string CacheKey => "pax";

        public void WriteEntries(System.Formats.Tar.TarWriter writer, string prefix)
        {
            var longName = prefix + "usr/share/" + new string('d', 120) + "/file.txt";
            writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.Directory, prefix + "usr/") { ModificationTime = TestRootfs.Time, Mode = (UnixFileMode)0b111_101_101 });
            writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, longName, new Dictionary<string, string> { ["SCHILY.xattr.user.origin"] = "base" })
            {
                ModificationTime = TestRootfs.Time,
                Mode = (UnixFileMode)0b110_100_100,
                DataStream = new MemoryStream("long"u8.ToArray()),
            });
        }
    }

    [Fact]
    public void PaxHeaderNamesCarryNoProcessIdAndGnuTarStillReadsThem()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var settings = new BundleSettingsValidator().Validate(new RawBundleSettings { AssemblyName = "pax", RuntimeIdentifier = "linux-x64", TargetFramework = "net10.0", Compression = "none" });
        var content = new BundleContent(settings, new PaxRootfs(), new AppLayer(temp.Combine("publish"), "/app", null, settings.Created),
            new BundleBaseImage("r", "sha256:" + new string('c', 64), []), "{}"u8.ToArray(), 0, 0, [], []);
        var result = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance).Write(content, temp.Combine("out"));

        var text = System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(result.Path));
        Assert.Contains("PaxHeaders/", text);
        Assert.DoesNotMatch(@"PaxHeaders\.[0-9]", text);
        var listing = ProcessRunner.Run("tar", ["--xattrs", "-tvf", result.Path]).EnsureSuccess("tar").StandardOutput;
        Assert.Contains("rootfs/usr/share/" + new string('d', 120) + "/file.txt", listing);
        Directory.CreateDirectory(temp.Combine("root"));
        ProcessRunner.Run("tar", ["-xf", result.Path, "-C", temp.Combine("root")]).EnsureSuccess("tar -xf");
        Assert.Equal("long", File.ReadAllText(temp.Combine("root", "opt/containers/pax-1.0.0/rootfs/usr/share", new string('d', 120), "file.txt")));
    }
}
