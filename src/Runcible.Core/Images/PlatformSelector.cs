using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;

namespace Runcible.Core.Images;

/// <summary>Maps .NET runtime identifiers to OCI platforms and picks a platform's manifest from an index.</summary>
internal static class PlatformSelector
{
    /// <summary>
    /// The OCI platform of a Linux RID: <c>linux-x64</c>→linux/amd64, <c>linux-arm64</c>→linux/arm64(/v8),
    /// <c>linux-arm</c>→linux/arm/v7; <c>linux-musl-*</c> map as their architecture (musl is the image's business).
    /// </summary>
    public static Platform FromRuntimeIdentifier(string runtimeIdentifier)
    {
        var architecture = BundleSettingsValidator.OciArchitecture(runtimeIdentifier);
        return new Platform
        {
            OS = "linux",
            Architecture = architecture,
            Variant = architecture == "arm" ? "v7" : null,
        };
    }

    /// <summary>
    /// The manifest descriptor of <paramref name="index"/> for <paramref name="wanted"/>: OS and architecture
    /// must match; an exact variant wins, then one without a variant (arm64's is v8 by default).
    /// Attestation entries (platform unknown/unknown) never match.
    /// </summary>
    public static Descriptor Select(IReadOnlyList<Descriptor> manifests, Platform wanted, string imageName)
    {
        Descriptor? withoutVariant = null;
        foreach (var candidate in manifests)
        {
            var platform = candidate.Platform;
            if (platform is null || !MediaTypes.IsManifest(candidate.MediaType) && !string.IsNullOrEmpty(candidate.MediaType)
                || platform.OS != wanted.OS || platform.Architecture != wanted.Architecture)
            {
                continue;
            }

            var variant = NormaliseVariant(platform.Architecture, platform.Variant);
            var wantedVariant = NormaliseVariant(wanted.Architecture, wanted.Variant);
            if (variant == wantedVariant)
            {
                return candidate;
            }

            if (variant is null)
            {
                withoutVariant ??= candidate;
            }
        }

        return withoutVariant ?? throw new RuncibleException(
            RuncibleErrors.NoMatchingPlatform,
            imageName,
            wanted,
            Describe(manifests.Where(m => m.Platform is not null && m.Platform.OS != "unknown").Select(m => m.Platform!)));
    }

    /// <summary>Checks a single-platform image's config against the wanted platform.</summary>
    public static void EnsureMatches(ImageConfiguration config, Platform wanted, string imageName)
    {
        var actual = new Platform { OS = config.OS, Architecture = config.Architecture, Variant = config.Variant };
        var variantsAgree = actual.Variant is null || wanted.Variant is null
            || NormaliseVariant(actual.Architecture, actual.Variant) == NormaliseVariant(wanted.Architecture, wanted.Variant);
        if (actual.OS != wanted.OS || actual.Architecture != wanted.Architecture || !variantsAgree)
        {
            throw new RuncibleException(RuncibleErrors.NoMatchingPlatform, imageName, wanted, Describe([actual]));
        }
    }

    private static string? NormaliseVariant(string architecture, string? variant) =>
        architecture == "arm64" && variant is null or "v8" ? null : string.IsNullOrEmpty(variant) ? null : variant;

    private static string Describe(IEnumerable<Platform> platforms)
    {
        var names = platforms.Select(p => p.ToString()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return names.Count == 0 ? "no platform information" : string.Join(", ", names);
    }
}
