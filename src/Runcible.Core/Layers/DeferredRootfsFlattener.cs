using System.Formats.Tar;
using System.Text;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.IO;
using Runcible.Core.Oci;

namespace Runcible.Core.Layers;

/// <summary>
/// Flattens an image only when its tree is really needed. A republish whose compressed base part is
/// already cached (see <see cref="BundleWriter"/>) never writes the rootfs entries, and the few files
/// the config stage reads (<c>/etc/passwd</c>, <c>/etc/group</c>) are remembered per image under
/// <c>&lt;cache&gt;/rootfs-files</c>; so such a build reads no layer at all. What a read returns is fixed
/// by <see cref="FlattenedRootfs.CacheKeyOf"/> (the image's manifest digest and the flattener's format),
/// which is why remembering it is sound.
/// </summary>
internal sealed class DeferredRootfsFlattener : IRootfsFlattener
{
    private readonly RootfsFlattener _flattener;
    private readonly string _memoDirectory;

    /// <param name="memoDirectory">Where file reads are remembered, one directory per image.</param>
    public DeferredRootfsFlattener(RootfsFlattener flattener, string memoDirectory)
    {
        _flattener = flattener;
        _memoDirectory = memoDirectory;
    }

    public IFlattenedRootfs Flatten(PulledImage image) => new DeferredRootfs(_flattener, image, _memoDirectory);

    private sealed class DeferredRootfs : IFlattenedRootfs, IRootfsReader
    {
        private const byte Absent = 0;
        private const byte Present = 1;

        private readonly RootfsFlattener _flattener;
        private readonly PulledImage _image;
        private readonly string _directory;
        private FlattenedRootfs? _tree;
        private bool _directoryChecked;

        public DeferredRootfs(RootfsFlattener flattener, PulledImage image, string memoDirectory)
        {
            _flattener = flattener;
            _image = image;
            CacheKey = FlattenedRootfs.CacheKeyOf(image);
            _directory = Path.Combine(memoDirectory, Hash(CacheKey));
        }

        public string CacheKey { get; }

        public IRootfsReader Reader => this;

        private FlattenedRootfs Tree => _tree ??= _flattener.Flatten(_image);

        public void WriteEntries(TarWriter writer, string prefix) => Tree.WriteEntries(writer, prefix);

        public byte[]? ReadFile(string path, int maxBytes)
        {
            var memo = MemoPath(path);
            if (TryReadMemo(memo, maxBytes, out var remembered))
            {
                return remembered;
            }

            // Errors (a file over maxBytes, a damaged layer) propagate and are not remembered.
            var bytes = Tree.ReadFile(path, maxBytes);
            WriteMemo(memo, bytes);
            return bytes;
        }

        public (string Path, RootfsNodeKind Kind)? FindNonDirectoryComponent(string path)
        {
            // Remembered like a file read, as "<kind> <path>"; a distinct key, which no file path can be.
            var memo = MemoPath("\0non-directory-component " + path);
            if (TryReadMemo(memo, 8192, out var remembered))
            {
                if (remembered is null)
                {
                    return null;
                }

                var text = Encoding.UTF8.GetString(remembered);
                var space = text.IndexOf(' ');
                if (space > 0 && Enum.TryParse<RootfsNodeKind>(text[..space], out var kind))
                {
                    return (text[(space + 1)..], kind);
                }
            }

            var found = Tree.FindNonDirectoryComponent(path);
            WriteMemo(memo, found is { } f ? Encoding.UTF8.GetBytes(f.Kind + " " + f.Path) : null);
            return found;
        }

        public void Dispose() => _tree?.Dispose();

        /// <summary>Where the answer for <paramref name="key"/> is remembered; the image's memo directory is checked (<see cref="CacheDirectory.Check"/>) before it is first read.</summary>
        private string MemoPath(string key)
        {
            if (!_directoryChecked)
            {
                CacheDirectory.Check(_directory);
                _directoryChecked = true;
            }

            return Path.Combine(_directory, Hash(key));
        }

        private static bool TryReadMemo(string memo, int maxBytes, out byte[]? bytes)
        {
            bytes = null;
            byte[] stored;
            try
            {
                var info = new FileInfo(memo);
                // Larger than the caller allows: let the tree give the coded too-large error.
                if (!info.Exists || info.Length - 1 > maxBytes)
                {
                    return false;
                }

                stored = File.ReadAllBytes(memo);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }

            switch (stored)
            {
                case [Absent]:
                    return true;
                case [Present, ..]:
                    bytes = stored[1..];
                    return true;
                default:
                    return false;
            }
        }

        // Written to a temporary file and renamed, so a reader sees a whole entry or none. Failing to
        // remember only costs the next build a flatten.
        private void WriteMemo(string memo, byte[]? bytes)
        {
            var temp = memo + "." + Guid.NewGuid().ToString("N") + ".tmp";
            try
            {
                CacheDirectory.Create(_directory);
                using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
                {
                    file.WriteByte(bytes is null ? Absent : Present);
                    if (bytes is not null)
                    {
                        file.Write(bytes);
                    }
                }

                File.Move(temp, memo, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException || (e is RuncibleException coded && coded.Error == RuncibleErrors.ContentCacheUnusable))
            {
                try
                {
                    File.Delete(temp);
                }
                catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
                {
                }
            }
        }

        private static string Hash(string text) =>
            Digest.ComputeSha256(Encoding.UTF8.GetBytes(text)).Encoded;
    }
}
