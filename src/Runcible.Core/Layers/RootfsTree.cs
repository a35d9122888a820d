using Runcible.Core.Contracts;

namespace Runcible.Core.Layers;

/// <summary>
/// A regular file's content: the layer and entry ordinal whose data won. Hardlinked paths share one,
/// which is how the flattened tree keeps links (also to files of earlier layers, and after the
/// original path was whited out).
/// </summary>
internal sealed class RootfsContent(int layer, long ordinal, long size)
{
    public int Layer { get; } = layer;

    public long Ordinal { get; } = ordinal;

    public long Size { get; } = size;
}

/// <summary>
/// One path of the flattened tree: metadata only, never file data. Parents are always real
/// directories (symlinks met on the way were resolved inside the tree while indexing), so a path of
/// the tree never passes through a symlink.
/// </summary>
internal sealed class RootfsNode
{
    public RootfsNode(string name, RootfsNode? parent, RootfsNodeKind kind)
    {
        Name = name;
        Parent = parent;
        Kind = kind;
        PathBytes = parent is null ? 0 : (parent.Parent is null ? 0 : parent.PathBytes + 1) + System.Text.Encoding.UTF8.GetByteCount(name);
        if (kind == RootfsNodeKind.Directory)
        {
            Children = new Dictionary<string, RootfsNode>(StringComparer.Ordinal);
        }
    }

    public string Name { get; }

    public RootfsNode? Parent { get; internal set; }

    public RootfsNodeKind Kind { get; }

    public Dictionary<string, RootfsNode>? Children { get; }

    public UnixFileMode Mode { get; internal set; }

    public int Uid { get; internal set; }

    public int Gid { get; internal set; }

    public DateTimeOffset ModificationTime { get; internal set; }

    public string? LinkTarget { get; internal set; }

    public int DeviceMajor { get; internal set; }

    public int DeviceMinor { get; internal set; }

    /// <summary><c>user.*</c> and <c>security.capability</c> attributes, by name.</summary>
    public SortedDictionary<string, string>? ExtendedAttributes { get; internal set; }

    public RootfsContent? Content { get; internal set; }

    /// <summary>The layer that last wrote this node (whiteouts and opaque directories hide only lower layers).</summary>
    public int Layer { get; internal set; }

    /// <summary>The path inside the tree, without a leading '/' ("" for the root).</summary>
    public string Path
    {
        get
        {
            // Built from the leaf up in one pass: concatenating level by level costs depth times length.
            var names = new List<string>();
            for (var node = this; node.Parent is not null; node = node.Parent)
            {
                names.Add(node.Name);
            }

            names.Reverse();
            return string.Join('/', names);
        }
    }

    /// <summary>UTF-8 bytes of <see cref="Path"/>, known when the node is made (symlinks resolved on the way can make it far longer than any entry name).</summary>
    public int PathBytes { get; }

    public RootfsNode? Child(string name) => Children is not null && Children.TryGetValue(name, out var child) ? child : null;

    /// <summary>The most symbolic links one walk follows, nested ones included, as the kernel's ELOOP bound.</summary>
    public const int MaxSymlinkHops = 40;

    /// <summary>
    /// Walks <paramref name="components"/> from this node, following symlinks inside the tree (absolute targets from
    /// <paramref name="root"/>, '..' stopping there), creating nothing. Null when a component is missing or a non-directory
    /// is walked through (with <paramref name="directoriesOnly"/>, also when the last one is not a directory);
    /// <paramref name="tooManyLinks"/> when more than <see cref="MaxSymlinkHops"/> links were followed.
    /// </summary>
    public RootfsNode? Walk(RootfsNode root, IEnumerable<string> components, bool directoriesOnly, out bool tooManyLinks)
    {
        tooManyLinks = false;
        var current = this;
        var hops = 0;
        var queue = new Queue<string>(components);
        while (queue.Count > 0)
        {
            var component = queue.Dequeue();
            if (StepsInPlace(component, ref current))
            {
                continue;
            }

            var child = current.Child(component);
            if (child is { Kind: RootfsNodeKind.SymbolicLink })
            {
                if (++hops > MaxSymlinkHops)
                {
                    tooManyLinks = true;
                    return null;
                }

                var target = child.LinkTarget ?? "";
                queue = new Queue<string>(target.Split('/').Concat(queue));
                if (target.StartsWith('/'))
                {
                    current = root;
                }

                continue;
            }

            if (child is null || (child.Kind != RootfsNodeKind.Directory && (directoriesOnly || queue.Count > 0)))
            {
                return null;
            }

            current = child;
        }

        return current;
    }

    /// <summary>
    /// True when <paramref name="component"/> names no child: "" and "." stay, ".." goes to the parent (stopping at the
    /// root, as a path resolved inside a root does); false for a name to look up.
    /// </summary>
    public static bool StepsInPlace(string component, ref RootfsNode current)
    {
        if (component is "" or ".")
        {
            return true;
        }

        if (component == "..")
        {
            current = current.Parent ?? current;
            return true;
        }

        return false;
    }

    /// <summary>The directory's children in ordinal name order.</summary>
    public IEnumerable<RootfsNode> SortedChildren() =>
        Children is null ? [] : Children.Values.OrderBy(c => c.Name, StringComparer.Ordinal);

    internal void CopyMetadataFrom(RootfsNode other)
    {
        Mode = other.Mode;
        Uid = other.Uid;
        Gid = other.Gid;
        ModificationTime = other.ModificationTime;
        ExtendedAttributes = other.ExtendedAttributes;
    }
}
