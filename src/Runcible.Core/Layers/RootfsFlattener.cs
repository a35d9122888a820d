using System.Formats.Tar;
using System.Text;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;

namespace Runcible.Core.Layers;

/// <summary>
/// The unpack stage: applies an image's layers in order, with the OCI layer rules (whiteouts, opaque
/// directories, replacement, hardlinks), into an index of the final tree that holds metadata only.
/// File contents stay in the layer blobs and are streamed from the layer that won when the tree is
/// written out (<see cref="FlattenedRootfs"/>). Every entry is hostile input: names are normalised
/// inside the root (a leading '/' is dropped; '..' is refused), symlinks met on the way to an entry
/// are resolved inside the tree (as umoci's securejoin does), and every size is bounded.
/// </summary>
internal sealed class RootfsFlattener : IRootfsFlattener
{
    /// <summary>Bump when the flattened stream's bytes change for the same image.</summary>
    public const string FormatVersion = "runcible-flatten/1";

    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueWhiteout = ".wh..wh..opq";

    private readonly FlattenOptions _options;
    private readonly IBuildLog _log;

    public RootfsFlattener(FlattenOptions options, IBuildLog log)
    {
        _options = options;
        _log = log;
    }

    /// <summary>For tests: observes the threads that read the layers.</summary>
    internal ReadAheadHooks? Hooks { get; init; }

    IFlattenedRootfs IRootfsFlattener.Flatten(PulledImage image) => Flatten(image);

    /// <summary>
    /// Layers are read (decompressed, hashed, parsed) on their own threads, several at once
    /// (<see cref="LayerReadAhead"/>); their entries are applied here, on the calling thread, in layer
    /// and entry order, so the tree and the errors are those of reading one layer after another.
    /// </summary>
    public FlattenedRootfs Flatten(PulledImage image)
    {
        var root = new RootfsNode("", null, RootfsNodeKind.Directory) { Mode = (UnixFileMode)0x1ED, ModificationTime = DateTimeOffset.UnixEpoch };
        long entries = 0;

        // Disposing stops and joins every reader, on success and on any failure alike.
        using var layers = new LayerReadAhead(image, _options, Hooks);
        for (var i = 0; i < image.Layers.Count; i++)
        {
            var state = new LayerState(image.Reference, i + 1, i);
            long ordinal = -1;

            // Ends once the layer was read whole and its diff_id verified, or throws its error after the entries before it.
            foreach (var (entry, size, _) in layers.Entries(i))
            {
                ordinal++;
                if (++entries > _options.MaxEntries)
                {
                    throw new RuncibleException(RuncibleErrors.TooManyLayerEntries, image.Reference, _options.MaxEntries);
                }

                Apply(root, state, entry, size, ordinal);
            }

            HideLowerLayersOnce(state.HidingDirectories, i);
        }

        EnsureKernelMountPoints(root);
        return new FlattenedRootfs(image, root, _options);
    }

    private sealed class LayerState(string imageName, int layerNumber, int index)
    {
        public string ImageName { get; } = imageName;

        public int LayerNumber { get; } = layerNumber;

        public int Index { get; } = index;

        /// <summary>Opaque directories and this layer's own whited-out directories: their lower layers' contents are hidden when the layer ends.</summary>
        public HashSet<RootfsNode> HidingDirectories { get; } = new(ReferenceEqualityComparer.Instance);

        public RuncibleException Unsafe(string name, string problem) =>
            new(RuncibleErrors.UnsafeLayerEntryName, ImageName, LayerNumber, Printable(name), problem);
    }

    /// <summary>
    /// Applies one entry's metadata; never its data, nor anything of the reader it came from, which may
    /// have moved on (<paramref name="size"/> was read with the entry).
    /// </summary>
    private void Apply(RootfsNode root, LayerState state, TarEntry entry, long size, long ordinal)
    {
        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes)
        {
            return;
        }

        var components = SplitName(entry.Name, state);
        var kind = KindOf(entry, state);
        if (entry is PaxTarEntry pax && pax.ExtendedAttributes.Keys.Any(k => k.StartsWith("GNU.sparse.", StringComparison.Ordinal)))
        {
            throw new RuncibleException(RuncibleErrors.UnsupportedLayerEntry, state.ImageName, state.LayerNumber, Printable(entry.Name), "GNU sparse file");
        }

        if (components.Count == 0)
        {
            if (kind != RootfsNodeKind.Directory || entry.EntryType == TarEntryType.HardLink)
            {
                throw new RuncibleException(RuncibleErrors.UnsafeRootEntry, state.ImageName, state.LayerNumber, entry.EntryType);
            }

            SetMetadata(root, entry, state);
            root.Layer = state.Index;
            return;
        }

        var hops = 0;
        var parent = ResolveDirectory(root, root, components.Take(components.Count - 1), state, entry.Name, ref hops);
        var name = components[^1];
        if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            ApplyWhiteout(parent, name, state, entry.Name);
            return;
        }

        var existing = parent.Child(name);
        if (entry.EntryType == TarEntryType.HardLink)
        {
            var target = ResolveLinkTarget(root, entry.LinkName, state, entry.Name);
            if (ReferenceEquals(target, existing))
            {
                return;
            }

            var link = CheckPathLength(new RootfsNode(name, parent, target.Kind) { Layer = state.Index, Content = target.Content, LinkTarget = target.LinkTarget }, state, entry.Name);
            Detach(existing);
            link.CopyMetadataFrom(target);
            link.DeviceMajor = target.DeviceMajor;
            link.DeviceMinor = target.DeviceMinor;
            parent.Children![name] = link;
            return;
        }

        if (existing is { Kind: RootfsNodeKind.Directory } && kind == RootfsNodeKind.Directory)
        {
            // Directory over directory: metadata only; the children stay.
            SetMetadata(existing, entry, state);
            existing.Layer = state.Index;
            return;
        }

        var node = CheckPathLength(new RootfsNode(name, parent, kind) { Layer = state.Index }, state, entry.Name);
        Detach(existing);
        SetMetadata(node, entry, state);
        switch (kind)
        {
            case RootfsNodeKind.RegularFile:
                node.Content = new RootfsContent(state.Index, ordinal, size);
                break;
            case RootfsNodeKind.SymbolicLink:
                node.LinkTarget = CheckLinkText(entry.LinkName, state, entry.Name);
                break;
            case RootfsNodeKind.CharacterDevice or RootfsNodeKind.BlockDevice:
                node.DeviceMajor = entry is PosixTarEntry posix ? posix.DeviceMajor : 0;
                node.DeviceMinor = entry is PosixTarEntry posixMinor ? posixMinor.DeviceMinor : 0;
                break;
        }

        parent.Children![name] = node;
    }

    private static RootfsNodeKind KindOf(TarEntry entry, LayerState state) => entry.EntryType switch
    {
        TarEntryType.Directory => RootfsNodeKind.Directory,
        TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile => RootfsNodeKind.RegularFile,
        TarEntryType.SymbolicLink => RootfsNodeKind.SymbolicLink,
        TarEntryType.HardLink => RootfsNodeKind.RegularFile,
        TarEntryType.CharacterDevice => RootfsNodeKind.CharacterDevice,
        TarEntryType.BlockDevice => RootfsNodeKind.BlockDevice,
        TarEntryType.Fifo => RootfsNodeKind.Fifo,
        TarEntryType.SparseFile => throw new RuncibleException(RuncibleErrors.UnsupportedLayerEntry, state.ImageName, state.LayerNumber, Printable(entry.Name), "GNU sparse file"),
        _ => throw new RuncibleException(RuncibleErrors.UnsupportedLayerEntry, state.ImageName, state.LayerNumber, Printable(entry.Name), entry.EntryType.ToString()),
    };

    /// <summary>
    /// The entry name as path components inside the root. Policy: a leading '/' (or './') is dropped,
    /// so absolute names land inside the root; '.' and empty components are skipped; '..' anywhere, NUL
    /// bytes and names past the bound are refused.
    /// </summary>
    private List<string> SplitName(string name, LayerState state)
    {
        if (name.Length == 0)
        {
            throw state.Unsafe(name, "the name is empty");
        }

        if (name.Contains('\0'))
        {
            throw state.Unsafe(name, "the name contains a NUL byte");
        }

        if (Encoding.UTF8.GetByteCount(name) > _options.MaxNameBytes)
        {
            throw state.Unsafe(name[..64] + "…", $"the name is longer than {_options.MaxNameBytes} bytes");
        }

        var components = new List<string>();
        foreach (var component in name.Split('/'))
        {
            if (component is "" or ".")
            {
                continue;
            }

            if (component == "..")
            {
                throw state.Unsafe(name, "it climbs out of its directory with '..'");
            }

            if (Encoding.UTF8.GetByteCount(component) > 255)
            {
                throw state.Unsafe(name, "a component is longer than 255 bytes");
            }

            components.Add(component);
        }

        return components;
    }

    /// <summary>
    /// Walks <paramref name="components"/> from <paramref name="start"/>, following symlinks inside the
    /// tree (absolute targets from the tree's root, '..' stopping at the root), creating missing
    /// directories as extraction would. <paramref name="hops"/> counts the links followed for the
    /// whole path, nested ones included, as the kernel does: a budget per branch would let links that
    /// name each other several times take exponential time.
    /// </summary>
    private RootfsNode ResolveDirectory(RootfsNode root, RootfsNode start, IEnumerable<string> components, LayerState state, string entryName, ref int hops)
    {
        var current = start;
        foreach (var component in components)
        {
            if (RootfsNode.StepsInPlace(component, ref current))
            {
                continue;
            }

            var child = current.Child(component);
            if (child is null)
            {
                child = CheckPathLength(
                    new RootfsNode(component, current, RootfsNodeKind.Directory)
                    {
                        Mode = (UnixFileMode)0x1ED,
                        ModificationTime = DateTimeOffset.UnixEpoch,
                        Layer = state.Index,
                    },
                    state,
                    entryName);
                current.Children![component] = child;
            }

            switch (child.Kind)
            {
                case RootfsNodeKind.Directory:
                    current = child;
                    break;
                case RootfsNodeKind.SymbolicLink:
                    if (++hops > RootfsNode.MaxSymlinkHops)
                    {
                        throw new RuncibleException(RuncibleErrors.InvalidLayerLink, state.ImageName, state.LayerNumber, Printable(entryName), "too many levels of symbolic links on the way");
                    }

                    var target = child.LinkTarget ?? "";
                    current = ResolveDirectory(root, target.StartsWith('/') ? root : current, target.Split('/'), state, entryName, ref hops);
                    break;
                default:
                    throw new RuncibleException(RuncibleErrors.LayerParentNotDirectory, state.ImageName, state.LayerNumber, Printable(entryName), child.Path);
            }
        }

        return current;
    }

    /// <summary>
    /// Holds every path of the tree to the name bound (PATH_MAX), however it was reached: symlinks
    /// resolved on the way can put a short name thousands of directories deep, which no extraction
    /// could create and every walk of the tree would pay for.
    /// </summary>
    private RootfsNode CheckPathLength(RootfsNode node, LayerState state, string entryName) =>
        node.PathBytes > _options.MaxNameBytes
            ? throw new RuncibleException(RuncibleErrors.LayerPathTooLong, state.ImageName, state.LayerNumber, Printable(entryName), _options.MaxNameBytes)
            : node;

    private RootfsNode ResolveLinkTarget(RootfsNode root, string linkName, LayerState state, string entryName)
    {
        var components = SplitLinkName(linkName, state, entryName);
        if (components.Count == 0)
        {
            throw new RuncibleException(RuncibleErrors.InvalidLayerLink, state.ImageName, state.LayerNumber, Printable(entryName), "a hardlink to the root directory");
        }

        var parent = ResolveExistingDirectory(root, components.Take(components.Count - 1), state, entryName);
        var target = parent?.Child(components[^1]);
        return target switch
        {
            null => throw new RuncibleException(RuncibleErrors.InvalidLayerLink, state.ImageName, state.LayerNumber, Printable(entryName), $"its target '{Printable(linkName)}' does not exist in the image"),
            { Kind: RootfsNodeKind.Directory } => throw new RuncibleException(RuncibleErrors.InvalidLayerLink, state.ImageName, state.LayerNumber, Printable(entryName), $"its target '{Printable(linkName)}' is a directory"),
            _ => target,
        };
    }

    private List<string> SplitLinkName(string linkName, LayerState state, string entryName)
    {
        CheckLinkText(linkName, state, entryName);
        var components = new List<string>();
        foreach (var component in linkName.Split('/'))
        {
            if (component is "" or ".")
            {
                continue;
            }

            if (component == "..")
            {
                throw new RuncibleException(RuncibleErrors.InvalidLayerLink, state.ImageName, state.LayerNumber, Printable(entryName), $"its target '{Printable(linkName)}' climbs out with '..'");
            }

            components.Add(component);
        }

        return components;
    }

    private static RootfsNode? ResolveExistingDirectory(RootfsNode root, IEnumerable<string> components, LayerState state, string entryName) =>
        root.Walk(root, components, directoriesOnly: true, out var tooManyLinks) is { } directory ? directory
        : tooManyLinks ? throw new RuncibleException(RuncibleErrors.InvalidLayerLink, state.ImageName, state.LayerNumber, Printable(entryName), "too many levels of symbolic links")
        : null;

    private string CheckLinkText(string linkName, LayerState state, string entryName)
    {
        if (linkName.Length == 0 || linkName.Contains('\0') || Encoding.UTF8.GetByteCount(linkName) > _options.MaxNameBytes)
        {
            throw new RuncibleException(RuncibleErrors.InvalidLayerLink, state.ImageName, state.LayerNumber, Printable(entryName), "its target is empty, holds a NUL byte or is too long");
        }

        return linkName;
    }

    private static void ApplyWhiteout(RootfsNode parent, string name, LayerState state, string entryName)
    {
        if (name == OpaqueWhiteout)
        {
            state.HidingDirectories.Add(parent);
            return;
        }

        var hidden = name[WhiteoutPrefix.Length..];
        if (hidden is "" or "." or ".." || hidden.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            throw new RuncibleException(RuncibleErrors.InvalidWhiteout, state.ImageName, state.LayerNumber, Printable(entryName),
                hidden.StartsWith(WhiteoutPrefix, StringComparison.Ordinal) ? "an unknown special whiteout" : "it names no file");
        }

        // A whiteout hides what lower layers put there, not what this layer adds.
        if (parent.Child(hidden) is { } victim)
        {
            if (victim.Layer < state.Index)
            {
                Detach(victim);
            }
            else
            {
                state.HidingDirectories.Add(victim);
            }
        }
    }

    /// <summary>
    /// Hides lower layers under each of <paramref name="directories"/>, walking each subtree once: a
    /// directory inside another one of the set is covered by the outer walk. A layer can name the same
    /// or nested directories many times; walking each one's subtree would be quadratic.
    /// </summary>
    private static void HideLowerLayersOnce(HashSet<RootfsNode> directories, int layer)
    {
        var covered = new Dictionary<RootfsNode, bool>(ReferenceEqualityComparer.Instance);
        var outermost = directories.Where(d => !HasAncestorIn(d, directories, covered)).ToList();
        foreach (var directory in outermost)
        {
            HideLowerLayers(directory, layer);
        }
    }

    /// <summary>Whether a parent of <paramref name="node"/> is in <paramref name="set"/>, remembering the answer for every node on the way up.</summary>
    private static bool HasAncestorIn(RootfsNode node, HashSet<RootfsNode> set, Dictionary<RootfsNode, bool> known)
    {
        var path = new List<RootfsNode>();
        var current = node.Parent;
        bool answer = false;
        while (current is not null)
        {
            if (known.TryGetValue(current, out var cached))
            {
                answer = cached;
                break;
            }

            if (set.Contains(current))
            {
                answer = true;
                break;
            }

            path.Add(current);
            current = current.Parent;
        }

        // Every node walked has no member of the set between it and where the answer was found.
        foreach (var walked in path)
        {
            known[walked] = answer;
        }

        return answer;
    }

    /// <summary>Removes everything under <paramref name="directory"/> that a layer below <paramref name="layer"/> put there.</summary>
    private static void HideLowerLayers(RootfsNode directory, int layer)
    {
        if (directory.Children is null)
        {
            return;
        }

        foreach (var child in directory.Children.Values.ToList())
        {
            if (child.Layer < layer)
            {
                Detach(child);
            }
            else
            {
                HideLowerLayers(child, layer);
            }
        }
    }

    private static void Detach(RootfsNode? node)
    {
        if (node?.Parent is { } parent)
        {
            parent.Children!.Remove(node.Name);
            node.Parent = null;
        }
    }

    private void SetMetadata(RootfsNode node, TarEntry entry, LayerState state)
    {
        node.Mode = entry.Mode;
        node.Uid = entry.Uid;
        node.Gid = entry.Gid;
        node.ModificationTime = entry.ModificationTime;
        node.ExtendedAttributes = null;
        if (entry is not PaxTarEntry pax)
        {
            return;
        }

        foreach (var (key, value) in pax.ExtendedAttributes)
        {
            if (!key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
            {
                continue;
            }

            var name = key["SCHILY.xattr.".Length..];
            string? problem = null;
            if (!name.StartsWith("user.", StringComparison.Ordinal) && name != "security.capability")
            {
                problem = "not a user.* or security.capability attribute";
            }
            else if (value.Contains('\uFFFD'))
            {
                // System.Formats.Tar decodes PAX values as UTF-8, so a binary value cannot be carried exactly.
                problem = "its binary value cannot be carried exactly";
            }

            if (problem is not null)
            {
                _log.LogWarning(RuncibleErrors.ExtendedAttributeDropped, state.ImageName, state.LayerNumber, Printable(entry.Name), name, problem);
                continue;
            }

            node.ExtendedAttributes ??= new SortedDictionary<string, string>(StringComparer.Ordinal);
            node.ExtendedAttributes[name] = value;
        }
    }

    /// <summary>
    /// /dev, /proc and /sys are always real, empty directories: runc mounts over them, and an image whose
    /// /dev is a symlink must never reach runc (CVE-2026-41579).
    /// </summary>
    private static void EnsureKernelMountPoints(RootfsNode root)
    {
        foreach (var name in new[] { "dev", "proc", "sys" })
        {
            var existing = root.Child(name);
            var mode = existing is { Kind: RootfsNodeKind.Directory } ? existing.Mode : (UnixFileMode)0x1ED;
            Detach(existing);
            root.Children![name] = new RootfsNode(name, root, RootfsNodeKind.Directory)
            {
                Mode = mode & (UnixFileMode)0x1FF,
                ModificationTime = DateTimeOffset.UnixEpoch,
                Layer = int.MaxValue,
            };
        }
    }

    private static string Printable(string name) =>
        new(name.Select(c => char.IsControl(c) ? '?' : c).Take(300).ToArray());
}
