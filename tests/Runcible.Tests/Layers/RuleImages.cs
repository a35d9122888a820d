using System.Formats.Tar;

namespace Runcible.Tests.Layers;

/// <summary>
/// Small purpose-built images, one per OCI layer rule or kind of entry, written with TarWriter (PAX)
/// and gzipped by <see cref="TestImage"/>. Each comes with spot checks that the rule really is in the
/// image (an absent path, or a fragment of <see cref="TreeSnapshot"/>'s description of a path), so
/// that "equal to umoci" cannot pass on a tree that lost what the image was built to show.
/// </summary>
internal static class RuleImages
{
    public const string Whiteouts = "whiteouts";
    public const string OpaqueMarkerFirst = "opaque-marker-first";
    public const string OpaqueMarkerLast = "opaque-marker-last";
    public const string HardlinksAcrossLayers = "hardlinks-across-layers";
    public const string FileToDirectoryAndBack = "file-to-directory-and-back";
    public const string DirectoryToSymlink = "directory-to-symlink";
    public const string DirectoryOverDirectory = "directory-over-directory";
    public const string SpecialModes = "setuid-setgid-sticky";
    public const string Owners = "non-root-owners";
    public const string ExtendedAttributes = "extended-attributes";
    public const string LongAndNonAsciiNames = "long-and-non-ascii-names";
    public const string FifosAndDevices = "fifos-and-devices";
    public const string AbsoluteSymlinks = "absolute-symlinks";

    /// <summary>security.capability, version 2, cap_net_bind_service permitted and effective (little-endian vfs_cap_data).</summary>
    public static readonly string NetBindServiceCapability = new(
        [(char)1, (char)0, (char)0, (char)2, (char)0, (char)4, (char)0, (char)0, .. Enumerable.Repeat((char)0, 12)]);

    /// <summary>A name written through symlinks to <c>/tmp</c>: it must appear in the tree's /tmp and never in the host's.</summary>
    public const string HostEscapeProbe = "runcible-rule-image-escape-probe";

    public static readonly string LongDirectory = "long/" + new string('d', 120);
    public static readonly string LongFile = LongDirectory + "/ünïcødé-日本語-" + new string('n', 150) + ".txt";

    private static readonly DateTimeOffset Older = DateTimeOffset.FromUnixTimeSeconds(1_500_000_000);
    private static readonly DateTimeOffset Old = DateTimeOffset.FromUnixTimeSeconds(1_600_000_000);
    private static readonly DateTimeOffset Newer = DateTimeOffset.FromUnixTimeSeconds(1_650_000_000);

    public static IReadOnlyList<string> Names { get; } =
    [
        Whiteouts, OpaqueMarkerFirst, OpaqueMarkerLast, HardlinksAcrossLayers, FileToDirectoryAndBack, DirectoryToSymlink,
        DirectoryOverDirectory, SpecialModes, Owners, ExtendedAttributes, LongAndNonAsciiNames, FifosAndDevices, AbsoluteSymlinks,
    ];

    public static TestImage Build(string name) => name switch
    {
        Whiteouts => new TestImage()
            .Layer(w => Write(w,
                Dir("etc/"), File("etc/keep", "kept"), File("etc/gone", "whited out"),
                Dir("var/"), Dir("var/cache/"), File("var/cache/a", "a"), Dir("var/cache/sub/"), File("var/cache/sub/b", "b"),
                File("top-file", "whited out at the root")))
            .Layer(w => Write(w,
                Dir("etc/"), File("etc/.wh.gone", ""), File("etc/.wh.never-existed", ""), File("etc/new", "new"),
                Dir("var/"), File("var/.wh.cache", ""), File(".wh.top-file", "")))
            .Layer(w => Write(w, Dir("var/"), Dir("var/cache/", mode: 0x1C0, time: Newer), File("var/cache/fresh", "recreated after the whiteout"))),

        OpaqueMarkerFirst => OpaqueImage(markerFirst: true),
        OpaqueMarkerLast => OpaqueImage(markerFirst: false),

        HardlinksAcrossLayers => new TestImage()
            .Layer(w => Write(w, Dir("a/"), File("a/orig", "shared by three paths", mode: 0x1A0, uid: 1000, gid: 1000, time: Older), File("a/other", "other")))
            .Layer(w => Write(w,
                Dir("b/"), Hardlink("b/link", "a/orig"), Dir("c/"), Hardlink("c/link2", "b/link"),
                File("b/fresh", "linked in its own layer"), Hardlink("b/fresh-link", "b/fresh")))
            .Layer(w => Write(w, Dir("a/"), File("a/.wh.orig", ""))),

        FileToDirectoryAndBack => new TestImage()
            .Layer(w => Write(w, File("x", "a file first"), Dir("y/"), File("y/inner", "inside a directory first")))
            .Layer(w => Write(w, Dir("x/", mode: 0x1E8), File("x/child", "now under a directory"), File("y", "now a file"))),

        DirectoryToSymlink => new TestImage()
            .Layer(w => Write(w, Dir("d/"), File("d/f", "gone with the directory"), Dir("target/"), File("target/t", "t")))
            .Layer(w => Write(w, Symlink("d", "/target"), Symlink("rel", "target")))
            .Layer(w => Write(w, File("d/through", "written through the absolute symlink"), File("rel/through-rel", "through the relative one"))),

        DirectoryOverDirectory => new TestImage()
            .Layer(w => Write(w, Dir("m/", time: Older), File("m/child", "stays"), Dir("m/sub/")))
            .Layer(w => Write(w, Dir("m/", mode: 0x1C0, uid: 1000, gid: 1001, time: Newer, xattrs: [new("user.note", "second layer")]))),

        SpecialModes => new TestImage()
            .Layer(w => Write(w,
                Dir("bin/"),
                File("bin/su", "setuid root", mode: 0x9ED),
                File("bin/wall", "setgid tty", mode: 0x5ED, gid: 5),
                File("bin/both", "setuid and setgid, not root", mode: 0xDC9, uid: 1000, gid: 1000),
                Dir("tmp/", mode: 0x3FF),
                Dir("srv/", mode: 0x5FD, gid: 50),
                Dir("locked/", mode: 0x140, uid: 1000),
                File("locked/inside", "read-only in a read-only directory", mode: 0x100, uid: 1000),
                Dir("closed/", mode: 0x0),
                Dir("closed/deeper/", mode: 0x1ED),
                File("closed/deeper/file", "behind a mode 0000 directory"))),

        Owners => new TestImage()
            .Layer(w => Write(w,
                Dir("home/"), Dir("home/u/", uid: 1000, gid: 1000), File("home/u/file", "mine", uid: 1000, gid: 1000),
                Symlink("home/u/link", "file", uid: 1000, gid: 1000),
                File("nobody-file", "nobody's", uid: 65534, gid: 65534),
                File("big-ids", "ids past what an octal ustar header holds", uid: 3_000_000, gid: 3_000_001))),

        ExtendedAttributes => new TestImage()
            .Layer(w => Write(w,
                Dir("x/"),
                File("x/plain", "user attributes", xattrs: [new("user.comment", "hello"), new("user.origin", "layer one")]),
                Dir("x/dir/", xattrs: [new("user.dirnote", "on a directory")]),
                File("x/ping", "capability", mode: 0x1ED, xattrs: [new("security.capability", NetBindServiceCapability)]),
                File("x/both", "capability and owner", mode: 0x1E8, uid: 1000, gid: 1000,
                    xattrs: [new("security.capability", NetBindServiceCapability), new("user.origin", "layer one")])))
            .Layer(w => Write(w, Dir("x/"), File("x/plain", "replaced: attributes come from the new entry", xattrs: [new("user.comment", "second")]))),

        LongAndNonAsciiNames => new TestImage()
            .Layer(w => Write(w,
                Dir("long/"), Dir(LongDirectory + "/"),
                File(LongFile, "a PAX path"),
                Symlink("long/link-" + new string('l', 110), LongFile["long/".Length..]),
                Hardlink("long/hard-" + new string('h', 110), LongFile),
                Dir("café/"), File("café/naïve.txt", "non-ASCII"), File("😀.txt", "astral plane"))),

        FifosAndDevices => new TestImage()
            .Layer(w => Write(w,
                Dir("lib/"), Dir("lib/devs/"),
                Device(TarEntryType.CharacterDevice, "lib/devs/null", 1, 3, mode: 0x1B6),
                Device(TarEntryType.CharacterDevice, "lib/devs/big-numbers", 300, 70000, mode: 0x180, uid: 1000),
                Device(TarEntryType.BlockDevice, "lib/devs/loop0", 7, 0, mode: 0x1B0, gid: 6),
                Dir("run/"),
                Fifo("run/pipe", mode: 0x190, uid: 1000, gid: 1000),
                Fifo("run/root-pipe", mode: 0x180))),

        AbsoluteSymlinks => new TestImage()
            .Layer(w => Write(w,
                Dir("usr/"), Dir("usr/lib/"), File("usr/lib/libc.so", "libc"),
                Symlink("lib64", "/usr/lib"), Symlink("usr/lib/self", "/usr/lib/libc.so"),
                Symlink("etc-alt", "/etc/alternatives/missing"),
                Symlink("escape", "/tmp"), Symlink("climb", "../../../../tmp")))
            .Layer(w => Write(w,
                File("lib64/added.so", "through an absolute symlink"), Dir("lib64/sub/", mode: 0x1C0),
                File("escape/" + HostEscapeProbe, "must land in the tree's /tmp, never the host's"),
                File("climb/" + HostEscapeProbe + "-climbed", "'..' stops at the tree's root"))),

        _ => throw new ArgumentException("no rule image " + name, nameof(name)),
    };

    /// <summary>What each image must show: a path and a fragment of its description, or null when the path must be absent.</summary>
    public static IReadOnlyList<(string Path, string? Fragment)> Expectations(string name) => name switch
    {
        Whiteouts => [("etc/gone", null), ("etc/keep", "file"), ("etc/new", "file"), ("top-file", null), ("var/cache/a", null), ("var/cache/sub", null), ("var/cache/fresh", "file"), ("var/cache", "dir 0700")],
        OpaqueMarkerFirst or OpaqueMarkerLast => [("d/x", "file"), ("d/y", null), ("d/sub/z", null), ("d/sub/w", "file"), ("d/new", "file"), ("e/untouched", "file")],
        HardlinksAcrossLayers => [("a/orig", null), ("a/other", "file"), ("b/link", "file 0640 1000:1000"), ("c/link2", "file 0640 1000:1000"), ("b/fresh-link", "file")],
        FileToDirectoryAndBack => [("x", "dir 0750"), ("x/child", "file"), ("y", "file"), ("y/inner", null)],
        DirectoryToSymlink => [("d", "symlink 0:0 -> /target"), ("target/through", "file"), ("target/through-rel", "file"), ("target/t", "file"), ("d/f", null)],
        DirectoryOverDirectory => [("m", "dir 0700 1000:1001"), ("m", "user.note"), ("m/child", "file"), ("m/sub", "dir")],
        SpecialModes => [("bin/su", "file 04755 0:0"), ("bin/wall", "file 02755 0:5"), ("bin/both", "file 06711 1000:1000"), ("tmp", "dir 01777"), ("srv", "dir 02775 0:50"), ("locked", "dir 0500"), ("closed", "dir 0 0:0"), ("closed/deeper/file", "file")],
        Owners => [("home/u", "dir 0755 1000:1000"), ("home/u/link", "symlink 1000:1000"), ("nobody-file", "65534:65534"), ("big-ids", "3000000:3000001")],
        ExtendedAttributes => [("x/plain", "user.comment=0x7365636f6e64"), ("x/dir", "user.dirnote"), ("x/ping", "security.capability=0x0100000200040000"), ("x/both", "file 0750 1000:1000"), ("x/both", "security.capability")],
        LongAndNonAsciiNames => [(LongFile, "file"), ("long/link-" + new string('l', 110), "symlink 0:0 -> " + LongFile["long/".Length..]), ("café/naïve.txt", "file"), ("😀.txt", "file")],
        FifosAndDevices => [("lib/devs/null", "c 0666 0:0 1:3"), ("lib/devs/big-numbers", "c 0600 1000:0 12c:11170"), ("lib/devs/loop0", "b 0660 0:6 7:0"), ("run/pipe", "p 0620 1000:1000")],
        AbsoluteSymlinks => [("tmp/" + HostEscapeProbe, "file"), ("tmp/" + HostEscapeProbe + "-climbed", "file"), ("usr/lib/added.so", "file"), ("usr/lib/sub", "dir 0700"), ("lib64", "symlink 0:0 -> /usr/lib"), ("etc-alt", "symlink 0:0 -> /etc/alternatives/missing")],
        _ => [],
    };

    /// <summary>
    /// Paths whose modification time umoci does not take from the image, so only ours is checked (against
    /// the index). With the opaque marker after the layer's own entries, umoci removes the lower layer's
    /// d/sub/z when it meets the marker, after d/sub's own entry set its time: d/sub keeps the time of the
    /// unpack. A parent no layer lists (tmp, only written through a symlink) umoci creates with the time of
    /// the unpack; the index gives it the epoch, so that the tree is the same every time.
    /// </summary>
    public static IReadOnlyList<string> UmociTimeArtifacts(string name) => name switch
    {
        OpaqueMarkerLast => ["d/sub"],
        AbsoluteSymlinks => ["tmp"],
        _ => [],
    };

    /// <summary>A directory with children from a lower layer, made opaque by the next layer with the marker before or after that layer's own entries in it.</summary>
    private static TestImage OpaqueImage(bool markerFirst) => new TestImage()
        .Layer(w => Write(w, Dir("d/"), File("d/x", "x"), File("d/y", "y"), Dir("d/sub/"), File("d/sub/z", "z"), Dir("e/"), File("e/untouched", "u")))
        .Layer(w =>
        {
            var own = new[] { File("d/new", "new"), File("d/x", "x rewritten by the opaque layer"), Dir("d/sub/"), File("d/sub/w", "w") };
            var marker = File("d/.wh..wh..opq", "");
            Write(w, [Dir("d/", time: Newer), .. markerFirst ? [marker, .. own] : own.Append(marker)]);
        });

    private static void Write(TarWriter writer, params TarEntry[] entries)
    {
        foreach (var entry in entries)
        {
            writer.WriteEntry(entry);
        }
    }

    private static PaxTarEntry File(string name, string content, int mode = 0x1A4, int uid = 0, int gid = 0, DateTimeOffset? time = null, KeyValuePair<string, string>[]? xattrs = null) =>
        Entry(TarEntryType.RegularFile, name, mode, uid, gid, time, xattrs, e => e.DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)));

    private static PaxTarEntry Dir(string name, int mode = 0x1ED, int uid = 0, int gid = 0, DateTimeOffset? time = null, KeyValuePair<string, string>[]? xattrs = null) =>
        Entry(TarEntryType.Directory, name, mode, uid, gid, time, xattrs, _ => { });

    private static PaxTarEntry Symlink(string name, string target, int uid = 0, int gid = 0) =>
        Entry(TarEntryType.SymbolicLink, name, 0x1FF, uid, gid, Old, null, e => e.LinkName = target);

    private static PaxTarEntry Hardlink(string name, string target) =>
        Entry(TarEntryType.HardLink, name, 0x1A4, 0, 0, Old, null, e => e.LinkName = target);

    private static PaxTarEntry Device(TarEntryType type, string name, int major, int minor, int mode, int uid = 0, int gid = 0) =>
        Entry(type, name, mode, uid, gid, Old, null, e =>
        {
            e.DeviceMajor = major;
            e.DeviceMinor = minor;
        });

    private static PaxTarEntry Fifo(string name, int mode, int uid = 0, int gid = 0) =>
        Entry(TarEntryType.Fifo, name, mode, uid, gid, Old, null, _ => { });

    private static PaxTarEntry Entry(TarEntryType type, string name, int mode, int uid, int gid, DateTimeOffset? time, KeyValuePair<string, string>[]? xattrs, Action<PaxTarEntry> complete)
    {
        var entry = new PaxTarEntry(type, name, (xattrs ?? []).Select(x => new KeyValuePair<string, string>("SCHILY.xattr." + x.Key, x.Value)))
        {
            Mode = (UnixFileMode)mode,
            Uid = uid,
            Gid = gid,
            ModificationTime = time ?? Old,
        };
        complete(entry);
        return entry;
    }
}
