using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;
using Runcible.Core.Registry;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using static Runcible.Tests.Registry.RegistryTestSupport;

namespace Runcible.Tests.Registry;

/// <summary>Manifests and blobs from the real registry, compared byte for byte with what skopeo sees.</summary>
public sealed class RegistryManifestTests(SharedRegistries registries)
{
    [Theory]
    [InlineData("busybox:latest", MediaTypes.OciManifest)]
    [InlineData("busybox:v2s2", MediaTypes.DockerManifest)]
    [InlineData("busybox:zstd", MediaTypes.OciManifest)]
    [InlineData("busybox:uncompressed", MediaTypes.OciManifest)]
    [InlineData("runtime:v2s2", MediaTypes.DockerManifest)]
    [InlineData("multiarch:latest", MediaTypes.OciIndex)]
    [InlineData("multiarch:v2s2", MediaTypes.DockerManifestList)]
    public async Task AManifestByTagIsByteIdenticalToSkopeoInspectRawWithItsMediaType(string repositoryAndTag, string mediaType)
    {
        var registry = await registries.AnonymousAsync();
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home));
        var (repository, tag) = (repositoryAndTag.Split(':')[0], repositoryAndTag.Split(':')[1]);
        using var source = client.Open(registry.Host, repository);

        var manifest = await source.GetManifestAsync(tag, Ct);

        Assert.Equal(mediaType, manifest.MediaType);
        Assert.Equal(SkopeoManifest(registry, repositoryAndTag), manifest.Bytes);
        Assert.Equal(Sha256(manifest.Bytes), manifest.Digest.ToString());
        Assert.Equal($"{registry.Host}/{repository}", source.Name);
    }

    [Fact]
    public async Task AManifestByDigestIsVerifiedAndEqualToTheTaggedOneAndItsBlobsMatchTheirDigests()
    {
        var registry = await registries.AnonymousAsync();
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home));
        using var source = client.Open(registry.Host, "busybox");

        var byTag = await source.GetManifestAsync("zstd", Ct);
        var byDigest = await source.GetManifestAsync(byTag.Digest.ToString(), Ct);
        Assert.Equal(byTag.Bytes, byDigest.Bytes);
        Assert.Equal(byTag.Digest, byDigest.Digest);

        foreach (var blob in new[] { ConfigOf(byTag), LargestLayer(byTag) })
        {
            var bytes = await CopyBlobAsync(source, blob);
            Assert.Equal(blob.Size, bytes.LongLength);
            Assert.Equal(blob.Digest, Sha256(bytes));
        }
    }

    [Fact]
    public async Task AnIndexEntryIsFetchedByDigestFromADockerManifestList()
    {
        var registry = await registries.AnonymousAsync();
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home));
        using var source = client.Open(registry.Host, "multiarch");

        var list = await source.GetManifestAsync("v2s2", Ct);
        var index = System.Text.Json.JsonSerializer.Deserialize<ImageIndex>(list.Bytes, OciJson.Options)!;
        var amd64 = index.Manifests!.Single(m => m.Platform?.Architecture == "amd64");
        var manifest = await source.GetManifestAsync(amd64.Digest, Ct);

        Assert.Equal(MediaTypes.DockerManifest, manifest.MediaType);
        Assert.Equal(amd64.Digest, manifest.Digest.ToString());
        Assert.Equal(SkopeoManifest(registry, "multiarch@" + amd64.Digest), manifest.Bytes);
    }

    [Fact]
    public async Task AMissingTagDigestOrRepositoryIsACodedNotFoundErrorNamingTheReference()
    {
        var registry = await registries.AnonymousAsync();
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home));
        using var source = client.Open(registry.Host, "busybox");
        using var missingRepository = client.Open(registry.Host, "no/such-repository");
        var absentDigest = "sha256:" + new string('0', 64);

        var tag = await ThrowsCodeAsync("RUNCIBLE1001", () => source.GetManifestAsync("no-such-tag", Ct));
        Assert.Contains("no-such-tag", tag.Message);
        Assert.Contains(registry.Host + "/busybox", tag.Message);
        var digest = await ThrowsCodeAsync("RUNCIBLE1001", () => source.GetManifestAsync(absentDigest, Ct));
        Assert.Contains(absentDigest, digest.Message);
        await ThrowsCodeAsync("RUNCIBLE1001", () => missingRepository.GetManifestAsync("latest", Ct));

        var blob = await ThrowsCodeAsync("RUNCIBLE1002", () => CopyBlobAsync(source, new Descriptor { Digest = absentDigest, Size = 10, MediaType = MediaTypes.OciLayerGzip }));
        Assert.Contains(absentDigest, blob.Message);
    }

    [Theory]
    [InlineData("Upper/Case", "latest")]
    [InlineData("busybox/../etc", "latest")]
    [InlineData("busybox", "../../v2/_catalog")]
    [InlineData("busybox", "sha256:abc")]
    [InlineData("busybox", "tag with space")]
    public async Task NamesOutsideTheReferenceGrammarAreRejectedBeforeAnyRequest(string repository, string reference)
    {
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home));
        await ThrowsCodeAsync("RUNCIBLE1016", async () =>
        {
            using var source = client.Open("127.0.0.1:1", repository);
            await source.GetManifestAsync(reference, Ct);
        });
    }

    [Fact]
    public void RegistryHostsAreCheckedAndDockerHubMapsToItsApiHost()
    {
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home));
        Assert.Equal("RUNCIBLE1016", Assert.Throws<RuncibleException>(() => client.Open("bad host", "x")).Code);
        Assert.Equal("RUNCIBLE1016", Assert.Throws<RuncibleException>(() => client.Open("evil.example/path?", "x")).Code);
        Assert.Equal("docker.io/library/debian", client.Open("docker.io", "library/debian").Name);
        Assert.Equal("registry-1.docker.io", RegistryNames.ApiHost("docker.io"));
        Assert.Equal("registry-1.docker.io", RegistryNames.ApiHost("index.docker.io"));
        Assert.Equal("mcr.microsoft.com", RegistryNames.ApiHost("mcr.microsoft.com"));
    }
}
