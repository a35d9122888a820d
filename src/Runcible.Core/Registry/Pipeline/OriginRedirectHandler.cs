using System.Net;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Registry.Pipeline;

/// <summary>
/// Follows redirects by hand, scoped to the origin (scheme, host, port) the request was first sent to:
/// <list type="bullet">
/// <item><c>Authorization</c> goes only to that origin;</item>
/// <item>a <c>401</c> from another origin is <c>RUNCIBLE1019</c>: answering it would hand the registry's credentials to
/// a token service that origin names, so the request ends there and that realm is never contacted;</item>
/// <item>never from HTTPS to plain HTTP (loopback included), and to plain HTTP only to an insecure registry (<c>RUNCIBLE1020</c>);</item>
/// <item>only HTTP(S) targets, at most five hops (<c>RUNCIBLE1012</c>).</item>
/// </list>
/// Each hop gets <see cref="RegistryClientOptions.RequestTimeout"/> for its response headers; running out is a retryable failure.
/// </summary>
internal sealed class OriginRedirectHandler : DelegatingHandler
{
    private const int MaxRedirects = 5;

    private readonly RegistryClientOptions _options;
    private readonly InsecureRegistries _insecure;

    public OriginRedirectHandler(RegistryClientOptions options, InsecureRegistries insecure, HttpMessageHandler inner)
        : base(inner)
    {
        _options = options;
        _insecure = insecure;
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var context = RegistryRequestContext.Find(request);
        var origin = request.RequestUri!;
        var authorization = request.Headers.Authorization;
        var uri = origin;
        for (var hop = 0; ; hop++)
        {
            request.RequestUri = uri;
            request.Headers.Authorization = authorization is not null && SameOrigin(uri, origin) ? authorization : null;

            var response = await TimedExchange.SendAsync(base.SendAsync, request, _options.RequestTimeout, uri.Authority, cancellationToken).ConfigureAwait(false);

            if (!IsRedirect(response.StatusCode))
            {
                // A probe (no context) only wants to know the protocol; a registry request must not be challenged elsewhere.
                if (context is not null && response.StatusCode == HttpStatusCode.Unauthorized && !SameOrigin(uri, origin))
                {
                    response.Dispose();
                    throw new RuncibleException(RuncibleErrors.RegistryRedirectChallenged, context.Name, origin.AbsolutePath,
                        uri.GetLeftPart(UriPartial.Authority), context.Registry);
                }

                return response;
            }

            var location = response.Headers.Location;
            response.Dispose();
            if (location is null)
            {
                throw new RuncibleException(RuncibleErrors.RegistryMalformedResponse, uri.Authority, uri.AbsolutePath, "a redirect without a Location");
            }

            var next = location.IsAbsoluteUri ? location : new Uri(uri, location);
            if (next.Scheme == Uri.UriSchemeHttp && (uri.Scheme == Uri.UriSchemeHttps || !_insecure.Contains(next.Authority)))
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

    internal static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;
}
