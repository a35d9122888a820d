using Runcible.Core.Registry;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using static Runcible.Tests.Registry.RegistryTestSupport;

namespace Runcible.Tests.Registry;

/// <summary>The Docker Hub / GHCR flow against the real registry in <c>auth: token</c> mode and the test token server.</summary>
public sealed class RegistryTokenAuthTests(SharedRegistries registries)
{
    private const string PrivateRepository = "registry-tests/private";

    private static readonly SemaphoreSlim PushGate = new(1, 1);
    private static bool s_pushed;

    /// <summary>Pushes busybox as a private repository of the shared token registry, once per run (its own name: shared tags stay untouched).</summary>
    private async Task<RegistryServer> PrivateRepositoryAsync()
    {
        var registry = await registries.TokenAuthAsync();
        await PushGate.WaitAsync(Ct);
        try
        {
            if (!s_pushed)
            {
                await registry.PushAsync(FixtureImages.Busybox, PrivateRepository + ":latest", cancellationToken: Ct);
                registry.TokenServer!.MakePrivate(PrivateRepository);
                s_pushed = true;
            }
        }
        finally
        {
            PushGate.Release();
        }

        return registry;
    }

    private static int TokenRequestsFor(RegistryServer registry, string repository) =>
        registry.TokenServer!.Requests.Count(r => Uri.UnescapeDataString(r).Contains($"repository:{repository}:", StringComparison.Ordinal));

    [Fact]
    public async Task AnonymousBearerTokenPullsAPublicRepository()
    {
        var registry = await registries.TokenAuthAsync();
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home));
        using var source = client.Open(registry.Host, "multiarch");

        var index = await source.GetManifestAsync("latest", Ct);
        Assert.Equal(SkopeoManifest(registry, "multiarch:latest"), index.Bytes);
    }

    [Fact]
    public async Task APrivateRepositoryNeedsCredentialsGetsThemAndReusesOneTokenForEveryBlob()
    {
        var registry = await PrivateRepositoryAsync();
        using var home = new TempDirectory();

        // Anonymous: the token server grants nothing, the registry refuses.
        using (var anonymous = new RegistryClient(Options(home)))
        using (var source = anonymous.Open(registry.Host, PrivateRepository))
        {
            var error = await ThrowsCodeAsync("RUNCIBLE1003", () => source.GetManifestAsync("latest", Ct));
            Assert.Contains(PrivateRepository, error.Message);
            Assert.Contains("RUNCIBLE_REGISTRY_USERNAME", error.Message);
        }

        // With the account: manifest, config and every layer, on one token (skopeo asks for its own token first).
        var expected = SkopeoManifest(registry, PrivateRepository + ":latest");
        var before = TokenRequestsFor(registry, PrivateRepository);
        using (var client = new RegistryClient(Options(home, CredentialEnvironment(registry))))
        using (var source = client.Open(registry.Host, PrivateRepository))
        {
            var manifest = await source.GetManifestAsync("latest", Ct);
            Assert.Equal(expected, manifest.Bytes);
            var parsed = System.Text.Json.JsonSerializer.Deserialize<Runcible.Core.Oci.ImageManifest>(manifest.Bytes, Runcible.Core.Oci.OciJson.Options)!;
            var blobs = parsed.Layers!.Prepend(parsed.Config!).ToList();
            Assert.True(blobs.Count >= 3);
            await Task.WhenAll(blobs.Select(async blob => Assert.Equal(blob.Digest, Sha256(await CopyBlobAsync(source, blob)))));
            await source.GetManifestAsync(manifest.Digest.ToString(), Ct);
        }

        Assert.Equal(1, TokenRequestsFor(registry, PrivateRepository) - before);

        // A fresh client whose first requests are parallel blob fetches: all are challenged at once, one token is fetched.
        var manifestBytes = expected;
        var layers = System.Text.Json.JsonSerializer.Deserialize<Runcible.Core.Oci.ImageManifest>(manifestBytes, Runcible.Core.Oci.OciJson.Options)!.Layers!;
        before = TokenRequestsFor(registry, PrivateRepository);
        using (var client = new RegistryClient(Options(home, CredentialEnvironment(registry))))
        using (var source = client.Open(registry.Host, PrivateRepository))
        {
            await Task.WhenAll(layers.Select(async blob => Assert.Equal(blob.Digest, Sha256(await CopyBlobAsync(source, blob)))));
        }

        Assert.Equal(1, TokenRequestsFor(registry, PrivateRepository) - before);
    }

    [Fact]
    public async Task AWrongPasswordAtTheTokenServerIsACodedError()
    {
        var registry = await registries.TokenAuthAsync();
        using var home = new TempDirectory();
        var environment = new Dictionary<string, string>
        {
            ["RUNCIBLE_REGISTRY_USERNAME"] = registry.Username!,
            ["RUNCIBLE_REGISTRY_PASSWORD"] = "not-the-password",
        };
        using var client = new RegistryClient(Options(home, environment));
        using var source = client.Open(registry.Host, "busybox");

        var error = await ThrowsCodeAsync("RUNCIBLE1004", () => source.GetManifestAsync("latest", Ct));
        Assert.Contains("RUNCIBLE_REGISTRY_USERNAME", error.Message);
        Assert.Contains("401", error.Message);
    }

    [Fact]
    public async Task BearerWithCredentialsFromAHelperPullsAPublicRepositoryToo()
    {
        var registry = await registries.TokenAuthAsync();
        using var home = new TempDirectory();
        var bin = home.Combine("bin");
        Directory.CreateDirectory(bin);
        var script = Path.Combine(bin, "docker-credential-test");
        File.WriteAllText(script, $"#!/bin/sh\ncat >/dev/null\nprintf '{{\"Username\":\"{registry.Username}\",\"Secret\":\"{registry.Password}\"}}'\n");
        ProcessRunner.Run("chmod", "700", script).EnsureSuccess("chmod");
        Directory.CreateDirectory(home.Combine(".docker"));
        File.WriteAllText(home.Combine(".docker", "config.json"), """{"credsStore":"test"}""");
        using var client = new RegistryClient(Options(home, new Dictionary<string, string> { ["PATH"] = bin + ":/usr/bin:/bin" }));
        using var source = client.Open(registry.Host, "busybox");

        var manifest = await source.GetManifestAsync("latest", Ct);
        Assert.Equal(SkopeoManifest(registry, "busybox:latest"), manifest.Bytes);
    }

    [Fact]
    public async Task AnExpiredTokenIsFetchedAgain()
    {
        await using var registry = await RegistryServer.StartTokenAuthAsync(TimeSpan.FromSeconds(1), Ct);
        await registry.PushAsync(FixtureImages.Busybox, "short-lived:latest", cancellationToken: Ct);
        using var home = new TempDirectory();
        using var client = new RegistryClient(Options(home));
        using var source = client.Open(registry.Host, "short-lived");

        var manifest = await source.GetManifestAsync("latest", Ct);
        var before = TokenRequestsFor(registry, "short-lived");
        await Task.Delay(TimeSpan.FromSeconds(1.5), Ct);
        await CopyBlobAsync(source, ConfigOf(manifest));
        Assert.Equal(before + 1, TokenRequestsFor(registry, "short-lived"));
    }
}
