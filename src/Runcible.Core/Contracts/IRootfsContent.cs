using System.Formats.Tar;

namespace Runcible.Core.Contracts;

/// <summary>
/// The base image's flattened root filesystem as the bundle writer consumes it: a deterministic
/// stream of tar entries. The unpack stage's flattened tree implements it.
/// </summary>
internal interface IRootfsContent
{
    /// <summary>
    /// Identifies the exact bytes <see cref="WriteEntries"/> produces for a given prefix (for
    /// example the base manifest digest plus the flattener's format version); the bundle writer
    /// caches the compressed base part under it. Two sources with the same key must write the same entries.
    /// </summary>
    string CacheKey { get; }

    /// <summary>
    /// Writes every entry below the root (not the root directory itself), in a deterministic order,
    /// with names starting with <paramref name="prefix"/> (which ends in '/'). Must not dispose the writer.
    /// </summary>
    void WriteEntries(TarWriter writer, string prefix);
}
