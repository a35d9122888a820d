using Microsoft.Build.Framework;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;

namespace Runcible.Tasks;

/// <summary>The bundle settings and base image inputs both tasks take from MSBuild, mapped to Core in one place.</summary>
public interface IBundleTaskInputs
{
    string AssemblyName { get; }
    string? BundleName { get; }
    string? BundleVersion { get; }
    string? RuntimeIdentifier { get; }

    /// <summary>The SDK's ContainerRuntimeIdentifiers (by default RuntimeIdentifiers): with no RuntimeIdentifier, the bundle's is the first Linux one.</summary>
    string? ContainerRuntimeIdentifiers { get; }

    /// <summary>The running SDK's NETCoreSdkPortableRuntimeIdentifier: with no runtime identifier at all, the bundle is for linux-&lt;its architecture&gt;, as the SDK's containers.</summary>
    string? SdkRuntimeIdentifier { get; }

    /// <summary>ContainerRepository: its last segment names the bundle when RuncBundleName is not set.</summary>
    string? ContainerRepository { get; }

    /// <summary>"true" in the per-RID publishes of a ContainerRuntimeIdentifiers build: the tarball's name ends in -&lt;rid&gt;.</summary>
    string? RuntimeIdentifierInFileName { get; }

    string? TargetFramework { get; }
    string? Compression { get; }
    string? CompressionLevel { get; }
    string? StopTimeout { get; }
    string? WorkingDirectory { get; }
    string? Rootless { get; }
    string? WritableRootfs { get; }
    string? Network { get; }
    string? HealthCheck { get; }
    string? HealthInterval { get; }
    string? HealthTimeout { get; }
    string? HealthRetries { get; }
    string? HealthStartPeriod { get; }
    ITaskItem[] PublishPorts { get; }
    string? Notify { get; }
    string? Offline { get; }
    string? SourceDateEpoch { get; }
    ITaskItem[] Volumes { get; }

    string? ContainerBaseImage { get; }
    string? ContainerFamily { get; }
    bool SelfContained { get; }
    bool PublishAot { get; }
    bool PublishTrimmed { get; }
    bool InvariantGlobalization { get; }
    bool UsesAspNetCore { get; }

    /// <summary>NETCoreSdkVersion: a preview SDK's own framework takes its preview image tag.</summary>
    string? SdkVersion { get; }
}

internal static class BundleTaskInputs
{
    public static RawBundleSettings ToRawSettings(this IBundleTaskInputs task, string? targetFrameworks = null) => new()
    {
        AssemblyName = task.AssemblyName,
        BundleName = task.BundleName,
        BundleVersion = task.BundleVersion,
        RuntimeIdentifier = task.RuntimeIdentifier,
        ContainerRuntimeIdentifiers = task.ContainerRuntimeIdentifiers,
        SdkRuntimeIdentifier = task.SdkRuntimeIdentifier,
        ContainerRepository = task.ContainerRepository,
        RuntimeIdentifierInFileName = task.RuntimeIdentifierInFileName,
        TargetFramework = task.TargetFramework,
        TargetFrameworks = targetFrameworks,
        Compression = task.Compression,
        CompressionLevel = task.CompressionLevel,
        StopTimeout = task.StopTimeout,
        WorkingDirectory = task.WorkingDirectory,
        Rootless = task.Rootless,
        WritableRootfs = task.WritableRootfs,
        Network = task.Network,
        HealthCheck = task.HealthCheck,
        HealthInterval = task.HealthInterval,
        HealthTimeout = task.HealthTimeout,
        HealthRetries = task.HealthRetries,
        HealthStartPeriod = task.HealthStartPeriod,
        PublishPorts = task.PublishPorts.Select(p => p.ItemSpec).ToList(),
        Notify = task.Notify,
        Offline = task.Offline,
        SourceDateEpoch = task.SourceDateEpoch,
        Volumes = task.Volumes.Select(v => new BundleVolume(v.GetMetadata("Name"), v.ItemSpec)).ToList(),
    };

    /// <summary><c>ContainerBaseImage</c>, or the image the .NET SDK would infer for these settings.</summary>
    public static string ContainerOrInferredBaseImage(this IBundleTaskInputs task, BundleSettings settings) =>
        new BaseImageInference().Resolve(task.ContainerBaseImage, new BaseImageInputs(
            settings.TargetFramework,
            task.SelfContained,
            task.UsesAspNetCore,
            [settings.RuntimeIdentifier],
            task.SdkVersion,
            task.PublishAot,
            task.PublishTrimmed,
            task.InvariantGlobalization,
            task.ContainerFamily));
}
