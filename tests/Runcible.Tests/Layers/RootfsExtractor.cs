using Microsoft.Win32.SafeHandles;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.IO;
using Runcible.Core.Layers;

namespace Runcible.Tests.Layers;

/// <summary>What an extraction did.</summary>
/// <param name="Directory">The directory that now holds the tree.</param>
/// <param name="OwnersKept">True when run as root: every path has the owner of the index. Otherwise the caller owns everything and the index (<see cref="FlattenedRootfs.Root"/>) still has the original owners.</param>
/// <param name="SkippedDevices">Device nodes not created (as an ordinary user), as absolute paths inside the tree.</param>
/// <param name="SkippedAttributes">Extended attributes not set (<c>path: name</c>): refused by the kernel or the file system for an ordinary user or that kind of node.</param>
internal sealed record RootfsExtraction(string Directory, bool OwnersKept, IReadOnlyList<string> SkippedDevices, IReadOnlyList<string> SkippedAttributes);

/// <summary>
/// Extracts a <see cref="FlattenedRootfs"/> into a directory, for the tests (the product never extracts: the
/// bundle is written from the index and the layers). As root the
/// tree is exact: owners, modes (setuid, setgid, sticky), times, extended attributes, hardlinks sharing
/// an inode, FIFOs and device nodes. As an ordinary user the caller owns everything, device nodes are
/// skipped with RUNCIBLE2102 and attributes the kernel refuses (security.capability) with RUNCIBLE2040.
/// <para>
/// Every node is created from the index, whose parents are always real directories created before
/// it, and nothing follows a symlink: files are opened O_CREAT|O_EXCL|O_NOFOLLOW, owners set with
/// lchown/fchown, times with utimensat(AT_SYMLINK_NOFOLLOW), attributes with lsetxattr/fsetxattr.
/// Order: directories (parents first), symlinks, devices and FIFOs, files streamed from the layers
/// reading each layer once (the order of <see cref="FlattenedRootfs.WriteEntries"/>), hardlinks, then
/// the directories' metadata deepest first so that creating children cannot change it afterwards.
/// The target must be new or an empty directory; a failure removes everything created and throws
/// RUNCIBLE2013.
/// </para>
/// </summary>
internal sealed class RootfsExtractor
{
    private const uint PrivateDirectoryMode = 0x1C0; // 0700: an ordinary user must be able to fill directories whose final mode forbids it
    private const uint PrivateFileMode = 0x180; // 0600 until the final mode is set
    private const int CopyBufferBytes = 1 << 16;

    private readonly IBuildLog _log;

    public RootfsExtractor(IBuildLog log)
    {
        _log = log;
    }

    public RootfsExtraction Extract(FlattenedRootfs rootfs, string targetDirectory)
    {
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(targetDirectory));
        var existed = PrepareTarget(target, out var createdTop);
        var run = new Run(target, PosixFileCalls.RunningAsRoot, _log);
        try
        {
            run.ExtractAll(rootfs);
        }
        catch (Exception e)
        {
            var cleanupProblem = RemoveCreated(target, existed, createdTop);
            var (at, cause) = e is ExtractionStepException step ? (step.At, step.InnerException!) : (run.Current, e);
            if (cleanupProblem is not null)
            {
                throw new RuncibleException(cause, RuncibleErrors.ExtractionCleanupFailed, target, at, cause.Message, existed ? target : createdTop, cleanupProblem);
            }

            throw new RuncibleException(cause, RuncibleErrors.ExtractionFailed, target, at, cause.Message);
        }

        return new RootfsExtraction(target, run.AsRoot, run.SkippedDevices, run.SkippedAttributes);
    }

    /// <summary>
    /// Refuses anything but a missing path or an empty real directory, and creates the missing one with
    /// its missing parents; <paramref name="createdTop"/> is the topmost directory this created.
    /// </summary>
    private static bool PrepareTarget(string target, out string createdTop)
    {
        var info = new DirectoryInfo(target);
        if (info.LinkTarget is not null || File.Exists(target) || info.Exists && info.EnumerateFileSystemInfos().Any())
        {
            throw new RuncibleException(RuncibleErrors.ExtractionTargetNotEmpty, target);
        }

        createdTop = target;
        if (info.Exists)
        {
            return true;
        }

        for (var parent = Path.GetDirectoryName(createdTop); parent is not null && !ExistsAsAnything(parent); parent = Path.GetDirectoryName(parent))
        {
            createdTop = parent;
        }

        try
        {
            Directory.CreateDirectory(target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            RemoveCreated(target, false, createdTop);
            throw new RuncibleException(e, RuncibleErrors.ExtractionFailed, target, "/", e.Message);
        }

        return false;
    }

    // A file or a dangling symlink in the way is the caller's, never something to remove afterwards.
    private static bool ExistsAsAnything(string path)
    {
        try
        {
            File.GetAttributes(path);
            return true;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Removes what the extraction created; returns why that failed, or null.</summary>
    private static string? RemoveCreated(string target, bool targetExisted, string createdTop)
    {
        try
        {
            if (targetExisted)
            {
                foreach (var child in Directory.EnumerateFileSystemEntries(target))
                {
                    RemoveTree(child);
                }
            }
            else if (ExistsAsAnything(createdTop))
            {
                RemoveTree(createdTop);
            }

            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }

    /// <summary>Deletes a path and what is below it without following symlinks, opening up directories an ordinary user made unwritable.</summary>
    private static void RemoveTree(string path)
    {
        var attributes = File.GetAttributes(path);
        if (attributes.HasFlag(FileAttributes.ReparsePoint) || !attributes.HasFlag(FileAttributes.Directory))
        {
            File.Delete(path);
            return;
        }

        try
        {
            PosixFileCalls.ChangeModeNoFollow(path, PrivateDirectoryMode);
        }
        catch (IOException)
        {
            // Not ours to change (root needs no permission); the enumeration says if it matters.
        }

        foreach (var child in Directory.EnumerateFileSystemEntries(path))
        {
            RemoveTree(child);
        }

        Directory.Delete(path);
    }

    /// <summary>A failure at one path of the tree, carrying that path to the RUNCIBLE2013 message.</summary>
    private sealed class ExtractionStepException(string at, Exception inner) : Exception(inner.Message, inner)
    {
        public string At { get; } = at;
    }

    private sealed class Run(string target, bool asRoot, IBuildLog log)
    {
        public bool AsRoot { get; } = asRoot;

        public List<string> SkippedDevices { get; } = [];

        public List<string> SkippedAttributes { get; } = [];

        /// <summary>The path being written, for failures that come from reading the layers.</summary>
        public string Current { get; private set; } = "/";

        public void ExtractAll(FlattenedRootfs rootfs)
        {
            var plan = rootfs.Plan();
            foreach (var directory in plan.Directories)
            {
                Step(directory, () => PosixFileCalls.MakeDirectory(HostPath(directory), PrivateDirectoryMode));
            }

            foreach (var special in plan.Specials)
            {
                Step(special, () => CreateSpecial(special));
            }

            rootfs.StreamFiles(plan, WriteFile);

            foreach (var (link, primary) in plan.HardLinks)
            {
                Step(link, () => PosixFileCalls.MakeHardLink(HostPath(primary), HostPath(link)));
            }

            // Deepest first, the root last: a directory's time is final only once nothing more is created in it.
            foreach (var directory in plan.Directories.Reverse().Append(rootfs.Root))
            {
                Step(directory, () => FinishDirectory(directory));
            }
        }

        private string HostPath(RootfsNode node) => node.Parent is null ? target : Path.Combine(target, node.Path);

        private void Step(RootfsNode node, Action action)
        {
            Current = "/" + node.Path;
            try
            {
                action();
            }
            catch (Exception e) when (e is not RuncibleException and not ExtractionStepException)
            {
                throw new ExtractionStepException(Current, e);
            }
        }

        private void CreateSpecial(RootfsNode node)
        {
            var path = HostPath(node);
            switch (node.Kind)
            {
                case RootfsNodeKind.SymbolicLink:
                    PosixFileCalls.MakeSymbolicLink(node.LinkTarget!, path);
                    break;
                case RootfsNodeKind.Fifo:
                    PosixFileCalls.MakeFifo(path, PrivateFileMode);
                    break;
                case RootfsNodeKind.CharacterDevice or RootfsNodeKind.BlockDevice when !AsRoot:
                    SkippedDevices.Add("/" + node.Path);
                    log.LogWarning(RuncibleErrors.DeviceNodeSkipped, "/" + node.Path);
                    return;
                default:
                    PosixFileCalls.MakeDevice(path, node.Kind == RootfsNodeKind.BlockDevice, PrivateFileMode, node.DeviceMajor, node.DeviceMinor);
                    break;
            }

            if (AsRoot)
            {
                PosixFileCalls.ChangeOwnerNoFollow(path, node.Uid, node.Gid);
            }

            if (node.Kind != RootfsNodeKind.SymbolicLink)
            {
                // After the owner: chown clears setuid and setgid. Symlinks have no mode of their own.
                PosixFileCalls.ChangeModeNoFollow(path, ModeBits(node));
            }

            SetAttributes(node, (name, value) => PosixFileCalls.TrySetAttributeNoFollow(path, name, value));
            PosixFileCalls.SetTimesNoFollow(path, TimeOf(node));
        }

        private void WriteFile(RootfsNode node, Stream data)
        {
            Current = "/" + node.Path;
            SafeFileHandle? handle = null;
            FileStream? file = null;
            try
            {
                handle = new SafeFileHandle(PosixFileCalls.CreateFile(HostPath(node), PrivateFileMode), ownsHandle: true);
                file = new FileStream(handle, FileAccess.Write, bufferSize: 0);
            }
            catch (Exception e)
            {
                handle?.Dispose();
                throw new ExtractionStepException(Current, e);
            }

            using (file)
            {
                var buffer = new byte[CopyBufferBytes];
                int read;
                // Reads stay outside the step's catch: a read failure is the layer's, reported as such by StreamFiles.
                while ((read = data.Read(buffer)) > 0)
                {
                    Step(node, () => file.Write(buffer, 0, read));
                }

                Step(node, () =>
                {
                    var descriptor = (int)handle.DangerousGetHandle();
                    if (AsRoot)
                    {
                        PosixFileCalls.ChangeOwner(descriptor, node.Uid, node.Gid);
                    }

                    PosixFileCalls.ChangeMode(descriptor, ModeBits(node));
                    // After chown, which drops security.capability.
                    SetAttributes(node, (name, value) => PosixFileCalls.TrySetAttribute(descriptor, name, value));
                    PosixFileCalls.SetTimes(descriptor, TimeOf(node));
                });
            }
        }

        private void FinishDirectory(RootfsNode directory)
        {
            var descriptor = PosixFileCalls.OpenDirectoryNoFollow(HostPath(directory));
            try
            {
                if (AsRoot)
                {
                    PosixFileCalls.ChangeOwner(descriptor, directory.Uid, directory.Gid);
                }

                PosixFileCalls.ChangeMode(descriptor, ModeBits(directory));
                SetAttributes(directory, (name, value) => PosixFileCalls.TrySetAttribute(descriptor, name, value));
                PosixFileCalls.SetTimes(descriptor, TimeOf(directory));
            }
            finally
            {
                PosixFileCalls.Close(descriptor);
            }
        }

        /// <summary>
        /// Sets the node's attributes. Skipped with RUNCIBLE2040 when the kernel or file system refuses
        /// one for a reason extraction cannot change: user.* on anything but files and directories, no
        /// attribute support, or (as an ordinary user) security.capability without CAP_SETFCAP.
        /// </summary>
        private void SetAttributes(RootfsNode node, Func<string, byte[], int> trySet)
        {
            if (node.ExtendedAttributes is null)
            {
                return;
            }

            foreach (var (name, value) in node.ExtendedAttributes)
            {
                var userAttributeOnSpecial = name.StartsWith("user.", StringComparison.Ordinal) && node.Kind is not (RootfsNodeKind.RegularFile or RootfsNodeKind.Directory);
                var errno = userAttributeOnSpecial ? PosixFileCalls.ErrorNotPermitted : trySet(name, System.Text.Encoding.UTF8.GetBytes(value));
                if (errno == 0)
                {
                    continue;
                }

                var reason = errno switch
                {
                    _ when userAttributeOnSpecial => "the kernel allows user.* attributes only on files and directories",
                    PosixFileCalls.ErrorNotSupported => "the target file system does not support it",
                    PosixFileCalls.ErrorNotPermitted when !AsRoot => "an ordinary user may not set it",
                    _ => throw new PosixFileCalls.CallFailedException("setxattr " + name, errno),
                };
                SkippedAttributes.Add($"/{node.Path}: {name}");
                log.LogWarning(RuncibleErrors.ExtendedAttributeNotSet, "/" + node.Path, name, reason);
            }
        }

        private static uint ModeBits(RootfsNode node) => (uint)node.Mode & 0xFFF;

        private static long TimeOf(RootfsNode node) => FlattenedRootfs.ClampTime(node.ModificationTime).ToUnixTimeSeconds();
    }
}
