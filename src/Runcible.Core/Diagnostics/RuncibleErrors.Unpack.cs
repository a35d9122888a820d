namespace Runcible.Core.Diagnostics;

// Unpack stage (2xxx): reading layers and flattening them into one root filesystem.
internal static partial class RuncibleErrors
{
    public static readonly ErrorDescriptor UnsafeLayerEntryName = new(
        "RUNCIBLE2001",
        "Layer {1} of {0} has an entry named '{2}', which Runcible refuses: {3}. The image is malformed or hostile; use another base image.");

    public static readonly ErrorDescriptor UnsafeRootEntry = new(
        "RUNCIBLE2002",
        "Layer {1} of {0} makes the root of the file system a {2}; only a directory can be the root. The image is malformed or hostile; use another base image.");

    public static readonly ErrorDescriptor UnsupportedLayerEntry = new(
        "RUNCIBLE2003",
        "Layer {1} of {0} has an entry '{2}' of a kind Runcible does not unpack ({3}). Rebuild the image without it (GNU sparse files: tar without --sparse).");

    public static readonly ErrorDescriptor InvalidWhiteout = new(
        "RUNCIBLE2004",
        "Layer {1} of {0} has a malformed whiteout '{2}': {3}. The image is malformed or hostile; use another base image.");

    public static readonly ErrorDescriptor InvalidLayerLink = new(
        "RUNCIBLE2005",
        "Layer {1} of {0} has a link '{2}' that cannot be kept: {3}. The image is malformed or hostile; use another base image.");

    public static readonly ErrorDescriptor LayerParentNotDirectory = new(
        "RUNCIBLE2006",
        "Layer {1} of {0} puts '{2}' under '{3}', which is not a directory in the image. The image is malformed; use another base image.");

    public static readonly ErrorDescriptor LayerTooLarge = new(
        "RUNCIBLE2007",
        "Layer {1} of {0} expands to more than {2} bytes ({3}). Runcible stops there to protect the build machine; use a smaller or another base image.");

    public static readonly ErrorDescriptor TooManyLayerEntries = new(
        "RUNCIBLE2008",
        "The image {0} has more than {1} file system entries. Runcible stops there to protect the build machine; use a smaller base image.");

    public static readonly ErrorDescriptor CorruptLayer = new(
        "RUNCIBLE2009",
        "Layer {1} of {0} cannot be read: {2}. The cached blob passed its digest check, so the image itself is damaged (truncated or not a {3} tar); rebuild or re-push it.");

    public static readonly ErrorDescriptor LayerDiffIdMismatch = new(
        "RUNCIBLE2010",
        "Layer {1} of {0} uncompresses to {2}, but the image config says {3} (its diff_id). The image is inconsistent or tampered with; use another base image.");

    public static readonly ErrorDescriptor ExtractionTargetNotEmpty = new(
        "RUNCIBLE2011",
        "The directory '{0}' to extract the root file system into exists and is not empty. Give a new or empty directory.");

    public static readonly ErrorDescriptor RootfsFileTooLarge = new(
        "RUNCIBLE2012",
        "The file {1} in the image {0} is {2} bytes, more than the {3} bytes Runcible reads of it. The image's {1} is unusually large; check the base image.");

    public static readonly ErrorDescriptor ExtractionFailed = new(
        "RUNCIBLE2013",
        "Extracting the root file system into '{0}' failed at '{1}': {2}. Nothing was left behind; check the directory's file system and permissions.");

    public static readonly ErrorDescriptor LayerMetadataTooLarge = new(
        "RUNCIBLE2020",
        "Layer {1} of {0} has a {2} of {3} bytes, more than the {4} bytes Runcible reads of one (names, link targets and extended attributes need far less). The image is malformed or hostile; use another base image.");

    public static readonly ErrorDescriptor LayerPathTooLong = new(
        "RUNCIBLE2021",
        "Layer {1} of {0} puts '{2}' at a path of the tree longer than {3} bytes (symlinks on the way lengthen it). The image is malformed or hostile; use another base image.");

    public static readonly ErrorDescriptor ExtendedAttributeNotSet = new(
        "RUNCIBLE2040",
        "The extended attribute '{1}' of '{0}' was not set by the extraction: {2}. The flattened tree (and a bundle) still carries it.");

    public static readonly ErrorDescriptor ExtractionCleanupFailed = new(
        "RUNCIBLE2041",
        "Extracting the root file system into '{0}' failed at '{1}': {2}. Removing what was written failed too ({4}); remove what is left under '{3}' by hand.");

    public static readonly ErrorDescriptor ExtendedAttributeDropped = new(
        "RUNCIBLE2101",
        "Layer {1} of {0}: the extended attribute '{3}' of '{2}' is not kept ({4}); only user.* and security.capability attributes are carried into the bundle.");

    public static readonly ErrorDescriptor DeviceNodeSkipped = new(
        "RUNCIBLE2102",
        "'{0}' is a device node; creating it needs root, so the extraction as an ordinary user skipped it (its owner and numbers stay in the flattened tree).");
}
