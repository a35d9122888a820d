using System.Globalization;
using System.Text;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Layers;

namespace Runcible.Core.RuntimeSpec;

/// <summary>A container user resolved to ids, as runc's user lookup does it.</summary>
internal sealed record ResolvedUser(uint Uid, uint Gid, IReadOnlyList<uint> AdditionalGids, string Home);

/// <summary>Resolves <c>user</c>, <c>uid</c>, <c>user:group</c>, <c>uid:gid</c>, <c>uid:group</c>, <c>user:gid</c> against the rootfs.</summary>
internal static class UserResolver
{
    private const uint MaxId = 4294967294;

    private sealed record PasswdEntry(string Name, uint Uid, uint Gid, string Home);

    private sealed record GroupEntry(string Name, uint Gid, string[] Members);

    /// <summary>
    /// Checks <c>ContainerUser</c>'s form (<c>user</c>, <c>uid</c>, <c>user:group</c>, <c>uid:gid</c>; ids in range) without
    /// an image: the settings validator calls it so a typo fails before the pull. Returns the user and group parts.
    /// </summary>
    public static (string User, string? Group) CheckSyntax(string spec)
    {
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var userPart = colon < 0 ? spec : spec[..colon];
        var groupPart = colon < 0 ? null : spec[(colon + 1)..];
        if (userPart.Length == 0 || groupPart is { Length: 0 } || (groupPart?.Contains(':', StringComparison.Ordinal) ?? false))
        {
            throw new RuncibleException(RuncibleErrors.BadUserId, spec);
        }

        foreach (var part in new[] { userPart, groupPart })
        {
            if (part is not null && IsNumeric(part))
            {
                _ = ParseId(part, spec);
            }
        }

        return (userPart, groupPart);
    }

    public static ResolvedUser Resolve(string spec, IRootfsReader rootfs, int maxBytes)
    {
        var (userPart, groupPart) = CheckSyntax(spec);

        var passwd = new Lazy<List<PasswdEntry>>(() => ReadPasswd(rootfs, maxBytes));
        var groups = new Lazy<List<GroupEntry>>(() => ReadGroups(rootfs, maxBytes));

        PasswdEntry? entry;
        uint uid;
        if (IsNumeric(userPart))
        {
            uid = ParseId(userPart, spec);
            entry = passwd.Value.FirstOrDefault(p => p.Uid == uid);
        }
        else
        {
            entry = passwd.Value.FirstOrDefault(p => p.Name == userPart)
                ?? throw new RuncibleException(RuncibleErrors.UnknownUser, spec, "user", userPart, "passwd");
            uid = entry.Uid;
        }

        uint gid;
        if (groupPart is null)
        {
            // runc: a uid without a passwd entry runs with gid 0.
            gid = entry?.Gid ?? 0;
        }
        else if (IsNumeric(groupPart))
        {
            gid = ParseId(groupPart, spec);
        }
        else
        {
            gid = (groups.Value.FirstOrDefault(g => g.Name == groupPart)
                ?? throw new RuncibleException(RuncibleErrors.UnknownUser, spec, "group", groupPart, "group")).Gid;
        }

        var additional = new SortedSet<uint>();
        if (entry is not null)
        {
            foreach (var group in groups.Value.Where(g => g.Members.Contains(entry.Name, StringComparer.Ordinal)))
            {
                if (group.Gid != gid)
                {
                    additional.Add(group.Gid);
                }
            }
        }

        var home = string.IsNullOrEmpty(entry?.Home) ? "/" : entry.Home;
        return new ResolvedUser(uid, gid, additional.ToList(), home);
    }

    private static bool IsNumeric(string value) => value.Length > 0 && value.All(char.IsAsciiDigit);

    private static uint ParseId(string value, string spec) =>
        ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id <= MaxId
            ? (uint)id
            : throw new RuncibleException(RuncibleErrors.BadUserId, spec);

    private static IEnumerable<string[]> ReadRecords(IRootfsReader rootfs, string path, int maxBytes, int minFields)
    {
        var bytes = rootfs.ReadFile(path, maxBytes);
        if (bytes is null)
        {
            yield break;
        }

        foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n'))
        {
            var trimmed = line.TrimEnd('\r');
            if (trimmed.Length == 0 || trimmed[0] == '#' || trimmed[0] == '+' || trimmed[0] == '-')
            {
                continue;
            }

            var fields = trimmed.Split(':');
            if (fields.Length >= minFields)
            {
                yield return fields;
            }
        }
    }

    // Malformed lines are skipped, as libc does; an entry with an unparsable id cannot match anything.
    private static List<PasswdEntry> ReadPasswd(IRootfsReader rootfs, int maxBytes) =>
        ReadRecords(rootfs, "/etc/passwd", maxBytes, 7)
            .Where(f => TryId(f[2], out _) && TryId(f[3], out _))
            .Select(f => new PasswdEntry(f[0], Id(f[2]), Id(f[3]), f[5]))
            .ToList();

    private static List<GroupEntry> ReadGroups(IRootfsReader rootfs, int maxBytes) =>
        ReadRecords(rootfs, "/etc/group", maxBytes, 4)
            .Where(f => TryId(f[2], out _))
            .Select(f => new GroupEntry(f[0], Id(f[2]), f[3].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
            .ToList();

    private static bool TryId(string value, out uint id)
    {
        id = 0;
        if (!IsNumeric(value) || !ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed > MaxId)
        {
            return false;
        }

        id = (uint)parsed;
        return true;
    }

    private static uint Id(string value) => TryId(value, out var id) ? id : 0;
}
