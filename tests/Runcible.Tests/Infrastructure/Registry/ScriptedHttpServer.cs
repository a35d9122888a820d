using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Runcible.Tests.Infrastructure.Registry;

/// <summary>What a <see cref="ScriptedHttpServer"/> answers to one request.</summary>
public sealed record ScriptedResponse(int Status, IReadOnlyList<KeyValuePair<string, string>>? Headers = null, string Body = "");

/// <summary>
/// A loopback HTTP (or, given a certificate, HTTPS) server that answers each request with what the test's function
/// says and records every request head: the registry a test wants to misbehave in ways a real one will not (redirect to
/// another origin, to plain HTTP), or an origin that must receive nothing. One request per connection (it answers
/// <c>Connection: close</c>); a client that fails the TLS handshake (a plain-HTTP probe) is hung up on.
/// </summary>
public sealed class ScriptedHttpServer : LoopbackTcpServer
{
    private readonly Func<HttpHead, ScriptedResponse> _answer;
    private readonly X509Certificate2? _certificate;
    private readonly List<HttpHead> _requests = [];

    public ScriptedHttpServer(Func<HttpHead, ScriptedResponse> answer, X509Certificate2? certificate = null)
    {
        _answer = answer;
        _certificate = certificate;
        StartAccepting();
    }

    /// <summary><c>127.0.0.1:port</c>, as a registry is written in a reference.</summary>
    public string Host => $"127.0.0.1:{Port}";

    public Uri BaseAddress => new($"{(_certificate is null ? "http" : "https")}://{Host}/");

    /// <summary>The heads of the requests answered so far, in order.</summary>
    public IReadOnlyList<HttpHead> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    protected override async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                Stream stream = client.GetStream();
                if (_certificate is not null)
                {
                    var tls = new SslStream(stream);
                    await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate }, Stopping);
                    stream = tls;
                }

                var head = await HttpHead.ReadAsync(stream, Stopping);
                if (head is null)
                {
                    return;
                }

                lock (_requests)
                {
                    _requests.Add(head);
                }

                var response = _answer(head);
                var body = Encoding.UTF8.GetBytes(response.Body);
                var fields = new List<KeyValuePair<string, string>>(response.Headers ?? [])
                {
                    new("Content-Length", body.Length.ToString(CultureInfo.InvariantCulture)),
                    new("Connection", "close"),
                };
                await stream.WriteAsync(HttpHead.Format($"HTTP/1.1 {response.Status} Scripted", fields), Stopping);
                await stream.WriteAsync(body, Stopping);
                await stream.FlushAsync(Stopping);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or InvalidDataException
                or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
            {
                // A client that hangs up, or speaks plain HTTP to the TLS port: its problem; the server keeps serving.
            }
        }
    }
}
