using System.Net;
using System.Net.Http.Headers;
using Runcible.Core.Registry;
using Runcible.Core.Registry.Pipeline;
using Runcible.Tests.Infrastructure;
using static Runcible.Tests.Registry.PipelineTestSupport;

namespace Runcible.Tests.Registry;

/// <summary><see cref="OriginRedirectHandler"/> alone, over a scripted inner handler.</summary>
public class OriginRedirectHandlerTests
{
    private static async Task<HttpResponseMessage> SendAsync(RegistryClientOptions options, ScriptedHandler inner, string url,
        RegistryRequestContext? context = null, string? bearer = "secret")
    {
        using var invoker = new HttpMessageInvoker(new OriginRedirectHandler(options, new InsecureRegistries(options), inner));
        using var request = Get(url, context);
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        return await invoker.SendAsync(request, Ct);
    }

    [Fact]
    public async Task AuthorizationGoesToTheFirstOriginOnlyAndBackToIt()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var inner = new ScriptedHandler((request, i) => i switch
        {
            0 => ScriptedHandler.Redirect("https://storage.example/b?sig=1"),
            1 => ScriptedHandler.Redirect("https://registry.example/v2/r/blobs/moved", HttpStatusCode.TemporaryRedirect),
            2 => ScriptedHandler.Redirect("https://registry.example:8443/elsewhere", HttpStatusCode.PermanentRedirect),
            _ => ScriptedHandler.Ok("blob"),
        });

        using var response = await SendAsync(options, inner, "https://registry.example/v2/r/blobs/x");

        Assert.Equal("blob", await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(
            [("https://registry.example/v2/r/blobs/x", "Bearer secret"), ("https://storage.example/b?sig=1", null),
             ("https://registry.example/v2/r/blobs/moved", "Bearer secret"), ("https://registry.example:8443/elsewhere", null)],
            inner.Requests.Select(r => (r.Uri.ToString(), r.Authorization)));
    }

    [Fact]
    public async Task A401FromARedirectedOriginIsRUNCIBLE1019()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var inner = new ScriptedHandler((_, i) => i == 0
            ? ScriptedHandler.Redirect("https://storage.example/b")
            : ScriptedHandler.Challenge("Bearer", "realm=\"https://collector.example/token\",service=\"x\""));

        var error = await ThrowsCodeAsync("RUNCIBLE1019",
            () => SendAsync(options, inner, "https://registry.example/v2/r/blobs/x", Context(options, "registry.example", "r")));

        Assert.Contains("https://storage.example", error.Message);
        Assert.Contains("/v2/r/blobs/x", error.Message);
        Assert.DoesNotContain(inner.Requests, r => r.Uri.Host == "collector.example");
    }

    [Fact]
    public async Task A401FromTheRegistrysOwnOriginIsForTheAuthHandler()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var inner = new ScriptedHandler((_, i) => i == 0
            ? ScriptedHandler.Redirect("/v2/r/manifests/other")
            : ScriptedHandler.Challenge("Bearer", "realm=\"https://auth.example/token\""));

        using var response = await SendAsync(options, inner, "https://registry.example/v2/r/manifests/latest", Context(options, "registry.example", "r"));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Theory]
    [InlineData("https://registry.example/v2/", "http://registry.example/v2/")]
    [InlineData("https://localhost:5000/v2/", "http://localhost:5000/v2/")]
    [InlineData("http://localhost:5000/v2/", "http://registry.example/v2/")]
    public async Task RedirectsToPlainHTTPAreRUNCIBLE1020(string from, string to)
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var inner = new ScriptedHandler(_ => ScriptedHandler.Redirect(to));

        await ThrowsCodeAsync("RUNCIBLE1020", () => SendAsync(options, inner, from));

        Assert.Single(inner.Requests);
    }

    [Fact]
    public async Task FromAnInsecureRegistryToAnotherInsecureOnePlainHTTPIsFollowed()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, insecure: ["mirror.internal:5000"]);
        var inner = new ScriptedHandler((_, i) => i == 0 ? ScriptedHandler.Redirect("http://mirror.internal:5000/v2/b") : ScriptedHandler.Ok());

        using var response = await SendAsync(options, inner, "http://localhost:5000/v2/a");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, inner.Requests.Count);
    }

    [Theory]
    [InlineData(null, "a redirect without a Location")]
    [InlineData("ftp://registry.example/x", "not HTTP or HTTPS")]
    public async Task MalformedRedirectsAreRUNCIBLE1012(string? location, string detail)
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var inner = new ScriptedHandler(_ => location is null ? ScriptedHandler.Status(HttpStatusCode.Found) : ScriptedHandler.Redirect(location));

        var error = await ThrowsCodeAsync("RUNCIBLE1012", () => SendAsync(options, inner, "https://registry.example/v2/"));

        Assert.Contains(detail, error.Message);
    }

    [Fact]
    public async Task MoreThanFiveRedirectsAreRUNCIBLE1012()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var inner = new ScriptedHandler((_, i) => ScriptedHandler.Redirect($"/v2/hop{i + 1}"));

        var error = await ThrowsCodeAsync("RUNCIBLE1012", () => SendAsync(options, inner, "https://registry.example/v2/hop0"));

        Assert.Contains("more than 5 redirects", error.Message);
        Assert.Equal(6, inner.Requests.Count);
    }

    [Fact]
    public async Task AHopWithoutAnAnswerInTimeIsARetryableFailure()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, requestTimeout: TimeSpan.FromMilliseconds(100));
        var inner = new StallingHandler();
        using var invoker = new HttpMessageInvoker(new OriginRedirectHandler(options, new InsecureRegistries(options), inner));
        using var request = Get("https://registry.example/v2/");

        var error = await Assert.ThrowsAsync<TransientRegistryException>(() => invoker.SendAsync(request, Ct));

        Assert.Contains("no answer from registry.example within", error.Message);
    }

    private sealed class StallingHandler : HttpMessageHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            throw new InvalidOperationException("unreachable");
        }
    }
}
