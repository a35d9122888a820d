using System.Text.Json.Serialization;

namespace Runcible.Core.Contracts;

/// <summary>Bundle compression, from <c>RuncBundleCompression</c>.</summary>
internal enum BundleCompression
{
    Gzip,
    Zstd,
    None,
}

/// <summary>
/// The numeric levels of <c>RuncBundleCompressionLevel</c>: zlib's 1–9 for gzip, ZstdSharp's 1–19 for
/// zstd, and what is used when the property is not set.
/// </summary>
internal static class BundleCompressionLevels
{
    /// <summary>
    /// gzip level 2: on the ~250 MiB HelloWeb tree it needs about a quarter less CPU than level 6 for ~6%
    /// more bytes (zlib-ng in .NET 9+); compression is most of a cold publish (docs/performance.md).
    /// </summary>
    public const int DefaultGzip = 2;

    /// <summary>zstd level 3, zstd's own default.</summary>
    public const int DefaultZstd = 3;

    /// <summary>The lowest and highest level <paramref name="compression"/> takes; (0, 0) for none.</summary>
    public static (int Min, int Max) Range(BundleCompression compression) => compression switch
    {
        BundleCompression.Gzip => (1, 9),
        BundleCompression.Zstd => (1, 19),
        _ => (0, 0),
    };

    /// <summary>The level used when RuncBundleCompressionLevel is not set; 0 for none.</summary>
    public static int Default(BundleCompression compression) => compression switch
    {
        BundleCompression.Gzip => DefaultGzip,
        BundleCompression.Zstd => DefaultZstd,
        _ => 0,
    };

    public static bool IsValid(BundleCompression compression, int level)
    {
        var (min, max) = Range(compression);
        return level >= min && level <= max;
    }
}

/// <summary>A persistent volume: <c>data/&lt;Name&gt;</c> in the bundle, mounted at <see cref="ContainerPath"/>.</summary>
internal sealed record BundleVolume(string Name, string ContainerPath);

/// <summary>
/// The publish settings as MSBuild hands them over, raw (strings as written in the project), so that
/// <see cref="BundleSettingsValidator"/> can report every mistake with its own code.
/// </summary>
internal sealed record RawBundleSettings
{
    public string AssemblyName { get; init; } = "";
    public string? BundleName { get; init; }
    public string? BundleVersion { get; init; }
    public string? RuntimeIdentifier { get; init; }

    /// <summary>The .NET SDK's ContainerRuntimeIdentifiers (';'-separated): with no <see cref="RuntimeIdentifier"/>, the first Linux one is the bundle's.</summary>
    public string? ContainerRuntimeIdentifiers { get; init; }

    /// <summary>The running SDK's own RID (NETCoreSdkPortableRuntimeIdentifier): failing all else, the bundle is for linux-&lt;its architecture&gt;.</summary>
    public string? SdkRuntimeIdentifier { get; init; }

    /// <summary>The .NET SDK's ContainerRepository: its last segment names the bundle when <see cref="BundleName"/> is not set.</summary>
    public string? ContainerRepository { get; init; }

    /// <summary>"true" in the per-RID publishes of a ContainerRuntimeIdentifiers build: <see cref="BundleSettings.RuntimeIdentifierInFileName"/>.</summary>
    public string? RuntimeIdentifierInFileName { get; init; }

    public string? TargetFramework { get; init; }
    public string? TargetFrameworks { get; init; }
    public string? Compression { get; init; }
    public string? CompressionLevel { get; init; }
    public string? StopTimeout { get; init; }
    public string? WorkingDirectory { get; init; }
    public string? Rootless { get; init; }
    public string? WritableRootfs { get; init; }
    public string? Notify { get; init; }
    public string? Offline { get; init; }
    public string? SourceDateEpoch { get; init; }
    public string? HealthCheck { get; init; }
    public string? HealthInterval { get; init; }
    public string? HealthTimeout { get; init; }
    public string? HealthRetries { get; init; }
    public string? HealthStartPeriod { get; init; }
    public IReadOnlyList<BundleVolume> Volumes { get; init; } = [];

    /// <summary><c>RuncNetwork</c>: host, private or none; empty means host.</summary>
    public string? Network { get; init; }

    /// <summary><c>RuncPublishPort</c> items as written: <c>[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]</c>.</summary>
    public IReadOnlyList<string> PublishPorts { get; init; } = [];

    /// <summary>The project's directory: relative paths (output, publish output, seccomp profile) are resolved against it.</summary>
    public string? ProjectDirectory { get; init; }

    /// <summary><c>RuncBundleOutputPath</c>, else the build's <c>OutputPath</c>.</summary>
    public string? OutputDirectory { get; init; }

    /// <summary><c>PublishDir</c>: the publish output the app layer is made of.</summary>
    public string? PublishDirectory { get; init; }

    /// <summary>The files in the publish output (as the targets list them, relative to the project or full): a file removed from it changes the settings too.</summary>
    public IReadOnlyList<string> PublishedFiles { get; init; } = [];

    public string? ContainerBaseImage { get; init; }
    public string? ContainerFamily { get; init; }
    public bool SelfContained { get; init; }
    public bool PublishAot { get; init; }
    public bool PublishTrimmed { get; init; }
    public bool InvariantGlobalization { get; init; }

    /// <summary>A <c>FrameworkReference</c> to <c>Microsoft.AspNetCore.App</c>: the <c>aspnet</c> base image.</summary>
    public bool UsesAspNetCore { get; init; }

    /// <summary><c>NETCoreSdkVersion</c>: a preview SDK's own framework takes its preview image tag.</summary>
    public string? SdkVersion { get; init; }

    /// <summary>The apphost's file name (the assembly name unless <c>UseAppHost=false</c>); null without one.</summary>
    public string? AppHostName { get; init; }

    /// <summary><c>RuncInsecureRegistries</c>, <c>;</c>- or <c>,</c>-separated.</summary>
    public string? InsecureRegistries { get; init; }

    /// <summary><c>ContainerRegistry</c>: the .NET SDK's push credentials are used to pull only from it.</summary>
    public string? ContainerRegistry { get; init; }

    public string? User { get; init; }
    public string? AppCommandInstruction { get; init; }
    public string? OpenFilesLimit { get; init; }

    /// <summary><c>RuncSeccompProfile</c> as written: empty, <c>unconfined</c> or a profile file's path (relative to the project).</summary>
    public string? SeccompProfile { get; init; }
    public string? MemoryLimit { get; init; }
    public string? CpuLimit { get; init; }
    public string? PidsLimit { get; init; }
    public IReadOnlyList<string> Capabilities { get; init; } = [];

    /// <summary><c>ContainerPort</c> items as <c>8080</c> or <c>8080/udp</c> (the item's <c>Type</c>).</summary>
    public IReadOnlyList<string> Ports { get; init; } = [];
    public IReadOnlyList<KeyValuePair<string, string>> EnvironmentVariables { get; init; } = [];
    public IReadOnlyList<KeyValuePair<string, string>> Labels { get; init; } = [];

    /// <summary>The labels the targets generate from project properties (<c>ContainerGenerateLabels</c>).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> GeneratedLabels { get; init; } = [];

    /// <summary>Add <c>org.opencontainers.image.base.name</c> (ContainerGenerateLabels and ContainerGenerateLabelsImageBaseName not false).</summary>
    public bool GenerateBaseNameLabel { get; init; }

    /// <summary>Add the creation time labels, from SOURCE_DATE_EPOCH only (ContainerGenerateLabels and ContainerGenerateLabelsImageCreated not false).</summary>
    public bool GenerateCreatedLabel { get; init; }
    public IReadOnlyList<string> AppCommand { get; init; } = [];
    public IReadOnlyList<string> AppCommandArgs { get; init; } = [];
    public IReadOnlyList<string> DefaultArgs { get; init; } = [];

    /// <summary>The .NET SDK container properties the project set that a bundle cannot honour (warned about).</summary>
    public IReadOnlyList<string> UnhonouredProperties { get; init; } = [];
}

/// <summary>Validated settings: every field is known good.</summary>
/// <param name="CompressionLevel">The effective level for <paramref name="Compression"/> (see <see cref="BundleCompressionLevels"/>); 0 for none.</param>
internal sealed record BundleSettings(
    string Name,
    string Version,
    string RuntimeIdentifier,
    string TargetFramework,
    BundleCompression Compression,
    int CompressionLevel,
    int StopTimeoutSeconds,
    string WorkingDirectory,
    bool Rootless,
    bool WritableRootfs,
    bool Notify,
    bool Offline,
    DateTimeOffset Created,
    IReadOnlyList<BundleVolume> Volumes)
{
    /// <summary><c>RuncNetwork</c>.</summary>
    public BundleNetwork Network { get; init; } = BundleNetwork.Host;

    /// <summary>The <c>RuncPublishPort</c> items (private network only), validated and distinct.</summary>
    public IReadOnlyList<PublishedPort> PublishPorts { get; init; } = [];

    /// <summary><c>&lt;name&gt;-&lt;version&gt;</c>: the directory under <c>opt/containers/</c> and the file name stem.</summary>
    [JsonIgnore]
    public string BundleId => $"{Name}-{Version}";

    /// <summary><c>RuncHealthCheck</c> and its timing; null without a check.</summary>
    public HealthCheckSettings? Health { get; init; }

    /// <summary>One bundle per runtime identifier from one publish: the file is <c>&lt;name&gt;-&lt;version&gt;-&lt;rid&gt;</c> (the tree inside is the same).</summary>
    public bool RuntimeIdentifierInFileName { get; init; }

    [JsonIgnore]
    public string FileName => BundleId + (RuntimeIdentifierInFileName ? "-" + RuntimeIdentifier : "") + Compression switch
    {
        BundleCompression.Gzip => ".tar.gz",
        BundleCompression.Zstd => ".tar.zst",
        _ => ".tar",
    };

    /// <summary>The tarball's full path in <paramref name="outputDirectory"/>: where the writer puts it and every up-to-date check looks.</summary>
    public string TarballPath(string outputDirectory) => Path.Combine(Path.GetFullPath(outputDirectory), FileName);

    /// <summary>The path prefix of the bundle's tree inside the tarball, ending in '/'.</summary>
    [JsonIgnore]
    public string TreePrefix => $"opt/containers/{BundleId}/";
}
