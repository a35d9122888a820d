using Runcible.Core.Diagnostics;
using Runcible.Core.Images;

namespace Runcible.Tests.Images;

/// <summary>References parsed as docker and skopeo parse them (distribution's reference grammar).</summary>
public class ImageReferenceTests
{
    [Theory]
    [InlineData("debian", "docker.io", "library/debian", null, null, "docker.io/library/debian:latest")]
    [InlineData("debian:bookworm", "docker.io", "library/debian", "bookworm", null, "docker.io/library/debian:bookworm")]
    [InlineData("grafana/grafana:11.0", "docker.io", "grafana/grafana", "11.0", null, "docker.io/grafana/grafana:11.0")]
    [InlineData("docker.io/nginx", "docker.io", "library/nginx", null, null, "docker.io/library/nginx:latest")]
    [InlineData("index.docker.io/nginx", "docker.io", "library/nginx", null, null, "docker.io/library/nginx:latest")]
    [InlineData("mcr.microsoft.com/dotnet/aspnet:10.0", "mcr.microsoft.com", "dotnet/aspnet", "10.0", null, "mcr.microsoft.com/dotnet/aspnet:10.0")]
    [InlineData("localhost/app", "localhost", "app", null, null, "localhost/app:latest")]
    [InlineData("localhost:5000/team/app:v1.2_3-rc", "localhost:5000", "team/app", "v1.2_3-rc", null, "localhost:5000/team/app:v1.2_3-rc")]
    [InlineData("127.0.0.1:41234/busybox:latest", "127.0.0.1:41234", "busybox", "latest", null, "127.0.0.1:41234/busybox:latest")]
    [InlineData("[::1]:5000/a/b", "[::1]:5000", "a/b", null, null, "[::1]:5000/a/b:latest")]
    [InlineData("ghcr.io/o/r__x/y.z-w:t", "ghcr.io", "o/r__x/y.z-w", "t", null, "ghcr.io/o/r__x/y.z-w:t")]
    [InlineData("debian@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "docker.io", "library/debian", null,
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "docker.io/library/debian@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("r.example/x:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "r.example", "x", "1",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "r.example/x:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public void ParsesAsDockerDoes(string text, string registry, string repository, string? tag, string? digest, string canonical)
    {
        var reference = ImageReference.Parse(text);
        Assert.Equal(registry, reference.Registry);
        Assert.Equal(repository, reference.Repository);
        Assert.Equal(tag, reference.Tag);
        Assert.Equal(digest, reference.Digest?.ToString());
        Assert.Equal(canonical, reference.ToString());
        Assert.Equal(digest ?? tag ?? "latest", reference.ManifestReference);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Debian")]
    [InlineData("registry.example/Team/app")]
    [InlineData("app:")]
    [InlineData("app:-bad")]
    [InlineData("app:.bad")]
    [InlineData("app:a/b")]
    [InlineData("app@sha256:123")]
    [InlineData("app@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("app@md5:0123456789abcdef0123456789abcdef")]
    [InlineData("app@sha256:../../../../etc/passwd")]
    [InlineData("a//b")]
    [InlineData("/app")]
    [InlineData("app/")]
    [InlineData("a..b")]
    [InlineData("a--")]
    [InlineData("-a")]
    [InlineData("ex ample/app")]
    [InlineData("bad_host.example:port/app")]
    [InlineData("host.example:123456/app")]
    public void RejectsMalformedReferencesWithACode(string text)
    {
        var e = Assert.Throws<RuncibleException>(() => ImageReference.Parse(text));
        Assert.Equal("RUNCIBLE1101", e.Code);
        Assert.Contains(text, e.Message);
    }

    [Fact]
    public void RejectsOverlongNamesAndTags()
    {
        Assert.Equal("RUNCIBLE1101", Assert.Throws<RuncibleException>(() => ImageReference.Parse("r.example/" + new string('a', 256))).Code);
        Assert.Equal("RUNCIBLE1101", Assert.Throws<RuncibleException>(() => ImageReference.Parse("app:" + new string('t', 129))).Code);
        Assert.Equal("t".PadRight(128, 't'), ImageReference.Parse("app:" + new string('t', 128)).Tag);
    }

    [Theory]
    [InlineData("oci-layout:/images/app", nameof(LocalSourceKind.OciLayout), "/images/app", null, null)]
    [InlineData("oci-layout:/images/app:v1", nameof(LocalSourceKind.OciLayout), "/images/app", "v1", null)]
    [InlineData("oci-layout:rel/dir@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", nameof(LocalSourceKind.OciLayout), "rel/dir", null,
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("oci-archive:/tmp/app.tar:latest", nameof(LocalSourceKind.OciArchive), "/tmp/app.tar", "latest", null)]
    [InlineData("oci-archive:/tmp/app.tar", nameof(LocalSourceKind.OciArchive), "/tmp/app.tar", null, null)]
    [InlineData("docker-archive:/tmp/app.tar", nameof(LocalSourceKind.DockerArchive), "/tmp/app.tar", null, null)]
    [InlineData("docker-archive:/tmp/app.tar:example/app:1.0", nameof(LocalSourceKind.DockerArchive), "/tmp/app.tar", "example/app:1.0", null)]
    public void ParsesLocalSourcesAsSkopeoNamesThem(string text, string kindName, string path, string? tag, string? digest)
    {
        var kind = Enum.Parse<LocalSourceKind>(kindName);
        Assert.True(LocalImageReference.IsLocal(text));
        var reference = LocalImageReference.Parse(text);
        Assert.Equal((kind, path, tag, digest), (reference.Kind, reference.Path, reference.Tag, reference.Digest?.ToString()));
    }

    [Theory]
    [InlineData("oci-layout:")]
    [InlineData("oci-layout:/x@sha256:12")]
    [InlineData("docker-archive:/x.tar:")]
    public void RejectsMalformedLocalSources(string text) =>
        Assert.Equal("RUNCIBLE1101", Assert.Throws<RuncibleException>(() => LocalImageReference.Parse(text)).Code);
}
