using System.Security.Cryptography;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Oci;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Layers;

/// <summary>
/// Every fixture image flattened by us, written as a tar stream and extracted by GNU tar as root, is the
/// tree umoci unpacks from the same image: types, modes, owners, sizes, contents, link targets,
/// extended attributes and shared inodes; so is our <see cref="Runcible.Core.Layers.RootfsExtractor"/>'s
/// extraction, modification times included.
/// </summary>
public class FixtureFlattenTests
{
    /// <summary>A fixture layout (<c>path:tag</c>) pulled for linux-x64 into <paramref name="cache"/>.</summary>
    internal static PulledImage Pull(string layoutReference, string cache) =>
        new ImagePuller(new ContentCache(cache), (r, p) => throw new InvalidOperationException(), new ImagePullerOptions(), NullBuildLog.Instance)
            .PullAsync("oci-layout:" + layoutReference, PlatformSelector.FromRuntimeIdentifier("linux-x64"), TestContext.Current.CancellationToken).GetAwaiter().GetResult();

    [Theory]
    [InlineData(FixtureImages.Busybox)]
    [InlineData(FixtureImages.RuntimeDeps)]
    [InlineData(FixtureImages.Runtime)]
    [InlineData(FixtureImages.AspNet)]
    [InlineData(FixtureImages.MultiArch)]
    public void TheFlattenedStreamAndTheExtractionAreUmocisRootfs(string image)
    {
        using var temp = new TempDirectory("flatten");
        var layout = FixtureImages.LayoutPath(image);
        var tag = "latest";
        if (image == FixtureImages.MultiArch)
        {
            // umoci unpacks manifests, not indexes: give it the amd64 image as skopeo resolves it.
            layout = temp.Combine("amd64-layout");
            ProcessRunner.Run("skopeo", ["copy", "--quiet", "--insecure-policy", "--override-arch", "amd64", "--override-os", "linux", FixtureImages.SkopeoReference(image), "oci:" + layout + ":amd64"])
                .EnsureSuccess("skopeo copy amd64");
            tag = "amd64";
        }

        var pulled = Pull(FixtureImages.LayoutPath(image) + ":latest", temp.Combine("cache"));
        using var rootfs = FlattenAssertions.Flatten(pulled);
        var ours = FlattenAssertions.ExtractWithTar(rootfs, temp.Combine("ours"));
        var umoci = FlattenAssertions.UmociUnpack(layout, tag, temp.Combine("umoci"));
        FlattenAssertions.AssertSameTree(umoci, ours, image);
        FlattenAssertions.AssertKernelMountPointsAreEmptyDirectories(ours);
        Directory.Delete(temp.Combine("ours"), recursive: true);

        var extracted = FlattenAssertions.ExtractWithExtractor(rootfs, temp.Combine("extracted"));
        FlattenAssertions.AssertSameTreeAndTimes(umoci, extracted, image + " (extractor)");
        FlattenAssertions.AssertKernelMountPointsAreEmptyDirectories(extracted);
    }

    [Theory]
    [InlineData(FixtureImages.Busybox)]
    [InlineData(FixtureImages.RuntimeDeps)]
    public void FlatteningTheSameImageTwiceGivesTheSameBytes(string image)
    {
        using var temp = new TempDirectory("flatten");
        var first = temp.Combine("first.tar");
        var second = temp.Combine("second.tar");
        FlattenAssertions.WriteTar(FlattenAssertions.Flatten(Pull(FixtureImages.LayoutReference(image), temp.Combine("cache1"))), first);
        FlattenAssertions.WriteTar(FlattenAssertions.Flatten(Pull(FixtureImages.LayoutReference(image), temp.Combine("cache2"))), second);
        Assert.Equal(Sha256(first), Sha256(second));
        Assert.True(new FileInfo(first).Length > 100_000);
    }

    [Fact]
    public void ReadsAccountFilesWithoutExtractingAnything()
    {
        using var temp = new TempDirectory("flatten");
        using var rootfs = FlattenAssertions.Flatten(Pull(FixtureImages.LayoutReference(FixtureImages.RuntimeDeps), temp.Combine("cache")));
        var passwd = System.Text.Encoding.UTF8.GetString(rootfs.Reader.ReadFile("/etc/passwd", 1 << 20)!);
        Assert.Contains("app:x:1654:1654", passwd);
        Assert.NotNull(rootfs.Reader.ReadFile("/etc/group", 1 << 20));
        Assert.Null(rootfs.Reader.ReadFile("/etc", 1 << 20));
        Assert.Null(rootfs.Reader.ReadFile("/no/such/file", 1 << 20));
        Assert.Equal("RUNCIBLE2012", Assert.Throws<RuncibleException>(() => rootfs.Reader.ReadFile("/etc/passwd", 10)).Code);
        Assert.Equal(["cache"], Directory.GetFileSystemEntries(temp.Path).Select(Path.GetFileName));
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream));
    }
}
