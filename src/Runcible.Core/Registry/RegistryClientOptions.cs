using System.Collections;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Registry;

/// <summary>
/// How a <see cref="RegistryClient"/> talks to registries. Everything the client reads from the outside
/// world (environment variables, the home directory) comes through here, so tests and builds can isolate it.
/// </summary>
internal sealed class RegistryClientOptions
{
    /// <summary>
    /// Registries (<c>host</c> or <c>host:port</c>) that may be reached over plain HTTP or with an unverified
    /// TLS certificate. Entries of <c>DOTNET_CONTAINER_INSECURE_REGISTRIES</c> (comma separated) in
    /// <see cref="Environment"/> are added to these.
    /// </summary>
    public IReadOnlyList<string> InsecureRegistries { get; init; } = [];

    /// <summary>
    /// The registry the project publishes its image to (MSBuild <c>ContainerRegistry</c>), or null. The .NET SDK's push
    /// credentials (<c>DOTNET_CONTAINER_REGISTRY_UNAME</c>/<c>_PWORD</c>, <c>SDK_CONTAINER_REGISTRY_*</c>) are used for a
    /// pull only from this registry, as the SDK does.
    /// </summary>
    public string? ContainerRegistry { get; init; }

    /// <summary>
    /// Whether <c>localhost</c>, <c>127.0.0.1</c> and <c>[::1]</c> (any port) count as insecure registries.
    /// True by default, as in Docker and the .NET SDK; tests turn it off to prove TLS verification on loopback.
    /// </summary>
    public bool LoopbackIsInsecure { get; init; } = true;

    /// <summary>CA certificates trusted in addition to the system store (a private registry CA).</summary>
    public IReadOnlyList<X509Certificate2> TrustedCertificates { get; init; } = [];

    /// <summary>
    /// Environment variables the client reads (credentials, insecure registries, <c>DOCKER_CONFIG</c>,
    /// <c>REGISTRY_AUTH_FILE</c>, <c>XDG_RUNTIME_DIR</c>, <c>XDG_CONFIG_HOME</c>, <c>PATH</c> for credential helpers).
    /// Defaults to a snapshot of the process environment taken when the options are created.
    /// </summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = SnapshotProcessEnvironment();

    /// <summary>The user's home directory (for <c>~/.docker/config.json</c>, <c>~/.config/containers/auth.json</c>);
    /// defaults to <c>HOME</c> from <see cref="Environment"/>, else the process's user profile.</summary>
    public string? HomeDirectory { get; init; }

    /// <summary>
    /// The HTTP proxy; null uses the system default, which on Linux reads <c>HTTPS_PROXY</c>, <c>HTTP_PROXY</c>,
    /// <c>ALL_PROXY</c> and <c>NO_PROXY</c> from the process environment.
    /// </summary>
    public IWebProxy? Proxy { get; init; }

    /// <summary>How many times one request is tried before giving up (retries on 429, 5xx, resets, cut bodies).</summary>
    public int MaxAttempts { get; init; } = 6;

    /// <summary>The first retry delay; each further retry doubles it (with jitter), up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A <c>Retry-After</c> longer than this is not waited for: the request fails at once.</summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How long to wait for a connection and for response headers.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>How long a credential helper may take.</summary>
    public TimeSpan CredentialHelperTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Where warnings (insecure transport) and retry notes go.</summary>
    public IBuildLog Log { get; init; } = NullBuildLog.Instance;

    public string UserAgent { get; init; } = "Runcible/" + (typeof(RegistryClientOptions).Assembly.GetName().Version?.ToString(3) ?? "0");

    internal string? GetEnvironment(string name) =>
        Environment.TryGetValue(name, out var value) && !string.IsNullOrEmpty(value) ? value : null;

    internal string ResolveHomeDirectory() =>
        HomeDirectory ?? GetEnvironment("HOME") ?? System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile);

    /// <summary>A copy of the process environment, for <see cref="Environment"/>.</summary>
    public static IReadOnlyDictionary<string, string> SnapshotProcessEnvironment()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
        {
            if (entry.Key is string key && entry.Value is string value)
            {
                result[key] = value;
            }
        }

        return result;
    }
}
