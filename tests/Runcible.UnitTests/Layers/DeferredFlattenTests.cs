using System.Formats.Tar;
using Runcible.Core.Diagnostics;
using Runcible.Core.Layers;
using Runcible.Core.Oci;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Layers;

public sealed class DeferredFlattenTests
{
    private static readonly string Passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1654:1654::/home/app:/bin/sh\n";

    private static PulledImage Image(TempDirectory temp) => new TestImage()
        .Layer(w =>
        {
            w.WriteEntry(TestImage.Dir("etc/"));
            w.WriteEntry(TestImage.File("etc/passwd", Passwd));
            w.WriteEntry(TestImage.File("etc/motd", "hello\n"));
        })
        .Pull(temp.Combine("layout"), temp.Combine("cache"));

    private static DeferredRootfsFlattener Deferred(string memo) =>
        new(new RootfsFlattener(new FlattenOptions(), NullBuildLog.Instance), memo);

    // The layers are gone: any flatten now fails, so what still works was answered without one.
    private static void RemoveLayers(PulledImage image)
    {
        foreach (var layer in image.Layers)
        {
            File.Delete(layer.BlobPath);
        }
    }

    [Fact]
    public void RemembersFileReadsSoALaterBuildReadsNoLayer()
    {
        using var temp = new TempDirectory();
        var image = Image(temp);
        var memo = temp.Combine("rootfs-files");
        using (var first = Deferred(memo).Flatten(image))
        {
            Assert.Equal(Passwd, System.Text.Encoding.UTF8.GetString(first.Reader.ReadFile("/etc/passwd", 4096)!));
            Assert.Null(first.Reader.ReadFile("/etc/group", 4096));
        }

        RemoveLayers(image);
        using var second = Deferred(memo).Flatten(image);
        Assert.Equal(FlattenedRootfs.CacheKeyOf(image), second.CacheKey);
        Assert.Equal(Passwd, System.Text.Encoding.UTF8.GetString(second.Reader.ReadFile("/etc/passwd", 4096)!));
        Assert.Null(second.Reader.ReadFile("/etc/group", 4096));
        // Not remembered: this one needs the layers, which are gone.
        Assert.ThrowsAny<IOException>(() => second.Reader.ReadFile("/etc/motd", 4096));
    }

    [Fact]
    public void ARememberedFileLargerThanTheCallerAllowsIsStillTheTooLargeError()
    {
        using var temp = new TempDirectory();
        var image = Image(temp);
        var memo = temp.Combine("rootfs-files");
        using (var first = Deferred(memo).Flatten(image))
        {
            first.Reader.ReadFile("/etc/passwd", 4096);
        }

        using var second = Deferred(memo).Flatten(image);
        var error = Assert.Throws<RuncibleException>(() => second.Reader.ReadFile("/etc/passwd", 8));
        Assert.Equal(RuncibleErrors.RootfsFileTooLarge.Code, error.Code);
    }

    [Fact]
    public void WritesTheSameEntriesAsTheEagerTreeAndLeavesNoTemporaryFiles()
    {
        using var temp = new TempDirectory();
        var image = Image(temp);
        var eager = temp.Combine("eager.tar");
        var deferred = temp.Combine("deferred.tar");
        using (var tree = FlattenAssertions.Flatten(image))
        {
            FlattenAssertions.WriteTar(tree, eager);
        }

        using (var rootfs = Deferred(temp.Combine("rootfs-files")).Flatten(image))
        using (var file = File.Create(deferred))
        using (var writer = new TarWriter(file, TarEntryFormat.Gnu, leaveOpen: true))
        {
            rootfs.Reader.ReadFile("/etc/passwd", 4096);
            rootfs.WriteEntries(writer, "rootfs/");
        }

        Assert.Equal(File.ReadAllBytes(eager), File.ReadAllBytes(deferred));
        Assert.Single(Directory.GetFiles(temp.Combine("rootfs-files"), "*", SearchOption.AllDirectories));
    }
}
