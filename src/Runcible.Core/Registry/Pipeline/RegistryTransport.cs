using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Runcible.Core.Registry.Pipeline;

/// <summary>
/// The innermost handler: sockets, TLS and proxy, in two connection pools. The TLS callback sees the host but not
/// the port, so an insecure registry's connections (the only ones that may skip certificate verification) get a pool
/// of their own, chosen by the request's <c>host:port</c>, never shared with another port of that host. No automatic
/// redirects, decompression or cookies: those are the pipeline's business, and blobs must arrive as stored.
/// </summary>
internal sealed class RegistryTransport : HttpMessageHandler
{
    private readonly RegistryClientOptions _options;
    private readonly InsecureRegistries _insecure;
    private readonly HttpMessageInvoker _verified;
    private readonly HttpMessageInvoker _insecurePool;

    public RegistryTransport(RegistryClientOptions options, InsecureRegistries insecure)
    {
        _options = options;
        _insecure = insecure;
        _verified = new HttpMessageInvoker(CreateSocketsHandler(ValidateServerCertificate), disposeHandler: true);
        _insecurePool = new HttpMessageInvoker(CreateSocketsHandler(ValidateInsecureServerCertificate), disposeHandler: true);
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Headers.UserAgent.Count == 0)
        {
            request.Headers.UserAgent.ParseAdd(_options.UserAgent);
        }

        return PoolFor(request.RequestUri!).SendAsync(request, cancellationToken);
    }

    /// <summary>The pool for <paramref name="uri"/>: the one that may accept an unverified certificate only for an insecure registry.</summary>
    private HttpMessageInvoker PoolFor(Uri uri) => _insecure.Contains(uri) ? _insecurePool : _verified;

    private SocketsHttpHandler CreateSocketsHandler(RemoteCertificateValidationCallback validate)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            // Blobs are content-addressed: their bytes must arrive exactly as stored.
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = _options.RequestTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        if (_options.Proxy is not null)
        {
            handler.Proxy = _options.Proxy;
        }

        handler.SslOptions.RemoteCertificateValidationCallback = validate;
        return handler;
    }

    /// <summary>The system store, plus <see cref="RegistryClientOptions.TrustedCertificates"/> as extra roots.</summary>
    private bool ValidateServerCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (certificate is not null && errors == SslPolicyErrors.RemoteCertificateChainErrors && _options.TrustedCertificates.Count > 0)
        {
            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            foreach (var trusted in _options.TrustedCertificates)
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

    /// <summary>For the pool of insecure registries only (<see cref="PoolFor"/>): a certificate that does not verify is accepted, with a warning.</summary>
    private bool ValidateInsecureServerCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (ValidateServerCertificate(sender, certificate, chain, errors))
        {
            return true;
        }

        var host = (sender as SslStream)?.TargetHostName ?? "";
        _insecure.WarnOnce(host, "tls", "its TLS certificate is accepted without verification (" + errors + ")", "listed as insecure or loopback");
        return true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _verified.Dispose();
            _insecurePool.Dispose();
        }

        base.Dispose(disposing);
    }
}
