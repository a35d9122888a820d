using System.Formats.Tar;
using System.Security.Cryptography;
using Runcible.Core.Diagnostics;
using Runcible.Core.Layers;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Layers;

/// <summary>
/// A temp "host" directory holding a sentinel file (mode 0400), a sibling directory whose name has
/// the target's as a prefix (<c>dest-evil</c>) and the extraction target <c>dest</c>. Hostile images
/// are flattened, written as the bundle's tar stream and extracted by GNU tar as root into
/// <c>dest</c>; afterwards everything in the host directory outside <c>dest</c> must be exactly as
/// before (same entries, modes, contents, link targets), or the flatten must have failed with a
/// coded error before producing anything.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class EscapeHarness : IDisposable
{
    private readonly TempDirectory _temp = new("escape");
    private readonly IReadOnlyDictionary<string, string> _hostBefore;
    private int _runs;

    public EscapeHarness()
    {
        Directory.CreateDirectory(Host);
        Directory.CreateDirectory(Target);
        Directory.CreateDirectory(Path.Combine(Host, "dest-evil"));
        File.WriteAllText(Sentinel, "sentinel");
        File.SetUnixFileMode(Sentinel, UnixFileMode.UserRead);
        File.WriteAllText(Path.Combine(Host, "dest-evil", "secret"), "secret");
        Directory.CreateDirectory(Work);
        _hostBefore = HostState();
    }

    /// <summary>The directory that must never change outside <see cref="Target"/>.</summary>
    public string Host => _temp.Combine("host");

    /// <summary>A file outside the target that hostile entries aim at (absolute path).</summary>
    public string Sentinel => Path.Combine(Host, "sentinel");

    /// <summary>Where the flattened stream is extracted (its <c>rootfs/</c> is the container's root).</summary>
    public string Target => Path.Combine(Host, "dest");

    private string Work => _temp.Combine("work");

    /// <summary>Flattens the image; on success writes and extracts its stream with GNU tar into a fresh target and returns the rootfs path.</summary>
    public string FlattenAndExtract(TestImage image, FlattenOptions? options = null)
    {
        using var rootfs = Flatten(image, options);
        var tar = Path.Combine(Work, $"out{_runs}.tar");
        FlattenAssertions.WriteTar(rootfs, tar);
        AssertStreamStaysUnderPrefix(tar);
        var target = Path.Combine(Target, $"run{_runs}");
        Directory.CreateDirectory(target);
        ProcessRunner.Run("tar", ["--numeric-owner", "-xpf", tar, "-C", target], timeout: TimeSpan.FromMinutes(1)).EnsureSuccess("tar -xpf");
        AssertHostUnchanged();
        return Path.Combine(target, "rootfs");
    }

    /// <summary>Asserts the flatten fails with <paramref name="code"/>, leaves no output and touches nothing outside.</summary>
    public RuncibleException AssertRefused(TestImage image, string code, FlattenOptions? options = null)
    {
        var pulled = Pull(image);
        var before = Directory.GetFileSystemEntries(Work).Order(StringComparer.Ordinal).ToList();
        var error = Assert.Throws<RuncibleException>(() => FlattenAssertions.Flatten(pulled, options: options));
        Assert.Equal(code, error.Code);
        Assert.Equal(before, Directory.GetFileSystemEntries(Work).Order(StringComparer.Ordinal).ToList());
        AssertHostUnchanged();
        return error;
    }

    public FlattenedRootfs Flatten(TestImage image, FlattenOptions? options = null) => FlattenAssertions.Flatten(Pull(image), options: options);

    public Runcible.Core.Oci.PulledImage Pull(TestImage image)
    {
        _runs++;
        return image.Pull(Path.Combine(Work, $"layout{_runs}"), Path.Combine(Work, $"cache{_runs}"));
    }

    public void AssertHostUnchanged()
    {
        var after = HostState();
        var differences = _hostBefore.Keys.Union(after.Keys)
            .Where(k => _hostBefore.GetValueOrDefault(k) != after.GetValueOrDefault(k))
            .Select(k => $"{k}: {_hostBefore.GetValueOrDefault(k) ?? "(absent)"} -> {after.GetValueOrDefault(k) ?? "(absent)"}")
            .ToList();
        Assert.True(differences.Count == 0, "outside the target changed:\n" + string.Join("\n", differences));
    }

    /// <summary>Every name in the stream is under <c>rootfs/</c> without '..', and every hardlink target too.</summary>
    public static void AssertStreamStaysUnderPrefix(string tarPath)
    {
        using var file = File.OpenRead(tarPath);
        AssertStreamStaysUnderPrefix(file, "rootfs/");
    }

    public static void AssertStreamStaysUnderPrefix(Stream tar, string prefix)
    {
        using var reader = new TarReader(tar, leaveOpen: true);
        while (reader.GetNextEntry() is { } entry)
        {
            AssertUnder(entry.Name, prefix);
            if (entry.EntryType == TarEntryType.HardLink)
            {
                AssertUnder(entry.LinkName, prefix);
            }
        }
    }

    public void Dispose() => _temp.Dispose();

    private static void AssertUnder(string name, string prefix)
    {
        Assert.StartsWith(prefix, name, StringComparison.Ordinal);
        Assert.DoesNotContain("..", name.Split('/'));
        Assert.DoesNotContain('\0', name);
    }

    /// <summary>Path → type, mode, content hash or link target, for everything under Host except the target (lstat, never following links).</summary>
    private Dictionary<string, string> HostState()
    {
        var state = new Dictionary<string, string>(StringComparer.Ordinal);
        var pending = new Stack<string>([Host]);
        while (pending.Count > 0)
        {
            var directory = pending.Pop();
            foreach (var path in Directory.EnumerateFileSystemEntries(directory))
            {
                if (path == Target)
                {
                    continue;
                }

                var info = new FileInfo(path);
                if (info.LinkTarget is { } link)
                {
                    state[path] = "symlink -> " + link;
                    continue;
                }

                var mode = File.GetUnixFileMode(path);
                if (info.Attributes.HasFlag(FileAttributes.Directory))
                {
                    state[path] = $"dir {mode}";
                    pending.Push(path);
                }
                else
                {
                    state[path] = $"file {mode} {Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)))}";
                }
            }
        }

        return state;
    }
}
