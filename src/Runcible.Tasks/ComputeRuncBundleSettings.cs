using System.Security.Cryptography;
using System.Text;
using Microsoft.Build.Framework;
using Runcible.Core.Bundle;

namespace Runcible.Tasks;

/// <summary>
/// Validates the bundle settings (coded RUNCIBLE4xxx errors), fills in defaults, infers the base image
/// as the .NET SDK does, and writes a settings stamp (only when it changed) that PublishRuncBundle uses
/// as an input, so changing any setting rebuilds the bundle and changing none does nothing.
/// </summary>
public sealed class ComputeRuncBundleSettings : RuncibleTask
{
    [Required]
    public string AssemblyName { get; set; } = "";

    public string? BundleName { get; set; }
    public string? BundleVersion { get; set; }
    public string? RuntimeIdentifier { get; set; }
    public string? TargetFramework { get; set; }
    public string? TargetFrameworks { get; set; }
    public string? Compression { get; set; }
    public string? CompressionLevel { get; set; }
    public string? StopTimeout { get; set; }
    public string? WorkingDirectory { get; set; }
    public string? Rootless { get; set; }
    public string? WritableRootfs { get; set; }
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
    public bool UsesAspNetCore { get; set; }

    [Required]
    public string OutputDirectory { get; set; } = "";

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

    protected override void ExecuteCore()
    {
        var settings = new BundleSettingsValidator().Validate(new RawBundleSettings
        {
            AssemblyName = AssemblyName,
            BundleName = BundleName,
            BundleVersion = BundleVersion,
            RuntimeIdentifier = RuntimeIdentifier,
            TargetFramework = TargetFramework,
            TargetFrameworks = TargetFrameworks,
            Compression = Compression,
            CompressionLevel = CompressionLevel,
            StopTimeout = StopTimeout,
            WorkingDirectory = WorkingDirectory,
            Rootless = Rootless,
            WritableRootfs = WritableRootfs,
            Notify = Notify,
            Offline = Offline,
            SourceDateEpoch = SourceDateEpoch,
            HealthCheck = HealthCheck,
            HealthInterval = HealthInterval,
            HealthTimeout = HealthTimeout,
            HealthRetries = HealthRetries,
            HealthStartPeriod = HealthStartPeriod,
            Volumes = Volumes.Select(v => new BundleVolume(v.GetMetadata("Name"), v.ItemSpec)).ToList(),
        });

        BaseImage = new BaseImageInference().Resolve(ContainerBaseImage, new BaseImageInputs(settings.TargetFramework, SelfContained, PublishAot, UsesAspNetCore, ContainerFamily));
        NormalizedBundleName = settings.Name;
        NormalizedBundleVersion = settings.Version;
        EffectiveCompression = settings.Compression.ToString().ToLowerInvariant();
        EffectiveCompressionLevel = settings.Compression == BundleCompression.None ? "" : settings.CompressionLevel.ToString(System.Globalization.CultureInfo.InvariantCulture);
        EffectiveWorkingDirectory = settings.WorkingDirectory;
        BundlePath = settings.TarballPath(OutputDirectory);

        var stamp = new StringBuilder()
            .AppendLine("runcible-settings/1")
            .AppendLine(settings.ToString())
            .AppendLine(string.Join(",", settings.Volumes))
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

    private static bool IsWellKnownMetadata(string name) => name is
        "FullPath" or "RootDir" or "Filename" or "Extension" or "RelativeDir" or "Directory" or "RecursiveDir" or
        "Identity" or "ModifiedTime" or "CreatedTime" or "AccessedTime" or "DefiningProjectFullPath" or
        "DefiningProjectDirectory" or "DefiningProjectName" or "DefiningProjectExtension";
}
