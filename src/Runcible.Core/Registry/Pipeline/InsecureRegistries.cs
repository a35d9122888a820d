using System.Collections.Concurrent;
using System.Globalization;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Registry.Pipeline;

/// <summary>
/// Which registries may be reached over plain HTTP or with an unverified certificate (loopback, the listed ones and
/// <c>DOTNET_CONTAINER_INSECURE_REGISTRIES</c>), and the once-per-registry warning when that happens.
/// One per client: nothing here is process-wide.
/// </summary>
internal sealed class InsecureRegistries
{
    private readonly RegistryClientOptions _options;
    private readonly HashSet<string> _listed = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, byte> _warned = new(StringComparer.OrdinalIgnoreCase);

    public InsecureRegistries(RegistryClientOptions options)
    {
        _options = options;
        var fromEnvironment = options.GetEnvironment("DOTNET_CONTAINER_INSECURE_REGISTRIES")?.Split(',') ?? [];
        foreach (var entry in options.InsecureRegistries.Concat(fromEnvironment))
        {
            var trimmed = entry.Trim();
            if (trimmed.Length > 0)
            {
                _listed.Add(trimmed);
            }
        }
    }

    /// <summary>True when <paramref name="registry"/> (<c>host[:port]</c>) may be reached over plain HTTP or unverified TLS.</summary>
    public bool Contains(string registry) =>
        (_options.LoopbackIsInsecure && RegistryNames.IsLoopback(registry))
        || _listed.Contains(registry)
        || _listed.Contains(RegistryNames.ApiHost(registry));

    /// <summary>Whether the origin of <paramref name="uri"/> is insecure (its default port spelled out or not).</summary>
    public bool Contains(Uri uri) =>
        Contains(uri.Authority) || (uri.IsDefaultPort && Contains(uri.Host + ":" + uri.Port.ToString(CultureInfo.InvariantCulture)));

    /// <summary>Why <paramref name="registry"/> is insecure, for the warning.</summary>
    public string Why(string registry) =>
        RegistryNames.IsLoopback(registry) && _options.LoopbackIsInsecure ? "a loopback address" : "listed as insecure";

    public void WarnOnce(string registry, string kind, string what, string why)
    {
        if (_warned.TryAdd(registry + "|" + kind, 0))
        {
            _options.Log.LogWarning(RuncibleErrors.RegistryInsecureTransport, registry, what, why);
        }
    }
}
