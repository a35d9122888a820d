using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Oci;

namespace Runcible.Core.Registry;

/// <summary>
/// Registry host names, repository names and tags: checked against <see cref="ReferenceGrammar"/> before they go into a URL;
/// Docker Hub's aliases, and which hosts count as loopback.
/// </summary>
internal static class RegistryNames
{
    public const string DockerHub = "docker.io";

    /// <summary>Where Docker Hub's registry API lives.</summary>
    public const string DockerHubApiHost = "registry-1.docker.io";

    /// <summary>The key Docker's config.json and credential helpers use for Docker Hub.</summary>
    public const string DockerHubCredentialKey = "https://index.docker.io/v1/";

    /// <summary>True for the names of Docker Hub (docker.io, index.docker.io, registry-1.docker.io).</summary>
    public static bool IsDockerHub(string registry) =>
        registry is DockerHub or "index.docker.io" or DockerHubApiHost;

    /// <summary>Whether two registry names (as references write them) name the same registry: equal ignoring case, or both Docker Hub.</summary>
    public static bool AreSame(string first, string second)
    {
        first = first.Trim().TrimEnd('/');
        second = second.Trim().TrimEnd('/');
        return string.Equals(first, second, StringComparison.OrdinalIgnoreCase)
            || (IsDockerHub(first.ToLowerInvariant()) && IsDockerHub(second.ToLowerInvariant()));
    }

    /// <summary>The <c>host[:port]</c> the HTTP API is reached at (docker.io maps to registry-1.docker.io).</summary>
    public static string ApiHost(string registry) => IsDockerHub(registry) ? DockerHubApiHost : registry;

    /// <summary>The host part of <c>host[:port]</c> (brackets of an IPv6 literal kept).</summary>
    public static string HostWithoutPort(string registry)
    {
        if (registry.StartsWith('['))
        {
            var close = registry.IndexOf(']');
            return close < 0 ? registry : registry[..(close + 1)];
        }

        var colon = registry.LastIndexOf(':');
        return colon < 0 ? registry : registry[..colon];
    }

    /// <summary>localhost, 127.0.0.1 or [::1], any port.</summary>
    public static bool IsLoopback(string registry) =>
        HostWithoutPort(registry).ToLowerInvariant() is "localhost" or "127.0.0.1" or "[::1]" or "::1";

    public static void ValidateRegistry(string registry)
    {
        if (!ReferenceGrammar.IsDomain(registry))
        {
            throw new RuncibleException(RuncibleErrors.InvalidRegistryName, "registry host", registry);
        }
    }

    public static void ValidateRepository(string repository)
    {
        if (repository.Length > ReferenceGrammar.MaxNameLength || !ReferenceGrammar.IsRepositoryPath(repository))
        {
            throw new RuncibleException(RuncibleErrors.InvalidRegistryName, "repository name", repository);
        }
    }

    /// <summary>A tag, or a digest (grammar-checked by <see cref="Digest"/>).</summary>
    public static void ValidateTagOrDigest(string tagOrDigest)
    {
        if (tagOrDigest.Contains(':') ? !Digest.TryParse(tagOrDigest, out _) : !ReferenceGrammar.IsTag(tagOrDigest))
        {
            throw new RuncibleException(RuncibleErrors.InvalidRegistryName, "tag or digest", tagOrDigest);
        }
    }
}
