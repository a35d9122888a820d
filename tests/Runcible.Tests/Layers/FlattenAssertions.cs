using System.Formats.Tar;
using System.Text.RegularExpressions;
using Runcible.Core.Diagnostics;
using Runcible.Core.Layers;
using Runcible.Core.Oci;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Layers;

/// <summary>Flatten, write, extract with GNU tar, and compare with umoci's rootfs of the same image.</summary>
internal static class FlattenAssertions
{
    /// <summary>/dev, /proc and /sys are made real empty directories on purpose (CVE-2026-41579), unlike umoci.</summary>
    public static bool OutsideKernelMountPoints(string path) =>
        !(path is "dev" or "proc" or "sys" || path.StartsWith("dev/", StringComparison.Ordinal) || path.StartsWith("proc/", StringComparison.Ordinal) || path.StartsWith("sys/", StringComparison.Ordinal));

    public static FlattenedRootfs Flatten(PulledImage image, IBuildLog? log = null, FlattenOptions? options = null) =>
        new RootfsFlattener(options ?? new FlattenOptions(), log ?? NullBuildLog.Instance).Flatten(image);

    /// <summary>Writes the flattened stream under <c>rootfs/</c> to <paramref name="tarPath"/>.</summary>
    public static void WriteTar(FlattenedRootfs rootfs, string tarPath)
    {
        using var file = File.Create(tarPath);
        using var writer = new TarWriter(file, TarEntryFormat.Gnu, leaveOpen: true);
        rootfs.WriteEntries(writer, "rootfs/");
    }

    /// <summary>Our flattened stream extracted as root with GNU tar: the tree a bundle's users get.</summary>
    public static string ExtractWithTar(FlattenedRootfs rootfs, string directory)
    {
        Directory.CreateDirectory(directory);
        var tarPath = directory + ".tar";
        WriteTar(rootfs, tarPath);
        ProcessRunner.Run("tar", ["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", tarPath, "-C", directory], timeout: TimeSpan.FromMinutes(5))
            .EnsureSuccess("tar -x of the flattened stream");
        File.Delete(tarPath);
        return Path.Combine(directory, "rootfs");
    }

    /// <summary>Our <see cref="RootfsExtractor"/> into <paramref name="directory"/> (new or empty), as the calling thread's user.</summary>
    public static string ExtractWithExtractor(FlattenedRootfs rootfs, string directory, IBuildLog? log = null)
    {
        new RootfsExtractor(log ?? NullBuildLog.Instance).Extract(rootfs, directory);
        return directory;
    }

    /// <summary>
    /// <see cref="AssertSameTree"/> including modification times, for the extractor, which sets every
    /// time from the index. (GNU tar restores a directory's time before the stream's later entries land
    /// in it, since the stream puts all directories first, so a tar extraction's directory times are not comparable.)
    /// </summary>
    public static void AssertSameTreeAndTimes(string expectedRoot, string actualRoot, string what, IReadOnlyCollection<string>? timesNotCompared = null)
    {
        TreeSnapshot Snapshot(string root)
        {
            var snapshot = TreeSnapshot.Of(root, OutsideKernelMountPoints, withTimes: true);
            return timesNotCompared is null ? snapshot : snapshot with
            {
                Entries = snapshot.Entries.ToDictionary(e => e.Key, e => timesNotCompared.Contains(e.Key) ? Regex.Replace(e.Value, @" mtime -?\d+", "") : e.Value),
            };
        }

        TreeSnapshot.AssertEqual(Snapshot(expectedRoot), Snapshot(actualRoot), what);
    }

    /// <summary>The oracle: <c>umoci unpack</c> of the layout's tag, as root.</summary>
    public static string UmociUnpack(string layout, string tag, string bundle)
    {
        ProcessRunner.Run("umoci", ["unpack", "--image", layout + ":" + tag, bundle], timeout: TimeSpan.FromMinutes(5))
            .EnsureSuccess("umoci unpack " + layout);
        return Path.Combine(bundle, "rootfs");
    }

    public static void AssertSameTree(string expectedRoot, string actualRoot, string what) =>
        TreeSnapshot.AssertEqual(
            TreeSnapshot.Of(expectedRoot, OutsideKernelMountPoints),
            TreeSnapshot.Of(actualRoot, OutsideKernelMountPoints),
            what);

    public static void AssertKernelMountPointsAreEmptyDirectories(string root)
    {
        foreach (var name in new[] { "dev", "proc", "sys" })
        {
            var path = Path.Combine(root, name);
            Assert.True(Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null, name + " is a real directory");
            Assert.Empty(Directory.EnumerateFileSystemEntries(path));
        }
    }
}
