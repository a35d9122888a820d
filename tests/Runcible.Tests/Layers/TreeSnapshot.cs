using System.Globalization;
using System.Security.Cryptography;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Layers;

/// <summary>
/// What an extracted tree is, for comparing two of them: per path its type, mode (with setuid, setgid,
/// sticky), owner, size, content hash, link target and extended attributes, and which paths share an inode;
/// with <c>withTimes</c> also the modification time (whole seconds). Read with find and getfattr, not with our own code.
/// </summary>
internal sealed record TreeSnapshot(IReadOnlyDictionary<string, string> Entries, IReadOnlyList<string> InodeGroups)
{
    public static TreeSnapshot Of(string root, Func<string, bool>? include = null, bool withTimes = false)
    {
        var listing = ProcessRunner.Run("find", [".", "-mindepth", "1", "-printf", "%y\t%#m\t%U\t%G\t%s\t%i\t%n\t%l\t%T@\t%P\\0"], root, timeout: TimeSpan.FromMinutes(5))
            .EnsureSuccess("find").StandardOutput;
        var xattrs = Xattrs(root);
        var entries = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var inodes = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var record in listing.Split('\0').Where(r => r.Trim().Length > 0))
        {
            var f = record.Split('\t');
            var (type, mode, uid, gid, size, inode, links, target, time, path) = (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], string.Join('\t', f[9..]));
            if (include is not null && !include(path))
            {
                continue;
            }

            var content = type == "f" ? Sha256(Path.Combine(root, path)) : "";
            var description = type switch
            {
                "d" => $"dir {mode} {uid}:{gid}",
                "f" => $"file {mode} {uid}:{gid} {size} {content}",
                "l" => $"symlink {uid}:{gid} -> {target}",
                _ => $"{type} {mode} {uid}:{gid} {DeviceNumbers(Path.Combine(root, path))}",
            };
            if (withTimes)
            {
                description += " mtime " + time.Split('.')[0];
            }

            if (xattrs.TryGetValue(path, out var attributes))
            {
                description += " xattrs[" + attributes + "]";
            }

            entries[path] = description;
            if (type == "f" && int.Parse(links, CultureInfo.InvariantCulture) > 1)
            {
                (inodes.TryGetValue(inode, out var group) ? group : inodes[inode] = []).Add(path);
            }
        }

        var groups = inodes.Values.Where(g => g.Count > 1).Select(g => string.Join(" = ", g.Order(StringComparer.Ordinal))).Order(StringComparer.Ordinal).ToList();
        return new TreeSnapshot(entries, groups);
    }

    /// <summary>Asserts the two trees are the same, listing the first differences readably.</summary>
    public static void AssertEqual(TreeSnapshot expected, TreeSnapshot actual, string what)
    {
        var differences = expected.Entries.Keys.Union(actual.Entries.Keys)
            .Where(k => expected.Entries.GetValueOrDefault(k) != actual.Entries.GetValueOrDefault(k))
            .Order(StringComparer.Ordinal)
            .Take(20)
            .Select(k => $"{k}\n    expected: {expected.Entries.GetValueOrDefault(k) ?? "(absent)"}\n    actual:   {actual.Entries.GetValueOrDefault(k) ?? "(absent)"}")
            .ToList();
        Assert.True(differences.Count == 0, $"{what}: {differences.Count}+ paths differ:\n" + string.Join("\n", differences));
        Assert.Equal(expected.InodeGroups, actual.InodeGroups);
    }

    private static Dictionary<string, string> Xattrs(string root)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var dump = ProcessRunner.Run("getfattr", ["-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "."], root, timeout: TimeSpan.FromMinutes(5)).StandardOutput;
        string? current = null;
        var values = new List<string>();
        foreach (var line in dump.Split('\n').Append(""))
        {
            if (line.StartsWith("# file: ", StringComparison.Ordinal))
            {
                current = line["# file: ".Length..].TrimStart('.', '/');
                values.Clear();
            }
            else if (line.Length == 0 && current is not null)
            {
                if (values.Count > 0)
                {
                    result[current] = string.Join(",", values.Order(StringComparer.Ordinal));
                }

                current = null;
            }
            else if (current is not null)
            {
                values.Add(line);
            }
        }

        return result;
    }

    private static string DeviceNumbers(string path) =>
        ProcessRunner.Run("stat", ["-c", "%t:%T", path]).StandardOutput.Trim();

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant()[..16];
    }
}
