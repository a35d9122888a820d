using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;

namespace Runcible.Core.Registry;

/// <summary>
/// Talks to OCI / Docker registries over HTTP: one connection pool for all registries, bearer tokens
/// cached per (registry, scope) for their lifetime, credentials looked up once per repository.
/// <c>new RegistrySourceFactory(client.Open)</c> gives the puller its sources.
/// <para>
/// Transport: HTTPS, verified against the system store plus <see cref="RegistryClientOptions.TrustedCertificates"/>.
/// Insecure registries (loopback, and those listed) are probed in plain HTTP first, then over HTTPS accepting
/// any certificate (either with a warning), through a connection pool of their own: only a request whose
/// <c>host:port</c> is insecure may skip certificate verification. Redirects are followed by hand, never from HTTPS to plain
/// HTTP; the <c>Authorization</c> header goes only to the registry's own origin, and a 401 from another origin is an error. Requests are retried on 429 (honouring <c>Retry-After</c>),
/// 408, 5xx, connection failures and cut bodies, with exponential backoff and jitter, a bounded number of times.
/// </para>
/// </summary>
public sealed class RegistryClient : IDisposable
{
    /// <summary>Manifests, indexes and token responses larger than this are refused.</summary>
    public const int MaxDocumentBytes = 4 * 1024 * 1024;

    private const int MaxRedirects = 5;

    private readonly RegistryClientOptions options;
    private readonly HttpClient http;
    private readonly HttpClient insecureHttp;
    private readonly HashSet<string> insecureRegistries;
    private readonly ConcurrentDictionary<string, Task<Uri>> endpoints = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<(string Registry, string Scope), CachedAuthorization> authorizations = new();
    private readonly ConcurrentDictionary<(string Registry, string Scope), SemaphoreSlim> authorizationLocks = new();
    private readonly ConcurrentDictionary<(string Registry, string Repository), Lazy<RegistryCredential?>> credentials = new();
    private readonly ConcurrentDictionary<string, byte> warnedOnce = new(StringComparer.OrdinalIgnoreCase);

    public RegistryClient(RegistryClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAttempts, 1);
        this.options = options;
        Credentials = new CredentialStore(options);

        insecureRegistries = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var fromEnvironment = options.GetEnvironment("DOTNET_CONTAINER_INSECURE_REGISTRIES")?.Split(',') ?? [];
        foreach (var entry in options.InsecureRegistries.Concat(fromEnvironment))
        {
            var trimmed = entry.Trim();
            if (trimmed.Length > 0)
            {
                insecureRegistries.Add(trimmed);
            }
        }

        // Two pools: the TLS callback sees the host but not the port, so an insecure registry's connections
        // (the only ones that may skip certificate verification) must not be shared with anything else on that host.
        http = CreateHttpClient(ValidateServerCertificate);
        insecureHttp = CreateHttpClient(ValidateInsecureServerCertificate);
    }

    private HttpClient CreateHttpClient(RemoteCertificateValidationCallback validate)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            // Blobs are content-addressed: their bytes must arrive exactly as stored.
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = options.RequestTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        if (options.Proxy is not null)
        {
            handler.Proxy = options.Proxy;
        }

        handler.SslOptions.RemoteCertificateValidationCallback = validate;
        var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.ParseAdd(options.UserAgent);
        return client;
    }

    /// <summary>The pool for <paramref name="uri"/>: the one that may accept an unverified certificate only for an insecure registry.</summary>
    private HttpClient ClientFor(Uri uri) =>
        IsInsecure(uri.Authority) || (uri.IsDefaultPort && IsInsecure(uri.Host + ":" + uri.Port.ToString(CultureInfo.InvariantCulture))) ? insecureHttp : http;

    /// <summary>Where credentials come from (also used for messages).</summary>
    public CredentialStore Credentials { get; }

    internal RegistryClientOptions Options => options;

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
    public bool IsInsecure(string registry) =>
        (options.LoopbackIsInsecure && RegistryNames.IsLoopback(registry))
        || insecureRegistries.Contains(registry)
        || insecureRegistries.Contains(RegistryNames.ApiHost(registry));

    public void Dispose()
    {
        http.Dispose();
        insecureHttp.Dispose();
        foreach (var gate in authorizationLocks.Values)
        {
            gate.Dispose();
        }
    }

    // ---- TLS ----

    /// <summary>The system store, plus <see cref="RegistryClientOptions.TrustedCertificates"/> as extra roots.</summary>
    private bool ValidateServerCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (certificate is not null && errors == SslPolicyErrors.RemoteCertificateChainErrors && options.TrustedCertificates.Count > 0)
        {
            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            foreach (var trusted in options.TrustedCertificates)
            {
                custom.ChainPolicy.CustomTrustStore.Add(trusted);
            }

            if (chain is not null)
            {
                foreach (var element in chain.ChainElements.Skip(1))
                {
                    custom.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }

            using var leaf = new X509Certificate2(certificate);
            if (custom.Build(leaf))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>For the pool of insecure registries only (<see cref="ClientFor"/>): a certificate that does not verify is accepted, with a warning.</summary>
    private bool ValidateInsecureServerCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (ValidateServerCertificate(sender, certificate, chain, errors))
        {
            return true;
        }

        var host = (sender as SslStream)?.TargetHostName ?? "";
        WarnOnce(host, "tls", "its TLS certificate is accepted without verification (" + errors + ")", "listed as insecure or loopback");
        return true;
    }

    private void WarnOnce(string registry, string kind, string what, string why)
    {
        if (warnedOnce.TryAdd(registry + "|" + kind, 0))
        {
            options.Log.LogWarning(RuncibleErrors.RegistryInsecureTransport, registry, what, why);
        }
    }

    // ---- endpoints ----

    /// <summary>The API base (<c>https://host/</c> or, for an insecure registry that does not speak TLS, <c>http://host/</c>).</summary>
    private async Task<Uri> GetEndpointAsync(string registry, CancellationToken cancellationToken)
    {
        var apiHost = RegistryNames.ApiHost(registry);
        if (!IsInsecure(registry))
        {
            return new Uri("https://" + apiHost + "/");
        }

        var task = endpoints.GetOrAdd(registry, _ => ProbeInsecureEndpointAsync(registry, apiHost, cancellationToken));
        try
        {
            return await task.ConfigureAwait(false);
        }
        catch
        {
            // A failed probe (registry not up yet, network blip) must not stick: the next attempt probes again.
            endpoints.TryRemove(new KeyValuePair<string, Task<Uri>>(registry, task));
            throw;
        }
    }

    /// <summary>
    /// Plain HTTP first: a registry that answers <c>GET /v2/</c> in clear text (200, 401…) speaks plain HTTP on that
    /// port. A TLS port answers clear text with 400 (Go, nginx) or hangs up; then HTTPS it is. Probing in this
    /// order sends no credentials and costs one round trip; probing TLS first would stall on servers that wait
    /// for a request line and never answer a ClientHello.
    /// </summary>
    private async Task<Uri> ProbeInsecureEndpointAsync(string registry, string apiHost, CancellationToken cancellationToken)
    {
        var plain = new Uri("http://" + apiHost + "/");
        var https = new Uri("https://" + apiHost + "/");
        var wholeProbe = TimeSpan.FromTicks(Math.Min(options.RequestTimeout.Ticks, TimeSpan.FromSeconds(10).Ticks));
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(wholeProbe);
            using var response = (await SendRawAsync(new Uri(plain, "v2/"), null, null, null, timeout.Token).ConfigureAwait(false)).Response;
            if (response.StatusCode != HttpStatusCode.BadRequest)
            {
                WarnOnce(registry, "http", "content is fetched over plain HTTP", RegistryNames.IsLoopback(registry) && options.LoopbackIsInsecure ? "a loopback address" : "listed as insecure");
                return plain;
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested
            && e is HttpRequestException or TransientRegistryException or OperationCanceledException)
        {
            // Not plain HTTP (or not up): HTTPS decides, and its failure is the one reported.
        }

        using ((await SendRawAsync(new Uri(https, "v2/"), null, null, null, cancellationToken).ConfigureAwait(false)).Response)
        {
        }

        return https;
    }

    // ---- requests ----

    /// <summary>
    /// Sends one GET to <paramref name="pathAndQuery"/> (relative to the registry's <c>/</c>), authenticating with
    /// a cached authorization, or answering a 401 challenge once. Returns the final response (after redirects);
    /// 401/403 after authentication become <see cref="RuncibleErrors.RegistryUnauthorized"/> or
    /// <see cref="RuncibleErrors.RegistryCredentialsRejected"/>. Other statuses are the caller's to interpret.
    /// </summary>
    internal async Task<HttpResponseMessage> SendAsync(string name, string registry, string repository, string pathAndQuery,
        IReadOnlyList<string>? accept, long? rangeFrom, CancellationToken cancellationToken)
    {
        var endpoint = await GetEndpointAsync(registry, cancellationToken).ConfigureAwait(false);
        var uri = new Uri(endpoint, pathAndQuery);
        var scope = $"repository:{repository}:pull";
        var key = (registry, scope);
        var authorization = GetCachedAuthorization(key);

        var response = ThrowIfChallengedElsewhere(name, registry, uri, await SendRawAsync(uri, accept, rangeFrom, authorization, cancellationToken).ConfigureAwait(false));
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            var challenge = ReadChallenge(response);
            response.Dispose();
            var (newAuthorization, credential) = await AuthenticateAsync(name, registry, repository, scope, challenge, authorization, cancellationToken).ConfigureAwait(false);
            response = ThrowIfChallengedElsewhere(name, registry, uri, await SendRawAsync(uri, accept, rangeFrom, newAuthorization, cancellationToken).ConfigureAwait(false));
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                response.Dispose();
                authorizations.TryRemove(key, out _);
                if (credential is not null && challenge?.IsBasic == true)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryCredentialsRejected, name, registry, credential.Source, "401 Unauthorized");
                }

                throw Unauthorized(name, registry, credential is null
                    ? "401 Unauthorized, anonymous access is not allowed"
                    : $"401 Unauthorized with the token obtained using {credential}");
            }
        }

        if (response.StatusCode == HttpStatusCode.Forbidden)
        {
            response.Dispose();
            throw Unauthorized(name, registry, "403 Forbidden");
        }

        return response;
    }

    /// <summary>
    /// A 401 from another origin than the registry's (after a redirect, to a storage back end say) is an error: answering
    /// it would hand the registry's credentials to a token service that origin names.
    /// </summary>
    private static HttpResponseMessage ThrowIfChallengedElsewhere(string name, string registry, Uri requested, (HttpResponseMessage Response, Uri AnsweredBy) exchange)
    {
        var (response, answeredBy) = exchange;
        if (response.StatusCode == HttpStatusCode.Unauthorized && !SameOrigin(answeredBy, requested))
        {
            response.Dispose();
            throw new RuncibleException(RuncibleErrors.RegistryRedirectChallenged, name, requested.AbsolutePath, answeredBy.GetLeftPart(UriPartial.Authority), registry);
        }

        return response;
    }

    private RuncibleException Unauthorized(string name, string registry, string detail) =>
        new(RuncibleErrors.RegistryUnauthorized, name, detail, Credentials.DescribeLocations(registry), registry);

    private static AuthenticationChallenge? ReadChallenge(HttpResponseMessage response)
    {
        AuthenticationChallenge? basic = null;
        foreach (var header in response.Headers.WwwAuthenticate)
        {
            var challenge = AuthenticationChallenge.Parse(header.Scheme, header.Parameter);
            if (challenge?.IsBearer == true)
            {
                return challenge;
            }

            if (challenge?.IsBasic == true)
            {
                basic = challenge;
            }
        }

        return basic;
    }

    /// <summary>
    /// One HTTP exchange, following redirects by hand; <c>Authorization</c> only to the first origin, never from HTTPS
    /// to plain HTTP. Returns the final response and the address that gave it.
    /// </summary>
    private async Task<(HttpResponseMessage Response, Uri AnsweredBy)> SendRawAsync(Uri uri, IReadOnlyList<string>? accept, long? rangeFrom,
        AuthenticationHeaderValue? authorization, CancellationToken cancellationToken)
    {
        var origin = uri;
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            foreach (var mediaType in accept ?? [])
            {
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(mediaType));
            }

            if (rangeFrom is { } from)
            {
                request.Headers.Range = new RangeHeaderValue(from, null);
            }

            if (authorization is not null && SameOrigin(uri, origin))
            {
                request.Headers.Authorization = authorization;
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.RequestTimeout);
            HttpResponseMessage response;
            try
            {
                response = await ClientFor(uri).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TransientRegistryException($"no answer from {uri.Authority} within {options.RequestTimeout.TotalSeconds:0} s", null, e);
            }

            if (!IsRedirect(response.StatusCode))
            {
                return (response, uri);
            }

            var location = response.Headers.Location;
            response.Dispose();
            if (location is null)
            {
                throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, uri.Authority, uri.AbsolutePath, "a redirect without a Location");
            }

            var next = location.IsAbsoluteUri ? location : new Uri(uri, location);
            if (next.Scheme == Uri.UriSchemeHttp && (uri.Scheme == Uri.UriSchemeHttps || !IsInsecure(next.Authority)))
            {
                // Downgrading drops TLS for whatever follows (a blob, a token in a query), on any host: loopback included,
                // where another local user may be listening.
                throw new RuncibleException(RuncibleErrors.RegistryRedirectToPlainHttp, origin.Authority, uri.AbsolutePath, next.GetLeftPart(UriPartial.Authority));
            }

            if (next.Scheme != Uri.UriSchemeHttps && next.Scheme != Uri.UriSchemeHttp)
            {
                throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, uri.Authority, uri.AbsolutePath,
                    $"a redirect to '{next.GetLeftPart(UriPartial.Authority)}', which is not HTTP or HTTPS");
            }

            if (hop + 1 > MaxRedirects)
            {
                throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, uri.Authority, uri.AbsolutePath, $"more than {MaxRedirects} redirects");
            }

            uri = next;
        }
    }

    private static bool IsRedirect(HttpStatusCode status) =>
        status is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther
            or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    private static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    /// <summary>Throws a retryable failure for 408, 429 and 5xx (disposing the response).</summary>
    internal static void ThrowIfTransient(HttpResponseMessage response)
    {
        var status = (int)response.StatusCode;
        if (status is 408 or 429 or >= 500 and <= 599)
        {
            var retryAfter = response.Headers.RetryAfter is { } header
                ? header.Delta ?? (header.Date is { } date ? date - DateTimeOffset.UtcNow : null)
                : null;
            if (retryAfter < TimeSpan.Zero)
            {
                retryAfter = TimeSpan.Zero;
            }

            var reason = $"HTTP {status} {response.ReasonPhrase}";
            response.Dispose();
            throw new TransientRegistryException(reason, retryAfter, null);
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

    // ---- authentication ----

    private AuthenticationHeaderValue? GetCachedAuthorization((string Registry, string Scope) key) =>
        authorizations.TryGetValue(key, out var cached) && cached.ExpiresAt > DateTimeOffset.UtcNow ? cached.Value : null;

    private RegistryCredential? GetCredential(string registry, string repository) =>
        credentials.GetOrAdd((registry, repository), k => new Lazy<RegistryCredential?>(() => Credentials.Find(k.Registry, k.Repository))).Value;

    private async Task<(AuthenticationHeaderValue Authorization, RegistryCredential? Credential)> AuthenticateAsync(string name, string registry,
        string repository, string scope, AuthenticationChallenge? challenge, AuthenticationHeaderValue? failed, CancellationToken cancellationToken)
    {
        if (challenge is null)
        {
            throw Unauthorized(name, registry, "401 Unauthorized without a Bearer or Basic challenge");
        }

        var key = (registry, scope);
        var gate = authorizationLocks.GetOrAdd(key, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var credential = GetCredential(registry, repository);

            // Another request may have authenticated while this one waited: reuse its answer.
            if (GetCachedAuthorization(key) is { } current && current.ToString() != failed?.ToString())
            {
                return (current, credential);
            }

            AuthenticationHeaderValue authorization;
            TimeSpan lifetime;
            if (challenge.IsBearer)
            {
                (authorization, lifetime) = await FetchTokenAsync(name, registry, scope, challenge, credential, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                if (credential?.Username is null || credential.Password is null)
                {
                    throw Unauthorized(name, registry, credential is null
                        ? "401 Unauthorized, the registry wants a user name and password"
                        : $"the registry wants a user name and password, but {credential.Source} holds an identity token");
                }

                authorization = new AuthenticationHeaderValue("Basic", BasicValue(credential.Username, credential.Password));
                lifetime = TimeSpan.FromHours(1);
            }

            authorizations[key] = new CachedAuthorization(authorization, DateTimeOffset.UtcNow + lifetime);
            return (authorization, credential);
        }
        finally
        {
            gate.Release();
        }
    }

    private static string BasicValue(string user, string password) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password));

    /// <summary>The Docker token protocol: GET realm?service&amp;scope (Basic credentials if any), or the OAuth2 refresh-token POST for an identity token.</summary>
    private async Task<(AuthenticationHeaderValue, TimeSpan)> FetchTokenAsync(string name, string registry, string scope,
        AuthenticationChallenge challenge, RegistryCredential? credential, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(challenge["realm"], UriKind.Absolute, out var realm) || (realm.Scheme != Uri.UriSchemeHttps && realm.Scheme != Uri.UriSchemeHttp))
        {
            throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, name, "authentication", $"the Bearer challenge has no usable realm ('{challenge["realm"]}')");
        }

        if (realm.Scheme == Uri.UriSchemeHttp && credential is not null && !IsInsecure(realm.Authority) && !IsInsecure(registry))
        {
            throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, name, "authentication",
                $"the token server {realm.GetLeftPart(UriPartial.Authority)} is plain HTTP; credentials are not sent there");
        }

        var requestedScope = challenge["scope"] is { Length: > 0 } challenged ? challenged : scope;
        var service = challenge["service"];
        var what = $"a token from {realm.GetLeftPart(UriPartial.Path)}";

        using var request = new HttpRequestMessage();
        if (credential?.IdentityToken is { } identityToken)
        {
            var form = new List<KeyValuePair<string, string>>
            {
                new("grant_type", "refresh_token"),
                new("refresh_token", identityToken),
                new("client_id", "runcible"),
                new("scope", requestedScope),
            };
            if (service is not null)
            {
                form.Add(new("service", service));
            }

            request.Method = HttpMethod.Post;
            request.RequestUri = realm;
            request.Content = new FormUrlEncodedContent(form);
        }
        else
        {
            var query = new StringBuilder(realm.Query.Length > 1 ? realm.Query + "&" : "?");
            if (service is not null)
            {
                query.Append("service=").Append(Uri.EscapeDataString(service)).Append('&');
            }

            foreach (var part in requestedScope.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                query.Append("scope=").Append(Uri.EscapeDataString(part)).Append('&');
            }

            request.Method = HttpMethod.Get;
            request.RequestUri = new Uri(realm.GetLeftPart(UriPartial.Path) + query.ToString().TrimEnd('&'));
            if (credential is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", BasicValue(credential.Username ?? "", credential.Password ?? ""));
            }
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RequestTimeout);
        HttpResponseMessage response;
        try
        {
            response = await ClientFor(realm).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TransientRegistryException($"no answer from the token server within {options.RequestTimeout.TotalSeconds:0} s", null, e);
        }

        using (response)
        {
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                if (credential is not null)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryCredentialsRejected, name, registry, credential.Source,
                        $"the token server answered {(int)response.StatusCode}");
                }

                throw Unauthorized(name, registry, $"the token server refused an anonymous token ({(int)response.StatusCode})");
            }

            ThrowIfTransient(response);
            if (!response.IsSuccessStatusCode)
            {
                throw new RuncibleException(RuncibleErrors.RegistryRequestFailed, name, what, (int)response.StatusCode, response.ReasonPhrase);
            }

            var body = await ReadCappedAsync(response.Content, MaxDocumentBytes, name, "token response", cancellationToken, options.RequestTimeout).ConfigureAwait(false);
            try
            {
                using var document = JsonDocument.Parse(body);
                var root = document.RootElement;
                string? token = null;
                if (root.ValueKind == JsonValueKind.Object)
                {
                    foreach (var property in new[] { "token", "access_token" })
                    {
                        if (root.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String && !string.IsNullOrEmpty(value.GetString()))
                        {
                            token = value.GetString();
                            break;
                        }
                    }
                }

                if (token is null)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, name, what, "it holds neither token nor access_token");
                }

                // The distribution spec: a missing expires_in means 60 seconds. Renew a little early.
                var seconds = root.TryGetProperty("expires_in", out var expires) && expires.ValueKind == JsonValueKind.Number && expires.TryGetInt32(out var s) && s > 0 ? s : 60;
                var lifetime = TimeSpan.FromSeconds(seconds);
                lifetime -= TimeSpan.FromSeconds(Math.Min(10, seconds / 10.0));
                return (new AuthenticationHeaderValue("Bearer", token), lifetime);
            }
            catch (JsonException e)
            {
                throw new RuncibleException(e, RuncibleErrors.RegistryMalformedResponse, name, what, "it is not JSON");
            }
        }
    }

    // ---- retries ----

    /// <summary>
    /// Runs <paramref name="attempt"/> until it succeeds, retrying transient failures (429, 408, 5xx, connection
    /// errors, cut bodies) with exponential backoff and jitter, honouring <c>Retry-After</c>. An attempt that made
    /// progress (<paramref name="progress"/> grew: a resumable download) does not count against
    /// <see cref="RegistryClientOptions.MaxAttempts"/>; the total stays bounded all the same.
    /// </summary>
    internal async Task<T> WithRetriesAsync<T>(string name, string registry, string what, Func<Task<T>> attempt, Func<long>? progress,
        CancellationToken cancellationToken)
    {
        var failures = 0;
        var total = 0;
        var onlyConnectionFailures = true;
        while (true)
        {
            var before = progress?.Invoke() ?? 0;
            string reason;
            TimeSpan? retryAfter = null;
            total++;
            try
            {
                return await attempt().ConfigureAwait(false);
            }
            catch (TransientRegistryException e)
            {
                reason = e.Message;
                retryAfter = e.RetryAfter;
                onlyConnectionFailures = false;
            }
            catch (HttpRequestException e) when (!cancellationToken.IsCancellationRequested)
            {
                if (FindInner<AuthenticationException>(e) is { } tls || e.HttpRequestError == HttpRequestError.SecureConnectionError)
                {
                    throw new RuncibleException(e, RuncibleErrors.RegistryTlsFailure, registry, Describe(e));
                }

                if (e.HttpRequestError == HttpRequestError.NameResolutionError)
                {
                    throw new RuncibleException(e, RuncibleErrors.RegistryUnreachable, registry, Describe(e));
                }

                reason = Describe(e);
                onlyConnectionFailures &= e.HttpRequestError == HttpRequestError.ConnectionError;
            }
            catch (IOException e) when (!cancellationToken.IsCancellationRequested)
            {
                reason = Describe(e);
                onlyConnectionFailures = false;
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                reason = "timed out: " + e.Message;
                onlyConnectionFailures = false;
            }

            if ((progress?.Invoke() ?? 0) <= before)
            {
                failures++;
            }

            if (failures >= options.MaxAttempts || total >= options.MaxAttempts * 20)
            {
                throw onlyConnectionFailures
                    ? new RuncibleException(RuncibleErrors.RegistryUnreachable, registry, reason)
                    : new RuncibleException(RuncibleErrors.RegistryRetriesExhausted, name, what, total, reason);
            }

            if (retryAfter > options.MaxRetryAfter)
            {
                throw new RuncibleException(RuncibleErrors.RegistryRetriesExhausted, name, what, total,
                    $"{reason}, and the registry asks to wait {retryAfter.Value.TotalSeconds:0} s");
            }

            var delay = retryAfter ?? Backoff(failures);
            options.Log.LogMessage($"{name}: fetching {what} failed ({reason}); retry {total} in {delay.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s.");
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>base × 2^(n-1), capped, with jitter in [50 %, 100 %] so parallel downloads do not retry in lockstep.</summary>
    private TimeSpan Backoff(int failures)
    {
        var exponential = options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Max(0, failures - 1));
        var capped = Math.Min(exponential, options.MaxRetryDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.5 + Random.Shared.NextDouble() * 0.5));
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

    private sealed record CachedAuthorization(AuthenticationHeaderValue Value, DateTimeOffset ExpiresAt);
}

/// <summary>A failure worth retrying (429, 408, 5xx, a timeout), with the server's <c>Retry-After</c> if it gave one.</summary>
internal sealed class TransientRegistryException(string reason, TimeSpan? retryAfter, Exception? inner) : Exception(reason, inner)
{
    public TimeSpan? RetryAfter { get; } = retryAfter;
}
