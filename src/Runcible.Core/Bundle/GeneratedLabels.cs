using System.Globalization;

namespace Runcible.Core.Bundle;

/// <summary>
/// The image-style labels the .NET SDK generates (<c>ContainerGenerateLabels</c>, default true), which a bundle
/// carries as config.json annotations and in bundle.json. The targets supply those that come from project
/// properties; the base image's name and the creation time are added here. The creation time comes only from
/// SOURCE_DATE_EPOCH (the SDK uses the build's clock, which would make every bundle differ); without it there is none.
/// The project's own <c>ContainerLabel</c> items win over generated ones.
/// </summary>
internal static class GeneratedLabels
{
    public const string BaseName = "org.opencontainers.image.base.name";

    public static readonly string[] Created = ["org.opencontainers.image.created", "org.opencontainers.artifact.created"];

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
