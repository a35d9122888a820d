using Runcible.Core.Registry;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using static Runcible.Tests.Registry.RegistryTestSupport;

namespace Runcible.Tests.Registry;

/// <summary>
/// Credentials go where they belong, and nowhere else: the .NET SDK's push credentials only to the project's
/// <c>ContainerRegistry</c>, the pull credentials to any base image registry, none to an origin a registry redirects
/// to, and no redirect from HTTPS to plain HTTP.
/// </summary>
public sealed class RegistryCredentialScopeTests
{
    private const string PrivateRepository = "scope-tests/private";

    private static async Task<RegistryServer> PrivateRegistryAsync()
    {
        var registry = await RegistryServer.StartTokenAuthAsync(cancellationToken: Ct);
        await registry.PushAsync(FixtureImages.Busybox, PrivateRepository + ":latest", cancellationToken: Ct);
        registry.TokenServer!.MakePrivate(PrivateRepository);
        return registry;
    }

    private static Dictionary<string, string> Pair(string prefix, RegistryServer registry) => new()
    {
        [prefix + "_UNAME"] = registry.Username!,
        [prefix + "_PWORD"] = registry.Password!,
    };

    /// <summary>Token requests since <paramref name="from"/> that carried Basic credentials.</summary>
    private static int CredentialedTokenRequests(RegistryServer registry, int from) =>
        registry.TokenServer!.Authorizations.Skip(from).Count(a => a is not null && a.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase));

    [Fact]
    public async Task PushCredentialsAreSentOnlyToTheContainerRegistryAndPullCredentialsToAny()
    {
        await using var registry = await PrivateRegistryAsync();
        using var home = new TempDirectory();
        var expected = SkopeoManifest(registry, PrivateRepository + ":latest");

        // The SDK's push credentials, the project publishing to another registry: the base image's registry never sees them.
        foreach (var push in new[] { "DOTNET_CONTAINER_REGISTRY", "SDK_CONTAINER_REGISTRY" })
        {
            var before = registry.TokenServer!.RequestCount;
            using (var client = new RegistryClient(Options(home, Pair(push, registry), containerRegistry: "registry.example.com")))
            using (var source = client.Open(registry.Host, PrivateRepository))
            {
                var error = await ThrowsCodeAsync("RUNCIBLE1003", () => source.GetManifestAsync("latest", Ct));
                Assert.Contains("DOTNET_CONTAINER_PULL_REGISTRY_UNAME", error.Message);
                Assert.DoesNotContain(push + "_UNAME", error.Message);
            }

            Assert.True(registry.TokenServer.RequestCount > before, "the token server was asked (anonymously)");
            Assert.Equal(0, CredentialedTokenRequests(registry, before));

            // Nor without a ContainerRegistry (the SDK then publishes to a local daemon or an archive).
            before = registry.TokenServer.RequestCount;
            using (var client = new RegistryClient(Options(home, Pair(push, registry), containerRegistry: null)))
            using (var source = client.Open(registry.Host, PrivateRepository))
            {
                await ThrowsCodeAsync("RUNCIBLE1003", () => source.GetManifestAsync("latest", Ct));
            }

            Assert.Equal(0, CredentialedTokenRequests(registry, before));

            // When the base image comes from the ContainerRegistry itself, they are the ones to use, as in the SDK.
            before = registry.TokenServer.RequestCount;
            using (var client = new RegistryClient(Options(home, Pair(push, registry), containerRegistry: registry.Host)))
            using (var source = client.Open(registry.Host, PrivateRepository))
            {
                Assert.Equal(expected, (await source.GetManifestAsync("latest", Ct)).Bytes);
            }

            Assert.Equal(1, CredentialedTokenRequests(registry, before));
        }

        // The SDK's pull credentials: for any base image registry.
        var start = registry.TokenServer!.RequestCount;
        using (var client = new RegistryClient(Options(home, Pair("DOTNET_CONTAINER_PULL_REGISTRY", registry), containerRegistry: "registry.example.com")))
        using (var source = client.Open(registry.Host, PrivateRepository))
        {
            Assert.Equal(expected, (await source.GetManifestAsync("latest", Ct)).Bytes);
        }

        Assert.Equal(1, CredentialedTokenRequests(registry, start));
    }

    [Fact]
    public async Task AChallengeFromTheOriginARegistryRedirectsToIsAnErrorAndItsRealmGetsNothing()
    {
        // The origin redirected to is a real registry in token mode: it answers 401 naming its token server.
        await using var elsewhere = await PrivateRegistryAsync();
        await using var registry = new ScriptedHttpServer(head => head.Target == "/v2/"
            ? new ScriptedResponse(200, [new("Content-Type", "application/json")], "{}")
            : new ScriptedResponse(307, [new("Location", new Uri(elsewhere.BaseAddress, head.Target.Replace("redirecting/app", PrivateRepository, StringComparison.Ordinal)).ToString())]));
        using var home = new TempDirectory();
        var environment = new Dictionary<string, string>
        {
            ["RUNCIBLE_REGISTRY_USERNAME"] = elsewhere.Username!,
            ["RUNCIBLE_REGISTRY_PASSWORD"] = elsewhere.Password!,
        };

        var tokenRequests = elsewhere.TokenServer!.RequestCount;
        using (var client = new RegistryClient(Options(home, environment)))
        using (var source = client.Open(registry.Host, "redirecting/app"))
        {
            var error = await ThrowsCodeAsync("RUNCIBLE1019", () => source.GetManifestAsync("latest", Ct));
            Assert.Contains(elsewhere.BaseAddress.GetLeftPart(UriPartial.Authority), error.Message);
            Assert.DoesNotContain(elsewhere.Password!, error.Message);
        }

        Assert.Equal(tokenRequests, elsewhere.TokenServer.RequestCount);
        Assert.Contains(registry.Requests, r => r.Target.Contains("/manifests/latest", StringComparison.Ordinal));
        Assert.DoesNotContain(registry.Requests, r => r.Headers.ContainsKey("Authorization"));
    }

    [Fact]
    public async Task ARedirectFromHttpsToPlainHttpIsRefusedEvenOnLoopback()
    {
        using var certificateDirectory = new TempDirectory();
        using var certificates = new TestCertificateAuthority(certificateDirectory.Path);
        var serverCertificate = certificates.Issue("registry", serverAuth: true);
        await using var plain = new ScriptedHttpServer(_ => new ScriptedResponse(404, [new("Content-Type", "application/json")], """{"errors":[]}"""));
        await using var registry = new ScriptedHttpServer(head => head.Target == "/v2/"
            ? new ScriptedResponse(200, [new("Content-Type", "application/json")], "{}")
            : new ScriptedResponse(302, [new("Location", new Uri(plain.BaseAddress, head.Target).ToString())]), serverCertificate.Certificate);
        using var home = new TempDirectory();

        // Loopback counts as insecure (plain HTTP allowed for a loopback registry), yet a downgrade from HTTPS is not followed.
        using var client = new RegistryClient(Options(home));
        using var source = client.Open(registry.Host, "library/app");
        var error = await ThrowsCodeAsync("RUNCIBLE1020", () => source.GetManifestAsync("latest", Ct));
        Assert.Contains(plain.Host, error.Message);
        Assert.Contains(registry.Requests, r => r.Target.Contains("/manifests/latest", StringComparison.Ordinal));
        Assert.Empty(plain.Requests);
    }
}
