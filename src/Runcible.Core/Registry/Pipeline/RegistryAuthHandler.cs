using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Registry.Pipeline;

/// <summary>
/// Authenticates a request only when the registry asks. A request goes out with the authorization cached for its
/// (registry, pull scope), or none; a <c>401</c> is answered once from its <c>WWW-Authenticate</c> challenge (Bearer
/// preferred over Basic) and the request sent again. Bearer: a token from the realm (Basic credentials if any, or the
/// OAuth2 refresh-token POST for an identity token), cached for <c>expires_in</c> (60 s when absent) less 10 % (at most
/// 10 s); Basic: the credentials, cached for an hour. One token request at a time per (registry, scope) serves parallel
/// fetches. Credentials are looked up at the first challenge, once per (registry, repository), so they are scoped to the
/// repository asked for. Still <c>401</c>: <c>RUNCIBLE1004</c> for rejected Basic credentials, else <c>RUNCIBLE1003</c>;
/// <c>403</c> is <c>RUNCIBLE1003</c>. The caches belong to this handler (one per client), never to the process.
/// </summary>
internal sealed class RegistryAuthHandler : DelegatingHandler
{
    private readonly RegistryClientOptions _options;
    private readonly CredentialStore _credentialStore;
    private readonly InsecureRegistries _insecure;
    private readonly HttpMessageInvoker _tokenServer;
    private readonly ConcurrentDictionary<(string Registry, string Scope), CachedAuthorization> _authorizations = new();
    private readonly ConcurrentDictionary<(string Registry, string Scope), SemaphoreSlim> _authorizationLocks = new();
    private readonly ConcurrentDictionary<(string Registry, string Repository), Lazy<RegistryCredential?>> _credentials = new();

    /// <param name="tokenServer">Where token requests go: the transport, below the registry's own redirects and probe.</param>
    public RegistryAuthHandler(RegistryClientOptions options, CredentialStore credentialStore, InsecureRegistries insecure,
        HttpMessageHandler tokenServer, HttpMessageHandler inner)
        : base(inner)
    {
        _options = options;
        _credentialStore = credentialStore;
        _insecure = insecure;
        _tokenServer = new HttpMessageInvoker(tokenServer, disposeHandler: false);
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var context = RegistryRequestContext.Require(request, nameof(RegistryAuthHandler));
        var uri = request.RequestUri!;
        var key = (context.Registry, context.Scope);
        var authorization = GetCachedAuthorization(key);

        request.Headers.Authorization = authorization;
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            var challenge = ReadChallenge(response);
            response.Dispose();
            var (newAuthorization, credential) = await AuthenticateAsync(context, challenge, authorization, cancellationToken).ConfigureAwait(false);
            request.RequestUri = uri;
            request.Headers.Authorization = newAuthorization;
            response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                response.Dispose();
                _authorizations.TryRemove(key, out _);
                if (credential is not null && challenge?.IsBasic == true)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryCredentialsRejected, context.Name, context.Registry, credential.Source, "401 Unauthorized");
                }

                throw Unauthorized(context, credential is null
                    ? "401 Unauthorized, anonymous access is not allowed"
                    : $"401 Unauthorized with the token obtained using {credential}");
            }
        }

        if (response.StatusCode == HttpStatusCode.Forbidden)
        {
            response.Dispose();
            throw Unauthorized(context, "403 Forbidden");
        }

        return response;
    }

    private RuncibleException Unauthorized(RegistryRequestContext context, string detail) =>
        new(RuncibleErrors.RegistryUnauthorized, context.Name, detail, _credentialStore.DescribeLocations(context.Registry), context.Registry);

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

    private AuthenticationHeaderValue? GetCachedAuthorization((string Registry, string Scope) key) =>
        _authorizations.TryGetValue(key, out var cached) && cached.ExpiresAt > DateTimeOffset.UtcNow ? cached.Value : null;

    private RegistryCredential? GetCredential(string registry, string repository) =>
        _credentials.GetOrAdd((registry, repository), k => new Lazy<RegistryCredential?>(() => _credentialStore.Find(k.Registry, k.Repository))).Value;

    private async Task<(AuthenticationHeaderValue Authorization, RegistryCredential? Credential)> AuthenticateAsync(RegistryRequestContext context,
        AuthenticationChallenge? challenge, AuthenticationHeaderValue? failed, CancellationToken cancellationToken)
    {
        if (challenge is null)
        {
            throw Unauthorized(context, "401 Unauthorized without a Bearer or Basic challenge");
        }

        var key = (context.Registry, context.Scope);
        var gate = _authorizationLocks.GetOrAdd(key, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var credential = GetCredential(context.Registry, context.Repository);

            // Another request may have authenticated while this one waited: reuse its answer.
            if (GetCachedAuthorization(key) is { } current && current.ToString() != failed?.ToString())
            {
                return (current, credential);
            }

            AuthenticationHeaderValue authorization;
            TimeSpan lifetime;
            if (challenge.IsBearer)
            {
                (authorization, lifetime) = await FetchTokenAsync(context, challenge, credential, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                if (credential?.Username is null || credential.Password is null)
                {
                    throw Unauthorized(context, credential is null
                        ? "401 Unauthorized, the registry wants a user name and password"
                        : $"the registry wants a user name and password, but {credential.Source} holds an identity token");
                }

                authorization = new AuthenticationHeaderValue("Basic", BasicValue(credential.Username, credential.Password));
                lifetime = TimeSpan.FromHours(1);
            }

            _authorizations[key] = new CachedAuthorization(authorization, DateTimeOffset.UtcNow + lifetime);
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
    private async Task<(AuthenticationHeaderValue, TimeSpan)> FetchTokenAsync(RegistryRequestContext context,
        AuthenticationChallenge challenge, RegistryCredential? credential, CancellationToken cancellationToken)
    {
        var name = context.Name;
        var registry = context.Registry;
        if (!Uri.TryCreate(challenge["realm"], UriKind.Absolute, out var realm) || (realm.Scheme != Uri.UriSchemeHttps && realm.Scheme != Uri.UriSchemeHttp))
        {
            throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, name, "authentication", $"the Bearer challenge has no usable realm ('{challenge["realm"]}')");
        }

        if (realm.Scheme == Uri.UriSchemeHttp && credential is not null && !_insecure.Contains(realm.Authority) && !_insecure.Contains(registry))
        {
            throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, name, "authentication",
                $"the token server {realm.GetLeftPart(UriPartial.Authority)} is plain HTTP; credentials are not sent there");
        }

        var requestedScope = challenge["scope"] is { Length: > 0 } challenged ? challenged : context.Scope;
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

        var response = await TimedExchange.SendAsync(_tokenServer.SendAsync, request, _options.RequestTimeout, "the token server", cancellationToken).ConfigureAwait(false);

        using (response)
        {
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                if (credential is not null)
                {
                    throw new RuncibleException(RuncibleErrors.RegistryCredentialsRejected, name, registry, credential.Source,
                        $"the token server answered {(int)response.StatusCode}");
                }

                throw Unauthorized(context, $"the token server refused an anonymous token ({(int)response.StatusCode})");
            }

            if (RetryBudget.TransientFailure(response) is { } transient)
            {
                throw new TransientRegistryException(transient.Reason, transient.RetryAfter, null);
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new RuncibleException(RuncibleErrors.RegistryRequestFailed, name, what, (int)response.StatusCode, response.ReasonPhrase);
            }

            var body = await RegistryClient.ReadCappedAsync(response.Content, RegistryClient.MaxDocumentBytes, name, "token response", cancellationToken,
                _options.RequestTimeout).ConfigureAwait(false);
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

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _tokenServer.Dispose();
            foreach (var gate in _authorizationLocks.Values)
            {
                gate.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    private sealed record CachedAuthorization(AuthenticationHeaderValue Value, DateTimeOffset ExpiresAt);
}
