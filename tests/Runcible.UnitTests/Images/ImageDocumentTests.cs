using System.Text;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Oci;

namespace Runcible.Tests.Images;

/// <summary>Platform choice from .NET RIDs, and manifests, indexes and configs treated as hostile input.</summary>
public class ImageDocumentTests
{
    private const string D1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    private const string D2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    private const string D3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    private const string D4 = "sha256:4444444444444444444444444444444444444444444444444444444444444444";

    [Theory]
    [InlineData("linux-x64", "linux/amd64")]
    [InlineData("linux-musl-x64", "linux/amd64")]
    [InlineData("linux-arm64", "linux/arm64")]
    [InlineData("linux-musl-arm64", "linux/arm64")]
    [InlineData("linux-arm", "linux/arm/v7")]
    [InlineData("linux-musl-arm", "linux/arm/v7")]
    [InlineData("linux-x86", "linux/386")]
    public void MapsRuntimeIdentifiersToPlatforms(string rid, string platform) =>
        Assert.Equal(platform, PlatformSelector.FromRuntimeIdentifier(rid).ToString());

    private static Descriptor Entry(string digest, string arch, string? variant = null, string os = "linux") => new()
    {
        MediaType = MediaTypes.OciManifest,
        Digest = digest,
        Size = 100,
        Platform = new Platform { OS = os, Architecture = arch, Variant = variant },
    };

    [Fact]
    public void PicksThePlatformsManifestAndPrefersTheExactVariant()
    {
        List<Descriptor> index =
        [
            Entry(D4, "unknown", os: "unknown"),
            Entry(D1, "amd64"),
            Entry(D2, "arm", "v6"),
            Entry(D3, "arm", "v7"),
            Entry(D4, "arm64", "v8"),
        ];
        Assert.Equal(D1, PlatformSelector.Select(index, PlatformSelector.FromRuntimeIdentifier("linux-x64"), "img").Digest);
        Assert.Equal(D3, PlatformSelector.Select(index, PlatformSelector.FromRuntimeIdentifier("linux-arm"), "img").Digest);
        Assert.Equal(D4, PlatformSelector.Select(index, PlatformSelector.FromRuntimeIdentifier("linux-arm64"), "img").Digest);
        // arm64 without a variant is v8.
        Assert.Equal(D2, PlatformSelector.Select([Entry(D2, "arm64")], PlatformSelector.FromRuntimeIdentifier("linux-arm64"), "img").Digest);
    }

    [Fact]
    public void NoMatchingPlatformListsWhatTheImageHas()
    {
        var e = Assert.Throws<RuncibleException>(() => PlatformSelector.Select(
            [Entry(D1, "amd64"), Entry(D2, "arm", "v6"), Entry(D3, "unknown", os: "unknown"), Entry(D4, "amd64", os: "windows")],
            PlatformSelector.FromRuntimeIdentifier("linux-arm"), "example/app:1"));
        Assert.Equal("RUNCIBLE1102", e.Code);
        Assert.Contains("example/app:1", e.Message);
        Assert.Contains("linux/amd64, linux/arm/v6, windows/amd64", e.Message);
        Assert.Contains("linux/arm/v7", e.Message);
    }

    [Fact]
    public void ASinglePlatformImageMustMatchTheRid()
    {
        var config = new ImageConfiguration { OS = "linux", Architecture = "arm64" };
        PlatformSelector.EnsureMatches(config, PlatformSelector.FromRuntimeIdentifier("linux-arm64"), "img");
        var e = Assert.Throws<RuncibleException>(() => PlatformSelector.EnsureMatches(config, PlatformSelector.FromRuntimeIdentifier("linux-x64"), "img"));
        Assert.Equal("RUNCIBLE1102", e.Code);
        Assert.Contains("linux/arm64", e.Message);
    }

    private static byte[] Json(string text) => Encoding.UTF8.GetBytes(text);

    private static string Manifest(string mediaType = MediaTypes.OciManifest) =>
        $$"""{"schemaVersion":2,"mediaType":"{{mediaType}}","config":{"mediaType":"{{MediaTypes.OciConfig}}","digest":"{{D1}}","size":10},"layers":[{"mediaType":"{{MediaTypes.OciLayerGzip}}","digest":"{{D2}}","size":20}]}""";

    [Fact]
    public void ClassifiesManifestsAndIndexesOfBothFamilies()
    {
        Assert.False(ImageDocuments.ParseManifestOrIndex(Json(Manifest()), MediaTypes.OciManifest, "img").IsIndex);
        Assert.False(ImageDocuments.ParseManifestOrIndex(Json(Manifest(MediaTypes.DockerManifest)), null, "img").IsIndex);
        var index = ImageDocuments.ParseManifestOrIndex(Json($$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.DockerManifestList}}","manifests":[]}"""), MediaTypes.DockerManifestList, "img");
        Assert.True(index.IsIndex);
        // No mediaType field (allowed in OCI): the served type or the structure decides.
        Assert.True(ImageDocuments.ParseManifestOrIndex(Json("""{"schemaVersion":2,"manifests":[]}"""), null, "img").IsIndex);
    }

    [Theory]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"layers":[]}""", "ambiguous")]
    [InlineData("""{"schemaVersion":2,"manifests":[],"config":{"mediaType":"x","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1}}""", "ambiguous")]
    [InlineData("""{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}""", "schema 1")]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}""", "missing")]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:../../etc/passwd","size":1},"layers":[]}""", "not a digest")]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}""", "media type")]
    [InlineData("""[1,2]""", "object")]
    [InlineData("""{"schemaVersion":2,""", "JSON")]
    public void RejectsAmbiguousOrMalformedDocuments(string json, string expected)
    {
        var e = Assert.Throws<RuncibleException>(() => ImageDocuments.ParseManifestOrIndex(Json(json), null, "img"));
        Assert.Equal("RUNCIBLE1103", e.Code);
        Assert.Contains(expected, e.Message);
    }

    /// <summary>JSON with "&lt;FF&gt;" replaced by a raw 0xFF byte, which is never valid UTF-8 (what a flipped bit often makes).</summary>
    private static byte[] WithRawFF(string json)
    {
        var parts = json.Split("<FF>");
        return [.. Json(parts[0]), .. parts.Skip(1).SelectMany(part => (byte[])[0xFF, .. Json(part)])];
    }

    /// <summary>Damaged text, and escapes or numbers System.Text.Json only checks when they are read.</summary>
    [Theory]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json<FF>","config":{},"layers":[]}""")]
    [InlineData("""{"schemaVersion":2,"mediaType":"\ud800","layers":[]}""")]
    [InlineData("""{"schemaVersion":2.5,"manifests":[]}""")]
    [InlineData("""{"schemaVersion":1e400,"manifests":[]}""")]
    [InlineData("""{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},"layers":[{"mediaType":"<FF>","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1}]}""")]
    public void DocumentsThatAreNotValidTextOrNumbersAreMalformedNotCrashes(string json)
    {
        var e = Assert.Throws<RuncibleException>(() => ImageDocuments.ParseManifestOrIndex(WithRawFF(json), null, "img"));
        Assert.Equal("RUNCIBLE1103", e.Code);
    }

    [Theory]
    [InlineData("""{"architecture":"amd64","os":"linux<FF>","rootfs":{"type":"layers","diff_ids":[]}}""")]
    [InlineData("""{"architecture":"amd64","os":"linux\udc00","rootfs":{"type":"layers","diff_ids":[]}}""")]
    public void AConfigThatIsNotValidTextIsMalformed(string json)
    {
        var bytes = WithRawFF(json);
        Assert.Equal("RUNCIBLE1103", Assert.Throws<RuncibleException>(() => ImageDocuments.ParseConfig(bytes, "img", 0)).Code);
    }

    [Fact]
    public void RejectsADocumentServedAsOneKindButDeclaringAnother()
    {
        var e = Assert.Throws<RuncibleException>(() => ImageDocuments.ParseManifestOrIndex(Json(Manifest()), MediaTypes.OciIndex, "img"));
        Assert.Equal("RUNCIBLE1103", e.Code);
    }

    [Fact]
    public void CapsDocumentsAt4MiB()
    {
        var big = new byte[ImageDocuments.MaxDocumentBytes + 1];
        Assert.Equal("RUNCIBLE1105", Assert.Throws<RuncibleException>(() => ImageDocuments.ParseManifestOrIndex(big, null, "img")).Code);
        Assert.Equal("RUNCIBLE1105", Assert.Throws<RuncibleException>(() => ImageDocuments.ParseConfig(big, "img", 0)).Code);
    }

    [Fact]
    public void TheConfigMustListOneDiffIdPerLayer()
    {
        var config = Json($$$"""{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["{{{D1}}}"]}}""");
        Assert.Single(ImageDocuments.ParseConfig(config, "img", 1).RootFs!.DiffIds!);
        Assert.Contains("1 diff_ids for 2 layers", Assert.Throws<RuncibleException>(() => ImageDocuments.ParseConfig(config, "img", 2)).Message);
        var bad = Json("""{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["nope"]}}""");
        Assert.Equal("RUNCIBLE1103", Assert.Throws<RuncibleException>(() => ImageDocuments.ParseConfig(bad, "img", 1)).Code);
    }
}
