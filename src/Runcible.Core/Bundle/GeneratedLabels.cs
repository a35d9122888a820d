using System.Globalization;

namespace Runcible.Core.Bundle;

/// <summary>
/// The image-style labels the .NET SDK generates (<c>ContainerGenerateLabels</c>, default true), which a bundle
/// carries as config.json annotations and in bundle.json: those that come from project properties
/// (<see cref="FromProperties"/>), the base image's name and the creation time. The creation time comes only from
/// SOURCE_DATE_EPOCH (the SDK uses the build's clock, which would make every bundle differ); without it there is none.
/// The project's own <c>ContainerLabel</c> items win over generated ones.
/// </summary>
internal static class GeneratedLabels
{
    public const string BaseName = "org.opencontainers.image.base.name";

    public static readonly string[] Created = ["org.opencontainers.image.created", "org.opencontainers.artifact.created"];

    /// <summary>
    /// The labels the .NET SDK's container targets generate from project properties, with the same fallbacks and
    /// switches (<c>ContainerGenerateLabelsImage*</c>, <c>ContainerGenerateLabelsDotnetToolset</c>), in its order; none
    /// with <c>ContainerGenerateLabels=false</c>. Reads every property it knows, unconditionally (see <see cref="BundleSettingsNormalizer.ReadRaw"/>).
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string>> FromProperties(RawSettings raw)
    {
        var generate = !RawSettings.IsFalse(raw["ContainerGenerateLabels"]);
        var description = RawSettings.Or(raw["ContainerDescription"], raw["Description"]);
        var authors = RawSettings.Or(raw["ContainerAuthors"], raw["Authors"]);
        var projectUrl = raw["PackageProjectUrl"];
        var url = RawSettings.Or(raw["ContainerInformationUrl"], projectUrl);
        var documentation = RawSettings.Or(raw["ContainerDocumentationUrl"], projectUrl);
        var version = RawSettings.Or(raw["ContainerVersion"], raw["PackageVersion"]);
        var vendor = raw["ContainerVendor"];
        var licenses = RawSettings.Or(raw["ContainerLicenseExpression"], raw["PackageLicenseExpression"]);
        var title = RawSettings.Or(raw["ContainerTitle"], raw["Title"]);
        var toolset = !RawSettings.IsFalse(raw["ContainerGenerateLabelsDotnetToolset"]);
        var runtimeVersion = string.Equals(raw["TargetFrameworkIdentifier"], ".NETCoreApp", StringComparison.OrdinalIgnoreCase) ? raw["_TargetFrameworkVersionWithoutV"] : "";
        var sdkVersion = raw["NETCoreSdkVersion"];
        // Source control labels only with PublishRepositoryUrl=true, the SDK's opt-in; a git URL without its .git suffix.
        var publishRepository = RawSettings.IsTrue(raw["PublishRepositoryUrl"]);
        var repositoryUrl = raw["PrivateRepositoryUrl"];
        var source = publishRepository ? repositoryUrl : "";
        if (string.Equals(raw["RepositoryType"], "git", StringComparison.OrdinalIgnoreCase) && source.EndsWith(".git", StringComparison.Ordinal))
        {
            source = source[..source.LastIndexOf(".git", StringComparison.Ordinal)];
        }

        var revisionId = raw["SourceRevisionId"];
        var revision = publishRepository ? revisionId : "";
        var switches = new[] { "Description", "Authors", "Url", "Documentation", "Version", "Vendor", "Licenses", "Title", "Source", "Revision" }
            .ToDictionary(s => s, s => !RawSettings.IsFalse(raw["ContainerGenerateLabelsImage" + s]), StringComparer.Ordinal);

        var labels = new List<KeyValuePair<string, string>>();
        void Add(bool enabled, string value, params string[] keys)
        {
            if (generate && enabled && value.Length > 0)
            {
                labels.AddRange(keys.Select(k => new KeyValuePair<string, string>(k, value)));
            }
        }

        Add(switches["Description"], description, "org.opencontainers.artifact.description", "org.opencontainers.image.description");
        Add(switches["Authors"], authors, "org.opencontainers.image.authors");
        Add(switches["Url"], url, "org.opencontainers.image.url");
        Add(switches["Documentation"], documentation, "org.opencontainers.image.documentation");
        Add(switches["Version"], version, "org.opencontainers.image.version");
        Add(switches["Vendor"], vendor, "org.opencontainers.image.vendor");
        Add(switches["Licenses"], licenses, "org.opencontainers.image.licenses");
        Add(switches["Title"], title, "org.opencontainers.image.title");
        Add(toolset, runtimeVersion, "net.dot.runtime.majorminor");
        Add(toolset, sdkVersion, "net.dot.sdk.version");
        Add(switches["Source"], source, "org.opencontainers.image.source");
        Add(switches["Revision"], revision, "org.opencontainers.image.revision");
        return labels;
    }

    public static IReadOnlyList<KeyValuePair<string, string>> Merge(
        IEnumerable<KeyValuePair<string, string>> generated,
        string? baseImage,
        DateTimeOffset? created,
        IEnumerable<KeyValuePair<string, string>> projectLabels)
    {
        var labels = new List<KeyValuePair<string, string>>(generated);
        if (!string.IsNullOrWhiteSpace(baseImage))
        {
            labels.Add(new(BaseName, baseImage.Trim()));
        }

        if (created is { } time)
        {
            // The SDK's format: round-trip UTC ("o").
            var text = time.UtcDateTime.ToString("o", CultureInfo.InvariantCulture);
            labels.AddRange(Created.Select(key => new KeyValuePair<string, string>(key, text)));
        }

        var own = projectLabels.ToList();
        var ownKeys = own.Select(l => l.Key).ToHashSet(StringComparer.Ordinal);
        return [.. labels.Where(l => !ownKeys.Contains(l.Key)), .. own];
    }
}
