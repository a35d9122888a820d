using System.Security.Cryptography;
using System.Text;
using Microsoft.Build.Framework;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;

namespace Runcible.Tasks;

/// <summary>
/// Validates the bundle settings (coded RUNCIBLE4xxx errors), fills in defaults, infers the base image
/// as the .NET SDK does, and writes a settings stamp (only when it changed) that PublishRuncBundle uses
/// as an input, so changing any setting rebuilds the bundle and changing none does nothing.
/// </summary>
public sealed class ComputeRuncBundleSettings : RuncibleTask, IBundleTaskInputs
{
    [Required]
    public string AssemblyName { get; set; } = "";

    public string? BundleName { get; set; }
    public string? BundleVersion { get; set; }
    public string? RuntimeIdentifier { get; set; }
    public string? ContainerRuntimeIdentifiers { get; set; }
    public string? SdkRuntimeIdentifier { get; set; }
    public string? ContainerRepository { get; set; }
    public string? RuntimeIdentifierInFileName { get; set; }
    public string? TargetFramework { get; set; }
    public string? TargetFrameworks { get; set; }
    public string? Compression { get; set; }
    public string? CompressionLevel { get; set; }
    public string? StopTimeout { get; set; }
    public string? WorkingDirectory { get; set; }
    public string? Rootless { get; set; }
    public string? WritableRootfs { get; set; }

    /// <summary><c>RuncNetwork</c>: host, private or none.</summary>
    public string? Network { get; set; }

    /// <summary><c>RuncPublishPort</c> items: <c>[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]</c>.</summary>
    public ITaskItem[] PublishPorts { get; set; } = [];
    public string? Notify { get; set; }
    public string? Offline { get; set; }
    public string? SourceDateEpoch { get; set; }
    public string? HealthCheck { get; set; }
    public string? HealthInterval { get; set; }
    public string? HealthTimeout { get; set; }
    public string? HealthRetries { get; set; }
    public string? HealthStartPeriod { get; set; }
    public ITaskItem[] Volumes { get; set; } = [];

    public string? ContainerBaseImage { get; set; }
    public string? ContainerFamily { get; set; }
    public bool SelfContained { get; set; }
    public bool PublishAot { get; set; }
    public bool PublishTrimmed { get; set; }
    public bool InvariantGlobalization { get; set; }
    public bool UsesAspNetCore { get; set; }
    public string? SdkVersion { get; set; }

    [Required]
    public string OutputDirectory { get; set; } = "";

    /// <summary>The .NET SDK container properties the project itself set that a bundle cannot honour (one item each, by name): warned about.</summary>
    public ITaskItem[] UnhonouredProperties { get; set; } = [];

    /// <summary>Every other setting that should rebuild the bundle when it changes (ports, env, labels, user…), one per item.</summary>
    public ITaskItem[] StampInputs { get; set; } = [];

    /// <summary>Where to write the settings stamp (under obj/).</summary>
    [Required]
    public string StampFile { get; set; } = "";

    [Output] public string NormalizedBundleName { get; private set; } = "";
    [Output] public string NormalizedBundleVersion { get; private set; } = "";
    [Output] public string BaseImage { get; private set; } = "";
    [Output] public string BundlePath { get; private set; } = "";
    [Output] public string EffectiveCompression { get; private set; } = "";

    /// <summary>The level the bundle is compressed at (gzip 1–9, zstd 1–19); empty for none.</summary>
    [Output] public string EffectiveCompressionLevel { get; private set; } = "";
    [Output] public string EffectiveWorkingDirectory { get; private set; } = "";

    /// <summary>The bundle's runtime identifier: RuntimeIdentifier, or the default the .NET SDK's containers use.</summary>
    [Output] public string EffectiveRuntimeIdentifier { get; private set; } = "";

    protected override void ExecuteCore()
    {
        var settings = new BundleSettingsValidator().Validate(this.ToRawSettings(TargetFrameworks));
        BaseImage = this.ContainerOrInferredBaseImage(settings);
        WarnAboutUnhonouredProperties();
        NormalizedBundleName = settings.Name;
        NormalizedBundleVersion = settings.Version;
        EffectiveCompression = settings.Compression.ToString().ToLowerInvariant();
        EffectiveCompressionLevel = settings.Compression == BundleCompression.None ? "" : settings.CompressionLevel.ToString(System.Globalization.CultureInfo.InvariantCulture);
        EffectiveWorkingDirectory = settings.WorkingDirectory;
        EffectiveRuntimeIdentifier = settings.RuntimeIdentifier;
        BundlePath = settings.TarballPath(OutputDirectory);

        var stamp = new StringBuilder()
            .AppendLine("runcible-settings/1")
            .AppendLine(settings.ToString())
            .AppendLine(string.Join(",", settings.Volumes))
            .AppendLine(string.Join(",", settings.PublishPorts))
            .AppendLine(BaseImage);
        foreach (var item in StampInputs)
        {
            stamp.Append(item.ItemSpec);
            foreach (var name in item.MetadataNames.Cast<string>().Where(n => !IsWellKnownMetadata(n)).OrderBy(n => n, StringComparer.Ordinal))
            {
                stamp.Append(';').Append(name).Append('=').Append(item.GetMetadata(name));
            }

            stamp.AppendLine();
        }

        var bytes = Encoding.UTF8.GetBytes(stamp.ToString());
        WriteIfChanged(StampFile, Encoding.UTF8.GetBytes(Convert.ToHexString(SHA256.HashData(bytes)) + "\n"));
    }

    private void WarnAboutUnhonouredProperties()
    {
        foreach (var name in UnhonouredProperties.Select(i => i.ItemSpec).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (UnhonouredContainerProperties.Reasons.TryGetValue(name, out var reason))
            {
                BuildLog.LogWarning(RuncibleErrors.UnhonouredContainerProperty, name, reason);
            }
        }
    }

    private static bool IsWellKnownMetadata(string name) => name is
        "FullPath" or "RootDir" or "Filename" or "Extension" or "RelativeDir" or "Directory" or "RecursiveDir" or
        "Identity" or "ModifiedTime" or "CreatedTime" or "AccessedTime" or "DefiningProjectFullPath" or
        "DefiningProjectDirectory" or "DefiningProjectName" or "DefiningProjectExtension";
}
