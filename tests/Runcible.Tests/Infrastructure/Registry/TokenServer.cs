using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Runcible.Tests.Infrastructure.Registry;

/// <summary>
/// A loopback token server for the registry's <c>auth: token</c> mode: the Docker Hub / GHCR / MCR flow.
/// <para>
/// Public API: created by <see cref="RegistryServer.StartTokenAuthAsync"/> (reach it as
/// <c>registry.TokenServer</c>). <see cref="Realm"/> is the realm URL the registry announces in
/// <c>WWW-Authenticate: Bearer realm=…,service=…,scope=…</c>; <see cref="Service"/>, <see cref="Issuer"/>;
/// <see cref="Username"/>/<see cref="Password"/> the one account; <see cref="RequestCount"/> and
/// <see cref="Requests"/> (the query strings seen) let tests assert token reuse.
/// </para>
/// <para>
/// Protocol (GET <c>/token?service=…&amp;scope=repository:&lt;name&gt;:&lt;actions&gt;</c>, scope may repeat):
/// without <c>Authorization</c> the caller is anonymous and gets a token granting only <c>pull</c>;
/// with <c>Authorization: Basic</c> of the right user/password it gets every requested action (pull, push);
/// a wrong user or password gets 401; another service gets 400. POST <c>/token</c> with the OAuth2 form
/// (<c>grant_type=password&amp;username&amp;password&amp;service&amp;scope</c>, as containerd sends) works the same way. The answer is
/// <c>{"token","access_token","expires_in","issued_at"}</c>. Tokens are ES256 JWTs whose header carries the
/// signing certificate in <c>x5c</c>; the registry trusts them through <c>rootcertbundle</c> (the test CA),
/// checks <c>iss</c>, <c>aud</c> (= service, a string in distribution 2.8), <c>exp</c>/<c>nbf</c> and the
/// <c>access</c> claim.
/// </para>
/// </summary>
public sealed class TokenServer : LoopbackTcpServer
{
    private readonly IssuedCertificate _signingCertificate;
    private readonly List<string> _requests = [];
    private readonly List<string?> _authorizations = [];
    private readonly ConcurrentDictionary<string, byte> _privateRepositories = new(StringComparer.Ordinal);
    private int _requestCount;

    public TokenServer(IssuedCertificate signingCertificate, string username, string password,
        string service = "runcible-test-registry", string issuer = "runcible-test-token-server", TimeSpan? lifetime = null)
    {
        _signingCertificate = signingCertificate;
        Username = username;
        Password = password;
        Service = service;
        Issuer = issuer;
        Lifetime = lifetime ?? TimeSpan.FromMinutes(5);
        StartAccepting();
    }

    /// <summary><c>http://127.0.0.1:&lt;port&gt;/token</c>.</summary>
    public Uri Realm => new($"http://127.0.0.1:{Port}/token");

    public string Service { get; }

    public string Issuer { get; }

    public string Username { get; }

    public string Password { get; }

    public TimeSpan Lifetime { get; }

    /// <summary>Token requests answered so far (any status).</summary>
    public int RequestCount => Volatile.Read(ref _requestCount);

    /// <summary>The request targets (path and query) seen, in order.</summary>
    public IReadOnlyList<string> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>The <c>Authorization</c> header of each request in <see cref="Requests"/> (null when it had none), in order.</summary>
    public IReadOnlyList<string?> Authorizations
    {
        get
        {
            lock (_requests)
            {
                return [.. _authorizations];
            }
        }
    }

    /// <summary>
    /// Makes <paramref name="repository"/> private (like a private repository on Docker Hub): anonymous tokens for it
    /// carry an empty <c>access</c> claim, so the registry answers 401 to anonymous pulls; the user still gets access.
    /// </summary>
    public void MakePrivate(string repository) => _privateRepositories[repository] = 0;

    /// <summary>The certificate whose key signs the tokens (PEM file), issued by the test CA.</summary>
    public string SigningCertificatePath => _signingCertificate.CertificatePath;

    protected override async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                // One request per connection: the answer says "Connection: close".
                var head = await HttpHead.ReadAsync(stream, Stopping);
                if (head is null)
                {
                    return;
                }

                Interlocked.Increment(ref _requestCount);
                lock (_requests)
                {
                    _requests.Add(head.Target);
                    _authorizations.Add(head.Headers.TryGetValue("authorization", out var authorization) ? authorization : null);
                }

                var form = head.Method == "POST" ? await ReadFormAsync(stream, head, Stopping) : null;
                var (status, body) = Answer(head, form);
                var bytes = Encoding.UTF8.GetBytes(body);
                var extra = status == 401 ? "WWW-Authenticate: Basic realm=\"runcible-test-token-server\"\r\n" : "";
                var response = $"HTTP/1.1 {status} {Reason(status)}\r\nContent-Type: application/json\r\nContent-Length: {bytes.Length}\r\n{extra}Connection: close\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(response), Stopping);
                await stream.WriteAsync(bytes, Stopping);
                await stream.FlushAsync(Stopping);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or InvalidDataException)
            {
                // A client that hangs up mid-request is its own problem; the server keeps serving.
            }
        }
    }

    private (int Status, string Body) Answer(HttpHead head, Dictionary<string, List<string>>? form)
    {
        var path = head.Target.Split('?', 2)[0];
        if (head.Method is not ("GET" or "POST") || path != "/token")
        {
            return (404, """{"errors":[{"code":"NOT_FOUND","message":"only GET or POST /token"}]}""");
        }

        // GET: the Docker token protocol (query, optional Basic). POST: its OAuth2 form (grant_type=password).
        var query = form ?? ParseQuery(head.Target);
        if (query.TryGetValue("service", out var services) && services.Count > 0 && services[0] != Service)
        {
            return (400, """{"errors":[{"code":"BAD_REQUEST","message":"unknown service"}]}""");
        }

        string? user = null, password = null;
        if (form is not null)
        {
            if (First(form, "grant_type") != "password")
            {
                return (400, """{"errors":[{"code":"UNSUPPORTED","message":"only grant_type=password"}]}""");
            }

            user = First(form, "username") ?? "";
            password = First(form, "password") ?? "";
        }
        else if (head.Headers.TryGetValue("authorization", out var authorization)
            && !TryParseBasic(authorization, out user, out password))
        {
            return (401, """{"errors":[{"code":"UNAUTHORIZED","message":"malformed credentials"}]}""");
        }

        string subject = "";
        var authenticated = false;
        if (user is not null)
        {
            if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(user), Encoding.UTF8.GetBytes(Username))
                || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(password ?? ""), Encoding.UTF8.GetBytes(Password)))
            {
                return (401, """{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}""");
            }

            subject = user;
            authenticated = true;
        }

        var access = new JsonArray();
        foreach (var scope in query.GetValueOrDefault("scope") ?? [])
        {
            // repository:<name>:<actions>; the name may itself hold no ':' but a host-less path.
            var first = scope.IndexOf(':');
            var last = scope.LastIndexOf(':');
            if (first <= 0 || last <= first)
            {
                continue;
            }

            var type = scope[..first];
            var name = scope[(first + 1)..last];
            var wanted = scope[(last + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries);
            var granted = wanted.Where(a => authenticated ? a is "pull" or "push" or "*" : a == "pull").ToArray();
            if (type == "repository" && granted.Length > 0 && (authenticated || !_privateRepositories.ContainsKey(name)))
            {
                access.Add(new JsonObject
                {
                    ["type"] = type,
                    ["name"] = name,
                    ["actions"] = new JsonArray([.. granted.Select(a => (JsonNode)a)]),
                });
            }
        }

        var now = DateTimeOffset.UtcNow;
        var token = Sign(new JsonObject
        {
            ["iss"] = Issuer,
            ["sub"] = subject,
            ["aud"] = Service,
            ["exp"] = now.Add(Lifetime).ToUnixTimeSeconds(),
            ["nbf"] = now.AddSeconds(-5).ToUnixTimeSeconds(),
            ["iat"] = now.ToUnixTimeSeconds(),
            ["jti"] = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)),
            ["access"] = access,
        });
        var body = new JsonObject
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = (int)Lifetime.TotalSeconds,
            ["issued_at"] = now.ToString("yyyy-MM-ddTHH:mm:ssZ"),
        };
        return (200, body.ToJsonString());
    }

    private string Sign(JsonObject claims)
    {
        var header = new JsonObject
        {
            ["typ"] = "JWT",
            ["alg"] = "ES256",
            ["x5c"] = new JsonArray(Convert.ToBase64String(_signingCertificate.Certificate.RawData)),
        };
        var signingInput = Base64Url(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + Base64Url(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        // JWS ES256 wants r||s (IEEE P1363), which is what ECDsa.SignData produces by default.
        var signature = _signingCertificate.Key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256);
        return signingInput + "." + Base64Url(signature);
    }

    private static string? First(Dictionary<string, List<string>> values, string key) =>
        values.TryGetValue(key, out var list) && list.Count > 0 ? list[0] : null;

    private static async Task<Dictionary<string, List<string>>> ReadFormAsync(Stream stream, HttpHead head, CancellationToken cancellationToken)
    {
        var length = head.ContentLength ?? 0;
        if (length > 64 * 1024)
        {
            throw new InvalidDataException("Token request body too large.");
        }

        var body = new byte[length];
        await stream.ReadExactlyAsync(body, cancellationToken);
        return ParseQuery("?" + Encoding.UTF8.GetString(body));
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static bool TryParseBasic(string header, out string user, out string password)
    {
        user = password = "";
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            var colon = decoded.IndexOf(':');
            if (colon < 0)
            {
                return false;
            }

            user = decoded[..colon];
            password = decoded[(colon + 1)..];
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static Dictionary<string, List<string>> ParseQuery(string target)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var question = target.IndexOf('?');
        if (question < 0)
        {
            return result;
        }

        foreach (var pair in target[(question + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=');
            var key = Uri.UnescapeDataString((equals < 0 ? pair : pair[..equals]).Replace('+', ' '));
            var value = equals < 0 ? "" : Uri.UnescapeDataString(pair[(equals + 1)..].Replace('+', ' '));
            if (!result.TryGetValue(key, out var values))
            {
                result[key] = values = [];
            }

            // Docker sends several scopes as repeated parameters; some clients join them with spaces.
            values.AddRange(key == "scope" ? value.Split(' ', StringSplitOptions.RemoveEmptyEntries) : [value]);
        }

        return result;
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
}
