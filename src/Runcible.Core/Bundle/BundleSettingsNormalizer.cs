using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Runcible.Core.Contracts;

namespace Runcible.Core.Bundle;

/// <summary>
/// The one settings contract: everything the bundle build reads, normalized (defaults filled in, paths made
/// absolute) and validated. <see cref="BundleSettingsNormalizer"/> makes it from the raw MSBuild values; the settings
/// task writes it to <c>obj/…/runc-bundle.settings.json</c> (only when its bytes change: it is the bundle's incremental
/// stamp) and the bundle task reads it back. Nothing here is parsed again later.
/// </summary>
internal sealed record NormalizedBundleSettings
{
    /// <summary>Raised whenever the document's shape changes, so an old document is never read as a new one.</summary>
    public const int CurrentFormat = 1;

    public int Format { get; init; } = CurrentFormat;

    public required BundleSettings Bundle { get; init; }

    public required ContainerSettings Container { get; init; }

    /// <summary><c>ContainerBaseImage</c>, or the image the .NET SDK would infer.</summary>
    public required string BaseImage { get; init; }

    /// <summary>The directory the tarball is written to (full path).</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>The publish output the app layer is made of (full path).</summary>
    public required string PublishDirectory { get; init; }

    /// <summary>Registries that may be reached over plain HTTP or with an unverified certificate, sorted.</summary>
    public IReadOnlyList<string> InsecureRegistries { get; init; } = [];

    /// <summary><c>ContainerRegistry</c>: the .NET SDK's push credentials are used to pull only from it; null when unset.</summary>
    public string? ContainerRegistry { get; init; }

    /// <summary>The publish output's file names, sorted: a removed file changes the document, so the bundle is rebuilt.</summary>
    public IReadOnlyList<string> PublishedFiles { get; init; } = [];

    /// <summary>The .NET SDK container properties the project set that a bundle cannot honour (RUNCIBLE4041).</summary>
    public IReadOnlyList<string> UnhonouredProperties { get; init; } = [];

    [JsonIgnore]
    public string TarballPath => Bundle.TarballPath(OutputDirectory);

    /// <summary>
    /// What the base part (pulled image, rootfs reads, compressed base part) depends on: an early preparation made for
    /// another key is not this build's. The app's files and settings are not part of it.
    /// </summary>
    public BasePartKey BasePart(string cacheDirectory, string toolVersion) => new(
        TarballPath,
        BaseImage,
        Bundle.RuntimeIdentifier,
        Bundle.TreePrefix,
        Bundle.Created.ToUnixTimeSeconds(),
        Bundle.Compression,
        Bundle.CompressionLevel,
        Bundle.Offline,
        string.Join(";", InsecureRegistries),
        ContainerRegistry ?? "",
        Path.GetFullPath(cacheDirectory),
        toolVersion);
}

/// <summary>The inputs of the base part of a bundle (see <see cref="NormalizedBundleSettings.BasePart"/>); equal keys, interchangeable work.</summary>
internal sealed record BasePartKey(
    string TarballPath,
    string BaseImage,
    string RuntimeIdentifier,
    string TreePrefix,
    long Created,
    BundleCompression Compression,
    int CompressionLevel,
    bool Offline,
    string InsecureRegistries,
    string ContainerRegistry,
    string CacheDirectory,
    string ToolVersion);

/// <summary>
/// Turns the raw settings into <see cref="NormalizedBundleSettings"/>: every default and every check that needs no
/// image, in one place, used by the settings task and by the early base part alike. Throws the first mistake's coded
/// <see cref="Diagnostics.RuncibleException"/>, before any network access.
/// </summary>
internal static class BundleSettingsNormalizer
{
    public static NormalizedBundleSettings Normalize(RawSettings raw) => Normalize(ReadRaw(raw));

    /// <summary>
    /// The raw settings of <paramref name="raw"/> (the targets' property and item lists) as <see cref="RawBundleSettings"/>,
    /// with the defaults that depend on other properties filled in. Reads every property it knows, unconditionally: a
    /// test compares the names read with the targets' list.
    /// </summary>
    public static RawBundleSettings ReadRaw(RawSettings raw)
    {
        var runtimeIdentifiers = raw["ContainerRuntimeIdentifiers"];
        var sdkRuntimeIdentifiers = RawSettings.IsTrue(raw["IsRidAgnostic"]) ? "" : raw["RuntimeIdentifiers"];
        var runtimeIdentifier = raw["ContainerRuntimeIdentifier"];
        var sdkRuntimeIdentifier = raw["RuntimeIdentifier"];
        var bundleVersion = raw["RuncBundleVersion"];
        var version = raw["Version"];
        var outputDirectory = raw["RuncBundleOutputPath"];
        var outputPath = raw["OutputPath"];
        var notify = raw["RuncNotify"];
        var assemblyName = raw["AssemblyName"];
        var useAppHost = raw["UseAppHost"];
        var selfContained = RawSettings.IsTrue(raw["SelfContained"]) | RawSettings.IsTrue(raw["PublishSelfContained"]);
        var generateLabels = !RawSettings.IsFalse(raw["ContainerGenerateLabels"]);
        var generateBaseName = !RawSettings.IsFalse(raw["ContainerGenerateLabelsImageBaseName"]);
        var generateCreated = !RawSettings.IsFalse(raw["ContainerGenerateLabelsImageCreated"]);
        return new RawBundleSettings
        {
            AssemblyName = assemblyName,
            BundleName = raw["RuncBundleName"],
            BundleVersion = RawSettings.Or(bundleVersion, version),
            RuntimeIdentifier = RawSettings.Or(runtimeIdentifier, sdkRuntimeIdentifier),
            ContainerRuntimeIdentifiers = RawSettings.Or(runtimeIdentifiers, sdkRuntimeIdentifiers),
            SdkRuntimeIdentifier = raw["NETCoreSdkPortableRuntimeIdentifier"],
            ContainerRepository = raw["_RuncContainerRepository"],
            RuntimeIdentifierInFileName = raw["_RuncRuntimeIdentifierInFileName"],
            TargetFramework = raw["TargetFramework"],
            TargetFrameworks = raw["TargetFrameworks"],
            Compression = raw["RuncBundleCompression"],
            CompressionLevel = raw["RuncBundleCompressionLevel"],
            StopTimeout = raw["RuncStopTimeout"],
            WorkingDirectory = raw["ContainerWorkingDirectory"],
            Rootless = raw["RuncBundleRootless"],
            WritableRootfs = raw["RuncWritableRootfs"],
            Network = raw["RuncNetwork"],
            // sd_notify readiness when the app uses Microsoft.Extensions.Hosting.Systemd (UseSystemd()).
            Notify = RawSettings.Or(notify, raw.ItemsOf("PackageReference").Any(p => string.Equals(p.Identity, "Microsoft.Extensions.Hosting.Systemd", StringComparison.OrdinalIgnoreCase)) ? "true" : ""),
            Offline = raw["RuncOffline"],
            SourceDateEpoch = raw["SOURCE_DATE_EPOCH"],
            HealthCheck = raw["RuncHealthCheck"],
            HealthInterval = raw["RuncHealthInterval"],
            HealthTimeout = raw["RuncHealthTimeout"],
            HealthRetries = raw["RuncHealthRetries"],
            HealthStartPeriod = raw["RuncHealthStartPeriod"],
            Volumes = raw.ItemsOf("RuncVolume").Select(v => new BundleVolume(v.Get("Name"), v.Identity)).ToList(),
            PublishPorts = raw.ItemsOf("RuncPublishPort").Select(p => p.Identity).ToList(),
            ProjectDirectory = raw["MSBuildProjectDirectory"],
            OutputDirectory = RawSettings.Or(outputDirectory, outputPath),
            PublishDirectory = raw["PublishDir"],
            PublishedFiles = raw.ItemsOf("_RuncPublishedFile").Select(f => f.Identity).ToList(),
            ContainerBaseImage = raw["ContainerBaseImage"],
            ContainerFamily = raw["ContainerFamily"],
            SelfContained = selfContained,
            PublishAot = RawSettings.IsTrue(raw["PublishAot"]),
            PublishTrimmed = RawSettings.IsTrue(raw["PublishTrimmed"]),
            InvariantGlobalization = RawSettings.IsTrue(raw["InvariantGlobalization"]),
            UsesAspNetCore = raw.ItemsOf("FrameworkReference").Any(f => string.Equals(f.Identity, "Microsoft.AspNetCore.App", StringComparison.OrdinalIgnoreCase)),
            SdkVersion = raw["NETCoreSdkVersion"],
            AppHostName = RawSettings.IsFalse(useAppHost) ? null : assemblyName,
            InsecureRegistries = raw["RuncInsecureRegistries"],
            ContainerRegistry = raw["ContainerRegistry"],
            User = raw["ContainerUser"],
            AppCommandInstruction = raw["ContainerAppCommandInstruction"],
            OpenFilesLimit = raw["RuncOpenFilesLimit"],
            SeccompProfile = raw["RuncSeccompProfile"],
            MemoryLimit = raw["RuncMemoryLimit"],
            CpuLimit = raw["RuncCpuLimit"],
            PidsLimit = raw["RuncPidsLimit"],
            Capabilities = raw.ItemsOf("RuncCapability").Select(c => c.Identity).ToList(),
            Ports = raw.ItemsOf("ContainerPort").Select(p => p.Get("Type") is { Length: > 0 } type ? $"{p.Identity}/{type}" : p.Identity).ToList(),
            EnvironmentVariables = Pairs(raw.ItemsOf("ContainerEnvironmentVariable")),
            Labels = Pairs(raw.ItemsOf("ContainerLabel")),
            GeneratedLabels = Bundle.GeneratedLabels.FromProperties(raw),
            GenerateBaseNameLabel = generateLabels && generateBaseName,
            GenerateCreatedLabel = generateLabels && generateCreated,
            AppCommand = raw.ItemsOf("ContainerAppCommand").Select(i => i.Identity).ToList(),
            AppCommandArgs = raw.ItemsOf("ContainerAppCommandArgs").Select(i => i.Identity).ToList(),
            DefaultArgs = raw.ItemsOf("ContainerDefaultArgs").Select(i => i.Identity).ToList(),
            UnhonouredProperties = raw.ItemsOf("_RuncUnhonouredProperty").Select(i => i.Identity).ToList(),
        };
    }

    private static List<KeyValuePair<string, string>> Pairs(IEnumerable<RawSettingItem> items) =>
        items.Select(i => new KeyValuePair<string, string>(i.Identity, i.Get("Value"))).ToList();

    public static NormalizedBundleSettings Normalize(RawBundleSettings raw)
    {
        var bundle = new BundleSettingsValidator().Validate(raw);
        var container = RuntimeSpec.ContainerSettingsValidator.Validate(raw, bundle);
        var baseImage = new BaseImageInference().Resolve(raw.ContainerBaseImage, new BaseImageInputs(
            bundle.TargetFramework,
            raw.SelfContained,
            raw.UsesAspNetCore,
            [bundle.RuntimeIdentifier],
            raw.SdkVersion,
            raw.PublishAot,
            raw.PublishTrimmed,
            raw.InvariantGlobalization,
            raw.ContainerFamily));
        container = container with
        {
            Labels = Bundle.GeneratedLabels.Merge(
                raw.GeneratedLabels,
                raw.GenerateBaseNameLabel ? baseImage : null,
                raw.GenerateCreatedLabel && !string.IsNullOrWhiteSpace(raw.SourceDateEpoch) ? bundle.Created : null,
                raw.Labels),
        };
        var registry = raw.ContainerRegistry?.Trim();
        var publishDirectory = FullPath(raw.PublishDirectory, raw.ProjectDirectory);
        return new NormalizedBundleSettings
        {
            Bundle = bundle,
            Container = container,
            BaseImage = baseImage,
            OutputDirectory = FullPath(raw.OutputDirectory, raw.ProjectDirectory),
            PublishDirectory = publishDirectory,
            InsecureRegistries = (raw.InsecureRegistries ?? "")
                .Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            ContainerRegistry = string.IsNullOrEmpty(registry) ? null : registry,
            PublishedFiles = raw.PublishedFiles
                .Select(f => Path.GetRelativePath(publishDirectory, FullPath(f, raw.ProjectDirectory)))
                .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            UnhonouredProperties = raw.UnhonouredProperties.Distinct(StringComparer.OrdinalIgnoreCase).ToList(),
        };
    }

    /// <summary>The document's bytes: the same settings always give the same bytes.</summary>
    public static byte[] Serialize(NormalizedBundleSettings settings) =>
        Encoding.UTF8.GetBytes(JsonSerializer.Serialize(settings, SettingsDocumentJsonContext.Default.NormalizedBundleSettings).Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");

    /// <summary>Reads a document <see cref="Serialize"/> wrote (in this build: the settings task runs before the bundle task).</summary>
    public static NormalizedBundleSettings Deserialize(ReadOnlySpan<byte> document)
    {
        var settings = JsonSerializer.Deserialize(document, SettingsDocumentJsonContext.Default.NormalizedBundleSettings)
            ?? throw new InvalidDataException("The bundle settings document is empty.");
        return settings.Format == NormalizedBundleSettings.CurrentFormat
            ? settings
            : throw new InvalidDataException($"The bundle settings document has format {settings.Format}, not {NormalizedBundleSettings.CurrentFormat}.");
    }

    /// <summary>An MSBuild path (relative to the project, perhaps with '\\') as a full path; empty is the project directory.</summary>
    private static string FullPath(string? path, string? projectDirectory)
    {
        var relative = BundleSettingsValidator.PlatformPath(path?.Trim() ?? "");
        return string.IsNullOrWhiteSpace(projectDirectory)
            ? Path.GetFullPath(relative.Length == 0 ? "." : relative)
            : Path.GetFullPath(relative, BundleSettingsValidator.PlatformPath(projectDirectory.Trim()));
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(NormalizedBundleSettings))]
internal sealed partial class SettingsDocumentJsonContext : JsonSerializerContext;
