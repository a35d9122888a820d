using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.RuntimeSpec;

namespace Runcible.Core.Host;

/// <summary>What the service files are rendered from: the bundle's identity, where it lives, and its runcible.json contract.</summary>
internal sealed record HostServiceModel(
    string Name,
    string Version,
    string BundleDirectory,
    StopSignal StopSignal,
    int StopTimeoutSeconds,
    bool Notify,
    bool Rootless)
{
    /// <summary>Where a bundle is extracted by default (the tarball's <c>opt/containers/&lt;name&gt;-&lt;version&gt;</c>).
    /// The shim rewrites this prefix when the bundle lives elsewhere.</summary>
    public static string CanonicalDirectory(string name, string version) => $"/opt/containers/{name}-{version}";

    /// <summary>The shim's absolute path.</summary>
    public string Shim => BundleDirectory + "/runcible";

    public static HostServiceModel From(BundleRuntimeInfo info) => new(
        info.Name,
        info.Version,
        CanonicalDirectory(info.Name, info.Version),
        StopSignal.Parse(info.StopSignal, info.Name),
        info.StopTimeoutSeconds,
        info.Notify,
        info.Rootless);
}
