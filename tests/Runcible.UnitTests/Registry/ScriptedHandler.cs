using System.Net;
using System.Net.Http.Headers;
using Runcible.Core.Diagnostics;
using Runcible.Core.Registry;
using Runcible.Core.Registry.Pipeline;

namespace Runcible.Tests.Registry;

/// <summary>
/// The inner handler of a handler under test: answers each request from a script (no network) and records what was
/// sent, as it was at the moment of sending (the pipeline mutates and resends one request message).
/// </summary>
internal sealed class ScriptedHandler : HttpMessageHandler
{
    private readonly Func<HttpRequestMessage, int, HttpResponseMessage> _answer;
    private readonly List<Sent> _sent = [];

    /// <param name="answer">The response to the request and its index among all requests (0-based); may throw.</param>
    public ScriptedHandler(Func<HttpRequestMessage, int, HttpResponseMessage> answer) => _answer = answer;

    public ScriptedHandler(Func<HttpRequestMessage, HttpResponseMessage> answer)
        : this((request, _) => answer(request))
    {
    }

    public IReadOnlyList<Sent> Requests { get { lock (_sent) { return _sent.ToList(); } } }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? null : await request.Content.ReadAsStringAsync(cancellationToken);
        int index;
        lock (_sent)
        {
            index = _sent.Count;
            _sent.Add(new Sent(request.Method, request.RequestUri!, request.Headers.Authorization?.ToString(), body));
        }

        cancellationToken.ThrowIfCancellationRequested();
        var response = _answer(request, index);
        response.RequestMessage ??= request;
        return response;
    }

    public sealed record Sent(HttpMethod Method, Uri Uri, string? Authorization, string? Body);

    public static HttpResponseMessage Status(HttpStatusCode status) => new(status) { Content = new ByteArrayContent([]) };

    public static HttpResponseMessage Ok(string body = "") => new(HttpStatusCode.OK) { Content = new StringContent(body) };

    public static HttpResponseMessage Redirect(string location, HttpStatusCode status = HttpStatusCode.Found)
    {
        var response = Status(status);
        response.Headers.Location = new Uri(location, UriKind.RelativeOrAbsolute);
        return response;
    }

    public static HttpResponseMessage Challenge(string scheme, string parameters)
    {
        var response = Status(HttpStatusCode.Unauthorized);
        response.Headers.WwwAuthenticate.Add(new AuthenticationHeaderValue(scheme, parameters));
        return response;
    }
}

/// <summary>Options and contexts for handler tests: an empty environment, a temp home, fast retries, a recording log.</summary>
internal static class PipelineTestSupport
{
    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static RegistryClientOptions Options(string home, RecordingBuildLog? log = null, IReadOnlyDictionary<string, string>? environment = null,
        int maxAttempts = 3, bool loopbackIsInsecure = true, IReadOnlyList<string>? insecure = null, TimeSpan? requestTimeout = null) => new()
        {
            Environment = environment ?? new Dictionary<string, string>(),
            HomeDirectory = home,
            RetryBaseDelay = TimeSpan.FromMilliseconds(1),
            MaxRetryDelay = TimeSpan.FromMilliseconds(5),
            MaxAttempts = maxAttempts,
            RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(30),
            Log = log ?? new RecordingBuildLog(),
            LoopbackIsInsecure = loopbackIsInsecure,
            InsecureRegistries = insecure ?? [],
        };

    public static RegistryRequestContext Context(RegistryClientOptions options, string registry, string repository, string what = "manifest 'latest'") =>
        new(registry + "/" + repository, registry, repository, what, new RetryBudget(options, registry + "/" + repository, registry, what));

    /// <summary>A GET for <paramref name="url"/> carrying <paramref name="context"/> (when given).</summary>
    public static HttpRequestMessage Get(string url, RegistryRequestContext? context = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        context?.AttachTo(request);
        return request;
    }

    public static async Task<RuncibleException> ThrowsCodeAsync(string code, Func<Task> action)
    {
        var error = await Assert.ThrowsAsync<RuncibleException>(action);
        Assert.True(error.Code == code, $"expected {code}, got {error.Code}: {error.Message}");
        return error;
    }
}
