using System.Globalization;
using System.Text.RegularExpressions;
using NuGet.Versioning;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Contracts;

/// <summary>
/// Checks the raw publish settings and turns them into <see cref="BundleSettings"/>, throwing a
/// coded <see cref="RuncibleException"/> for the first mistake.
/// </summary>
internal sealed partial class BundleSettingsValidator
{
    /// <summary>
    /// Bundle names become a systemd unit name, a runc container id, a directory and a host name
    /// part, so they follow the strictest of these: a lower-case DNS label (RFC 1123) that starts with a letter.
    /// </summary>
    [GeneratedRegex(@"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", RegexOptions.CultureInvariant)]
    public static partial Regex BundleNameGrammar();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9._-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex VolumeNameGrammar();

    /// <summary>Used when SOURCE_DATE_EPOCH is not set: 1980-01-01T00:00:00Z, the earliest time every archive format can hold.</summary>
    public static readonly DateTimeOffset DefaultEpoch = DateTimeOffset.FromUnixTimeSeconds(315532800);

    public const int DefaultStopTimeoutSeconds = 30;

    /// <summary>The name a project gets when RuncBundleName is not set: the assembly name lower-cased, '.'/'_'/' ' turned into '-'.</summary>
    public static string DefaultName(string assemblyName)
    {
        var lowered = assemblyName.ToLowerInvariant().Replace('.', '-').Replace('_', '-').Replace(' ', '-');
        return lowered;
    }

    public BundleSettings Validate(RawBundleSettings raw)
    {
        var frameworks = (raw.TargetFrameworks ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var framework = raw.TargetFramework?.Trim() ?? "";
        if (framework.Length == 0)
        {
            if (frameworks.Length > 1)
            {
                throw new RuncibleException(RuncibleErrors.SeveralTargetFrameworks, string.Join(", ", frameworks));
            }

            framework = frameworks.FirstOrDefault() ?? "";
        }

        var rid = raw.RuntimeIdentifier?.Trim() ?? "";
        if (rid.Length == 0)
        {
            rid = DefaultRuntimeIdentifier(raw.ContainerRuntimeIdentifiers, raw.SdkRuntimeIdentifier);
        }

        if (rid.Length == 0)
        {
            throw new RuncibleException(RuncibleErrors.MissingRuntimeIdentifier);
        }

        if (!rid.StartsWith("linux-", StringComparison.Ordinal) && !rid.StartsWith("linux-musl-", StringComparison.Ordinal))
        {
            throw new RuncibleException(RuncibleErrors.NonLinuxRuntimeIdentifier, rid);
        }

        _ = OciArchitecture(rid);

        var name = !string.IsNullOrWhiteSpace(raw.BundleName)
            ? raw.BundleName!.Trim()
            : DefaultName(RepositoryName(raw.ContainerRepository) ?? raw.AssemblyName);
        if (!BundleNameGrammar().IsMatch(name))
        {
            throw new RuncibleException(RuncibleErrors.InvalidBundleName, name);
        }

        var version = string.IsNullOrWhiteSpace(raw.BundleVersion) ? "1.0.0" : raw.BundleVersion!.Trim();
        if (!SemanticVersion.TryParse(version, out var semver) || semver.HasMetadata)
        {
            throw new RuncibleException(RuncibleErrors.InvalidBundleVersion, version);
        }

        var compression = (raw.Compression?.Trim().ToLowerInvariant() ?? "") switch
        {
            "" or "gzip" => BundleCompression.Gzip,
            "zstd" => BundleCompression.Zstd,
            "none" => BundleCompression.None,
            _ => throw new RuncibleException(RuncibleErrors.UnknownCompression, raw.Compression),
        };

        var compressionLevel = CompressionLevel(compression, raw.CompressionLevel);

        var stopTimeout = DefaultStopTimeoutSeconds;
        if (!string.IsNullOrWhiteSpace(raw.StopTimeout))
        {
            if (!int.TryParse(raw.StopTimeout.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out stopTimeout) || stopTimeout < 1 || stopTimeout > 3600)
            {
                throw new RuncibleException(RuncibleErrors.InvalidStopTimeout, raw.StopTimeout);
            }
        }

        var workingDirectory = string.IsNullOrWhiteSpace(raw.WorkingDirectory) ? "/app" : raw.WorkingDirectory!.Trim();
        if (!IsCleanAbsolutePath(workingDirectory) || IsUnderKernelFilesystem(workingDirectory.TrimEnd('/')) || workingDirectory.TrimEnd('/').Length == 0)
        {
            throw new RuncibleException(RuncibleErrors.InvalidWorkingDirectory, workingDirectory);
        }

        // The SDK's own default is "/app/": the directory, without its trailing slash.
        workingDirectory = workingDirectory.TrimEnd('/');

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var volume in raw.Volumes)
        {
            if (!VolumeNameGrammar().IsMatch(volume.Name) || !seen.Add(volume.Name) || !IsCleanAbsolutePath(volume.ContainerPath) || volume.ContainerPath == "/" || IsUnderKernelFilesystem(volume.ContainerPath))
            {
                throw new RuncibleException(RuncibleErrors.InvalidVolumeName, $"{volume.ContainerPath} (Name={volume.Name})");
            }
        }

        var created = BundleSettingsValidator.DefaultEpoch;
        if (!string.IsNullOrWhiteSpace(raw.SourceDateEpoch))
        {
            if (!long.TryParse(raw.SourceDateEpoch.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds > 8589934591L)
            {
                throw new RuncibleException(RuncibleErrors.InvalidSourceDateEpoch, raw.SourceDateEpoch);
            }

            created = DateTimeOffset.FromUnixTimeSeconds(seconds);
        }

        var rootless = Bool("RuncBundleRootless", raw.Rootless);
        var (network, publishPorts) = Network(raw);
        var health = HealthCheckParser.Parse(raw.HealthCheck, raw.HealthInterval, raw.HealthTimeout, raw.HealthRetries, raw.HealthStartPeriod);

        return new BundleSettings(
            name,
            semver!.ToNormalizedString(),
            rid,
            framework,
            compression,
            compressionLevel,
            stopTimeout,
            workingDirectory,
            rootless,
            Bool("RuncWritableRootfs", raw.WritableRootfs),
            Bool("RuncNotify", raw.Notify),
            Bool("RuncOffline", raw.Offline),
            created,
            raw.Volumes.OrderBy(v => v.Name, StringComparer.Ordinal).ToList())
        {
            RuntimeIdentifierInFileName = Bool("RuntimeIdentifierInFileName", raw.RuntimeIdentifierInFileName),
            Network = network,
            PublishPorts = publishPorts,
            Health = health,
        };
    }

    /// <summary>An MSBuild path (which may use '\') on this platform.</summary>
    internal static string PlatformPath(string path) =>
        Path.DirectorySeparatorChar == '/' ? path.Replace('\\', '/') : path;

    /// <summary>
    /// The RID the .NET SDK's containers use when the build has none: the first Linux one of
    /// ContainerRuntimeIdentifiers (one bundle per build), else linux-&lt;the SDK's own architecture&gt;.
    /// </summary>
    private static string DefaultRuntimeIdentifier(string? containerRuntimeIdentifiers, string? sdkRuntimeIdentifier)
    {
        var listed = (containerRuntimeIdentifiers ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .FirstOrDefault(r => r.StartsWith("linux-", StringComparison.Ordinal));
        if (listed is not null)
        {
            return listed;
        }

        var sdk = sdkRuntimeIdentifier?.Trim() ?? "";
        return sdk.Length == 0 ? "" : "linux-" + sdk[(sdk.LastIndexOf('-') + 1)..];
    }

    /// <summary>The last path segment of a repository (<c>myorg/my-app</c> → <c>my-app</c>), or null when unset.</summary>
    private static string? RepositoryName(string? repository)
    {
        var trimmed = repository?.Trim().TrimEnd('/') ?? "";
        return trimmed.Length == 0 ? null : trimmed[(trimmed.LastIndexOf('/') + 1)..];
    }

    private static (BundleNetwork Network, IReadOnlyList<PublishedPort> Ports) Network(RawBundleSettings raw)
    {
        var network = (raw.Network?.Trim().ToLowerInvariant() ?? "") switch
        {
            "" or "host" => BundleNetwork.Host,
            "private" => BundleNetwork.Private,
            "none" => BundleNetwork.None,
            _ => throw new RuncibleException(RuncibleErrors.InvalidNetworkMode, raw.Network),
        };
        var ports = new List<PublishedPort>();
        foreach (var item in raw.PublishPorts)
        {
            ports.Add(PublishedPort.TryParse(item, out var problem) ?? throw new RuncibleException(RuncibleErrors.InvalidPublishPort, item, problem));
        }

        if (ports.Count > 0 && network != BundleNetwork.Private)
        {
            throw new RuncibleException(RuncibleErrors.PublishPortNeedsPrivateNetwork, network.ToString().ToLowerInvariant());
        }

        PublishedPort.CheckDistinct(ports);
        return (network, ports);
    }

    /// <summary>The OCI architecture (GOARCH) of a Linux RID such as <c>linux-x64</c> or <c>linux-musl-arm64</c>.</summary>
    public static string OciArchitecture(string runtimeIdentifier)
    {
        var arch = runtimeIdentifier[(runtimeIdentifier.LastIndexOf('-') + 1)..];
        return arch switch
        {
            "x64" => "amd64",
            "arm64" => "arm64",
            "arm" => "arm",
            "x86" => "386",
            "s390x" => "s390x",
            "ppc64le" => "ppc64le",
            "riscv64" => "riscv64",
            "loongarch64" => "loong64",
            _ => throw new RuncibleException(RuncibleErrors.UnsupportedArchitecture, runtimeIdentifier),
        };
    }

    private static int CompressionLevel(BundleCompression compression, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return BundleCompressionLevels.Default(compression);
        }

        var name = compression.ToString().ToLowerInvariant();
        if (compression == BundleCompression.None)
        {
            throw new RuncibleException(RuncibleErrors.InvalidCompressionLevel, value, name,
                "an uncompressed bundle has no level; remove RuncBundleCompressionLevel or set RuncBundleCompression to gzip or zstd");
        }

        var (min, max) = BundleCompressionLevels.Range(compression);
        if (!int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var level) || level < min || level > max)
        {
            throw new RuncibleException(RuncibleErrors.InvalidCompressionLevel, value, name,
                $"use a whole number from {min} (fastest) to {max} (smallest), or leave it unset for the default {BundleCompressionLevels.Default(compression)}");
        }

        return level;
    }

    private static bool Bool(string property, string? value) => (value?.Trim().ToLowerInvariant() ?? "") switch
    {
        "" or "false" => false,
        "true" => true,
        _ => throw new RuncibleException(RuncibleErrors.InvalidBooleanProperty, property, value),
    };

    private static bool IsCleanAbsolutePath(string path) =>
        path.StartsWith('/') &&
        !path.Contains('\0') &&
        (path == "/" || path[1..].TrimEnd('/').Split('/').All(s => s.Length > 0 && s != "." && s != ".."));

    private static bool IsUnderKernelFilesystem(string path) =>
        new[] { "/proc", "/sys", "/dev" }.Any(p => path == p || path.StartsWith(p + "/", StringComparison.Ordinal));
}
