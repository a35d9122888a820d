using Runcible.Core.Layers;
using Runcible.Core.Oci;
using Runcible.Core.RuntimeSpec;

namespace Runcible.Core.Contracts;

/// <summary>Fetch stage seam: resolves a base image reference for one platform and brings its verified blobs onto disk.</summary>
internal interface IBaseImageProvider
{
    Task<PulledImage> PullAsync(string reference, Platform platform, CancellationToken cancellationToken);

    /// <summary>
    /// The image <paramref name="reference"/> named at its last pull, when that can be had from the cache
    /// alone and the real pull would have to ask a registry; else null. Never makes a request.
    /// </summary>
    Task<PulledImage?> TryGetLastPulledAsync(string reference, Platform platform, CancellationToken cancellationToken) =>
        Task.FromResult<PulledImage?>(null);

    /// <summary>Reading <paramref name="image"/>'s layers failed as a damaged file would: verify its blobs afresh next time.</summary>
    void ForgetVerification(PulledImage image)
    {
    }
}

/// <summary>The unpack stage's flattened tree of one image: its tar entries for the bundle and single-file reads for the config stage.</summary>
internal interface IFlattenedRootfs : IRootfsContent, IDisposable
{
    IRootfsReader Reader { get; }
}

/// <summary>Unpack stage seam.</summary>
internal interface IRootfsFlattener
{
    IFlattenedRootfs Flatten(PulledImage image);
}

/// <summary>What the runtime config stage gives the bundle: config.json and who owns data/ and logs/.</summary>
/// <param name="DataDirectories">One name per persistent volume (image volumes and RuncVolume items): <c>data/&lt;name&gt;</c>.</param>
internal sealed record RuntimeConfigOutput(byte[] ConfigJson, uint ContainerUid, uint ContainerGid, IReadOnlyList<string> DataDirectories)
{
    /// <summary>
    /// The host runtime contract (<c>runcible.json</c>: stop signal and timeout, volumes, rootless, notify,
    /// writable root) the shim and service files are rendered from. The host runtime stage writes it into the bundle.
    /// </summary>
    public BundleRuntimeInfo? RuntimeInfo { get; init; }
}

/// <summary>Runtime config stage seam: config.json from the image config, the flattened rootfs (for /etc/passwd) and the project's container settings.</summary>
internal interface IRuntimeConfigProvider
{
    RuntimeConfigOutput Create(PulledImage image, IRootfsReader rootfs, BundleSettings settings, ContainerSettings container);
}

/// <summary>Host runtime seam: the shim and service files the bundle carries beside rootfs/.</summary>
internal interface IHostRuntimeFiles
{
    IReadOnlyList<BundleFile> Create(BundleSettings settings, RuntimeConfigOutput config);
}

/// <summary>
/// The .NET SDK container properties and items the config stage maps, validated and parsed by the settings
/// normalizer (<c>RuntimeSpec.ContainerSettingsValidator</c>): the config stage parses nothing again.
/// </summary>
internal sealed record ContainerSettings
{
    public string AssemblyName { get; init; } = "";
    public bool SelfContained { get; init; }
    public string? AppHostName { get; init; }

    /// <summary><c>ContainerUser</c> (its form checked; resolved against the image's /etc/passwd by the config stage); null for the image's.</summary>
    public string? User { get; init; }
    public IReadOnlyList<string> Ports { get; init; } = [];
    public IReadOnlyList<KeyValuePair<string, string>> EnvironmentVariables { get; init; } = [];

    /// <summary>The config annotations: the generated labels merged with the project's <c>ContainerLabel</c> items (which win).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Labels { get; init; } = [];
    public IReadOnlyList<string> AppCommand { get; init; } = [];
    public IReadOnlyList<string> AppCommandArgs { get; init; } = [];
    public IReadOnlyList<string> DefaultArgs { get; init; } = [];
    public AppCommandInstruction AppCommandInstruction { get; init; }

    /// <summary><c>RuncCapability</c> items as runc names them (<c>CAP_NET_ADMIN</c>).</summary>
    public IReadOnlyList<string> Capabilities { get; init; } = [];

    /// <summary>RLIMIT_NOFILE's default when <c>RuncOpenFilesLimit</c> is not set: a server's.</summary>
    public const ulong DefaultOpenFilesLimit = 65536;

    /// <summary><c>RuncOpenFilesLimit</c> (RLIMIT_NOFILE, soft and hard).</summary>
    public ulong OpenFilesLimit { get; init; } = DefaultOpenFilesLimit;

    /// <summary><c>RuncSeccompProfile</c>'s profile file, read and validated; null for the default profile or none.</summary>
    public RuntimeSeccomp? SeccompProfile { get; init; }

    /// <summary><c>RuncSeccompProfile=unconfined</c>: no filter at all.</summary>
    public bool SeccompUnconfined { get; init; }

    /// <summary><c>RuncMemoryLimit</c> in bytes; null means none.</summary>
    public long? MemoryLimitBytes { get; init; }

    /// <summary><c>RuncCpuLimit</c> as a CFS quota in microseconds per 100 ms; null means none.</summary>
    public long? CpuQuotaMicroseconds { get; init; }

    /// <summary><c>RuncPidsLimit</c>, or the rootful default; null means none.</summary>
    public long? PidsLimit { get; init; }

}

/// <summary>The stages a bundle is built from; the composition root fills it with the real ones.</summary>
internal sealed record BundleStages(
    IBaseImageProvider Images,
    IRootfsFlattener Flattener,
    IRuntimeConfigProvider RuntimeConfig,
    IHostRuntimeFiles? HostRuntime);
