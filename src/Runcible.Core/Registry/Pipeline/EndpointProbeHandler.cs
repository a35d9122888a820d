using System.Collections.Concurrent;
using System.Net;

namespace Runcible.Core.Registry.Pipeline;

/// <summary>
/// Chooses the protocol of the registry's API. A registry that is not insecure is HTTPS, untouched. An insecure one
/// (loopback, listed) is probed once: <c>GET /v2/</c> in plain HTTP first; any answer but <c>400</c> (200, 401…) means it
/// speaks plain HTTP on that port, and the request is sent there; a TLS port answers clear text with <c>400</c> (Go,
/// nginx) or hangs up, and then HTTPS it is. Probing in this order sends no credentials and costs one round trip;
/// probing TLS first would stall on servers that wait for a request line and never answer a ClientHello. Either way
/// warning <c>RUNCIBLE1017</c> is logged once per registry. A failed probe is forgotten, so the next attempt probes again.
/// </summary>
internal sealed class EndpointProbeHandler : DelegatingHandler
{
    private readonly RegistryClientOptions _options;
    private readonly InsecureRegistries _insecure;
    private readonly ConcurrentDictionary<string, Task<Uri>> _endpoints = new(StringComparer.OrdinalIgnoreCase);

    public EndpointProbeHandler(RegistryClientOptions options, InsecureRegistries insecure, HttpMessageHandler inner)
        : base(inner)
    {
        _options = options;
        _insecure = insecure;
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var context = RegistryRequestContext.Require(request, nameof(EndpointProbeHandler));
        var apiHost = RegistryNames.ApiHost(context.Registry);
        var uri = request.RequestUri!;
        if (_insecure.Contains(context.Registry) && string.Equals(uri.Authority, apiHost, StringComparison.OrdinalIgnoreCase))
        {
            var endpoint = await GetEndpointAsync(context.Registry, apiHost, cancellationToken).ConfigureAwait(false);
            request.RequestUri = new Uri(endpoint, uri.PathAndQuery);
        }

        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The API base of an insecure registry: <c>http://host/</c> when it speaks plain HTTP, else <c>https://host/</c>.</summary>
    private async Task<Uri> GetEndpointAsync(string registry, string apiHost, CancellationToken cancellationToken)
    {
        var task = _endpoints.GetOrAdd(registry, _ => ProbeAsync(registry, apiHost, cancellationToken));
        try
        {
            return await task.ConfigureAwait(false);
        }
        catch
        {
            // A failed probe (registry not up yet, network blip) must not stick: the next attempt probes again.
            _endpoints.TryRemove(new KeyValuePair<string, Task<Uri>>(registry, task));
            throw;
        }
    }

    private async Task<Uri> ProbeAsync(string registry, string apiHost, CancellationToken cancellationToken)
    {
        var plain = new Uri("http://" + apiHost + "/");
        var https = new Uri("https://" + apiHost + "/");
        var wholeProbe = TimeSpan.FromTicks(Math.Min(_options.RequestTimeout.Ticks, TimeSpan.FromSeconds(10).Ticks));
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(wholeProbe);
            using var response = await SendProbeAsync(new Uri(plain, "v2/"), timeout.Token).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.BadRequest)
            {
                _insecure.WarnOnce(registry, "http", "content is fetched over plain HTTP", _insecure.Why(registry));
                return plain;
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested
            && e is HttpRequestException or TransientRegistryException or OperationCanceledException)
        {
            // Not plain HTTP (or not up): HTTPS decides, and its failure is the one reported.
        }

        using (await SendProbeAsync(new Uri(https, "v2/"), cancellationToken).ConfigureAwait(false))
        {
        }

        return https;
    }

    /// <summary>A probe carries no context: no credentials, and the inner handlers treat it as a bare exchange.</summary>
    private async Task<HttpResponseMessage> SendProbeAsync(Uri uri, CancellationToken cancellationToken)
    {
        using var probe = new HttpRequestMessage(HttpMethod.Get, uri);
        return await base.SendAsync(probe, cancellationToken).ConfigureAwait(false);
    }
}
