using System.Globalization;
using Microsoft.Build.Framework;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;

namespace Runcible.Tasks;

/// <summary>
/// The settings task: normalizes and validates the raw settings (every check that needs no image, with its coded
/// error, before any network access), warns about SDK container properties a bundle cannot honour, and writes the
/// settings document PublishRuncBundle reads, only when its bytes changed: it is the bundle's incremental stamp.
/// </summary>
public sealed class ComputeRuncBundleSettings : RuncibleTask
{
    /// <summary>The targets' <c>_RuncSettingValue</c> items: one per property the bundle reads, its value in <c>Value</c>.</summary>
    [Required]
    public ITaskItem[] Properties { get; set; } = [];

    /// <summary>The targets' <c>_RuncSettingItem</c> items: the item-typed inputs, each with <c>Setting</c> metadata.</summary>
    public ITaskItem[] Items { get; set; } = [];

    /// <summary>Where to write the settings document (under obj/).</summary>
    [Required]
    public string SettingsFile { get; set; } = "";

    [Output] public string NormalizedBundleName { get; private set; } = "";
    [Output] public string NormalizedBundleVersion { get; private set; } = "";
    [Output] public string BaseImage { get; private set; } = "";
    [Output] public string BundlePath { get; private set; } = "";
    [Output] public string EffectiveCompression { get; private set; } = "";

    /// <summary>The level the bundle is compressed at (gzip 1–9, zstd 1–19); empty for none.</summary>
    [Output] public string EffectiveCompressionLevel { get; private set; } = "";
    [Output] public string EffectiveWorkingDirectory { get; private set; } = "";
    [Output] public string EffectiveNotify { get; private set; } = "";

    /// <summary>The bundle's runtime identifier: RuntimeIdentifier, or the default the .NET SDK's containers use.</summary>
    [Output] public string EffectiveRuntimeIdentifier { get; private set; } = "";

    protected override void ExecuteCore()
    {
        var normalized = BundleSettingsNormalizer.Normalize(RawSettingsItems.ToRawSettings(Properties, Items));
        foreach (var name in normalized.UnhonouredProperties)
        {
            if (UnhonouredContainerProperties.Reasons.TryGetValue(name, out var reason))
            {
                BuildLog.LogWarning(RuncibleErrors.UnhonouredContainerProperty, name, reason);
            }
        }

        var settings = normalized.Bundle;
        NormalizedBundleName = settings.Name;
        NormalizedBundleVersion = settings.Version;
        BaseImage = normalized.BaseImage;
        EffectiveCompression = settings.Compression.ToString().ToLowerInvariant();
        EffectiveCompressionLevel = settings.Compression == BundleCompression.None ? "" : settings.CompressionLevel.ToString(CultureInfo.InvariantCulture);
        EffectiveWorkingDirectory = settings.WorkingDirectory;
        EffectiveNotify = settings.Notify ? "true" : "false";
        EffectiveRuntimeIdentifier = settings.RuntimeIdentifier;
        BundlePath = normalized.TarballPath;
        WriteIfChanged(SettingsFile, BundleSettingsNormalizer.Serialize(normalized));
    }
}
