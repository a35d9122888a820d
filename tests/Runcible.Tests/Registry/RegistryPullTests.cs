using System.Security.Cryptography;
using System.Text.Json;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Oci;
using Runcible.Core.Registry;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using static Runcible.Tests.Registry.RegistryTestSupport;

namespace Runcible.Tests.Registry;

/// <summary>
/// The puller over the real <see cref="RegistryClient"/>, wired as <c>PublishRuncBundle</c> wires them
/// (<c>new ImagePuller(cache, client.Open, …)</c>), against the real registry: what it brings into the cache is
/// byte for byte what <c>skopeo copy docker://… oci:…</c> fetches, for every pushed image and format; concurrent
/// pulls share a cache; faults end with skopeo's bytes or a coded error and never with a bad cache entry; cached
/// content is served without a request.
/// </summary>
public sealed class RegistryPullTests(SharedRegistries registries)
{
    private static readonly Platform Amd64 = PlatformSelector.FromRuntimeIdentifier("linux-x64");

    /// <summary>Every tag of the anonymous registry; the multi-platform ones for both of their platforms.</summary>
    public static TheoryData<string, string> EveryPushedImage
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var (image, _, repositoryTag) in SharedRegistries.AnonymousImages)
            {
                foreach (var rid in image == FixtureImages.MultiArch ? new[] { "linux-x64", "linux-arm64" } : ["linux-x64"])
                {
                    data.Add(repositoryTag, rid);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(EveryPushedImage))]
    public async Task APullFetchesByteForByteWhatSkopeoCopyFetches(string repositoryTag, string runtimeIdentifier)
    {
        var registry = await registries.AnonymousAsync();
        var (image, format, _) = SharedRegistries.AnonymousImages.Single(i => i.RepositoryTag == repositoryTag);
        var platform = PlatformSelector.FromRuntimeIdentifier(runtimeIdentifier);
        using var temp = new TempDirectory("registry-pull");
        using var client = new RegistryClient(Options(temp));
        var cache = new ContentCache(temp.Combine("cache"));
        var reference = $"{registry.Host}/{repositoryTag}";

        var pulled = await Puller(cache, client).PullAsync(reference, platform, Ct);

        var skopeo = SkopeoLayout.Copy(registry, reference, platform.Architecture, temp.Combine("skopeo"));
        AssertSameAsSkopeo(cache, pulled, skopeo);

        // The format really is the one named by the tag (a wrong push would make this test prove less).
        Assert.Equal(format == PushFormat.DockerV2S2 ? MediaTypes.DockerManifest : MediaTypes.OciManifest, skopeo.ManifestMediaType);
        Assert.All(pulled.Layers, layer => Assert.Equal(ExpectedLayerMediaType(format), layer.Descriptor.MediaType));
        Assert.Equal(platform.Architecture, pulled.Config.Architecture);

        // An index is cached too (under its digest, as served): the cache holds skopeo's blobs plus, for an index, the index.
        var cached = CachedBlobs(cache);
        if (image == FixtureImages.MultiArch)
        {
            var index = SkopeoManifest(registry, repositoryTag);
            Assert.Equal(Sha256(index), pulled.IndexDigest?.ToString());
            Assert.Equal(index, File.ReadAllBytes(cache.BlobPath(pulled.IndexDigest!.Value)));
            Assert.Equal(skopeo.BlobDigests.Append(pulled.IndexDigest.Value.ToString()).Order(), cached.Order());
        }
        else
        {
            Assert.Null(pulled.IndexDigest);
            Assert.Equal(skopeo.BlobDigests.Order(), cached.Order());
        }

        AssertCacheSound(cache);
    }

    [Theory]
    [InlineData(RegistryAuthMode.TlsBasic, FixtureImages.Busybox)]
    [InlineData(RegistryAuthMode.TlsBasic, FixtureImages.MultiArch)]
    [InlineData(RegistryAuthMode.Token, FixtureImages.Busybox)]
    [InlineData(RegistryAuthMode.Token, FixtureImages.MultiArch)]
    public async Task APullFromAnAuthenticatedRegistryFetchesWhatSkopeoFetches(RegistryAuthMode mode, string image)
    {
        var registry = mode == RegistryAuthMode.TlsBasic ? await registries.TlsBasicAuthAsync() : await registries.TokenAuthAsync();
        using var temp = new TempDirectory("registry-pull");
        // Credentials from the environment; for TLS, the test CA trusted and loopback not exempt from verification.
        using var client = new RegistryClient(Options(temp, CredentialEnvironment(registry), trust: registry, loopbackIsInsecure: mode != RegistryAuthMode.TlsBasic));
        var cache = new ContentCache(temp.Combine("cache"));
        var reference = $"{registry.Host}/{SharedRegistries.RepositoryTag(image, PushFormat.Oci)}";

        var pulled = await Puller(cache, client).PullAsync(reference, Amd64, Ct);

        AssertSameAsSkopeo(cache, pulled, SkopeoLayout.Copy(registry, reference, "amd64", temp.Combine("skopeo")));
        AssertCacheSound(cache);
    }

    [Fact]
    public async Task TwoConcurrentPullsOfOneImageIntoOneCacheBothSucceed()
    {
        var registry = await registries.AnonymousAsync();
        await using var proxy = FaultProxy.Start(registry);
        // Every blob answer waits a little, so both pulls ask for (and write) the same blobs at the same time.
        proxy.Delay(TimeSpan.FromSeconds(1), target: FaultTarget.Blobs);
        using var temp = new TempDirectory("registry-pull");
        var cacheDirectory = temp.Combine("cache");
        var reference = $"{proxy.Host}/{SharedRegistries.RepositoryTag(FixtureImages.Runtime, PushFormat.Oci)}";

        // Two builds: each its own client and cache object, one cache directory.
        var results = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            using var client = new RegistryClient(Options(temp));
            return await Puller(new ContentCache(cacheDirectory), client).PullAsync(reference, Amd64, Ct);
        })));

        Assert.Equal(results[0].ManifestDigest, results[1].ManifestDigest);
        Assert.Equal(results[0].Layers.Select(l => l.BlobPath), results[1].Layers.Select(l => l.BlobPath));
        // Both really fetched every blob (the race happened), and the cache kept one good copy of each.
        foreach (var digest in results[0].Layers.Select(l => l.Descriptor.Digest).Append(results[0].ConfigDigest.ToString()))
        {
            Assert.Equal(2, proxy.Requests.Count(r => r.Method == "GET" && r.Target.EndsWith("/blobs/" + digest, StringComparison.Ordinal)));
        }

        var cache = new ContentCache(cacheDirectory);
        var skopeo = SkopeoLayout.Copy(registry, $"{registry.Host}/{SharedRegistries.RepositoryTag(FixtureImages.Runtime, PushFormat.Oci)}", "amd64", temp.Combine("skopeo"));
        foreach (var pulled in results)
        {
            AssertSameAsSkopeo(cache, pulled, skopeo);
        }

        AssertCacheSound(cache);
    }

    /// <summary>Faults on the busybox image's largest layer (about 1 MiB) or its config; null: the pull must succeed.</summary>
    public static TheoryData<string, string?> Faults => new()
    {
        { "flip a layer byte once", null },
        { "flip a layer byte every time", "RUNCIBLE1104" },
        { "flip a config byte every time", "RUNCIBLE1104" },
        { "cut a layer once", null },
        { "cut a layer after flipping a byte of it", null },
        { "cut a layer before its first byte every time", "RUNCIBLE1011" },
        { "cut a layer, then ignore Range", null },
        { "503 on a layer every time", "RUNCIBLE1011" },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task AFaultyTransferEndsWithSkopeosBytesOrACodedErrorAndTheCacheHoldsNoBadEntry(string fault, string? expectedCode)
    {
        var registry = await registries.AnonymousAsync();
        await using var proxy = FaultProxy.Start(registry);
        using var temp = new TempDirectory("registry-pull");
        var repositoryTag = SharedRegistries.RepositoryTag(FixtureImages.Busybox, PushFormat.Oci);
        var skopeo = SkopeoLayout.Copy(registry, $"{registry.Host}/{repositoryTag}", "amd64", temp.Combine("skopeo"));
        var layer = skopeo.Layers.MaxBy(l => l.Size)!;
        Assert.True(layer.Size > 600_000, $"the busybox layer has only {layer.Size} bytes");
        var config = skopeo.Config.Digest;

        switch (fault)
        {
            case "flip a layer byte once":
                proxy.FlipByte(offset: 123_456, times: 1, pathContains: layer.Digest);
                break;
            case "flip a layer byte every time":
                proxy.FlipByte(offset: 123_456, times: 1000, pathContains: layer.Digest);
                break;
            case "flip a config byte every time":
                proxy.FlipByte(offset: 10, times: 1000, pathContains: config);
                break;
            case "cut a layer once":
                proxy.CutAfter(300_000, times: 1, pathContains: layer.Digest);
                break;
            case "cut a layer after flipping a byte of it":
                // The damaged first part is resumed, not fetched again: only the whole blob's digest tells.
                proxy.FlipByte(offset: 100_000, times: 1, pathContains: layer.Digest);
                proxy.CutAfter(300_000, times: 1, pathContains: layer.Digest);
                break;
            case "cut a layer before its first byte every time":
                proxy.CutAfter(0, times: 1000, pathContains: layer.Digest);
                break;
            case "cut a layer, then ignore Range":
                proxy.IgnoreRange(pathContains: layer.Digest);
                proxy.CutAfter(250_000, times: 1, pathContains: layer.Digest);
                break;
            case "503 on a layer every time":
                proxy.ServiceUnavailable(times: 1000, target: FaultTarget.Blobs, pathContains: layer.Digest);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(fault), fault, null);
        }

        var log = new RecordingBuildLog();
        using var client = new RegistryClient(Options(temp, log: log, maxAttempts: 3));
        var cache = new ContentCache(temp.Combine("cache"));
        var pull = Puller(cache, client, log: log).PullAsync($"{proxy.Host}/{repositoryTag}", Amd64, Ct);

        if (expectedCode is null)
        {
            var pulled = await pull;
            AssertSameAsSkopeo(cache, pulled, skopeo);
            Assert.Equal(skopeo.BlobDigests.Order(), CachedBlobs(cache).Order());
        }
        else
        {
            var error = await ThrowsCodeAsync(expectedCode, () => pull);
            var damaged = fault.Contains("config", StringComparison.Ordinal) ? config : layer.Digest;
            Assert.Contains(damaged, error.Message);
            Assert.DoesNotContain(damaged, CachedBlobs(cache));
        }

        AssertCacheSound(cache);

        var layerRequests = proxy.Requests.Where(r => r.Method == "GET" && r.Target.EndsWith("/blobs/" + layer.Digest, StringComparison.Ordinal)).ToList();
        switch (fault)
        {
            case "flip a layer byte once":
                Assert.Equal(2, layerRequests.Count);
                Assert.Contains(log.Messages, m => m.Contains("failed verification", StringComparison.Ordinal));
                break;
            case "cut a layer after flipping a byte of it":
                // Cut, resumed from the cut, refused as a whole, fetched once more from the start.
                Assert.Equal([null, "bytes=300000-", null], layerRequests.Select(r => r.Range));
                break;
            case "cut a layer once":
                Assert.Equal([null, "bytes=300000-"], layerRequests.Select(r => r.Range));
                break;
        }
    }

    [Fact]
    public async Task AManifestDamagedOnTheWayIsFetchedAgainAndNeverCachedNorRememberedForItsTag()
    {
        var registry = await registries.AnonymousAsync();
        await using var proxy = FaultProxy.Start(registry);
        using var temp = new TempDirectory("registry-pull");
        var cacheDirectory = temp.Combine("cache");
        var repositoryTag = SharedRegistries.RepositoryTag(FixtureImages.Busybox, PushFormat.Oci);
        var tagged = $"{proxy.Host}/{repositoryTag}";
        var log = new RecordingBuildLog();

        async Task<PulledImage> PullAsync(bool offline = false)
        {
            using var client = new RegistryClient(Options(temp, log: log, maxAttempts: 3));
            return await Puller(new ContentCache(cacheDirectory), client, offline, log).PullAsync(tagged, Amd64, Ct);
        }

        var good = await PullAsync();
        var cachedBefore = CachedBlobs(new ContentCache(cacheDirectory)).Order().ToList();

        // Once: the tag's manifest arrives with a byte flipped; it is fetched again, and the pull is the same image.
        proxy.ResetRequests();
        proxy.FlipByte(offset: 40, times: 1, target: FaultTarget.Manifests);
        var again = await PullAsync();
        Assert.Equal(good.ManifestDigest, again.ManifestDigest);
        Assert.Equal(2, proxy.Requests.Count(r => r.Target == "/v2/busybox/manifests/latest"));
        Assert.Equal("flip", proxy.Requests.First(r => r.Target == "/v2/busybox/manifests/latest").Fault);

        // Every time: a coded error; nothing new in the cache, and the tag still means the image last pulled.
        proxy.FlipByte(offset: 40, times: 1000, target: FaultTarget.Manifests);
        var error = await ThrowsCodeAsync("RUNCIBLE1013", () => PullAsync());
        Assert.Contains("'latest'", error.Message);
        Assert.Contains(good.ManifestDigest.ToString(), error.Message);
        Assert.Equal(cachedBefore, CachedBlobs(new ContentCache(cacheDirectory)).Order());
        AssertCacheSound(new ContentCache(cacheDirectory));
        proxy.ClearFaults();
        proxy.ResetRequests();
        Assert.Equal(good.ManifestDigest, (await PullAsync(offline: true)).ManifestDigest);
        Assert.Equal(0, proxy.RequestCount);
    }

    [Fact]
    public async Task ACachedPinnedImageMakesNoRequestAndATagPulledOnceWorksOffline()
    {
        var registry = await registries.AnonymousAsync();
        await using var proxy = FaultProxy.Start(registry);
        using var temp = new TempDirectory("registry-pull");
        var cacheDirectory = temp.Combine("cache");
        var repositoryTag = SharedRegistries.RepositoryTag(FixtureImages.MultiArch, PushFormat.Oci);
        var tagged = $"{proxy.Host}/{repositoryTag}";

        PulledImage first;
        using (var client = new RegistryClient(Options(temp)))
        {
            first = await Puller(new ContentCache(cacheDirectory), client).PullAsync(tagged, Amd64, Ct);
        }

        Assert.True(proxy.RequestCount >= 4, $"only {proxy.RequestCount} requests for the first pull");
        proxy.ResetRequests();
        var pinned = $"{proxy.Host}/{FixtureImages.MultiArch}@{first.IndexDigest}";
        var log = new RecordingBuildLog();

        // Each pull as a new build would make it: a new client, a new cache object over the same directory.
        async Task<PulledImage> PullAsync(string reference, bool offline)
        {
            using var client = new RegistryClient(Options(temp, log: log));
            return await Puller(new ContentCache(cacheDirectory), client, offline, log).PullAsync(reference, Amd64, Ct);
        }

        var pinnedOnline = await PullAsync(pinned, offline: false);
        var pinnedOffline = await PullAsync(pinned, offline: true);
        var tagOffline = await PullAsync(tagged, offline: true);
        Assert.Equal(0, proxy.RequestCount);
        foreach (var pulled in new[] { pinnedOnline, pinnedOffline, tagOffline })
        {
            Assert.Equal(first.IndexDigest, pulled.IndexDigest);
            Assert.Equal(first.ManifestDigest, pulled.ManifestDigest);
            Assert.Equal(first.ConfigBytes, pulled.ConfigBytes);
            Assert.Equal(first.Layers.Select(l => l.BlobPath), pulled.Layers.Select(l => l.BlobPath));
        }

        Assert.Contains(log.Messages, m => m.Contains($"offline: {tagged} is {first.IndexDigest} as last resolved", StringComparison.Ordinal));

        // The other platform of the cached index was never fetched: offline it is a coded error, still without a request.
        var otherPlatform = await ThrowsCodeAsync("RUNCIBLE1106", async () =>
        {
            using var client = new RegistryClient(Options(temp));
            await Puller(new ContentCache(cacheDirectory), client, offline: true).PullAsync(pinned, PlatformSelector.FromRuntimeIdentifier("linux-arm64"), Ct);
        });
        Assert.Contains(cacheDirectory, otherPlatform.Message);

        // A tag never pulled: the same, naming the cache.
        var neverPulled = await ThrowsCodeAsync("RUNCIBLE1106", () => PullAsync($"{proxy.Host}/{FixtureImages.MultiArch}:v2s2", offline: true));
        Assert.Contains(cacheDirectory, neverPulled.Message);
        Assert.Equal(0, proxy.RequestCount);

        // Online, a tag is always resolved again (the client's plain-HTTP probe, one manifest request); the rest comes from the cache.
        await PullAsync(tagged, offline: false);
        Assert.Equal(["GET /v2/", "GET /v2/multiarch/manifests/latest"], proxy.Requests.Select(r => $"{r.Method} {r.Target}"));
        AssertCacheSound(new ContentCache(cacheDirectory));
    }

    [Fact]
    public async Task ATagMovedToAnImageWhosePullFailsStillMeansTheLastImagePulledWholeOffline()
    {
        // Own registry: this test moves a tag.
        await using var registry = await RegistryServer.StartAnonymousAsync(Ct);
        await registry.PushAsync(FixtureImages.Busybox, "app:1", PushFormat.Oci, Ct);
        await using var proxy = FaultProxy.Start(registry);
        using var temp = new TempDirectory("registry-pull");
        var cacheDirectory = temp.Combine("cache");
        var tagged = $"{proxy.Host}/app:1";

        async Task<PulledImage> PullAsync(bool offline = false)
        {
            using var client = new RegistryClient(Options(temp, maxAttempts: 2));
            return await Puller(new ContentCache(cacheDirectory), client, offline).PullAsync(tagged, Amd64, Ct);
        }

        var first = await PullAsync();

        // The tag now names another image, and its blobs cannot be fetched: the online pull fails.
        await registry.PushAsync(FixtureImages.RuntimeDeps, "app:1", PushFormat.Oci, Ct);
        proxy.ServiceUnavailable(times: 1000, target: FaultTarget.Blobs);
        await ThrowsCodeAsync("RUNCIBLE1011", () => PullAsync());
        Assert.Contains(proxy.Requests, r => r.Target == "/v2/app/manifests/1" && r.Status == 200);

        // Offline, the tag is the image last pulled whole, not the one whose content never arrived.
        proxy.ResetRequests();
        var offline = await PullAsync(offline: true);
        Assert.Equal(first.ManifestDigest, offline.ManifestDigest);
        Assert.Equal(first.Layers.Select(l => l.BlobPath), offline.Layers.Select(l => l.BlobPath));
        Assert.Equal(0, proxy.RequestCount);
        AssertCacheSound(new ContentCache(cacheDirectory));

        // Once the new image is pulled whole, offline means it.
        proxy.ClearFaults();
        var moved = await PullAsync();
        Assert.NotEqual(first.ManifestDigest, moved.ManifestDigest);
        Assert.Equal(moved.ManifestDigest, (await PullAsync(offline: true)).ManifestDigest);
    }

    // ---- helpers ----

    /// <summary>The puller as PublishRuncBundle builds it: the registry client's <c>Open</c> as its source factory.</summary>
    private static ImagePuller Puller(ContentCache cache, RegistryClient client, bool offline = false, IBuildLog? log = null) =>
        new(cache, client.Open, new ImagePullerOptions { Offline = offline, ProgressInterval = TimeSpan.Zero }, log ?? NullBuildLog.Instance);

    private static string ExpectedLayerMediaType(PushFormat format) => format switch
    {
        PushFormat.Oci => MediaTypes.OciLayerGzip,
        PushFormat.DockerV2S2 => MediaTypes.DockerLayerGzip,
        PushFormat.Zstd => MediaTypes.OciLayerZstd,
        PushFormat.Uncompressed => MediaTypes.OciLayer,
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    private static void AssertSameAsSkopeo(ContentCache cache, PulledImage pulled, SkopeoLayout skopeo)
    {
        Assert.Equal(skopeo.ManifestDigest, pulled.ManifestDigest.ToString());
        Assert.Equal(skopeo.Blob(skopeo.ManifestDigest), File.ReadAllBytes(cache.BlobPath(pulled.ManifestDigest)));
        Assert.Equal(skopeo.Config.Digest, pulled.ConfigDigest.ToString());
        Assert.Equal(skopeo.Blob(skopeo.Config.Digest), pulled.ConfigBytes);
        Assert.Equal(skopeo.Blob(skopeo.Config.Digest), File.ReadAllBytes(cache.BlobPath(pulled.ConfigDigest)));
        Assert.Equal(skopeo.Layers.Select(l => l.Digest), pulled.Layers.Select(l => l.Descriptor.Digest));
        foreach (var layer in pulled.Layers)
        {
            Assert.Equal(cache.BlobPath(Digest.Parse(layer.Descriptor.Digest)), layer.BlobPath);
            Assert.Equal(new FileInfo(skopeo.BlobPath(layer.Descriptor.Digest)).Length, new FileInfo(layer.BlobPath).Length);
            Assert.Equal(HashFile(skopeo.BlobPath(layer.Descriptor.Digest), "sha256"), HashFile(layer.BlobPath, "sha256"));
        }
    }

    /// <summary>The digests of every blob in the cache.</summary>
    private static List<string> CachedBlobs(ContentCache cache)
    {
        var blobs = Path.Combine(cache.Directory, "blobs");
        return !Directory.Exists(blobs)
            ? []
            : [.. Directory.GetDirectories(blobs).SelectMany(a => Directory.GetFiles(a).Select(f => Path.GetFileName(a) + ":" + Path.GetFileName(f)))];
    }

    /// <summary>Every cached blob re-hashed equals its name; no temporary file is left; every remembered tag names a cached blob.</summary>
    private static void AssertCacheSound(ContentCache cache)
    {
        foreach (var blob in CachedBlobs(cache))
        {
            var digest = Digest.Parse(blob);
            Assert.Equal(digest.Encoded, HashFile(cache.BlobPath(digest), digest.Algorithm));
        }

        var temp = Path.Combine(cache.Directory, "tmp");
        Assert.Empty(Directory.Exists(temp) ? Directory.GetFileSystemEntries(temp) : []);
        var refs = Path.Combine(cache.Directory, "refs");
        foreach (var reference in Directory.Exists(refs) ? Directory.GetFiles(refs) : [])
        {
            var remembered = Digest.Parse(File.ReadAllText(reference).Trim());
            Assert.True(File.Exists(cache.BlobPath(remembered)), $"{reference} names {remembered}, which is not cached");
        }
    }

    private static string HashFile(string path, string algorithm)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(algorithm == "sha512" ? SHA512.HashData(stream) : SHA256.HashData(stream));
    }

    /// <summary>
    /// The oracle: <c>skopeo copy --preserve-digests docker://… oci:&lt;dir&gt;</c> (for an index, the instance of
    /// <c>--override-arch</c>). <c>--preserve-digests</c> keeps every blob as served (without it, skopeo converts a
    /// Docker manifest, and with it the config, to OCI), so the layout holds exactly what skopeo fetched.
    /// </summary>
    private sealed record SkopeoLayout(string Directory, string ManifestDigest, string ManifestMediaType, Descriptor Config, IReadOnlyList<Descriptor> Layers)
    {
        public IEnumerable<string> BlobDigests => Layers.Select(l => l.Digest).Append(Config.Digest).Append(ManifestDigest).Distinct(StringComparer.Ordinal);

        public string BlobPath(string digest) => Path.Combine(Directory, "blobs", "sha256", Digest.Parse(digest).Encoded);

        public byte[] Blob(string digest) => File.ReadAllBytes(BlobPath(digest));

        public static SkopeoLayout Copy(RegistryServer registry, string reference, string architecture, string directory)
        {
            ProcessRunner.Run("skopeo",
                [
                    "copy", "--quiet", "--insecure-policy", "--preserve-digests", .. registry.SourceArguments(),
                    "--override-os", "linux", "--override-arch", architecture,
                    "docker://" + reference, "oci:" + directory + ":pulled",
                ],
                timeout: TimeSpan.FromMinutes(5))
                .EnsureSuccess("skopeo copy " + reference);
            using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(directory, "index.json")));
            var entry = index.RootElement.GetProperty("manifests").EnumerateArray().Single();
            var manifestDigest = entry.GetProperty("digest").GetString()!;
            var manifest = JsonSerializer.Deserialize<ImageManifest>(File.ReadAllBytes(Path.Combine(directory, "blobs", "sha256", Digest.Parse(manifestDigest).Encoded)), OciJson.Options)!;
            return new SkopeoLayout(directory, manifestDigest, entry.GetProperty("mediaType").GetString()!, manifest.Config!, manifest.Layers!);
        }
    }
}
