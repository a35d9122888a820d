using System.Formats.Tar;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.IO;
using Runcible.Core.Oci;

namespace Runcible.Core.Layers;

/// <summary>
/// The flattened tree of one image: an index of paths and metadata whose file contents stay in the
/// layer blobs. Written out as one tar stream, in a deterministic order that reads each layer once:
/// directories (sorted, parents first), then symlinks, devices and FIFOs (sorted), then regular files
/// in the order of the layers and entries their contents come from, then hardlinks (sorted) to the
/// first path (in sorted order) of each linked file.
/// </summary>
internal sealed class FlattenedRootfs : IFlattenedRootfs, IRootfsReader
{
    private readonly PulledImage _image;
    private readonly FlattenOptions _options;

    internal FlattenedRootfs(PulledImage image, RootfsNode root, FlattenOptions options)
    {
        _image = image;
        Root = root;
        _options = options;
    }

    public RootfsNode Root { get; }

    public string CacheKey => CacheKeyOf(_image);

    /// <summary>The flattened stream's identity, known before anything is flattened: the flattener's format and the image.</summary>
    public static string CacheKeyOf(PulledImage image) => $"{RootfsFlattener.FormatVersion}\n{image.ManifestDigest}";

    public IRootfsReader Reader => this;

    /// <summary>Every node below the root, depth first in sorted name order (parents before children).</summary>
    public IEnumerable<RootfsNode> Nodes()
    {
        var stack = new Stack<RootfsNode>(Root.SortedChildren().Reverse());
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            yield return node;
            foreach (var child in node.SortedChildren().Reverse())
            {
                stack.Push(child);
            }
        }
    }

    /// <summary>The plan the stream and the extraction follow: which node carries each content, which link to it.</summary>
    internal OutputPlan Plan()
    {
        var nodes = Nodes().ToList();
        var primaries = new Dictionary<RootfsContent, RootfsNode>(ReferenceEqualityComparer.Instance);
        var links = new List<(RootfsNode Link, RootfsNode Primary)>();
        foreach (var node in nodes.Where(n => n.Kind == RootfsNodeKind.RegularFile))
        {
            if (primaries.TryGetValue(node.Content!, out var primary))
            {
                links.Add((node, primary));
            }
            else
            {
                primaries[node.Content!] = node;
            }
        }

        return new OutputPlan(
            nodes.Where(n => n.Kind == RootfsNodeKind.Directory).ToList(),
            nodes.Where(n => n.Kind is RootfsNodeKind.SymbolicLink or RootfsNodeKind.CharacterDevice or RootfsNodeKind.BlockDevice or RootfsNodeKind.Fifo).ToList(),
            new SortedDictionary<int, Dictionary<long, RootfsNode>>(
                primaries.Values.GroupBy(n => n.Content!.Layer).ToDictionary(g => g.Key, g => g.ToDictionary(n => n.Content!.Ordinal))),
            links);
    }

    internal sealed record OutputPlan(
        IReadOnlyList<RootfsNode> Directories,
        IReadOnlyList<RootfsNode> Specials,
        IReadOnlyDictionary<int, Dictionary<long, RootfsNode>> FilesByLayer,
        IReadOnlyList<(RootfsNode Link, RootfsNode Primary)> HardLinks);

    public void WriteEntries(TarWriter writer, string prefix)
    {
        var plan = Plan();
        foreach (var node in plan.Directories.Concat(plan.Specials))
        {
            writer.WriteEntry(Entry(node, prefix, null));
        }

        StreamFiles(plan, (node, data) =>
        {
            var entry = Entry(node, prefix, null);
            entry.DataStream = data;
            writer.WriteEntry(entry);
        });

        foreach (var (link, primary) in plan.HardLinks)
        {
            writer.WriteEntry(Entry(link, prefix, prefix + primary.Path));
        }
    }

    /// <summary>
    /// Reads each layer that holds winning file contents once, handing each content's stream to
    /// <paramref name="write"/>: exactly the indexed size, or a corrupt-layer error when the blob ends
    /// early (gzip does not report truncation by itself, and the blob may have changed since indexing).
    /// </summary>
    internal void StreamFiles(OutputPlan plan, Action<RootfsNode, Stream> write)
    {
        foreach (var (layerIndex, files) in plan.FilesByLayer)
        {
            using var reader = new LayerReader(_image.Layers[layerIndex], layerIndex + 1, _image.Reference, _options, hashContent: false);
            long ordinal = -1;
            var remaining = files.Count;
            while (remaining > 0 && reader.Next() is { } entry)
            {
                ordinal++;
                if (!files.TryGetValue(ordinal, out var node))
                {
                    continue;
                }

                if (entry.Length != node.Content!.Size || entry.DataStream is null && node.Content.Size > 0)
                {
                    throw reader.Corrupt(new InvalidDataException($"entry {ordinal} changed between reads"));
                }

                // Only reading the layer is translated into a corrupt-layer error: a failing output
                // (disk full, closed pipe, an extraction step) must surface as itself.
                write(node, new KnownLengthStream(reader.DataOf(entry), node.Content.Size, reader));
                remaining--;
            }

            if (remaining > 0)
            {
                throw reader.Corrupt(new EndOfStreamException("the layer ended before all its files were read"));
            }
        }
    }

    private static TarEntry Entry(RootfsNode node, string prefix, string? hardLinkTarget)
    {
        var type = hardLinkTarget is not null ? TarEntryType.HardLink : node.Kind switch
        {
            RootfsNodeKind.Directory => TarEntryType.Directory,
            RootfsNodeKind.RegularFile => TarEntryType.RegularFile,
            RootfsNodeKind.SymbolicLink => TarEntryType.SymbolicLink,
            RootfsNodeKind.CharacterDevice => TarEntryType.CharacterDevice,
            RootfsNodeKind.BlockDevice => TarEntryType.BlockDevice,
            _ => TarEntryType.Fifo,
        };
        var name = prefix + node.Path + (node.Kind == RootfsNodeKind.Directory ? "/" : "");
        PosixTarEntry entry = node.ExtendedAttributes is { Count: > 0 } xattrs && hardLinkTarget is null
            ? new PaxTarEntry(type, name, xattrs.Select(x => new KeyValuePair<string, string>("SCHILY.xattr." + x.Key, x.Value)))
            : new GnuTarEntry(type, name);
        entry.Mode = node.Mode;
        entry.Uid = node.Uid;
        entry.Gid = node.Gid;
        entry.UserName = "";
        entry.GroupName = "";
        entry.ModificationTime = ClampTime(node.ModificationTime);
        if (node.Kind == RootfsNodeKind.SymbolicLink && hardLinkTarget is null)
        {
            entry.LinkName = node.LinkTarget!;
        }

        if (hardLinkTarget is not null)
        {
            entry.LinkName = hardLinkTarget;
        }

        if (node.Kind is RootfsNodeKind.CharacterDevice or RootfsNodeKind.BlockDevice && hardLinkTarget is null)
        {
            entry.DeviceMajor = node.DeviceMajor;
            entry.DeviceMinor = node.DeviceMinor;
        }

        return entry;
    }

    // Whole seconds within what a ustar/GNU header holds: deterministic, and no writer exceptions for odd layer times.
    // The extractor sets the same times, so that the stream and an extraction give the same tree.
    internal static DateTimeOffset ClampTime(DateTimeOffset time)
    {
        var seconds = Math.Clamp(time.ToUnixTimeSeconds(), 0, 8589934591);
        return DateTimeOffset.FromUnixTimeSeconds(seconds);
    }

    public byte[]? ReadFile(string path, int maxBytes)
    {
        var node = Resolve(path);
        if (node is not { Kind: RootfsNodeKind.RegularFile })
        {
            return null;
        }

        if (node.Content!.Size > maxBytes)
        {
            throw new RuncibleException(RuncibleErrors.RootfsFileTooLarge, _image.Reference, path, node.Content.Size, maxBytes);
        }

        byte[]? result = null;
        var plan = new OutputPlan([], [], new Dictionary<int, Dictionary<long, RootfsNode>> { [node.Content.Layer] = new() { [node.Content.Ordinal] = node } }, []);
        StreamFiles(plan, (_, data) =>
        {
            result = new byte[node.Content.Size];
            data.ReadExactly(result);
        });
        return result;
    }

    public (string Path, RootfsNodeKind Kind)? FindNonDirectoryComponent(string path)
    {
        var current = Root;
        var walked = "";
        foreach (var component in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            walked += "/" + component;
            if (current.Child(component) is not { } child)
            {
                return null;
            }

            if (child.Kind != RootfsNodeKind.Directory)
            {
                return (walked, child.Kind);
            }

            current = child;
        }

        return null;
    }

    /// <summary>The node at an absolute path, following symlinks inside the tree (absolute targets from its root, '..' stopping there).</summary>
    public RootfsNode? Resolve(string path) => Root.Walk(Root, path.Split('/'), directoriesOnly: false, out _);

    public void Dispose()
    {
    }

    /// <summary>
    /// A layer entry's data with its length known from the index, so TarWriter can stream it into an
    /// unseekable archive (the bundle's compressor) without buffering: it only needs Length up front.
    /// Ending before that length is the layer's corrupt-layer error (coded here, whoever reads), never a short file.
    /// </summary>
    private sealed class KnownLengthStream(Stream inner, long length, LayerReader layer) : ForwardReadStream
    {
        private long _position;

        public override bool CanSeek => true;

        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => Seek(value, SeekOrigin.Begin);
        }

        public override int Read(Span<byte> buffer)
        {
            var wanted = (int)Math.Min(buffer.Length, length - _position);
            var read = inner.Read(buffer[..wanted]);
            if (read == 0 && wanted > 0)
            {
                throw layer.Corrupt(new EndOfStreamException($"the layer ended {length - _position} bytes before the end of a file"));
            }

            _position += read;
            return read;
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            var target = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => length + offset,
            };
            if (target != _position)
            {
                throw new NotSupportedException("a layer entry's data is read forward only");
            }

            return _position;
        }
    }
}
