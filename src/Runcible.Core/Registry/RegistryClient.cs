using System.Net.Http.Headers;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Registry.Pipeline;

namespace Runcible.Core.Registry;

/// <summary>
/// The registry protocol over one handler pipeline (docs/registry-client.md, "Pipeline"): requests for manifests and
/// blobs (with <c>Accept</c>, <c>Range</c>) go through
/// <see cref="RetryHandler"/> → <see cref="RegistryAuthHandler"/> → <see cref="EndpointProbeHandler"/> →
/// <see cref="OriginRedirectHandler"/> → <see cref="RegistryTransport"/>, each of which owns one concern (retries,
/// challenges and tokens, plain-HTTP fallback, origin-scoped redirects, TLS pools) and its own state; the client owns
/// the pipeline, so caches and connections live as long as the client and no longer.
/// <c>new RegistrySourceFactory(client.Open)</c> gives the puller its sources.
/// </summary>
internal sealed class RegistryClient : IDisposable
{
    /// <summary>Manifests, indexes and token responses larger than this are refused.</summary>
    public const int MaxDocumentBytes = 4 * 1024 * 1024;

    private readonly RegistryClientOptions _options;
    private readonly InsecureRegistries _insecure;
    private readonly HttpMessageInvoker _pipeline;

    public RegistryClient(RegistryClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAttempts, 1);
        _options = options;
        Credentials = new CredentialStore(options);
        _insecure = new InsecureRegistries(options);

        var transport = new RegistryTransport(options, _insecure);
        var redirects = new OriginRedirectHandler(options, _insecure, transport);
        var endpoints = new EndpointProbeHandler(options, _insecure, redirects);
        var auth = new RegistryAuthHandler(options, Credentials, _insecure, transport, endpoints);
        _pipeline = new HttpMessageInvoker(new RetryHandler(options, auth), disposeHandler: true);
    }

    /// <summary>Where credentials come from (also used for messages).</summary>
    public CredentialStore Credentials { get; }

    internal RegistryClientOptions Options => _options;

    /// <summary>
    /// A source for <paramref name="repository"/> (e.g. <c>library/debian</c>) on <paramref name="registry"/>
    /// (as written in the reference: <c>docker.io</c>, <c>mcr.microsoft.com</c>, <c>localhost:5000</c>).
    /// Nothing is sent until the source is used.
    /// </summary>
    public IImageSource Open(string registry, string repository)
    {
        RegistryNames.ValidateRegistry(registry);
        RegistryNames.ValidateRepository(repository);
        return new RegistryImageSource(this, registry, repository);
    }

    /// <summary>True when <paramref name="registry"/> may be reached over plain HTTP or unverified TLS.</summary>
    public bool IsInsecure(string registry) => _insecure.Contains(registry);

    public void Dispose() => _pipeline.Dispose();

    /// <summary>The context of one fetch (<paramref name="what"/> of <paramref name="repository"/>), with a fresh retry budget.</summary>
    internal RegistryRequestContext CreateContext(string name, string registry, string repository, string what) =>
        new(name, registry, repository, what, new RetryBudget(_options, name, registry, what));

    /// <summary>
    /// Sends one GET to <paramref name="pathAndQuery"/> (relative to the registry's <c>/</c>) through the pipeline.
    /// Returns the final response (after probing, authentication, redirects and retries of transient failures);
    /// 401/403 after authentication are coded errors already. Other statuses are the caller's to interpret.
    /// </summary>
    internal Task<HttpResponseMessage> SendAsync(RegistryRequestContext context, string pathAndQuery,
        IReadOnlyList<string>? accept, long? rangeFrom, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri("https://" + RegistryNames.ApiHost(context.Registry) + "/" + pathAndQuery));
        foreach (var mediaType in accept ?? [])
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(mediaType));
        }

        if (rangeFrom is { } from)
        {
            request.Headers.Range = new RangeHeaderValue(from, null);
        }

        context.AttachTo(request);
        return SendAndReleaseAsync(request, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendAndReleaseAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using (request)
        {
            return await _pipeline.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads a body of at most <paramref name="limit"/> bytes (checking Content-Length first). With
    /// <paramref name="stallTimeout"/>, a read that gets no data for that long is a retryable failure: the
    /// request timeout covers the headers only, and a server stalling mid-body must not hang the build.
    /// </summary>
    internal static async Task<byte[]> ReadCappedAsync(HttpContent content, int limit, string name, string what, CancellationToken cancellationToken,
        TimeSpan? stallTimeout = null)
    {
        if (content.Headers.ContentLength > limit)
        {
            throw new RuncibleException(RuncibleErrors.RegistryResponseTooLarge, name, what, limit);
        }

        using var body = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var chunk = new byte[81920];
        while (true)
        {
            if (stallTimeout is { } allowed)
            {
                stall.CancelAfter(allowed);
            }

            int read;
            try
            {
                read = await body.ReadAsync(chunk, stall.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TransientRegistryException($"no data for {stallTimeout!.Value.TotalSeconds:0} s while reading the {what}", null, e);
            }

            if (read == 0)
            {
                return buffer.ToArray();
            }

            if (buffer.Length + read > limit)
            {
                throw new RuncibleException(RuncibleErrors.RegistryResponseTooLarge, name, what, limit);
            }

            buffer.Write(chunk, 0, read);
        }
    }

    /// <summary>
    /// Runs <paramref name="attempt"/> until it succeeds, retrying what fails after the pipeline answered (a body cut
    /// short or stalling, a manifest damaged on the way is the caller's) from the same <see cref="RetryBudget"/> the
    /// <see cref="RetryHandler"/> charges. An attempt that made progress (<paramref name="progress"/> grew: a resumable
    /// download) does not count against <see cref="RegistryClientOptions.MaxAttempts"/>; the total stays bounded all the same.
    /// </summary>
    internal async Task<T> WithRetriesAsync<T>(RegistryRequestContext context, Func<Task<T>> attempt, Func<long>? progress,
        CancellationToken cancellationToken)
    {
        while (true)
        {
            var before = progress?.Invoke() ?? 0;
            context.Budget.BeginAttempt();
            RetryBudget.Failure failure;
            try
            {
                return await attempt().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Not in a filter: Classify throws the coded TLS and DNS errors, and a filter would swallow them.
                if (RetryBudget.Classify(e, context.Registry, cancellationToken) is not { } classified)
                {
                    throw;
                }

                failure = classified;
            }

            var madeProgress = (progress?.Invoke() ?? 0) > before;
            await context.Budget.WaitBeforeRetryAsync(failure, countsAsFailure: !madeProgress, cancellationToken).ConfigureAwait(false);
        }
    }
}

/// <summary>A failure worth retrying (429, 408, 5xx, a timeout), with the server's <c>Retry-After</c> if it gave one.</summary>
internal sealed class TransientRegistryException(string reason, TimeSpan? retryAfter, Exception? inner) : Exception(reason, inner)
{
    public TimeSpan? RetryAfter { get; } = retryAfter;
}
