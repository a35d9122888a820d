namespace Runcible.Core.Bundle;

/// <summary>
/// The .NET SDK container properties a bundle has no use for, and what to do instead: a project that sets one
/// gets a RUNCIBLE4041 warning rather than silence. The ones that map are honoured elsewhere
/// (ContainerRepository names the bundle, ContainerGenerateLabels' labels become annotations).
/// </summary>
public static class UnhonouredContainerProperties
{
    public static IReadOnlyDictionary<string, string> Reasons { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["ContainerImageTag"] = "a bundle has no image tags; its file is <name>-<version> (RuncBundleName, RuncBundleVersion or Version)",
        ["ContainerImageTags"] = "a bundle has no image tags; its file is <name>-<version> (RuncBundleName, RuncBundleVersion or Version)",
        ["ContainerEntrypoint"] = "the bundle's process is ContainerAppCommand (with ContainerAppCommandInstruction); set that instead",
        ["ContainerEntrypointArgs"] = "the bundle's process arguments are ContainerAppCommandArgs and ContainerDefaultArgs; set those instead",
    };

    /// <summary>
    /// The warning for runtime identifiers taken from a list (no RuntimeIdentifier), when the list has more than
    /// the one the bundle is for; null when there is nothing to say.
    /// </summary>
    public static string? SeveralRuntimeIdentifiers(string? runtimeIdentifier, string? containerRuntimeIdentifiers, string chosen)
    {
        if (!string.IsNullOrWhiteSpace(runtimeIdentifier))
        {
            return null;
        }

        var others = (containerRuntimeIdentifiers ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(r => r != chosen).Distinct(StringComparer.Ordinal).ToList();
        return others.Count == 0
            ? null
            : $"one bundle is built per publish, this one for {chosen}; publish again with -r <rid> for {string.Join(", ", others.Where(r => r.StartsWith("linux-", StringComparison.Ordinal)).DefaultIfEmpty("none of the others: they are not Linux ones"))}";
    }
}
