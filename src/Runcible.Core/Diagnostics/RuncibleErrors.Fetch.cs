namespace Runcible.Core.Diagnostics;

// Fetch stage, image level (1100–1199): references, manifests, platforms, local sources, the content cache.
internal static partial class RuncibleErrors
{
    public static readonly ErrorDescriptor InvalidImageReference = new(
        "RUNCIBLE1101",
        "'{0}' is not a valid image reference: {1}. Write it as [registry[:port]/]repository[:tag][@sha256:<64 hex>], e.g. mcr.microsoft.com/dotnet/aspnet:10.0, or as oci-layout:<dir>[:tag], oci-archive:<file>[:tag], docker-archive:<file>.");

    public static readonly ErrorDescriptor NoMatchingPlatform = new(
        "RUNCIBLE1102",
        "The image {0} has no variant for {1} (the runtime identifier's platform). It has: {2}. Choose a base image built for {1}, or publish for one of those platforms (-r).");

    public static readonly ErrorDescriptor MalformedImageDocument = new(
        "RUNCIBLE1103",
        "The {1} of {0} is not a valid image document: {2}. The image is damaged or not a container image; rebuild or re-push it.");

    public static readonly ErrorDescriptor ImageDigestMismatch = new(
        "RUNCIBLE1104",
        "The {1} {2} of {0} arrived with digest {3} and {4} bytes where {5} bytes were expected. Something altered it on the way (a proxy, a corrupt registry store); nothing was cached. Try again; if it persists, re-push the image.");

    public static readonly ErrorDescriptor ImageDocumentTooLarge = new(
        "RUNCIBLE1105",
        "The {1} of {0} is {2} bytes, more than the {3} bytes Runcible accepts for it. Check that the reference names a container image.");

    public static readonly ErrorDescriptor NotCachedOffline = new(
        "RUNCIBLE1106",
        "{0} is not in the content cache ({1}) and RuncOffline is true, so it cannot be fetched. Publish once online (or without RuncOffline) so the cache holds it, or use a local source (oci-layout:, oci-archive:, docker-archive:).");

    public static readonly ErrorDescriptor UnsupportedLayerMediaType = new(
        "RUNCIBLE1107",
        "The image {0} has a layer of media type '{1}', which is not an image layer Runcible can unpack (OCI or Docker tar, tar+gzip, tar+zstd).");

    public static readonly ErrorDescriptor LocalSourceInvalid = new(
        "RUNCIBLE1108",
        "The local image source '{0}' cannot be used: {1}.");

    public static readonly ErrorDescriptor LocalImageNotFound = new(
        "RUNCIBLE1109",
        "The local image source '{0}' has no image '{1}'. It has: {2}. Name one of those (oci-layout:<dir>:<tag>, oci-archive:<file>:<tag>, docker-archive:<file>:<repo:tag>).");

    public static readonly ErrorDescriptor ContentCacheUnusable = new(
        "RUNCIBLE1110",
        "The content cache '{0}' cannot be used: {1}. Check its permissions and free space, or point RuncCacheDirectory elsewhere.");

    public static readonly ErrorDescriptor CachedBasePartMismatch = new(
        "RUNCIBLE1111",
        "The cached compressed base part '{0}' {1}; it is not used, and the base part is compressed again. Something other than Runcible changed the cache; check who can write to RuncCacheDirectory.");

    public static readonly ErrorDescriptor CacheDirectoryNotPrivate = new(
        "RUNCIBLE1112",
        "The cache directory '{0}' {1}: whoever can write to it can put files into every bundle built from it. Run 'chown {2} {0}' and 'chmod 700 {0}' if it is yours, or point RuncCacheDirectory at a directory of your own (it is created 0700).");
}
