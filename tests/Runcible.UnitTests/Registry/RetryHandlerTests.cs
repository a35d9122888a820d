using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Authentication;
using Runcible.Core.Diagnostics;
using Runcible.Core.Registry;
using Runcible.Core.Registry.Pipeline;
using Runcible.Tests.Infrastructure;
using static Runcible.Tests.Registry.PipelineTestSupport;

namespace Runcible.Tests.Registry;

/// <summary><see cref="RetryHandler"/> alone, over a scripted inner handler.</summary>
public class RetryHandlerTests
{
    private static async Task<HttpResponseMessage> SendAsync(RegistryClientOptions options, ScriptedHandler inner, RegistryRequestContext? context = null)
    {
        using var invoker = new HttpMessageInvoker(new RetryHandler(options, inner));
        using var request = Get("https://registry.example/v2/r/manifests/latest", context);
        return await invoker.SendAsync(request, Ct);
    }

    [Fact]
    public async Task TransientStatusesAreSentAgainUntilAnAnswerComes()
    {
        using var home = new TempDirectory();
        var log = new RecordingBuildLog();
        var options = Options(home.Path, log, maxAttempts: 4);
        var inner = new ScriptedHandler((_, i) => i switch
        {
            0 => ScriptedHandler.Status(HttpStatusCode.ServiceUnavailable),
            1 => ScriptedHandler.Status(HttpStatusCode.TooManyRequests),
            2 => ScriptedHandler.Status(HttpStatusCode.RequestTimeout),
            _ => ScriptedHandler.Ok("done"),
        });

        using var response = await SendAsync(options, inner, Context(options, "registry.example", "r"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(4, inner.Requests.Count);
        Assert.Contains(log.Messages, m => m.StartsWith("registry.example/r: fetching manifest 'latest' failed (HTTP 503 Service Unavailable); retry 1 in", StringComparison.Ordinal));
        Assert.Contains(log.Messages, m => m.Contains("retry 3 in", StringComparison.Ordinal));
    }

    [Fact]
    public async Task OtherStatusesAreTheCallersAndAreNotRetried()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var inner = new ScriptedHandler(_ => ScriptedHandler.Status(HttpStatusCode.NotFound));

        using var response = await SendAsync(options, inner);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Single(inner.Requests);
    }

    [Fact]
    public async Task ARegistryThatKeepsFailingIsRUNCIBLE1011AfterMaxAttempts()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, maxAttempts: 3);
        var inner = new ScriptedHandler(_ => ScriptedHandler.Status(HttpStatusCode.BadGateway));

        var error = await ThrowsCodeAsync("RUNCIBLE1011", () => SendAsync(options, inner, Context(options, "registry.example", "r")));

        Assert.Equal(3, inner.Requests.Count);
        Assert.Contains("HTTP 502", error.Message);
    }

    [Fact]
    public async Task OnlyConnectionFailuresIsRUNCIBLE1010()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, maxAttempts: 2);
        var inner = new ScriptedHandler(_ => throw new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused"));

        await ThrowsCodeAsync("RUNCIBLE1010", () => SendAsync(options, inner));

        Assert.Equal(2, inner.Requests.Count);
    }

    [Fact]
    public async Task TLSAndDNSFailuresAreNotRetried()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var tls = new ScriptedHandler(_ => throw new HttpRequestException("handshake", new AuthenticationException("untrusted root")));
        var dns = new ScriptedHandler(_ => throw new HttpRequestException(HttpRequestError.NameResolutionError, "Name or service not known"));

        await ThrowsCodeAsync("RUNCIBLE1009", () => SendAsync(options, tls));
        await ThrowsCodeAsync("RUNCIBLE1010", () => SendAsync(options, dns));

        Assert.Single(tls.Requests);
        Assert.Single(dns.Requests);
    }

    [Fact]
    public async Task RetryAfterIsWaitedOutAndOneOverTheBoundFailsAtOnce()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var waited = new ScriptedHandler((_, i) =>
        {
            if (i > 0)
            {
                return ScriptedHandler.Ok();
            }

            var busy = ScriptedHandler.Status(HttpStatusCode.TooManyRequests);
            busy.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromSeconds(1));
            return busy;
        });
        var clock = Stopwatch.StartNew();
        using (var response = await SendAsync(options, waited))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // The backoff is at most 5 ms in these options: only Retry-After explains a wait of a second.
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(900), $"waited {clock.Elapsed}");

        var tooLong = new ScriptedHandler(_ =>
        {
            var busy = ScriptedHandler.Status(HttpStatusCode.ServiceUnavailable);
            busy.Headers.RetryAfter = new RetryConditionHeaderValue(options.MaxRetryAfter + TimeSpan.FromSeconds(1));
            return busy;
        });
        var error = await ThrowsCodeAsync("RUNCIBLE1011", () => SendAsync(options, tooLong));
        Assert.Single(tooLong.Requests);
        Assert.Contains("asks to wait 121 s", error.Message);
    }

    [Fact]
    public async Task ARetryGoesOutAsTheRequestCameIn()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        // The inner handler moves the request elsewhere and drops its credentials (as redirects do), then fails.
        var inner = new ScriptedHandler((request, i) =>
        {
            if (i == 0)
            {
                request.RequestUri = new Uri("https://storage.example/blob");
                request.Headers.Authorization = null;
                return ScriptedHandler.Status(HttpStatusCode.InternalServerError);
            }

            return ScriptedHandler.Ok();
        });
        using var invoker = new HttpMessageInvoker(new RetryHandler(options, inner));
        using var request = Get("https://registry.example/v2/r/blobs/x");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "t");

        using var response = await invoker.SendAsync(request, Ct);

        Assert.Equal(new Uri("https://registry.example/v2/r/blobs/x"), inner.Requests[1].Uri);
        Assert.Equal("Bearer t", inner.Requests[1].Authorization);
    }

    [Fact]
    public async Task TheBudgetIsSharedWithTheBodyLevelRetriesOfTheSameFetch()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, maxAttempts: 3);
        var context = Context(options, "registry.example", "r");
        var inner = new ScriptedHandler(_ => ScriptedHandler.Status(HttpStatusCode.ServiceUnavailable));

        // Two failures were already charged to this fetch (say, two cut bodies): one more failed exchange ends it.
        context.Budget.BeginAttempt();
        await context.Budget.WaitBeforeRetryAsync(new RetryBudget.Failure("cut", null, false), countsAsFailure: true, Ct);
        context.Budget.BeginAttempt();
        await context.Budget.WaitBeforeRetryAsync(new RetryBudget.Failure("cut", null, false), countsAsFailure: true, Ct);
        context.Budget.BeginAttempt();

        await ThrowsCodeAsync("RUNCIBLE1011", () => SendAsync(options, inner, context));
        Assert.Single(inner.Requests);
    }
}
