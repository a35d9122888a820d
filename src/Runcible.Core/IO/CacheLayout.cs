namespace Runcible.Core.IO;

/// <summary>
/// The one map of the build cache (<c>RuncCacheDirectory</c>): the name of every directory and file under its root.
/// The stores ask it for their paths (docs/architecture.md); <see cref="CacheDirectory"/> checks the directories it lists.
/// </summary>
internal static class CacheLayout
{
    // Under the cache root.
    private const string Content = "content";
    private const string BaseParts = "bundle-base";
    private const string Trash = "replaced";
    private const string RootfsFiles = "rootfs-files";

    // Under the content store.
    private const string Blobs = "blobs";
    private const string Temporary = "tmp";
    private const string Refs = "refs";

    // Beside what a verification record vouches for (content store, base parts).
    private const string Verified = "verified";

    /// <summary>The directories under the cache root, parents first (deeper ones are checked where they are used).</summary>
    public static readonly IReadOnlyList<string> Subdirectories =
    [
        Content,
        $"{Content}/{Blobs}",
        $"{Content}/{Blobs}/sha256",
        $"{Content}/{Blobs}/sha512",
        $"{Content}/{Temporary}",
        $"{Content}/{Refs}",
        $"{Content}/{Verified}",
        $"{Content}/{Verified}/sha256",
        $"{Content}/{Verified}/sha512",
        BaseParts,
        $"{BaseParts}/{Verified}",
        Trash,
        RootfsFiles,
    ];

    /// <summary>The content store (<c>ContentCache</c>): verified blobs by digest and the tags they resolved from.</summary>
    public static string ContentDirectory(string cacheRoot) => Path.Combine(cacheRoot, Content);

    /// <summary>Where the files of a flattened image read by the config stage are remembered (<c>DeferredRootfsFlattener</c>).</summary>
    public static string RootfsFilesDirectory(string cacheRoot) => Path.Combine(cacheRoot, RootfsFiles);

    /// <summary>Where a republish puts the tarball it replaced, to be freed by the next build.</summary>
    public static string TrashDirectory(string cacheRoot) => Path.Combine(cacheRoot, Trash);

    /// <summary>The compressed base part named <paramref name="fileName"/>.</summary>
    public static string BasePartPath(string cacheRoot, string fileName) => Path.Combine(cacheRoot, BaseParts, fileName);

    /// <summary>The verification record of the base part at <paramref name="basePartPath"/>.</summary>
    public static string BasePartRecordPath(string basePartPath) =>
        Path.Combine(Path.GetDirectoryName(basePartPath)!, Verified, Path.GetFileName(basePartPath));

    /// <summary>The blob of a digest (<paramref name="algorithm"/>:<paramref name="encoded"/>) in the content store.</summary>
    public static string BlobPath(string contentDirectory, string algorithm, string encoded) =>
        Path.Combine(contentDirectory, Blobs, algorithm, encoded);

    /// <summary>The verification record of a blob in the content store.</summary>
    public static string BlobRecordPath(string contentDirectory, string algorithm, string encoded) =>
        Path.Combine(contentDirectory, Verified, algorithm, encoded);

    /// <summary>A blob being downloaded, on the content store's file system so it can be renamed into place.</summary>
    public static string TemporaryBlobPath(string contentDirectory, string fileName) => Path.Combine(contentDirectory, Temporary, fileName);

    /// <summary>The remembered manifest digest for a source and tag, under its hashed <paramref name="key"/>.</summary>
    public static string RefPath(string contentDirectory, string key) => Path.Combine(contentDirectory, Refs, key);
}
