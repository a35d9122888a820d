namespace Runcible.Core.Bundle;

/// <summary>
/// The .NET SDK container properties a bundle has no use for, and what to do instead: a project that sets one
/// gets a RUNCIBLE4041 warning rather than silence. The ones that map are honoured elsewhere
/// (ContainerRepository names the bundle, ContainerGenerateLabels' labels become annotations).
/// </summary>
internal static class UnhonouredContainerProperties
{
    public static IReadOnlyDictionary<string, string> Reasons { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["ContainerImageTag"] = "a bundle has no image tags; its file is <name>-<version> (RuncBundleName, RuncBundleVersion or Version)",
        ["ContainerImageTags"] = "a bundle has no image tags; its file is <name>-<version> (RuncBundleName, RuncBundleVersion or Version)",
        ["ContainerEntrypoint"] = "the bundle's process is ContainerAppCommand (with ContainerAppCommandInstruction); set that instead",
        ["ContainerEntrypointArgs"] = "the bundle's process arguments are ContainerAppCommandArgs and ContainerDefaultArgs; set those instead",
        ["ContainerImageFormat"] = "a bundle is a runc bundle tarball, not an image in the Docker or OCI manifest format",
        ["ContainerArchiveOutputPath"] = "the bundle tarball is written to RuncBundleOutputPath (by default the build's output directory); set that instead",
    };
}
