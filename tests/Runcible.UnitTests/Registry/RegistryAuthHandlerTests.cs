using System.Net;
using System.Text;
using Runcible.Core.Registry;
using Runcible.Core.Registry.Pipeline;
using Runcible.Tests.Infrastructure;
using static Runcible.Tests.Registry.PipelineTestSupport;

namespace Runcible.Tests.Registry;

/// <summary><see cref="RegistryAuthHandler"/> alone: the scripted handler plays both the registry and its token server.</summary>
public class RegistryAuthHandlerTests
{
    private const string Registry = "registry.example";
    private const string Realm = "https://auth.example/token";

    private static readonly Dictionary<string, string> Credentials = new()
    {
        ["RUNCIBLE_REGISTRY_USERNAME"] = "alice",
        ["RUNCIBLE_REGISTRY_PASSWORD"] = "s3cret",
    };

    private static string Basic(string user, string password) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password));

    private static HttpMessageInvoker Pipeline(RegistryClientOptions options, ScriptedHandler registryAndTokenServer)
    {
        var insecure = new InsecureRegistries(options);
        return new HttpMessageInvoker(new RegistryAuthHandler(options, new CredentialStore(options), insecure, registryAndTokenServer, registryAndTokenServer));
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpMessageInvoker invoker, RegistryClientOptions options, string repository = "team/app")
    {
        using var request = Get($"https://{Registry}/v2/{repository}/manifests/latest", Context(options, Registry, repository));
        return await invoker.SendAsync(request, Ct);
    }

    /// <summary>A registry wanting a Bearer token: the token server hands out <c>t1</c>, <c>t2</c>… (one per request).</summary>
    private static ScriptedHandler BearerRegistry(string realm = Realm, Func<HttpRequestMessage, HttpResponseMessage?>? tokenAnswer = null)
    {
        var tokens = 0;
        return new ScriptedHandler(request =>
        {
            if (request.RequestUri!.Host == new Uri(realm).Host)
            {
                return tokenAnswer?.Invoke(request) ?? ScriptedHandler.Ok($$"""{"token":"t{{Interlocked.Increment(ref tokens)}}","expires_in":300}""");
            }

            return request.Headers.Authorization?.Scheme == "Bearer"
                ? ScriptedHandler.Ok("manifest")
                : ScriptedHandler.Challenge("Bearer", $"realm=\"{realm}\",service=\"registry.example\"");
        });
    }

    [Fact]
    public async Task AnOpenRegistryGetsNoCredentials()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, environment: Credentials);
        var inner = new ScriptedHandler(_ => ScriptedHandler.Ok());
        using var invoker = Pipeline(options, inner);

        using var response = await SendAsync(invoker, options);

        Assert.Null(Assert.Single(inner.Requests).Authorization);
    }

    [Fact]
    public async Task ABearerChallengeIsAnsweredWithATokenForThePullScopeCachedPerRepository()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, environment: Credentials);
        var inner = BearerRegistry();
        using var invoker = Pipeline(options, inner);

        (await SendAsync(invoker, options)).Dispose();
        (await SendAsync(invoker, options)).Dispose();
        (await SendAsync(invoker, options, "team/other")).Dispose();

        var sent = inner.Requests;
        Assert.Equal("https://auth.example/token?service=registry.example&scope=repository%3Ateam%2Fapp%3Apull", sent[1].Uri.ToString());
        Assert.Equal(Basic("alice", "s3cret"), sent[1].Authorization);
        Assert.Equal("Bearer t1", sent[2].Authorization);
        Assert.Equal("Bearer t1", sent[3].Authorization);
        Assert.Contains("scope=repository%3Ateam%2Fother%3Apull", sent[5].Uri.ToString());
        Assert.Equal("Bearer t2", sent[6].Authorization);
        Assert.Equal(2, sent.Count(r => r.Uri.Host == "auth.example"));
    }

    [Fact]
    public async Task AnIdentityTokenIsExchangedWithTheOAuth2RefreshTokenPOST()
    {
        using var home = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(home.Path, ".docker"));
        File.WriteAllText(Path.Combine(home.Path, ".docker", "config.json"), """{"auths":{"registry.example":{"identitytoken":"refresh-me"}}}""");
        var options = Options(home.Path);
        var inner = BearerRegistry(tokenAnswer: request => ScriptedHandler.Ok("""{"access_token":"from-refresh"}"""));
        using var invoker = Pipeline(options, inner);

        using var response = await SendAsync(invoker, options);

        var token = Assert.Single(inner.Requests, r => r.Uri.Host == "auth.example");
        Assert.Equal(HttpMethod.Post, token.Method);
        Assert.Contains("grant_type=refresh_token", token.Body);
        Assert.Contains("refresh_token=refresh-me", token.Body);
        Assert.Contains("client_id=runcible", token.Body);
        Assert.Equal("Bearer from-refresh", inner.Requests[^1].Authorization);
    }

    [Fact]
    public async Task ABasicChallengeIsAnsweredWithTheCredentialsAndRejectionIsRUNCIBLE1004()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, environment: Credentials);
        var accepting = new ScriptedHandler(request => request.Headers.Authorization is null
            ? ScriptedHandler.Challenge("Basic", "realm=\"registry\"")
            : ScriptedHandler.Ok());
        using (var invoker = Pipeline(options, accepting))
        {
            (await SendAsync(invoker, options)).Dispose();
            (await SendAsync(invoker, options)).Dispose();
        }

        Assert.Equal([null, Basic("alice", "s3cret"), Basic("alice", "s3cret")], accepting.Requests.Select(r => r.Authorization));

        var rejecting = new ScriptedHandler(_ => ScriptedHandler.Challenge("Basic", "realm=\"registry\""));
        using var rejected = Pipeline(options, rejecting);
        var error = await ThrowsCodeAsync("RUNCIBLE1004", () => SendAsync(rejected, options));
        Assert.Contains("RUNCIBLE_REGISTRY_USERNAME", error.Message);
        Assert.DoesNotContain("s3cret", error.Message);
    }

    [Fact]
    public async Task WithoutCredentialsABasicChallengeOr403IsRUNCIBLE1003()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        using var basic = Pipeline(options, new ScriptedHandler(_ => ScriptedHandler.Challenge("Basic", "realm=\"registry\"")));
        using var forbidden = Pipeline(options, new ScriptedHandler(_ => ScriptedHandler.Status(HttpStatusCode.Forbidden)));
        using var noChallenge = Pipeline(options, new ScriptedHandler(_ => ScriptedHandler.Status(HttpStatusCode.Unauthorized)));

        Assert.Contains("wants a user name and password", (await ThrowsCodeAsync("RUNCIBLE1003", () => SendAsync(basic, options))).Message);
        Assert.Contains("403 Forbidden", (await ThrowsCodeAsync("RUNCIBLE1003", () => SendAsync(forbidden, options))).Message);
        Assert.Contains("without a Bearer or Basic challenge", (await ThrowsCodeAsync("RUNCIBLE1003", () => SendAsync(noChallenge, options))).Message);
    }

    [Fact]
    public async Task ATokenServerRefusingTheCredentialsIsRUNCIBLE1004AndABusyOneIsRetryable()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, environment: Credentials);
        using var refusing = Pipeline(options, BearerRegistry(tokenAnswer: _ => ScriptedHandler.Status(HttpStatusCode.Unauthorized)));
        using var busy = Pipeline(options, BearerRegistry(tokenAnswer: _ => ScriptedHandler.Status(HttpStatusCode.ServiceUnavailable)));

        Assert.Contains("the token server answered 401", (await ThrowsCodeAsync("RUNCIBLE1004", () => SendAsync(refusing, options))).Message);
        await Assert.ThrowsAsync<TransientRegistryException>(() => SendAsync(busy, options));
    }

    [Fact]
    public async Task CredentialsNeverGoToAPlainHTTPTokenServerOfASecureRegistry()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, environment: Credentials);
        var inner = BearerRegistry(realm: "http://auth.example/token");
        using var invoker = Pipeline(options, inner);

        var error = await ThrowsCodeAsync("RUNCIBLE1012", () => SendAsync(invoker, options));

        Assert.Contains("is plain HTTP; credentials are not sent there", error.Message);
        Assert.DoesNotContain(inner.Requests, r => r.Uri.Host == "auth.example");
    }

    [Fact]
    public async Task ATokenStillRefusedIsRUNCIBLE1003AndIsNotKept()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var inner = new ScriptedHandler(request => request.RequestUri!.Host == "auth.example"
            ? ScriptedHandler.Ok("""{"token":"useless"}""")
            : ScriptedHandler.Challenge("Bearer", $"realm=\"{Realm}\""));
        using var invoker = Pipeline(options, inner);

        Assert.Contains("anonymous access is not allowed", (await ThrowsCodeAsync("RUNCIBLE1003", () => SendAsync(invoker, options))).Message);
        await ThrowsCodeAsync("RUNCIBLE1003", () => SendAsync(invoker, options));

        // The refused token was dropped: the second request started without it and asked for a new one.
        Assert.Null(inner.Requests[3].Authorization);
        Assert.Equal(2, inner.Requests.Count(r => r.Uri.Host == "auth.example"));
    }

    [Fact]
    public async Task ParallelRequestsShareOneTokenRequest()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var inner = BearerRegistry();
        using var invoker = Pipeline(options, inner);

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => SendAsync(invoker, options)));
        foreach (var response in responses)
        {
            response.Dispose();
        }

        Assert.Single(inner.Requests, r => r.Uri.Host == "auth.example");
    }

    [Fact]
    public async Task BehindTheRedirectHandlerAChallengeFromARedirectedOriginNeverReachesItsRealm()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, environment: Credentials);
        var inner = new ScriptedHandler(request => request.RequestUri!.Host switch
        {
            "registry.example" => ScriptedHandler.Redirect("https://storage.example/blob"),
            "storage.example" => ScriptedHandler.Challenge("Bearer", "realm=\"https://collector.example/token\""),
            _ => ScriptedHandler.Ok("""{"token":"stolen"}"""),
        });
        var insecure = new InsecureRegistries(options);
        using var invoker = new HttpMessageInvoker(new RegistryAuthHandler(options, new CredentialStore(options), insecure, inner,
            new OriginRedirectHandler(options, insecure, inner)));

        await ThrowsCodeAsync("RUNCIBLE1019", () => SendAsync(invoker, options));

        Assert.DoesNotContain(inner.Requests, r => r.Uri.Host == "collector.example");
        Assert.All(inner.Requests, r => Assert.Null(r.Authorization));
    }
}
