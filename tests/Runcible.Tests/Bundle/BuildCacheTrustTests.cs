using System.Formats.Tar;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.IO;
using Runcible.Core.Layers;
using Runcible.Core.Oci;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Layers;

namespace Runcible.Tests.Bundle;

/// <summary>
/// The build trusts nothing in its cache it did not verify: a cached base part is checked against the digest it was
/// written with, cache directories are private to the user, and the app layer never lands through a base image symlink.
/// </summary>
public class BuildCacheTrustTests
{
    private const int ChunkSize = 512 * 1024;

    private static BundleContent Content(string publish, string baseKey = "base-1") => new(
        new BundleSettingsValidator().Validate(new RawBundleSettings
        {
            AssemblyName = "HelloWeb", BundleVersion = "1.0.0", RuntimeIdentifier = "linux-x64", TargetFramework = "net10.0", SourceDateEpoch = "1700000000",
        }),
        new TestRootfs(baseKey),
        new AppLayer(publish, "/app", "HelloWeb", DateTimeOffset.FromUnixTimeSeconds(1700000000)),
        new BundleBaseImage("localhost:5000/runtime:latest", "sha256:" + new string('a', 64), ["sha256:" + new string('b', 64)]),
        """{"ociVersion":"1.0.2"}"""u8.ToArray(),
        1654,
        1654,
        [],
        []);

    private static string RecordPath(string basePart) => Path.Combine(Path.GetDirectoryName(basePart)!, "verified", Path.GetFileName(basePart));

    /// <summary>As if the record had been written a while after the base part (tests run within one clock tick).</summary>
    private static void AgeRecord(string basePart) => File.SetLastWriteTimeUtc(RecordPath(basePart), DateTime.UtcNow.AddSeconds(10));

    private static uint Mode(string path) => FileIdentity.OwnerAndMode(path, followLinks: true)!.Value.Mode & 0xfff;

    [Fact]
    public void ATamperedCachedBasePartIsNotShippedButCompressedAgainWithAWarning()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var content = Content(temp.Combine("publish"));
        var clean = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize).Write(content, temp.Combine("clean"));
        var expected = File.ReadAllBytes(clean.Path);
        var basePart = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize).BaseChunkPath(content);

        // Replaced by a valid base part of other content (what a planted file would be), its record left as it was.
        var planted = new BundleWriter(temp.Combine("other-cache"), "0.1.0", NullBuildLog.Instance, ChunkSize);
        planted.EnsureBasePart(content.Settings, new TestRootfs("planted", bigFileBytes: 1024 * 1024), out var plantedPart, TestContext.Current.CancellationToken);
        File.Copy(plantedPart, basePart, overwrite: true);

        var log = new RecordingBuildLog();
        var again = new BundleWriter(temp.Combine("cache"), "0.1.0", log, ChunkSize).Write(content, temp.Combine("again"));
        Assert.False(again.ReusedBaseChunk);
        Assert.Equal(expected, File.ReadAllBytes(again.Path));
        var warning = Assert.Single(log.Warnings);
        Assert.Equal("RUNCIBLE1111", warning.Code);
        Assert.Contains(basePart, warning.Message);

        // A record that vouched for the part (aged) does not cover a part changed in place since: its identity moved.
        AgeRecord(basePart);
        Thread.Sleep(50);
        using (var stream = new FileStream(basePart, FileMode.Open, FileAccess.Write))
        {
            stream.Position = stream.Length / 2;
            stream.WriteByte(0x5a);
        }

        log = new RecordingBuildLog();
        var third = new BundleWriter(temp.Combine("cache"), "0.1.0", log, ChunkSize).Write(content, temp.Combine("third"));
        Assert.False(third.ReusedBaseChunk);
        Assert.Equal(expected, File.ReadAllBytes(third.Path));
        Assert.Equal("RUNCIBLE1111", Assert.Single(log.Warnings).Code);

        // Without a record at all: not trusted either.
        File.Delete(RecordPath(basePart));
        log = new RecordingBuildLog();
        Assert.False(new BundleWriter(temp.Combine("cache"), "0.1.0", log, ChunkSize).Write(content, temp.Combine("fourth")).ReusedBaseChunk);
        Assert.Contains("no record", Assert.Single(log.Warnings).Message);
    }

    [Fact]
    public void AnUntouchedBasePartIsHashedOnceAfterItWasWrittenThenTrustedByItsIdentity()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var content = Content(temp.Combine("publish"));
        var first = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize);
        Assert.False(first.Write(content, temp.Combine("out")).ReusedBaseChunk);
        Assert.Equal(0, first.BasePartHashedBytes);
        var basePart = first.BaseChunkPath(content);

        // Within the process that wrote it (an early base part, then the bundle of the same build), no hash: neither file changed.
        var sameBuild = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize);
        Assert.True(sameBuild.Write(content, temp.Combine("out")).ReusedBaseChunk);
        Assert.Equal(0, sameBuild.BasePartHashedBytes);

        // The record written beside a fresh part is not trusted by another build as is (here: the record rewritten, as a
        // new process would see it): the part is hashed once against it, and recorded again.
        File.WriteAllText(RecordPath(basePart), File.ReadAllText(RecordPath(basePart)));
        var second = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance, ChunkSize);
        Assert.True(second.Write(content, temp.Combine("out")).ReusedBaseChunk);
        Assert.Equal(new FileInfo(basePart).Length, second.BasePartHashedBytes);

        // From then on (the record written well after the part last changed) a statx is all a republish spends on it.
        AgeRecord(basePart);
        var log = new RecordingBuildLog();
        var third = new BundleWriter(temp.Combine("cache"), "0.1.0", log, ChunkSize);
        Assert.True(third.Write(content, temp.Combine("out")).ReusedBaseChunk);
        Assert.Equal(0, third.BasePartHashedBytes);
        Assert.Empty(log.Warnings);
    }

    [Fact]
    public async Task CacheDirectoriesAreCreatedPrivate()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var root = temp.Combine("cache");
        CacheDirectory.Prepare(root);
        Assert.Equal(0b111_000_000u, Mode(root));

        var cache = new ContentCache(Path.Combine(root, "content"));
        var blob = "layer"u8.ToArray();
        var digest = Digest.ComputeSha256(blob);
        await cache.AddBlobAsync(digest, blob, "layer", "test", TestContext.Current.CancellationToken);
        cache.RememberTag("localhost:5000/x", "latest", digest);
        new BundleWriter(root, "0.1.0", NullBuildLog.Instance, ChunkSize).Write(Content(temp.Combine("publish")), temp.Combine("out"));
        new BundleWriter(root, "0.1.0", NullBuildLog.Instance, ChunkSize).Write(Content(temp.Combine("publish")), temp.Combine("out"));

        foreach (var directory in new[] { "content", "content/blobs", "content/blobs/sha256", "content/tmp", "content/refs", "bundle-base", "bundle-base/verified", "replaced" })
        {
            Assert.True(Mode(Path.Combine(root, directory)) == 0b111_000_000u, $"{directory} is {Convert.ToString(Mode(Path.Combine(root, directory)), 8)}");
        }

        CacheDirectory.Prepare(root);
    }

    [Theory]
    [InlineData("", "0777")]
    [InlineData("", "0770")]
    [InlineData("content/blobs", "0757")]
    [InlineData("bundle-base", "0722")]
    public void ACacheDirectoryWritableByOthersIsRefused(string subdirectory, string mode)
    {
        using var temp = new TempDirectory();
        var root = temp.Combine("cache");
        var directory = Path.Combine(root, subdirectory);
        Directory.CreateDirectory(directory);
        ProcessRunner.Run("chmod", mode, directory).EnsureSuccess("chmod");

        var error = Assert.Throws<RuncibleException>(() => CacheDirectory.Prepare(root));
        Assert.Equal("RUNCIBLE1112", error.Code);
        Assert.Contains(directory.TrimEnd('/'), error.Message);
        Assert.Contains("writable", error.Message);
    }

    [Fact]
    public void ACacheDirectoryOwnedByAnotherUserIsRefused()
    {
        Assert.True(PosixFileCalls.RunningAsRoot, "chown to another user needs root (the test machine runs tests as root)");
        using var temp = new TempDirectory();
        var root = temp.Combine("cache");
        Directory.CreateDirectory(Path.Combine(root, "rootfs-files"));
        ProcessRunner.Run("chown", "1234:1234", Path.Combine(root, "rootfs-files")).EnsureSuccess("chown");

        var error = Assert.Throws<RuncibleException>(() => CacheDirectory.Prepare(root));
        Assert.Equal("RUNCIBLE1112", error.Code);
        Assert.Contains("owned by user 1234", error.Message);

        // The root itself, too; and through the writer that would read a base part from it.
        ProcessRunner.Run("chown", "0:0", Path.Combine(root, "rootfs-files")).EnsureSuccess("chown");
        ProcessRunner.Run("chown", "1234:1234", root).EnsureSuccess("chown");
        Assert.Equal("RUNCIBLE1112", Assert.Throws<RuncibleException>(() => CacheDirectory.Prepare(root)).Code);
    }

    [Fact]
    public async Task AWorkingDirectoryThatIsASymlinkInTheBaseImageFailsWithTheCodeAndLeavesNoTarball()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var image = new TestImage().Layer(w =>
        {
            w.WriteEntry(TestImage.Dir("etc/"));
            w.WriteEntry(TestImage.File("etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1654:1654::/home/app:/bin/sh\n"));
            w.WriteEntry(TestImage.File("etc/group", "root:x:0:\napp:x:1654:\n"));
            w.WriteEntry(TestImage.Link(TarEntryType.SymbolicLink, "app", "/etc"));
            w.WriteEntry(TestImage.Dir("srv/"));
            w.WriteEntry(TestImage.File("srv/data", "a file"));
        }).Pull(temp.Combine("layout"), temp.Combine("cache", "content"));

        async Task<BundleWriteResult> Build(string workingDirectory, string output, bool deferred)
        {
            var settings = new BundleSettingsValidator().Validate(new RawBundleSettings
            {
                AssemblyName = "HelloWeb", RuntimeIdentifier = "linux-x64", TargetFramework = "net10.0", WorkingDirectory = workingDirectory,
            });
            var flattener = new RootfsFlattener(new FlattenOptions(), NullBuildLog.Instance);
            IRootfsFlattener stage = deferred ? new DeferredRootfsFlattener(flattener, temp.Combine("cache", "rootfs-files")) : flattener;
            var builder = new BundleBuilder(new BundleStages(new FixedImage(image), stage, new RuntimeConfigStage(), null),
                new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance), NullBuildLog.Instance);
            return await builder.BuildAsync(new BundleRequest(image.Reference, temp.Combine("publish"), settings,
                new ContainerSettings { AssemblyName = "HelloWeb", AppHostName = "HelloWeb" }, output), TestContext.Current.CancellationToken);
        }

        foreach (var deferred in new[] { false, true, true })
        {
            var error = await Assert.ThrowsAsync<RuncibleException>(() => Build("/app", temp.Combine("out"), deferred));
            Assert.Equal("RUNCIBLE4018", error.Code);
            Assert.Contains("'/app' is a symbolic link", error.Message);
            Assert.False(Directory.Exists(temp.Combine("out")) && Directory.EnumerateFileSystemEntries(temp.Combine("out")).Any());

            // Deeper: through the link, and under a file.
            Assert.Contains("'/app' is a symbolic link", (await Assert.ThrowsAsync<RuncibleException>(() => Build("/app/site", temp.Combine("out"), deferred))).Message);
            Assert.Contains("'/srv/data' is a regular file", (await Assert.ThrowsAsync<RuncibleException>(() => Build("/srv/data/app", temp.Combine("out"), deferred))).Message);
        }

        // A directory of the image, or a path it lacks, holds the app.
        Assert.True(File.Exists((await Build("/srv/app", temp.Combine("ok"), deferred: true)).Path));
        Assert.True(File.Exists((await Build("/opt/app", temp.Combine("ok2"), deferred: false)).Path));

        // What the deferred flattener remembers of the image lives in a cache directory of its own, checked before it is read.
        var memo = Assert.Single(Directory.GetDirectories(temp.Combine("cache", "rootfs-files")));
        Assert.Equal(0b111_000_000u, Mode(memo));
        ProcessRunner.Run("chmod", "0777", memo).EnsureSuccess("chmod");
        Assert.Equal("RUNCIBLE1112", (await Assert.ThrowsAsync<RuncibleException>(() => Build("/srv/app", temp.Combine("ok3"), deferred: true))).Code);
    }

    private sealed class FixedImage(PulledImage image) : IBaseImageProvider
    {
        public Task<PulledImage> PullAsync(string reference, Platform platform, CancellationToken cancellationToken) => Task.FromResult(image);
    }
}
