using System.Text.RegularExpressions;
using Runcible.Core.Diagnostics;

namespace Runcible.Core.Bundle;

/// <summary>What the .NET SDK looks at to choose a Microsoft base image.</summary>
/// <param name="TargetFramework">The chosen target framework, e.g. <c>net10.0</c> (or its version, <c>10.0</c> / <c>v10.0</c>).</param>
/// <param name="SelfContained">Self-contained publish (the app carries the runtime).</param>
/// <param name="PublishAot">Native AOT publish.</param>
/// <param name="UsesAspNetCore">The project has a <c>FrameworkReference</c> to <c>Microsoft.AspNetCore.App</c>.</param>
/// <param name="ContainerFamily">Tag suffix such as <c>noble-chiseled</c>, or empty.</param>
/// <param name="PrereleaseChannel">For preview runtimes, the channel part of the tag (<c>preview.3</c>), else empty.</param>
public sealed record BaseImageInputs(
    string TargetFramework,
    bool SelfContained,
    bool PublishAot,
    bool UsesAspNetCore,
    string? ContainerFamily = null,
    string? PrereleaseChannel = null);

/// <summary>
/// Chooses the base image as the .NET SDK's container support does (ComputeDotnetBaseImageAndTag):
/// <c>mcr.microsoft.com/dotnet/</c> + <c>runtime-deps</c> when the app carries its runtime
/// (self-contained or AOT), <c>aspnet</c> for web apps, else <c>runtime</c>; the tag is the target
/// framework's <c>major.minor</c> (plus <c>-channel</c> for previews) and <c>-family</c> when set.
/// </summary>
public sealed partial class BaseImageInference
{
    public const string DefaultRegistryRepositoryPrefix = "mcr.microsoft.com/dotnet/";

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
        if (!match.Success || int.Parse(match.Groups["major"].Value, System.Globalization.CultureInfo.InvariantCulture) < 5)
        {
            // netstandard, net48 and netcoreapp3.1 have no Linux images in this scheme.
            throw new RuncibleException(RuncibleErrors.InvalidTargetFramework, inputs.TargetFramework);
        }

        var repository = inputs.SelfContained || inputs.PublishAot
            ? "runtime-deps"
            : inputs.UsesAspNetCore ? "aspnet" : "runtime";

        var tag = $"{match.Groups["major"].Value}.{match.Groups["minor"].Value}";
        if (!string.IsNullOrWhiteSpace(inputs.PrereleaseChannel))
        {
            tag += "-" + CheckedTagPart(inputs.PrereleaseChannel!.Trim(), inputs.TargetFramework);
        }

        if (!string.IsNullOrWhiteSpace(inputs.ContainerFamily))
        {
            tag += "-" + CheckedTagPart(inputs.ContainerFamily!.Trim(), inputs.TargetFramework);
        }

        return $"{DefaultRegistryRepositoryPrefix}{repository}:{tag}";
    }

    private static string CheckedTagPart(string part, string framework) =>
        TagPart().IsMatch(part) ? part : throw new RuncibleException(RuncibleErrors.InvalidTargetFramework, framework + " / " + part);
}
