using System.Formats.Tar;
using System.Security.Cryptography;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.IO;

namespace Runcible.Core.Bundle;

/// <summary>
/// The publish output as tar entries under the working directory: owned by root (read-only to the
/// app user), files 0644 or 0755 (the apphost and anything executable in the publish output),
/// directories 0755, sorted by ordinal path, every time fixed. Symbolic links are kept as links.
/// </summary>
internal sealed class AppLayer
{
    private const UnixFileMode DirectoryMode = (UnixFileMode)0b111_101_101;
    private const UnixFileMode ExecutableMode = (UnixFileMode)0b111_101_101;
    private const UnixFileMode RegularFileMode = (UnixFileMode)0b110_100_100;
    private const UnixFileMode AnyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    private readonly string _publishDirectory;
    private readonly string _workingDirectory;
    private readonly string? _appHostName;
    private readonly DateTimeOffset _time;

    /// <param name="publishDirectory">The publish output directory.</param>
    /// <param name="workingDirectory">Absolute container path, e.g. <c>/app</c>.</param>
    /// <param name="appHostName">The apphost's file name (made 0755 even if the file system lost the bit), or null.</param>
    /// <param name="time">Every entry's modification time.</param>
    public AppLayer(string publishDirectory, string workingDirectory, string? appHostName, DateTimeOffset time)
    {
        _publishDirectory = Path.GetFullPath(publishDirectory);
        _workingDirectory = workingDirectory.Trim('/');
        _appHostName = appHostName;
        _time = time;
    }

    /// <summary>
    /// Refuses a working directory that the base image makes something other than a directory, at any component
    /// (<see cref="RuncibleErrors.WorkingDirectoryNotADirectoryInImage"/>): the layer's entries would land through a
    /// symlink such as <c>/app -&gt; /etc</c> for any extractor that follows it, or replace a file.
    /// </summary>
    public static void CheckPlacement(IRootfsReader baseRootfs, string workingDirectory, string imageName)
    {
        if (baseRootfs.FindNonDirectoryComponent(workingDirectory) is { } found)
        {
            var what = found.Kind switch
            {
                RootfsNodeKind.SymbolicLink => "a symbolic link",
                RootfsNodeKind.RegularFile => "a regular file",
                RootfsNodeKind.CharacterDevice => "a character device",
                RootfsNodeKind.BlockDevice => "a block device",
                RootfsNodeKind.Fifo => "a FIFO",
                _ => found.Kind.ToString(),
            };
            throw new RuncibleException(RuncibleErrors.WorkingDirectoryNotADirectoryInImage, workingDirectory, imageName, found.Path, what);
        }
    }

    /// <summary>Writes the working directory (and its parents) and the publish output with names under <paramref name="rootfsPrefix"/>.</summary>
    public void WriteEntries(TarWriter writer, string rootfsPrefix)
    {
        var segments = _workingDirectory.Split('/');
        for (var i = 1; i <= segments.Length; i++)
        {
            writer.WriteEntry(Directory(rootfsPrefix + string.Join('/', segments.Take(i)) + "/"));
        }

        var basePrefix = rootfsPrefix + _workingDirectory + "/";
        foreach (var (relative, fullPath, info) in Enumerate())
        {
            var name = basePrefix + relative;
            if (info.LinkTarget is { } target)
            {
                writer.WriteEntry(Entry(TarEntryType.SymbolicLink, name, ExecutableMode, target));
            }
            else if (info is DirectoryInfo)
            {
                writer.WriteEntry(Directory(name + "/"));
            }
            else
            {
                var executable = relative == _appHostName || (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(fullPath) & AnyExecute) != 0);
                var entry = Entry(TarEntryType.RegularFile, name, executable ? ExecutableMode : RegularFileMode, null);
                using var data = OpenPublishedFile(fullPath);
                entry.DataStream = data;
                writer.WriteEntry(entry);
            }
        }
    }

    /// <summary>
    /// The SHA-256 of the layer as a standalone uncompressed tar (names relative to the rootfs,
    /// with the end-of-archive marker): what an OCI image would list as its diff id.
    /// </summary>
    public string ComputeDigest()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var sink = new HashingWriteStream(hash))
        using (var writer = new TarWriter(sink, TarEntryFormat.Gnu, leaveOpen: true))
        {
            WriteEntries(writer, "");
        }

        return "sha256:" + Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    private static FileStream OpenPublishedFile(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RuncibleException(e, RuncibleErrors.PublishOutputUnreadable, path, e.Message);
        }
    }

    private IEnumerable<(string Relative, string FullPath, FileSystemInfo Info)> Enumerate()
    {
        try
        {
            return EnumerateSorted();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RuncibleException(e, RuncibleErrors.PublishOutputUnreadable, _publishDirectory, e.Message);
        }
    }

    private List<(string Relative, string FullPath, FileSystemInfo Info)> EnumerateSorted()
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false, ReturnSpecialDirectories = false };
        return new DirectoryInfo(_publishDirectory)
            .EnumerateFileSystemInfos("*", options)
            .Select(info => (Relative: Path.GetRelativePath(_publishDirectory, info.FullName).Replace('\\', '/'), info.FullName, Info: info))
            .OrderBy(e => e.Relative, StringComparer.Ordinal)
            .ToList();
    }

    private GnuTarEntry Directory(string name) => Entry(TarEntryType.Directory, name, DirectoryMode, null);

    private GnuTarEntry Entry(TarEntryType type, string name, UnixFileMode mode, string? linkTarget) => RootOwnedEntry(type, name, mode, _time, linkTarget);

    /// <summary>An entry owned by root:root (numeric and by name), as every entry Runcible itself adds to a bundle.</summary>
    internal static GnuTarEntry RootOwnedEntry(TarEntryType type, string name, UnixFileMode mode, DateTimeOffset time, string? linkTarget = null)
    {
        var entry = new GnuTarEntry(type, name)
        {
            Mode = mode,
            Uid = 0,
            Gid = 0,
            UserName = "root",
            GroupName = "root",
            ModificationTime = time,
        };
        if (linkTarget is not null)
        {
            entry.LinkName = linkTarget;
        }

        return entry;
    }
}
