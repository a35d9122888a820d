using System.Globalization;
using System.Net.Http;
using System.Security.Authentication;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Registry.Pipeline;

/// <summary>
/// The outermost handler: an exchange that fails transiently (408, 429, 5xx, connection failures, resets, timeouts,
/// a token server doing any of these) is sent again after a backoff or the server's <c>Retry-After</c>, charged to the
/// fetch's <see cref="RetryBudget"/>. TLS failures (<c>RUNCIBLE1009</c>) and DNS failures (<c>RUNCIBLE1010</c>) are
/// not retried. The request goes out again as it came in (its URI and headers restored), so the inner handlers
/// redo their part: a fresh probe after a failed one, a token asked again.
/// </summary>
internal sealed class RetryHandler : DelegatingHandler
{
    private readonly RegistryClientOptions _options;

    public RetryHandler(RegistryClientOptions options, HttpMessageHandler inner)
        : base(inner)
    {
        _options = options;
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var context = RegistryRequestContext.Find(request);
        var uri = request.RequestUri!;
        var authorization = request.Headers.Authorization;

        // Without a context (a request of its own), the handler keeps the budget of this one exchange. A fetch's
        // attempts are begun by whoever retries it (RegistryClient.WithRetriesAsync); a first exchange begins its own.
        var budget = context?.Budget ?? new RetryBudget(_options, uri.Authority, uri.Authority, uri.AbsolutePath);
        if (budget.Attempts == 0)
        {
            budget.BeginAttempt();
        }

        while (true)
        {
            RetryBudget.Failure failure;
            try
            {
                var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                if (RetryBudget.TransientFailure(response) is not { } transient)
                {
                    return response;
                }

                response.Dispose();
                failure = transient;
            }
            catch (Exception e)
            {
                // Not in a filter: Classify throws the coded TLS and DNS errors, and a filter would swallow them.
                if (RetryBudget.Classify(e, budget.Registry, cancellationToken) is not { } classified)
                {
                    throw;
                }

                failure = classified;
            }

            await budget.WaitBeforeRetryAsync(failure, countsAsFailure: true, cancellationToken).ConfigureAwait(false);
            budget.BeginAttempt();
            request.RequestUri = uri;
            request.Headers.Authorization = authorization;
        }
    }
}

/// <summary>
/// How many more tries one fetch (a manifest, a blob) gets: <see cref="RegistryClientOptions.MaxAttempts"/> failed
/// attempts, where an attempt that made progress (a resumed download grew) does not count, and never more than twenty
/// times that in all. Shared by <see cref="RetryHandler"/> and the body-level retries of <see cref="RegistryClient"/>,
/// so a fetch has one allowance whichever layer saw its failures.
/// </summary>
internal sealed class RetryBudget
{
    private readonly RegistryClientOptions _options;
    private readonly string _name;
    private readonly string _what;
    private int _failures;
    private int _total;
    private bool _onlyConnectionFailures = true;

    public RetryBudget(RegistryClientOptions options, string name, string registry, string what)
    {
        _options = options;
        _name = name;
        Registry = registry;
        _what = what;
    }

    public string Registry { get; }

    /// <summary>Attempts made so far.</summary>
    public int Attempts => _total;

    public void BeginAttempt() => _total++;

    /// <summary>A failure worth another attempt: why, the server's <c>Retry-After</c>, and whether it was a failure to connect.</summary>
    internal readonly record struct Failure(string Reason, TimeSpan? RetryAfter, bool ConnectionFailure);

    /// <summary>
    /// Charges <paramref name="failure"/> and waits before the next attempt; throws <c>RUNCIBLE1010</c> (every failure was
    /// a failure to connect) or <c>RUNCIBLE1011</c> once the budget is spent or the server asks to wait too long.
    /// </summary>
    public async Task WaitBeforeRetryAsync(Failure failure, bool countsAsFailure, CancellationToken cancellationToken)
    {
        _onlyConnectionFailures &= failure.ConnectionFailure;
        if (countsAsFailure)
        {
            _failures++;
        }

        if (_failures >= _options.MaxAttempts || _total >= _options.MaxAttempts * 20)
        {
            throw _onlyConnectionFailures
                ? new RuncibleException(RuncibleErrors.RegistryUnreachable, Registry, failure.Reason)
                : new RuncibleException(RuncibleErrors.RegistryRetriesExhausted, _name, _what, _total, failure.Reason);
        }

        if (failure.RetryAfter > _options.MaxRetryAfter)
        {
            throw new RuncibleException(RuncibleErrors.RegistryRetriesExhausted, _name, _what, _total,
                $"{failure.Reason}, and the registry asks to wait {failure.RetryAfter.Value.TotalSeconds:0} s");
        }

        var delay = failure.RetryAfter ?? Backoff(_failures);
        _options.Log.LogMessage($"{_name}: fetching {_what} failed ({failure.Reason}); retry {_total} in {delay.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s.");
        await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>base × 2^(n-1), capped, with jitter in [50 %, 100 %] so parallel downloads do not retry in lockstep.</summary>
    private TimeSpan Backoff(int failures)
    {
        var exponential = _options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Max(0, failures - 1));
        var capped = Math.Min(exponential, _options.MaxRetryDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.5 + Random.Shared.NextDouble() * 0.5));
    }

    /// <summary>408, 429 and 5xx, with the server's <c>Retry-After</c> (seconds or a date); null for any other status.</summary>
    public static Failure? TransientFailure(HttpResponseMessage response)
    {
        var status = (int)response.StatusCode;
        if (status is not (408 or 429 or >= 500 and <= 599))
        {
            return null;
        }

        var retryAfter = response.Headers.RetryAfter is { } header
            ? header.Delta ?? (header.Date is { } date ? date - DateTimeOffset.UtcNow : null)
            : null;
        if (retryAfter < TimeSpan.Zero)
        {
            retryAfter = TimeSpan.Zero;
        }

        return new Failure($"HTTP {status} {response.ReasonPhrase}", retryAfter, false);
    }

    /// <summary>
    /// The retryable failure <paramref name="e"/> is, or null when it is not one (cancellation by the caller, a coded
    /// error). TLS failures throw <c>RUNCIBLE1009</c> and DNS failures <c>RUNCIBLE1010</c>: trying again changes neither.
    /// </summary>
    public static Failure? Classify(Exception e, string registry, CancellationToken cancellationToken)
    {
        switch (e)
        {
            case TransientRegistryException transient:
                return new Failure(transient.Message, transient.RetryAfter, false);
            case HttpRequestException http when !cancellationToken.IsCancellationRequested:
                if (FindInner<AuthenticationException>(http) is not null || http.HttpRequestError == HttpRequestError.SecureConnectionError)
                {
                    throw new RuncibleException(http, RuncibleErrors.RegistryTlsFailure, registry, Describe(http));
                }

                if (http.HttpRequestError == HttpRequestError.NameResolutionError)
                {
                    throw new RuncibleException(http, RuncibleErrors.RegistryUnreachable, registry, Describe(http));
                }

                return new Failure(Describe(http), null, http.HttpRequestError == HttpRequestError.ConnectionError);
            case IOException io when !cancellationToken.IsCancellationRequested:
                return new Failure(Describe(io), null, false);
            case OperationCanceledException canceled when !cancellationToken.IsCancellationRequested:
                return new Failure("timed out: " + canceled.Message, null, false);
            default:
                return null;
        }
    }

    private static TException? FindInner<TException>(Exception e) where TException : Exception
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            if (current is TException match)
            {
                return match;
            }
        }

        return null;
    }

    private static string Describe(Exception e)
    {
        var parts = new List<string>();
        for (Exception? current = e; current is not null && parts.Count < 3; current = current.InnerException)
        {
            if (!parts.Contains(current.Message))
            {
                parts.Add(current.Message);
            }
        }

        return string.Join(": ", parts);
    }
}
