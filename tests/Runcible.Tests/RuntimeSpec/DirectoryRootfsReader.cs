using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Layers;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>An <see cref="IRootfsReader"/> over an extracted directory, resolving symlinks inside the tree.</summary>
internal sealed class DirectoryRootfsReader(string root) : IRootfsReader
{
    public byte[]? ReadFile(string path, int maxBytes)
    {
        var resolved = Resolve(path, 0);
        if (resolved is null)
        {
            return null;
        }

        var info = new FileInfo(resolved);
        if (!info.Exists || info.LinkTarget is not null)
        {
            return null;
        }

        if (info.Length > maxBytes)
        {
            throw new RuncibleException(RuncibleErrors.InternalError, $"{path} is larger than {maxBytes} bytes");
        }

        return File.ReadAllBytes(resolved);
    }

    public (string Path, RootfsNodeKind Kind)? FindNonDirectoryComponent(string path)
    {
        var walked = "";
        foreach (var component in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            walked += "/" + component;
            var info = new FileInfo(root + walked);
            if (info.LinkTarget is not null)
            {
                return (walked, RootfsNodeKind.SymbolicLink);
            }

            if (info.Exists)
            {
                return (walked, RootfsNodeKind.RegularFile);
            }

            if (!Directory.Exists(root + walked))
            {
                return null;
            }
        }

        return null;
    }

    private string? Resolve(string path, int depth)
    {
        if (depth > 40)
        {
            return null;
        }

        var parts = new List<string>();
        var pending = new Queue<string>(path.Split('/', StringSplitOptions.RemoveEmptyEntries));
        while (pending.Count > 0)
        {
            var part = pending.Dequeue();
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }

                continue;
            }

            var candidate = Path.Combine([root, .. parts, part]);
            var info = new FileInfo(candidate);
            if (info.LinkTarget is { } target)
            {
                var rest = string.Join('/', pending);
                var next = target.StartsWith('/') ? target : "/" + string.Join('/', parts) + "/" + target;
                return Resolve(next + "/" + rest, depth + 1);
            }

            parts.Add(part);
        }

        return Path.Combine([root, .. parts]);
    }
}
