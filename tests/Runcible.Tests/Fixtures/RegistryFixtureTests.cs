using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;

namespace Runcible.Tests.Fixtures;

/// <summary>Proves the registry fixtures against the real tools: what skopeo pushed is what was intended, and auth works as real registries do.</summary>
public sealed class RegistryFixtureTests(SharedRegistries registries)
{
    private const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    private const string OciIndex = "application/vnd.oci.image.index.v1+json";
    private const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    private const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

    private const string AcceptAll = OciManifest + ", " + OciIndex + ", " + DockerManifest + ", " + DockerManifestList;

    [Theory]
    [InlineData(FixtureImages.Busybox, PushFormat.Oci, OciManifest, "application/vnd.oci.image.layer.v1.tar+gzip")]
    [InlineData(FixtureImages.Busybox, PushFormat.DockerV2S2, DockerManifest, "application/vnd.docker.image.rootfs.diff.tar.gzip")]
    [InlineData(FixtureImages.Busybox, PushFormat.Zstd, OciManifest, "application/vnd.oci.image.layer.v1.tar+zstd")]
    [InlineData(FixtureImages.Busybox, PushFormat.Uncompressed, OciManifest, "application/vnd.oci.image.layer.v1.tar")]
    [InlineData(FixtureImages.Runtime, PushFormat.Oci, OciManifest, "application/vnd.oci.image.layer.v1.tar+gzip")]
    [InlineData(FixtureImages.Runtime, PushFormat.DockerV2S2, DockerManifest, "application/vnd.docker.image.rootfs.diff.tar.gzip")]
    [InlineData(FixtureImages.Runtime, PushFormat.Zstd, OciManifest, "application/vnd.oci.image.layer.v1.tar+zstd")]
    [InlineData(FixtureImages.Runtime, PushFormat.Uncompressed, OciManifest, "application/vnd.oci.image.layer.v1.tar")]
    [InlineData(FixtureImages.RuntimeDeps, PushFormat.Oci, OciManifest, "application/vnd.oci.image.layer.v1.tar+gzip")]
    [InlineData(FixtureImages.AspNet, PushFormat.Oci, OciManifest, "application/vnd.oci.image.layer.v1.tar+gzip")]
    public async Task EachPushedVariantHasTheIntendedManifestAndLayerMediaTypes(string image, PushFormat format, string manifestType, string layerType)
    {
        var registry = await registries.AnonymousAsync();
        var reference = $"docker://{registry.Host}/{SharedRegistries.RepositoryTag(image, format)}";

        using var manifest = JsonDocument.Parse(Skopeo(registry, "inspect", "--raw", reference));
        Assert.Equal(manifestType, manifest.RootElement.GetProperty("mediaType").GetString());
        var layers = manifest.RootElement.GetProperty("layers").EnumerateArray().ToList();
        Assert.NotEmpty(layers);
        Assert.All(layers, layer => Assert.Equal(layerType, layer.GetProperty("mediaType").GetString()));

        // The bytes agree with the media type: the first layer's magic number.
        using var client = registry.CreateHttpClient();
        var repository = image;
        var digest = layers[0].GetProperty("digest").GetString();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repository}/blobs/{digest}");
        request.Headers.Range = new RangeHeaderValue(0, 511);
        using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
        var head = await response.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken);
        Assert.True(head.Length >= 4, $"blob {digest} too short");
        if (layerType.EndsWith("gzip", StringComparison.Ordinal))
        {
            Assert.Equal([0x1f, 0x8b], head[..2]);
        }
        else if (layerType.EndsWith("zstd", StringComparison.Ordinal))
        {
            Assert.Equal([0x28, 0xb5, 0x2f, 0xfd], head[..4]);
        }
        else
        {
            // A tar header: "ustar" at offset 257.
            Assert.Equal("ustar", Encoding.ASCII.GetString(head, 257, 5));
        }

        // skopeo (the oracle) reads the whole image back: config and every layer, digests verified.
        using var pulled = new TempDirectory("runcible-fixture-pull");
        Skopeo(registry, "copy", "--quiet", "--insecure-policy", "--src-tls-verify=false", reference, "oci:" + pulled.Combine("layout") + ":x");
    }

    [Theory]
    [InlineData(PushFormat.Oci, OciIndex)]
    [InlineData(PushFormat.DockerV2S2, DockerManifestList)]
    public async Task TheMultiarchImageIsAnIndexOfLinuxAmd64AndLinuxArm64(PushFormat format, string indexType)
    {
        var registry = await registries.AnonymousAsync();
        var reference = $"docker://{registry.Host}/{SharedRegistries.RepositoryTag(FixtureImages.MultiArch, format)}";

        using var index = JsonDocument.Parse(Skopeo(registry, "inspect", "--raw", reference));
        Assert.Equal(indexType, index.RootElement.GetProperty("mediaType").GetString());
        var platforms = index.RootElement.GetProperty("manifests").EnumerateArray()
            .Select(m => m.GetProperty("platform").GetProperty("os").GetString() + "/" + m.GetProperty("platform").GetProperty("architecture").GetString())
            .Order()
            .ToArray();
        Assert.Equal(["linux/amd64", "linux/arm64"], platforms);

        foreach (var (arch, os) in new[] { ("arm64", "linux"), ("amd64", "linux") })
        {
            using var config = JsonDocument.Parse(Skopeo(registry, "inspect", "--config", "--override-arch", arch, "--override-os", os, reference));
            Assert.Equal(arch, config.RootElement.GetProperty("architecture").GetString());
        }
    }

    [Fact]
    public async Task TheFixtureImagesCarryTheConfigsOfTheOfficialDotnetImages()
    {
        var registry = await registries.AnonymousAsync();
        string[] Env(string image)
        {
            using var config = JsonDocument.Parse(Skopeo(registry, "inspect", "--config", $"docker://{registry.Host}/{image}:latest"));
            var c = config.RootElement.GetProperty("config");
            Assert.False(c.TryGetProperty("Entrypoint", out var entrypoint) && entrypoint.ValueKind == JsonValueKind.Array);
            return [.. c.GetProperty("Env").EnumerateArray().Select(e => e.GetString()!)];
        }

        Assert.Contains("APP_UID=1654", Env(FixtureImages.RuntimeDeps));
        Assert.Contains(Env(FixtureImages.Runtime), e => e.StartsWith("DOTNET_VERSION=", StringComparison.Ordinal));
        Assert.Contains(Env(FixtureImages.AspNet), e => e.StartsWith("ASPNET_VERSION=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheTlsRegistryRefusesAnonymousAndWrongCredentialsAndServesTheRightOnes()
    {
        var registry = await registries.TlsBasicAuthAsync();
        var ct = TestContext.Current.CancellationToken;
        Assert.Equal("https", registry.BaseAddress.Scheme);
        Assert.True(File.Exists(registry.CaCertificatePath));
        Assert.Contains("BEGIN CERTIFICATE", registry.CaCertificatePem);

        using var client = registry.CreateHttpClient();
        using (var anonymous = await client.GetAsync("v2/busybox/manifests/latest", ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("Basic", anonymous.Headers.WwwAuthenticate.Single().Scheme);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await GetManifestStatusAsync(client, Basic(registry.Username!, "wrong"), ct));
        Assert.Equal(HttpStatusCode.OK, await GetManifestStatusAsync(client, Basic(registry.Username!, registry.Password!), ct));

        // skopeo agrees: refused without credentials, served with them, and the CA is what makes TLS work.
        var reference = $"docker://{registry.Host}/busybox:latest";
        var refused = ProcessRunner.Run("skopeo", "inspect", "--raw", "--tls-verify=true", "--cert-dir", registry.CertificateDirectory!, "--no-creds", reference);
        Assert.NotEqual(0, refused.ExitCode);
        var untrusted = ProcessRunner.Run("skopeo", "inspect", "--raw", "--tls-verify=true", "--creds", $"{registry.Username}:{registry.Password}", reference);
        Assert.NotEqual(0, untrusted.ExitCode);
        Assert.Contains("certificate", untrusted.StandardError, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(OciManifest, Skopeo(registry, "inspect", "--raw", reference));
    }

    [Fact]
    public async Task TheTokenRegistryFollowsTheBearerFlowForAnonymousAndUserTokens()
    {
        var registry = await registries.TokenAuthAsync();
        var tokenServer = registry.TokenServer!;
        var ct = TestContext.Current.CancellationToken;
        using var client = registry.CreateHttpClient();

        // 1. The registry challenges with the realm, service and scope.
        using (var challenge = await client.GetAsync("v2/busybox/manifests/latest", ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, challenge.StatusCode);
            var bearer = challenge.Headers.WwwAuthenticate.Single();
            Assert.Equal("Bearer", bearer.Scheme);
            Assert.Contains($"realm=\"{tokenServer.Realm}\"", bearer.Parameter);
            Assert.Contains($"service=\"{tokenServer.Service}\"", bearer.Parameter);
            Assert.Contains("scope=\"repository:busybox:pull\"", bearer.Parameter);
        }

        using var tokenClient = new HttpClient(new SocketsHttpHandler { UseProxy = false });
        var tokenUrl = $"{tokenServer.Realm}?service={Uri.EscapeDataString(tokenServer.Service)}&scope={Uri.EscapeDataString("repository:busybox:pull,push")}";

        // 2. Anonymous token: pulls, cannot push.
        var anonymousToken = await GetTokenAsync(tokenClient, tokenUrl, null, ct);
        Assert.Equal(HttpStatusCode.OK, await GetManifestStatusAsync(client, new AuthenticationHeaderValue("Bearer", anonymousToken), ct));
        Assert.Equal(HttpStatusCode.Unauthorized, await StartUploadStatusAsync(client, anonymousToken, ct));

        // 3. User token: pulls and pushes.
        var userToken = await GetTokenAsync(tokenClient, tokenUrl, Basic(registry.Username!, registry.Password!), ct);
        Assert.Equal(HttpStatusCode.OK, await GetManifestStatusAsync(client, new AuthenticationHeaderValue("Bearer", userToken), ct));
        Assert.Equal(HttpStatusCode.Accepted, await StartUploadStatusAsync(client, userToken, ct));

        // 4. Wrong password: the token server says 401.
        using (var wrong = new HttpRequestMessage(HttpMethod.Get, tokenUrl))
        {
            wrong.Headers.Authorization = Basic(registry.Username!, "not-the-password");
            using var response = await tokenClient.SendAsync(wrong, ct);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        // 4b. The OAuth2 form (POST, grant_type=password) that containerd-style clients send: same rules.
        foreach (var (password, expected) in new[] { (registry.Password!, HttpStatusCode.OK), ("not-the-password", HttpStatusCode.Unauthorized) })
        {
            using var form = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "password",
                ["username"] = registry.Username!,
                ["password"] = password,
                ["service"] = tokenServer.Service,
                ["scope"] = "repository:busybox:pull",
                ["client_id"] = "runcible-tests",
            });
            using var response = await tokenClient.PostAsync(tokenServer.Realm, form, ct);
            Assert.Equal(expected, response.StatusCode);
            if (expected == HttpStatusCode.OK)
            {
                using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
                var posted = body.RootElement.GetProperty("access_token").GetString()!;
                Assert.Equal(HttpStatusCode.OK, await GetManifestStatusAsync(client, new AuthenticationHeaderValue("Bearer", posted), ct));
            }
        }

        // 5. A token not signed by the trusted key is refused by the registry.
        var parts = userToken.Split('.');
        var forged = parts[0] + "." + parts[1] + "." + parts[2][..^4] + (parts[2].EndsWith("AAAA", StringComparison.Ordinal) ? "BBBB" : "AAAA");
        Assert.Equal(HttpStatusCode.Unauthorized, await GetManifestStatusAsync(client, new AuthenticationHeaderValue("Bearer", forged), ct));

        // skopeo, a real client, pulls through the token flow anonymously.
        Assert.Contains(OciManifest, ProcessRunner.Run("skopeo", "inspect", "--raw", "--tls-verify=false", "--no-creds", $"docker://{registry.Host}/busybox:latest")
            .EnsureSuccess("skopeo inspect through the token flow").StandardOutput);
        Assert.True(tokenServer.RequestCount >= 4);
    }

    [Fact]
    public async Task APrivateRepositoryRefusesAnonymousTokensAndServesTheUser()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var registry = await RegistryServer.StartTokenAuthAsync(TimeSpan.FromSeconds(30), ct);
        await registry.PushAsync(FixtureImages.Busybox, "private/busybox:latest", cancellationToken: ct);
        registry.TokenServer!.MakePrivate("private/busybox");
        var reference = $"docker://{registry.Host}/private/busybox:latest";

        var anonymous = ProcessRunner.Run("skopeo", "inspect", "--raw", "--tls-verify=false", "--no-creds", reference);
        Assert.NotEqual(0, anonymous.ExitCode);
        Assert.Contains("unauthorized", anonymous.StandardError, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(OciManifest, Skopeo(registry, "inspect", "--raw", reference));

        using var tokenClient = new HttpClient(new SocketsHttpHandler { UseProxy = false });
        using var response = await tokenClient.GetAsync($"{registry.TokenServer.Realm}?service={registry.TokenServer.Service}&scope=repository:private/busybox:pull", ct);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.Equal(30, body.RootElement.GetProperty("expires_in").GetInt32());
    }

    [Fact]
    public async Task ARegistryServerStopsAndRemovesItsFilesOnDispose()
    {
        var ct = TestContext.Current.CancellationToken;
        var registry = await RegistryServer.StartAnonymousAsync(ct);
        var storage = registry.StorageDirectory;
        var address = registry.BaseAddress;
        using (var client = registry.CreateHttpClient())
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("v2/", ct)).StatusCode);
        }

        Assert.True(Directory.Exists(storage));
        await registry.DisposeAsync();

        Assert.False(Directory.Exists(storage));
        using var after = new HttpClient(new SocketsHttpHandler { UseProxy = false });
        await Assert.ThrowsAsync<HttpRequestException>(() => after.GetAsync(new Uri(address, "v2/"), ct));
    }

    private static async Task<string> GetTokenAsync(HttpClient client, string url, AuthenticationHeaderValue? authorization, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = authorization;
        using var response = await client.SendAsync(request, ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.True(body.RootElement.GetProperty("expires_in").GetInt32() > 0);
        return body.RootElement.GetProperty("token").GetString()!;
    }

    private static async Task<HttpStatusCode> GetManifestStatusAsync(HttpClient client, AuthenticationHeaderValue authorization, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "v2/busybox/manifests/latest");
        request.Headers.Authorization = authorization;
        request.Headers.TryAddWithoutValidation("Accept", AcceptAll);
        using var response = await client.SendAsync(request, ct);
        return response.StatusCode;
    }

    private static async Task<HttpStatusCode> StartUploadStatusAsync(HttpClient client, string token, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v2/busybox/blobs/uploads/");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Content = new ByteArrayContent([]);
        using var response = await client.SendAsync(request, ct);
        return response.StatusCode;
    }

    private static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    private static string Skopeo(RegistryServer registry, params string[] arguments)
    {
        var all = new List<string>(arguments);
        // inspect takes un-prefixed flags; copy reads from the registry with --src-* (already given by the caller).
        if (arguments[0] == "inspect")
        {
            all.InsertRange(1, registry.InspectArguments());
        }

        return ProcessRunner.Run("skopeo", all).EnsureSuccess("skopeo " + string.Join(' ', arguments)).StandardOutput;
    }
}
