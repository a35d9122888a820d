using System.Text.RegularExpressions;
using NuGet.Versioning;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Bundle;

/// <summary>What the .NET SDK's ComputeDotnetBaseImageAndTag task looks at to choose a Microsoft base image.</summary>
/// <param name="TargetFramework">The chosen target framework, e.g. <c>net10.0</c> (or its version, <c>10.0</c> / <c>v10.0</c>).</param>
/// <param name="SelfContained">Self-contained publish (<c>SelfContained</c> or <c>PublishSelfContained</c>): the app carries the runtime.</param>
/// <param name="UsesAspNetCore">The project has a <c>FrameworkReference</c> to <c>Microsoft.AspNetCore.App</c>.</param>
/// <param name="RuntimeIdentifiers">The container's runtime identifiers (one for a single-RID build); <c>linux-musl-*</c> ones choose Alpine.</param>
/// <param name="SdkVersion">The running .NET SDK's version (<c>NETCoreSdkVersion</c>): a preview SDK targeting its own framework picks the preview tag. Empty: the framework's version.</param>
/// <param name="PublishAot">Native AOT publish: chiseled Ubuntu, plus <c>-extra</c> (ICU, tzdata) unless globalization is invariant.</param>
/// <param name="PublishTrimmed">Trimmed publish: as AOT.</param>
/// <param name="InvariantGlobalization">The app needs no ICU: no <c>-extra</c> variant.</param>
/// <param name="ContainerFamily">Tag suffix such as <c>noble-chiseled</c> or <c>alpine</c>, or empty.</param>
internal sealed record BaseImageInputs(
    string TargetFramework,
    bool SelfContained,
    bool UsesAspNetCore,
    IReadOnlyList<string> RuntimeIdentifiers,
    string? SdkVersion = null,
    bool PublishAot = false,
    bool PublishTrimmed = false,
    bool InvariantGlobalization = false,
    string? ContainerFamily = null);

/// <summary>
/// Chooses the base image by the .NET SDK's rules (its ComputeDotnetBaseImageAndTag task, SDK 10):
/// <c>mcr.microsoft.com/dotnet/</c> + <c>runtime-deps</c> when self-contained, <c>aspnet</c> for web apps, else
/// <c>runtime</c>; the tag is the framework's <c>major.minor</c> (a preview SDK building its own framework uses its
/// channel's tag, <c>11.0.0-preview.3</c>), then for .NET 8 and later: with <c>ContainerFamily</c> that family (plus
/// <c>-extra</c> for a globalized app on a <c>*-chiseled</c> family, stable SDKs only); without it <c>-alpine</c> for
/// musl RIDs, <c>-noble-chiseled</c> (<c>-jammy-chiseled</c> before SDK 8.0.300) for AOT or trimmed apps, and
/// <c>-extra</c> for AOT or trimmed apps that are not invariant-globalized.
/// </summary>
internal sealed partial class BaseImageInference
{
    public const string DefaultRegistryRepositoryPrefix = "mcr.microsoft.com/dotnet/";

    // The first .NET whose images have the -extra / chiseled variants and channel tags.
    private const int FirstMajorWithVariants = 8;

    [GeneratedRegex(@"^(?:net|netcoreapp|v)?(?<major>[0-9]{1,3})\.(?<minor>[0-9]{1,3})$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex FrameworkVersion();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$", RegexOptions.CultureInvariant)]
    private static partial Regex TagPart();

    /// <summary>The base image a build uses: <c>ContainerBaseImage</c> when set, else the inferred one.</summary>
    public string Resolve(string? containerBaseImage, BaseImageInputs inputs) =>
        string.IsNullOrWhiteSpace(containerBaseImage) ? Infer(inputs) : containerBaseImage.Trim();

    public string Infer(BaseImageInputs inputs)
    {
        var match = FrameworkVersion().Match(inputs.TargetFramework.Trim());
        if (!match.Success || Number(match, "major") < 5)
        {
            // netstandard, net48 and netcoreapp3.1 have no Linux images in this scheme.
            throw new RuncibleException(RuncibleErrors.InvalidTargetFramework, inputs.TargetFramework);
        }

        var framework = new SemanticVersion(Number(match, "major"), Number(match, "minor"), 0);
        var musl = IsMusl(inputs.RuntimeIdentifiers);
        var repository = inputs.SelfContained ? "runtime-deps" : inputs.UsesAspNetCore ? "aspnet" : "runtime";
        var family = string.IsNullOrWhiteSpace(inputs.ContainerFamily) ? null : CheckedTagPart(inputs.ContainerFamily.Trim(), inputs.TargetFramework);
        if (framework.Major < FirstMajorWithVariants)
        {
            var oldTag = $"{framework.Major}.{framework.Minor}" + (family is not null ? "-" + family : musl ? "-alpine" : "");
            return $"{DefaultRegistryRepositoryPrefix}{repository}:{oldTag}";
        }

        var sdk = ParseSdkVersion(inputs.SdkVersion, framework);
        var tag = VersionTag(sdk, framework);
        var needsIcu = !inputs.InvariantGlobalization;
        if (family is not null)
        {
            tag += "-" + family;
            // A chiseled family has no ICU or tzdata: a globalized app needs its -extra variant to start.
            if (!musl && family.EndsWith("-chiseled", StringComparison.Ordinal) && needsIcu && !sdk.IsPrerelease && sdk.Major >= FirstMajorWithVariants)
            {
                tag += "-extra";
            }
        }
        else
        {
            var trimmed = inputs.PublishAot || inputs.PublishTrimmed;
            tag += musl ? "-alpine" : trimmed ? $"-{UbuntuCodename(sdk)}-chiseled" : "";
            if (trimmed && needsIcu)
            {
                tag += "-extra";
            }
        }

        return $"{DefaultRegistryRepositoryPrefix}{repository}:{tag}";
    }

    private static int Number(Match match, string group) => int.Parse(match.Groups[group].Value, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>All of the RIDs musl, or none: one base image serves them all.</summary>
    private static bool IsMusl(IReadOnlyList<string> runtimeIdentifiers)
    {
        var musl = runtimeIdentifiers.Count(r => r.StartsWith("linux-musl", StringComparison.Ordinal));
        return musl == 0
            ? false
            : musl == runtimeIdentifiers.Count
                ? true
                : throw new RuncibleException(RuncibleErrors.BaseImageNotInferable, $"the runtime identifiers ({string.Join(";", runtimeIdentifiers)}) mix linux-musl and other ones, which need different base images");
    }

    private static SemanticVersion ParseSdkVersion(string? sdkVersion, SemanticVersion framework) =>
        string.IsNullOrWhiteSpace(sdkVersion)
            ? framework
            : SemanticVersion.TryParse(sdkVersion.Trim(), out var parsed)
                ? parsed
                : throw new RuncibleException(RuncibleErrors.BaseImageNotInferable, $"the .NET SDK version '{sdkVersion}' is not a semantic version");

    /// <summary>
    /// A framework older than the SDK's has stable images; the SDK's own framework takes the SDK's tag: stable
    /// <c>major.minor</c>, and for a preview of a feature band's first SDK (x.y.100-preview.N) its channel.
    /// </summary>
    private static string VersionTag(SemanticVersion sdk, SemanticVersion framework)
    {
        if (framework.Major < sdk.Major || framework.Minor < sdk.Minor)
        {
            return $"{framework.Major}.{framework.Minor}";
        }

        if (!sdk.IsPrerelease || sdk.Patch != 100)
        {
            return $"{sdk.Major}.{sdk.Minor}";
        }

        var labels = sdk.ReleaseLabels.ToArray();
        return labels[0] switch
        {
            "rtm" or "servicing" => $"{sdk.Major}.{sdk.Minor}",
            "rc" or "preview" when labels.Length > 1 => $"{sdk.Major}.{sdk.Minor}.0-{labels[0]}.{labels[1]}",
            "alpha" or "dev" or "ci" => $"{sdk.Major}.{sdk.Minor}-preview",
            _ => throw new RuncibleException(RuncibleErrors.BaseImageNotInferable, $"the .NET SDK version '{sdk}' has a prerelease label with no image tag"),
        };
    }

    private static string UbuntuCodename(SemanticVersion sdk) => sdk >= new SemanticVersion(8, 0, 300) ? "noble" : "jammy";

    private static string CheckedTagPart(string part, string framework) =>
        TagPart().IsMatch(part) ? part : throw new RuncibleException(RuncibleErrors.InvalidTargetFramework, framework + " / " + part);
}
