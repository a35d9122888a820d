using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Runcible.Tests.Infrastructure.Registry;

/// <summary>How a <see cref="RegistryServer"/> authenticates clients.</summary>
public enum RegistryAuthMode
{
    /// <summary>Plain HTTP, anonymous pull and push.</summary>
    Anonymous,

    /// <summary>HTTPS with a test CA, htpasswd (bcrypt) basic auth; anonymous requests get 401.</summary>
    TlsBasic,

    /// <summary>Plain HTTP, <c>auth: token</c> backed by a <see cref="Registry.TokenServer"/>.</summary>
    Token,

    /// <summary>HTTPS with a test CA, anonymous pull and push: a stand-in for a public registry such as mcr.microsoft.com
    /// (see <see cref="RegistryServer.StartPublicStandInAsync"/>).</summary>
    TlsAnonymous,
}

/// <summary>The manifest and layer format of an image pushed with <see cref="RegistryServer.PushAsync"/>.</summary>
public enum PushFormat
{
    /// <summary>OCI manifest, gzip layers (as in the layout).</summary>
    Oci,

    /// <summary>Docker schema 2 manifest (<c>skopeo --format v2s2</c>), gzip layers.</summary>
    DockerV2S2,

    /// <summary>OCI manifest with zstd layers (<c>--dest-compress-format zstd</c>).</summary>
    Zstd,

    /// <summary>OCI manifest with uncompressed tar layers (<c>--dest-decompress</c>).</summary>
    Uncompressed,
}

/// <summary>
/// Debian's real <c>docker-registry</c> (distribution 2.8) on a free 127.0.0.1 port, storage in a temp dir,
/// started with a generated config.yml and always stopped (and its files deleted) on dispose.
/// <para>Public API:</para>
/// <list type="bullet">
/// <item><c>await using var r = await RegistryServer.StartAnonymousAsync();</c> plain HTTP, anonymous.</item>
/// <item><c>RegistryServer.StartTlsBasicAuthAsync()</c> HTTPS (self-signed test CA: <see cref="CaCertificatePath"/>,
/// <see cref="CaCertificatePem"/>, <see cref="CaCertificate"/>, <see cref="CertificateDirectory"/> for skopeo's
/// <c>--cert-dir</c>) + htpasswd basic auth with <see cref="Username"/>/<see cref="Password"/>.</item>
/// <item><c>RegistryServer.StartTokenAuthAsync()</c> plain HTTP + bearer tokens from <see cref="TokenServer"/>
/// (anonymous pull tokens; pull/push tokens for <see cref="Username"/>/<see cref="Password"/>; wrong password → 401).</item>
/// <item><see cref="Host"/> = <c>"127.0.0.1:port"</c> (for image references), <see cref="BaseAddress"/> =
/// <c>http(s)://127.0.0.1:port/</c>, <see cref="CreateHttpClient"/> (trusts the test CA).</item>
/// <item><see cref="PushAsync"/>(<c>FixtureImages.Runtime</c>, <c>"runtime:v2s2"</c>, <see cref="PushFormat.DockerV2S2"/>):
/// pushes a fixture layout with skopeo (multiarch is pushed with <c>--all</c>).</item>
/// <item>For a registry shared by the whole test run with every image already pushed, see <see cref="SharedRegistries"/>.</item>
/// </list>
/// </summary>
public sealed class RegistryServer : IAsyncDisposable
{
    private const string DefaultUsername = "runcible";

    private readonly TempDirectory _workDirectory;
    private readonly TestCertificateAuthority? _certificateAuthority;
    private readonly StringBuilder _output = new();
    private Process? _process;
    private IPAddress _listenAddress = IPAddress.Loopback;
    private int? _fixedPort;
    private string[] _certificateDnsNames = [];

    private RegistryServer(RegistryAuthMode mode, TempDirectory workDirectory, TestCertificateAuthority? certificateAuthority,
        TokenServer? tokenServer, string? username, string? password)
    {
        Mode = mode;
        _workDirectory = workDirectory;
        _certificateAuthority = certificateAuthority;
        TokenServer = tokenServer;
        Username = username;
        Password = password;
    }

    public RegistryAuthMode Mode { get; }

    public int Port { get; private set; }

    /// <summary><c>127.0.0.1:&lt;port&gt;</c> (or the stand-in's address), the registry part of an image reference.</summary>
    public string Host => $"{_listenAddress}:{Port}";

    public bool UsesTls => Mode is RegistryAuthMode.TlsBasic or RegistryAuthMode.TlsAnonymous;

    /// <summary><c>http://127.0.0.1:port/</c> or <c>https://127.0.0.1:port/</c>.</summary>
    public Uri BaseAddress => new($"{(UsesTls ? "https" : "http")}://{Host}/");

    /// <summary>The account accepted by the basic-auth or token variants; null for the anonymous one.</summary>
    public string? Username { get; }

    public string? Password { get; }

    /// <summary>The token server of the token variant; null otherwise.</summary>
    public TokenServer? TokenServer { get; }

    /// <summary>PEM file of the test CA that issued the registry's TLS certificate (TLS variant), or that
    /// issued the token-signing certificate (token variant); null for the anonymous one.</summary>
    public string? CaCertificatePath => _certificateAuthority?.CertificatePath;

    public string? CaCertificatePem => _certificateAuthority?.CertificatePem;

    public X509Certificate2? CaCertificate => _certificateAuthority?.Certificate;

    /// <summary>A directory holding only <c>ca.crt</c>: what skopeo's <c>--src-cert-dir</c>/<c>--dest-cert-dir</c> take.</summary>
    public string? CertificateDirectory => _certificateAuthority?.Directory;

    /// <summary>Where the registry keeps its blobs and manifests (tests may corrupt them on purpose).</summary>
    public string StorageDirectory => _workDirectory.Combine("storage");

    /// <summary>What the registry wrote on stdout/stderr so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static Task<RegistryServer> StartAnonymousAsync(CancellationToken cancellationToken = default) =>
        StartAsync(RegistryAuthMode.Anonymous, cancellationToken);

    public static Task<RegistryServer> StartTlsBasicAuthAsync(CancellationToken cancellationToken = default) =>
        StartAsync(RegistryAuthMode.TlsBasic, cancellationToken);

    /// <param name="tokenLifetime">How long issued tokens live (<c>expires_in</c>, <c>exp</c>); default 5 minutes.
    /// The registry itself allows 60 s of clock skew past <c>exp</c>.</param>
    public static Task<RegistryServer> StartTokenAuthAsync(TimeSpan? tokenLifetime = null, CancellationToken cancellationToken = default) =>
        StartAsync(RegistryAuthMode.Token, cancellationToken, tokenLifetime);

    /// <summary>
    /// An anonymous HTTPS registry on <paramref name="address"/>:<paramref name="port"/> (e.g. a 127.x.y.z address, port 443)
    /// whose certificate also names <paramref name="dnsName"/>: with that name mapped to the address (a private
    /// <c>/etc/hosts</c>) and the test CA trusted, a client pulling from <c>dnsName</c> talks to this registry.
    /// </summary>
    public static Task<RegistryServer> StartPublicStandInAsync(IPAddress address, int port, string dnsName, CancellationToken cancellationToken = default) =>
        StartCoreAsync(RegistryAuthMode.TlsAnonymous, cancellationToken, tokenLifetime: null, configure: server =>
        {
            server._listenAddress = address;
            server._fixedPort = port;
            server._certificateDnsNames = [dnsName];
        });

    public static Task<RegistryServer> StartAsync(RegistryAuthMode mode, CancellationToken cancellationToken = default, TimeSpan? tokenLifetime = null) =>
        StartCoreAsync(mode, cancellationToken, tokenLifetime, configure: null);

    private static async Task<RegistryServer> StartCoreAsync(RegistryAuthMode mode, CancellationToken cancellationToken, TimeSpan? tokenLifetime,
        Action<RegistryServer>? configure)
    {
        var work = new TempDirectory("runcible-registry");
        TestCertificateAuthority? ca = null;
        TokenServer? tokenServer = null;
        string? username = null, password = null;
        try
        {
            if (mode != RegistryAuthMode.Anonymous)
            {
                ca = new TestCertificateAuthority(work.Combine("ca"));
            }

            if (mode is RegistryAuthMode.TlsBasic or RegistryAuthMode.Token)
            {
                username = DefaultUsername;
                password = "pw-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
            }

            var server = new RegistryServer(mode, work, ca,
                mode == RegistryAuthMode.Token
                    ? tokenServer = new TokenServer(ca!.Issue("token-signer", serverAuth: false), username!, password!, lifetime: tokenLifetime)
                    : null,
                username, password);
            configure?.Invoke(server);
            await server.StartProcessAsync(cancellationToken);
            return server;
        }
        catch
        {
            if (tokenServer is not null)
            {
                await tokenServer.DisposeAsync();
            }

            ca?.Dispose();
            work.Dispose();
            throw;
        }
    }

    private async Task StartProcessAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(StorageDirectory);
        var auth = "";
        var tls = "";
        if (UsesTls)
        {
            var serverCertificate = _certificateAuthority!.Issue("registry", serverAuth: true, _listenAddress, _certificateDnsNames);
            // The CA directory doubles as skopeo's --cert-dir: keep the server key out of it.
            var certificatePath = _workDirectory.Combine("registry.crt");
            var keyPath = _workDirectory.Combine("registry.key");
            File.Move(serverCertificate.CertificatePath, certificatePath);
            File.Move(serverCertificate.KeyPath, keyPath);
            serverCertificate.Certificate.Dispose();
            serverCertificate.Key.Dispose();
            tls = $"""
                  tls:
                    certificate: {certificatePath}
                    key: {keyPath}
                """;
        }

        if (Mode == RegistryAuthMode.TlsBasic)
        {
            var htpasswdPath = _workDirectory.Combine("htpasswd");
            var htpasswd = ProcessRunner.Run("htpasswd", "-Bbn", Username!, Password!).EnsureSuccess("htpasswd");
            await File.WriteAllTextAsync(htpasswdPath, htpasswd.StandardOutput.Trim() + "\n", cancellationToken);
            auth = $"""
                auth:
                  htpasswd:
                    realm: runcible-test-registry
                    path: {htpasswdPath}
                """;
        }
        else if (Mode == RegistryAuthMode.Token)
        {
            auth = $"""
                auth:
                  token:
                    realm: {TokenServer!.Realm}
                    service: {TokenServer.Service}
                    issuer: {TokenServer.Issuer}
                    rootcertbundle: {_certificateAuthority!.CertificatePath}
                """;
        }

        // The port is picked free just before start; another process may grab it first, so retry.
        Exception? last = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            Port = _fixedPort ?? FreeLoopbackPort();
            var configPath = _workDirectory.Combine("config.yml");
            var config = $"""
                version: 0.1
                log:
                  level: warn
                  accesslog:
                    disabled: true
                storage:
                  filesystem:
                    rootdirectory: {StorageDirectory}
                  delete:
                    enabled: true
                  maintenance:
                    uploadpurging:
                      enabled: false
                http:
                  addr: {Host}
                  secret: {Convert.ToHexString(RandomNumberGenerator.GetBytes(16))}
                {tls}
                {auth}
                """;
            await File.WriteAllTextAsync(configPath, config, cancellationToken);
            try
            {
                await LaunchAndWaitAsync(configPath, cancellationToken);
                return;
            }
            catch (RegistryStartException e)
            {
                last = e;
                StopProcess();
            }
        }

        throw new InvalidOperationException($"docker-registry did not start on {_listenAddress}.", last);
    }

    private async Task LaunchAndWaitAsync(string configPath, CancellationToken cancellationToken)
    {
        lock (_output)
        {
            _output.Clear();
        }

        // A small watchdog shell runs the registry and stops it when the test process dies without disposing
        // (killed, crashed): no registry outlives its test run.
        var startInfo = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        startInfo.ArgumentList.Add("-c");
        startInfo.ArgumentList.Add(
            "docker-registry serve \"$1\" & child=$!; "
            + "trap 'kill $child 2>/dev/null; wait $child; exit 143' TERM INT; "
            + "while kill -0 \"$2\" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; "
            + "kill $child 2>/dev/null; wait $child");
        startInfo.ArgumentList.Add("registry-watchdog");
        startInfo.ArgumentList.Add(configPath);
        startInfo.ArgumentList.Add(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // The registry must not talk to anything but its own loopback clients.
        startInfo.Environment.Remove("HTTP_PROXY");
        startInfo.Environment.Remove("HTTPS_PROXY");
        startInfo.Environment.Remove("http_proxy");
        startInfo.Environment.Remove("https_proxy");
        _process = new Process { StartInfo = startInfo };
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var client = CreateHttpClient();
        client.Timeout = TimeSpan.FromSeconds(2);
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw new RegistryStartException($"docker-registry exited with {_process.ExitCode}:\n{Output}");
            }

            try
            {
                using var response = await client.GetAsync(new Uri(BaseAddress, "v2/"), cancellationToken);
                // 200 when anonymous, 401 with a challenge otherwise: either way it serves.
                if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }

            await Task.Delay(50, cancellationToken);
        }

        throw new RegistryStartException($"docker-registry did not answer on {BaseAddress} within 30 s:\n{Output}");
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < 1_000_000)
            {
                _output.AppendLine(line);
            }
        }
    }

    /// <summary>An HttpClient that trusts the test CA (TLS variant) and sends nothing by default.</summary>
    public HttpClient CreateHttpClient()
    {
        var handler = new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false };
        if (_certificateAuthority is not null && UsesTls)
        {
            var trusted = _certificateAuthority.Certificate;
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(trusted);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                using var leaf = new X509Certificate2(certificate);
                return (errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors) == System.Net.Security.SslPolicyErrors.None
                    && chain.Build(leaf);
            };
        }

        return new HttpClient(handler) { BaseAddress = BaseAddress };
    }

    /// <summary>
    /// Pushes the fixture layout <paramref name="image"/> (a <see cref="FixtureImages"/> name) to
    /// <c>&lt;Host&gt;/&lt;repositoryAndTag&gt;</c> with skopeo, in <paramref name="format"/>, with this server's
    /// credentials and CA. The multiarch index is pushed whole (<c>--all</c>). Returns the pushed reference.
    /// </summary>
    public async Task<string> PushAsync(string image, string repositoryAndTag, PushFormat format = PushFormat.Oci,
        CancellationToken cancellationToken = default)
    {
        var destination = $"{Host}/{repositoryAndTag}";
        var source = FixtureImages.SkopeoReference(image);
        var all = image == FixtureImages.MultiArch ? new[] { "--all" } : [];
        using var staging = new TempDirectory("runcible-push");

        // skopeo would reuse the gzip blobs already in the registry instead of recompressing, and a registry
        // destination never takes uncompressed layers: so zstd and uncompressed variants are first written
        // locally (oci: recompresses, dir: decompresses), then pushed byte for byte (--preserve-digests).
        switch (format)
        {
            case PushFormat.Zstd:
                await SkopeoCopyAsync(["--dest-compress-format", "zstd", .. all, source, "oci:" + staging.Combine("zstd") + ":latest"], image, cancellationToken);
                source = "oci:" + staging.Combine("zstd") + ":latest";
                break;
            case PushFormat.Uncompressed:
                await SkopeoCopyAsync(["--dest-decompress", .. all, source, "dir:" + staging.Combine("uncompressed")], image, cancellationToken);
                source = "dir:" + staging.Combine("uncompressed");
                break;
        }

        var arguments = new List<string>(DestinationArguments());
        arguments.AddRange(format switch
        {
            PushFormat.Oci => ["--format", "oci"],
            PushFormat.DockerV2S2 => ["--format", "v2s2"],
            PushFormat.Zstd or PushFormat.Uncompressed => ["--preserve-digests"],
            _ => throw new ArgumentOutOfRangeException(nameof(format)),
        });
        arguments.AddRange(all);
        arguments.Add(source);
        arguments.Add("docker://" + destination);
        await SkopeoCopyAsync(arguments, image, cancellationToken);
        return destination;
    }

    private async Task SkopeoCopyAsync(IEnumerable<string> arguments, string image, CancellationToken cancellationToken)
    {
        string[] all = ["copy", "--quiet", "--insecure-policy", "--retry-times", "2", .. arguments];
        var result = await Task.Run(() => ProcessRunner.Run("skopeo", all, timeout: TimeSpan.FromMinutes(5)), cancellationToken);
        if (result.ExitCode != 0)
        {
            // A push failed once, unexplained, while the shared machine was busy; skopeo's own retries cover
            // network errors only. One more attempt; if it fails too, both errors are reported.
            var first = result;
            result = await Task.Run(() => ProcessRunner.Run("skopeo", all, timeout: TimeSpan.FromMinutes(5)), cancellationToken);
            result.EnsureSuccess($"skopeo {string.Join(' ', all)} ({image}), twice; first stderr:\n{first.StandardError}\nregistry output:\n{Output}");
        }
    }

    /// <summary>skopeo flags to write to this registry (<c>--dest-*</c>): TLS trust or plain HTTP, credentials.</summary>
    public IReadOnlyList<string> DestinationArguments() => SkopeoArguments("dest");

    /// <summary>skopeo flags to read from this registry (<c>--src-*</c>), for skopeo inspect use <see cref="InspectArguments"/>.</summary>
    public IReadOnlyList<string> SourceArguments() => SkopeoArguments("src");

    /// <summary>skopeo inspect flags for this registry (no prefix): TLS trust or plain HTTP, credentials.</summary>
    public IReadOnlyList<string> InspectArguments() => SkopeoArguments(null);

    private List<string> SkopeoArguments(string? prefix)
    {
        var p = prefix is null ? "--" : $"--{prefix}-";
        var arguments = new List<string>();
        if (UsesTls)
        {
            arguments.AddRange([$"{p}tls-verify=true", $"{p}cert-dir", CertificateDirectory!]);
        }
        else
        {
            arguments.Add($"{p}tls-verify=false");
        }

        if (Username is not null)
        {
            arguments.AddRange([$"{p}creds", $"{Username}:{Password}"]);
        }

        return arguments;
    }

    private static int FreeLoopbackPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private void StopProcess()
    {
        if (_process is null)
        {
            return;
        }

        try
        {
            // SIGTERM to the watchdog: it stops the registry and reaps it (no zombie); SIGKILL if that takes too long.
            if (!_process.HasExited)
            {
                ProcessRunner.Run("kill", "-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            if (!_process.WaitForExit(5_000))
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }

        _process.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        StopProcess();
        if (TokenServer is not null)
        {
            await TokenServer.DisposeAsync();
        }

        _certificateAuthority?.Dispose();
        _workDirectory.Dispose();
    }

    private sealed class RegistryStartException(string message) : Exception(message);
}
