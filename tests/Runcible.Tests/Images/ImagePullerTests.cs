using System.Security.Cryptography;
using System.Text.Json;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Oci;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Images;

/// <summary>
/// The puller over local sources and a counting, optionally corrupting source: what it fetches equals
/// what skopeo fetches, and the cache only ever holds verified entries.
/// </summary>
public class ImagePullerTests
{
    private static readonly Platform Amd64 = PlatformSelector.FromRuntimeIdentifier("linux-x64");

    private static ImagePuller Puller(ContentCache cache, RegistrySourceFactory? sources = null, bool offline = false, IBuildLog? log = null) =>
        new(cache, sources ?? ((r, p) => throw new InvalidOperationException($"no registry in this test ({r}/{p})")),
            new ImagePullerOptions { Offline = offline, ProgressInterval = TimeSpan.Zero }, log ?? NullBuildLog.Instance);

    [Theory]
    [InlineData(FixtureImages.Busybox)]
    [InlineData(FixtureImages.RuntimeDeps)]
    [InlineData(FixtureImages.Runtime)]
    [InlineData(FixtureImages.AspNet)]
    [InlineData(FixtureImages.MultiArch)]
    public async Task OciLayoutAndOciArchivePullsAreWhatSkopeoCopies(string image)
    {
        using var temp = new TempDirectory("puller");
        var cache = new ContentCache(temp.Combine("cache"));
        var archive = temp.Combine("image.tar");
        FixtureImages.ExportOciArchive(image, archive);

        var fromLayout = await Puller(cache).PullAsync("oci-layout:" + FixtureImages.LayoutPath(image) + ":latest", Amd64, TestContext.Current.CancellationToken);
        var fromArchive = await Puller(new ContentCache(temp.Combine("cache2"))).PullAsync("oci-archive:" + archive + ":latest", Amd64, TestContext.Current.CancellationToken);

        // The oracle: skopeo copying the same image (for the index: the amd64 instance, as it resolves it).
        var skopeo = SkopeoCopy(temp, "oci:" + FixtureImages.LayoutPath(image) + ":latest");
        foreach (var pulled in new[] { fromLayout, fromArchive })
        {
            AssertSameAsSkopeo(pulled, skopeo);
        }

        Assert.Equal(image == FixtureImages.MultiArch, fromLayout.IndexDigest is not null);
        Assert.Equal("amd64", fromLayout.Config.Architecture);
    }

    [Theory]
    [InlineData(FixtureImages.Busybox)]
    [InlineData(FixtureImages.RuntimeDeps)]
    public async Task DockerArchivePullsHoldTheLayersAndConfigSkopeoReads(string image)
    {
        using var temp = new TempDirectory("puller");
        var archive = temp.Combine("saved.tar");
        FixtureImages.ExportDockerArchive(image, archive, "runcible.test/fixture:1.0");
        var pulled = await Puller(new ContentCache(temp.Combine("cache"))).PullAsync("docker-archive:" + archive, Amd64, TestContext.Current.CancellationToken);
        var tagged = await Puller(new ContentCache(temp.Combine("cache2"))).PullAsync("docker-archive:" + archive + ":runcible.test/fixture:1.0", Amd64, TestContext.Current.CancellationToken);
        Assert.Equal(pulled.ManifestDigest, tagged.ManifestDigest);
        Assert.Equal(MediaTypes.DockerManifest, pulled.Manifest.MediaType);

        // skopeo converts to OCI (new manifest, gzip layers), so compare what survives conversion: the
        // uncompressed layers, which in a docker archive are the layer blobs themselves.
        var skopeo = SkopeoCopy(temp, "docker-archive:" + archive);
        Assert.Equal(skopeo.DiffIds, pulled.Config.RootFs!.DiffIds);
        Assert.Equal(skopeo.DiffIds, pulled.Layers.Select(l => l.Descriptor.Digest));
        foreach (var layer in pulled.Layers)
        {
            Assert.Equal(MediaTypes.DockerLayer, layer.Descriptor.MediaType);
            Assert.Equal(layer.DiffId.ToString(), "sha256:" + Sha256(layer.BlobPath));
        }
    }

    [Fact]
    public async Task APinnedCachedImageMakesNoRequestOnlineOrOffline()
    {
        using var temp = new TempDirectory("puller");
        var cache = new ContentCache(temp.Combine("cache"));
        var source = new CountingSource(FixtureImages.LayoutPath(FixtureImages.Busybox));
        var first = await Puller(cache, source.Factory).PullAsync("registry.test/busybox:latest", Amd64, TestContext.Current.CancellationToken);
        Assert.Equal(1 + 1 + first.Layers.Count, source.Requests);

        var pinned = "registry.test/busybox@" + first.ManifestDigest;
        source.Requests = 0;
        var opened = source.Opened;
        var again = await Puller(new ContentCache(cache.Directory), source.Factory).PullAsync(pinned, Amd64, TestContext.Current.CancellationToken);
        var offline = await Puller(new ContentCache(cache.Directory), source.Factory, offline: true).PullAsync(pinned, Amd64, TestContext.Current.CancellationToken);
        Assert.Equal(0, source.Requests);
        Assert.Equal(opened, source.Opened);
        Assert.Equal(first.Layers.Select(l => l.BlobPath), again.Layers.Select(l => l.BlobPath));
        Assert.Equal(first.ManifestDigest, offline.ManifestDigest);

        // Offline, a tag resolves to the digest it last had.
        var byTag = await Puller(new ContentCache(cache.Directory), source.Factory, offline: true).PullAsync("registry.test/busybox:latest", Amd64, TestContext.Current.CancellationToken);
        Assert.Equal(first.ManifestDigest, byTag.ManifestDigest);
        Assert.Equal(0, source.Requests);

        // Offline and never pulled: a coded error naming the cache.
        var e = await Assert.ThrowsAsync<RuncibleException>(() => Puller(new ContentCache(cache.Directory), source.Factory, offline: true)
            .PullAsync("registry.test/busybox:other", Amd64, TestContext.Current.CancellationToken));
        Assert.Equal("RUNCIBLE1106", e.Code);
        Assert.Contains(cache.Directory, e.Message);
    }

    [Fact]
    public async Task ATruncatedOrAlteredCacheEntryIsFetchedAgain()
    {
        using var temp = new TempDirectory("puller");
        var source = new CountingSource(FixtureImages.LayoutPath(FixtureImages.Busybox));
        var cacheDirectory = temp.Combine("cache");
        var first = await Puller(new ContentCache(cacheDirectory), source.Factory).PullAsync("registry.test/busybox:latest", Amd64, TestContext.Current.CancellationToken);
        var biggest = first.Layers.OrderByDescending(l => l.Descriptor.Size).First();
        var expected = Sha256(biggest.BlobPath);

        // Truncated by hand.
        using (var stream = new FileStream(biggest.BlobPath, FileMode.Open))
        {
            stream.SetLength(stream.Length / 2);
        }

        source.Requests = 0;
        var second = await Puller(new ContentCache(cacheDirectory), source.Factory).PullAsync("registry.test/busybox:latest", Amd64, TestContext.Current.CancellationToken);
        Assert.Equal(expected, Sha256(second.Layers.Single(l => l.Descriptor.Digest == biggest.Descriptor.Digest).BlobPath));
        Assert.Equal(2, source.Requests); // the tag's manifest, then the one layer

        // Same size, one byte altered: a new cache object re-hashes before handing it out.
        var bytes = File.ReadAllBytes(biggest.BlobPath);
        bytes[bytes.Length / 2] ^= 0xff;
        File.WriteAllBytes(biggest.BlobPath, bytes);
        source.Requests = 0;
        var third = await Puller(new ContentCache(cacheDirectory), source.Factory).PullAsync("registry.test/busybox:latest", Amd64, TestContext.Current.CancellationToken);
        Assert.Equal(expected, Sha256(third.Layers.Single(l => l.Descriptor.Digest == biggest.Descriptor.Digest).BlobPath));
        Assert.Equal(2, source.Requests);
    }

    [Fact]
    public async Task TheImageATagNamedAtItsLastPullIsHadFromTheCacheWithoutARequest()
    {
        using var temp = new TempDirectory("puller");
        var source = new CountingSource(FixtureImages.LayoutPath(FixtureImages.Busybox));
        var cache = new ContentCache(temp.Combine("cache"));
        var ct = TestContext.Current.CancellationToken;

        Assert.Null(await Puller(cache, source.Factory).TryGetLastPulledAsync("registry.test/busybox:latest", Amd64, ct));
        var pulled = await Puller(cache, source.Factory).PullAsync("registry.test/busybox:latest", Amd64, ct);
        source.Requests = 0;

        var last = await Puller(new ContentCache(cache.Directory), source.Factory).TryGetLastPulledAsync("registry.test/busybox:latest", Amd64, ct);
        Assert.NotNull(last);
        Assert.Equal(pulled.ManifestDigest, last.ManifestDigest);
        Assert.Equal(pulled.Layers.Select(l => l.BlobPath), last.Layers.Select(l => l.BlobPath));
        Assert.Equal(0, source.Requests);
        Assert.Equal(1, source.Opened); // by the pull; the look-up opens no source

        // Only for tags of registries, and only when the cache has all of it.
        Assert.Null(await Puller(cache, source.Factory, offline: true).TryGetLastPulledAsync("registry.test/busybox:latest", Amd64, ct));
        Assert.Null(await Puller(cache, source.Factory).TryGetLastPulledAsync("registry.test/busybox@" + pulled.ManifestDigest, Amd64, ct));
        Assert.Null(await Puller(cache, source.Factory).TryGetLastPulledAsync("registry.test/busybox:other", Amd64, ct));
        File.Delete(pulled.Layers[0].BlobPath);
        Assert.Null(await Puller(new ContentCache(cache.Directory), source.Factory).TryGetLastPulledAsync("registry.test/busybox:latest", Amd64, ct));
        Assert.Equal(0, source.Requests);
    }

    [Fact]
    public async Task CorruptBytesAreRefusedAndNeverCached()
    {
        using var temp = new TempDirectory("puller");
        var cache = new ContentCache(temp.Combine("cache"));
        var source = new CountingSource(FixtureImages.LayoutPath(FixtureImages.Busybox)) { CorruptBlobs = int.MaxValue };
        var e = await Assert.ThrowsAsync<RuncibleException>(() => Puller(cache, source.Factory).PullAsync("registry.test/busybox:latest", Amd64, TestContext.Current.CancellationToken));
        Assert.Equal("RUNCIBLE1104", e.Code);
        Assert.Empty(Directory.GetFiles(Path.Combine(cache.Directory, "tmp")));
        var cachedBlobs = Directory.GetFiles(Path.Combine(cache.Directory, "blobs", "sha256"));
        Assert.All(cachedBlobs, path => Assert.Equal(Path.GetFileName(path), Sha256(path)));

        // One corrupted transfer is retried once and then succeeds.
        var flaky = new CountingSource(FixtureImages.LayoutPath(FixtureImages.Busybox)) { CorruptBlobs = 1 };
        var log = new RecordingBuildLog();
        var pulled = await Puller(new ContentCache(temp.Combine("cache2")), flaky.Factory, log: log).PullAsync("registry.test/busybox:latest", Amd64, TestContext.Current.CancellationToken);
        Assert.All(pulled.Layers, l => Assert.Equal(l.Descriptor.Digest, "sha256:" + Sha256(l.BlobPath)));
        Assert.Contains(log.Messages, m => m.Contains("failed verification", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TwoConcurrentPullsOfOneImageBothSucceed()
    {
        using var temp = new TempDirectory("puller");
        var cacheDirectory = temp.Combine("cache");
        var source = new CountingSource(FixtureImages.LayoutPath(FixtureImages.RuntimeDeps));
        var pulls = Enumerable.Range(0, 2).Select(_ => Task.Run(() => Puller(new ContentCache(cacheDirectory), source.Factory)
            .PullAsync("registry.test/runtime-deps:latest", Amd64, TestContext.Current.CancellationToken))).ToList();
        var results = await Task.WhenAll(pulls);
        Assert.Equal(results[0].ManifestDigest, results[1].ManifestDigest);
        Assert.All(results.SelectMany(r => r.Layers), l => Assert.Equal(l.Descriptor.Digest, "sha256:" + Sha256(l.BlobPath)));
        Assert.Empty(Directory.GetFiles(Path.Combine(cacheDirectory, "tmp")));
    }

    [Fact]
    public async Task ProgressIsReportedAndAMissingPlatformIsACodedError()
    {
        using var temp = new TempDirectory("puller");
        var log = new RecordingBuildLog();
        await Puller(new ContentCache(temp.Combine("cache")), log: log)
            .PullAsync("oci-layout:" + FixtureImages.LayoutPath(FixtureImages.RuntimeDeps), Amd64, TestContext.Current.CancellationToken);
        Assert.Contains(log.Messages, m => m.StartsWith("Runcible: pulled oci-layout:", StringComparison.Ordinal) && m.Contains("MiB/s", StringComparison.Ordinal));

        var e = await Assert.ThrowsAsync<RuncibleException>(() => Puller(new ContentCache(temp.Combine("cache")))
            .PullAsync("oci-layout:" + FixtureImages.LayoutPath(FixtureImages.MultiArch), PlatformSelector.FromRuntimeIdentifier("linux-arm"), TestContext.Current.CancellationToken));
        Assert.Equal("RUNCIBLE1102", e.Code);
        Assert.Contains("linux/amd64, linux/arm64", e.Message);

        var single = await Assert.ThrowsAsync<RuncibleException>(() => Puller(new ContentCache(temp.Combine("cache")))
            .PullAsync("oci-layout:" + FixtureImages.LayoutPath(FixtureImages.Busybox), PlatformSelector.FromRuntimeIdentifier("linux-arm64"), TestContext.Current.CancellationToken));
        Assert.Equal("RUNCIBLE1102", single.Code);
    }

    [Fact]
    public async Task LocalSourceProblemsAreCodedErrors()
    {
        using var temp = new TempDirectory("puller");
        var puller = Puller(new ContentCache(temp.Combine("cache")));
        var ct = TestContext.Current.CancellationToken;
        Assert.Equal("RUNCIBLE1108", (await Assert.ThrowsAsync<RuncibleException>(() => puller.PullAsync("oci-layout:" + temp.Combine("absent"), Amd64, ct))).Code);
        Assert.Equal("RUNCIBLE1108", (await Assert.ThrowsAsync<RuncibleException>(() => puller.PullAsync("oci-archive:" + temp.Combine("absent.tar"), Amd64, ct))).Code);
        var missingTag = await Assert.ThrowsAsync<RuncibleException>(() => puller.PullAsync("oci-layout:" + FixtureImages.LayoutPath(FixtureImages.Busybox) + ":nope", Amd64, ct));
        Assert.Equal("RUNCIBLE1109", missingTag.Code);
        Assert.Contains("latest", missingTag.Message);

        // A tar that is not an image, and one whose entries climb out of the archive.
        File.WriteAllText(temp.Combine("junk.tar"), new string('x', 2048));
        Assert.Equal("RUNCIBLE1108", (await Assert.ThrowsAsync<RuncibleException>(() => puller.PullAsync("oci-archive:" + temp.Combine("junk.tar"), Amd64, ct))).Code);
        using (var stream = File.Create(temp.Combine("evil.tar")))
        using (var writer = new System.Formats.Tar.TarWriter(stream))
        {
            writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "../oci-layout") { DataStream = new MemoryStream("{}"u8.ToArray()) });
        }

        Assert.Equal("RUNCIBLE1108", (await Assert.ThrowsAsync<RuncibleException>(() => puller.PullAsync("oci-archive:" + temp.Combine("evil.tar"), Amd64, ct))).Code);
        Assert.False(File.Exists(temp.Combine("oci-layout")));
    }

    private sealed record SkopeoImage(string ManifestDigest, string ConfigDigest, IReadOnlyList<string> LayerDigests, IReadOnlyList<string> DiffIds, string LayoutPath);

    private static SkopeoImage SkopeoCopy(TempDirectory temp, string source)
    {
        var layout = temp.Combine("skopeo-" + Guid.NewGuid().ToString("N")[..6]);
        ProcessRunner.Run("skopeo", ["copy", "--quiet", "--insecure-policy", "--override-arch", "amd64", "--override-os", "linux", source, "oci:" + layout + ":x"], timeout: TimeSpan.FromMinutes(5))
            .EnsureSuccess("skopeo copy " + source);
        using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(layout, "index.json")));
        var manifestDigest = index.RootElement.GetProperty("manifests")[0].GetProperty("digest").GetString()!;
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(BlobFile(layout, manifestDigest)));
        var configDigest = manifest.RootElement.GetProperty("config").GetProperty("digest").GetString()!;
        using var config = JsonDocument.Parse(File.ReadAllBytes(BlobFile(layout, configDigest)));
        return new SkopeoImage(
            manifestDigest,
            configDigest,
            manifest.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("digest").GetString()!).ToList(),
            config.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(d => d.GetString()!).ToList(),
            layout);
    }

    private static void AssertSameAsSkopeo(PulledImage pulled, SkopeoImage skopeo)
    {
        Assert.Equal(skopeo.ManifestDigest, pulled.ManifestDigest.ToString());
        Assert.Equal(skopeo.ConfigDigest, pulled.ConfigDigest.ToString());
        Assert.Equal(File.ReadAllBytes(BlobFile(skopeo.LayoutPath, skopeo.ConfigDigest)), pulled.ConfigBytes);
        Assert.Equal(skopeo.LayerDigests, pulled.Layers.Select(l => l.Descriptor.Digest));
        Assert.Equal(skopeo.DiffIds, pulled.Layers.Select(l => l.DiffId.ToString()));
        foreach (var layer in pulled.Layers)
        {
            Assert.Equal(Sha256(BlobFile(skopeo.LayoutPath, layer.Descriptor.Digest)), Sha256(layer.BlobPath));
        }
    }

    private static string BlobFile(string layout, string digest) => Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]);

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }

    /// <summary>
    /// A "registry" source serving an OCI layout directory, counting requests and optionally flipping a
    /// byte in the first N blobs it sends, to observe what the puller asks for and how it verifies.
    /// </summary>
    private sealed class CountingSource(string layout)
    {
        private int _requests;
        private int _corrupted;

        public int Requests
        {
            get => Volatile.Read(ref _requests);
            set => Volatile.Write(ref _requests, value);
        }

        public int Opened { get; private set; }

        public int CorruptBlobs { get; init; }

        public IImageSource Factory(string registry, string repository)
        {
            Opened++;
            return new Source(this, new OciLayoutSource($"{registry}/{repository}", new DirectoryFiles(layout, repository)));
        }

        private sealed class Source(CountingSource owner, OciLayoutSource inner) : IImageSource
        {
            public string Name => inner.Name;

            public Task<ManifestContent> GetManifestAsync(string tagOrDigest, CancellationToken cancellationToken)
            {
                Interlocked.Increment(ref owner._requests);
                return inner.GetManifestAsync(tagOrDigest, cancellationToken);
            }

            public async Task CopyBlobAsync(Descriptor blob, Stream destination, CancellationToken cancellationToken)
            {
                Interlocked.Increment(ref owner._requests);
                if (Interlocked.Increment(ref owner._corrupted) > owner.CorruptBlobs)
                {
                    await inner.CopyBlobAsync(blob, destination, cancellationToken);
                    return;
                }

                using var buffer = new MemoryStream();
                await inner.CopyBlobAsync(blob, buffer, cancellationToken);
                var bytes = buffer.ToArray();
                bytes[bytes.Length / 2] ^= 0x01;
                await destination.WriteAsync(bytes, cancellationToken);
            }

            public void Dispose() => inner.Dispose();
        }
    }
}
