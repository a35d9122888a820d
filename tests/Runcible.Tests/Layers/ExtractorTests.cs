using System.Formats.Tar;
using System.Text.RegularExpressions;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Layers;
using Runcible.Core.Oci;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Layers;

/// <summary>
/// <see cref="RootfsExtractor"/>'s contract beyond tree equality (that is in <see cref="RuleImageTests"/>
/// and <see cref="FixtureFlattenTests"/>): a target that is not new or empty is refused untouched, a
/// failure part-way leaves nothing behind, and an ordinary user gets the tree owned by itself without
/// device nodes. Also: file data streamed from a layer blob that changed since flattening is an error,
/// for the extractor and the tar stream alike, never a short file.
/// </summary>
public class ExtractorTests
{
    private const int Nobody = 65534;

    [Fact]
    public void ATargetThatIsNotNewOrEmptyIsRefusedAndLeftAsItWas()
    {
        using var temp = new TempDirectory("extract");
        using var rootfs = FlattenAssertions.Flatten(SmallThenLargeImage(temp, 1000));

        var nonEmpty = temp.Combine("non-empty");
        Directory.CreateDirectory(Path.Combine(nonEmpty, "sub"));
        File.WriteAllText(Path.Combine(nonEmpty, "keep"), "precious");
        var file = temp.Combine("a-file");
        File.WriteAllText(file, "not a directory");
        var symlink = temp.Combine("a-symlink");
        Directory.CreateDirectory(temp.Combine("empty-elsewhere"));
        File.CreateSymbolicLink(symlink, temp.Combine("empty-elsewhere"));
        var before = TreeSnapshot.Of(temp.Path, withTimes: true);

        foreach (var target in new[] { nonEmpty, file, symlink })
        {
            var error = Assert.Throws<RuncibleException>(() => new RootfsExtractor(NullBuildLog.Instance).Extract(rootfs, target));
            Assert.Equal("RUNCIBLE2011", error.Code);
            Assert.Contains(target, error.Message);
        }

        TreeSnapshot.AssertEqual(before, TreeSnapshot.Of(temp.Path, withTimes: true), "after the refusals");
        Assert.Equal("precious", File.ReadAllText(Path.Combine(nonEmpty, "keep")));
    }

    [Fact]
    public void AnEmptyExistingTargetBecomesTheImageRoot()
    {
        using var temp = new TempDirectory("extract");
        var image = new TestImage().Layer(w =>
        {
            w.WriteEntry(TestImage.Dir("./", mode: (UnixFileMode)0x1E8, uid: 1000, gid: 1001));
            w.WriteEntry(TestImage.File("etc/hostname", "image"));
        }).Pull(temp.Combine("layout"), temp.Combine("cache"));
        using var rootfs = FlattenAssertions.Flatten(image);
        var target = temp.Combine("target");
        Directory.CreateDirectory(target);

        var extraction = new RootfsExtractor(NullBuildLog.Instance).Extract(rootfs, target);

        Assert.True(extraction.OwnersKept);
        Assert.Equal("750 1000:1001 1700000000", ProcessRunner.Run("stat", ["-c", "%a %u:%g %Y", target]).EnsureSuccess("stat").StandardOutput.Trim());
        Assert.Equal("image", File.ReadAllText(Path.Combine(target, "etc", "hostname")));
    }

    [Fact]
    public void UserAttributesTheKernelRefusesOnSymlinksAndFifosAreSkippedWithAWarningAsRoot()
    {
        using var temp = new TempDirectory("extract");
        KeyValuePair<string, string>[] note = [new("SCHILY.xattr.user.note", "kept only on files and directories")];
        var image = new TestImage().Layer(w =>
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "link", note) { LinkName = "file", Mode = (UnixFileMode)0x1FF });
            w.WriteEntry(new PaxTarEntry(TarEntryType.Fifo, "fifo", note) { Mode = (UnixFileMode)0x1A4 });
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "file", note) { DataStream = new MemoryStream([1, 2, 3]), Mode = (UnixFileMode)0x1A4 });
        }).Pull(temp.Combine("layout"), temp.Combine("cache"));
        using var rootfs = FlattenAssertions.Flatten(image);
        var log = new RecordingBuildLog();

        var extraction = new RootfsExtractor(log).Extract(rootfs, temp.Combine("target"));

        Assert.Equal(["/fifo: user.note", "/link: user.note"], extraction.SkippedAttributes.Order());
        Assert.Equal(["RUNCIBLE2040", "RUNCIBLE2040"], log.Warnings.Select(w => w.Code));
        Assert.Contains("user.note=", ProcessRunner.Run("getfattr", ["-d", temp.Combine("target", "file")]).StandardOutput);
    }

    [Fact]
    public void FileDataIsStreamedNotBufferedWhole()
    {
        using var temp = new TempDirectory("extract");
        const int size = 96 << 20;
        var image = new TestImage().Layer(w =>
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "big") { DataStream = new MemoryStream(new byte[size]), Mode = (UnixFileMode)0x1A4 }))
            .Pull(temp.Combine("layout"), temp.Combine("cache"));
        using var rootfs = FlattenAssertions.Flatten(image);

        var before = GC.GetAllocatedBytesForCurrentThread();
        new RootfsExtractor(NullBuildLog.Instance).Extract(rootfs, temp.Combine("target"));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(size, new FileInfo(temp.Combine("target", "big")).Length);
        Assert.True(allocated < 8 << 20, $"the extraction of a {size >> 20} MiB file allocated {allocated >> 20} MiB");
    }

    [Fact]
    public void TheSameImageExtractsToTheSameTreeEveryTime()
    {
        using var temp = new TempDirectory("extract");
        using var rootfs = FlattenAssertions.Flatten(RuleImages.Build(RuleImages.HardlinksAcrossLayers).Pull(temp.Combine("layout"), temp.Combine("cache")));
        var first = FlattenAssertions.ExtractWithExtractor(rootfs, temp.Combine("first"));
        var second = FlattenAssertions.ExtractWithExtractor(rootfs, temp.Combine("second"));
        TreeSnapshot.AssertEqual(TreeSnapshot.Of(first, withTimes: true), TreeSnapshot.Of(second, withTimes: true), "two extractions");
    }

    [Fact]
    public void AFileSystemFillingUpPartWayLeavesNothingBehind()
    {
        using var temp = new TempDirectory("extract");
        using var rootfs = FlattenAssertions.Flatten(SmallThenLargeImage(temp, 2 << 20));
        var small = temp.Combine("small");
        Directory.CreateDirectory(small);
        ProcessRunner.Run("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0755", "runcible-extract-test", small]).EnsureSuccess("mount tmpfs");
        try
        {
            // A new target with new parents: all of them go.
            var error = Assert.Throws<RuncibleException>(() => new RootfsExtractor(NullBuildLog.Instance).Extract(rootfs, Path.Combine(small, "new", "rootfs")));
            Assert.Equal("RUNCIBLE2013", error.Code);
            Assert.Contains("'/large/blob'", error.Message);
            Assert.Contains("No space left on device", error.Message);
            Assert.Empty(Directory.EnumerateFileSystemEntries(small));

            // An empty target given by the caller: it stays, empty.
            var existing = Path.Combine(small, "existing");
            Directory.CreateDirectory(existing);
            error = Assert.Throws<RuncibleException>(() => new RootfsExtractor(NullBuildLog.Instance).Extract(rootfs, existing));
            Assert.Equal("RUNCIBLE2013", error.Code);
            Assert.Equal([existing], Directory.EnumerateFileSystemEntries(small));
            Assert.Empty(Directory.EnumerateFileSystemEntries(existing));
        }
        finally
        {
            ProcessRunner.Run("umount", [small]).EnsureSuccess("umount tmpfs");
        }
    }

    [Fact]
    public void ALayerDamagedAfterFlatteningFailsTheExtractionPartWayAndLeavesNothingBehind()
    {
        using var temp = new TempDirectory("extract");
        var image = SmallThenLargeImage(temp, 1 << 20);
        using var rootfs = FlattenAssertions.Flatten(image);
        // The first layer's files are written before the second layer is read; then its blob ends early.
        var blob = image.Layers[1].BlobPath;
        var length = new FileInfo(blob).Length;
        File.SetAttributes(blob, FileAttributes.Normal);
        using (var stream = new FileStream(blob, FileMode.Open, FileAccess.Write))
        {
            stream.SetLength(length / 2);
        }

        var target = temp.Combine("target");
        var error = Assert.Throws<RuncibleException>(() => new RootfsExtractor(NullBuildLog.Instance).Extract(rootfs, target));
        Assert.Equal("RUNCIBLE2013", error.Code);
        Assert.Equal("RUNCIBLE2009", Assert.IsType<RuncibleException>(error.InnerException).Code);
        Assert.False(Path.Exists(target));
    }

    [Fact]
    public void TheStreamRefusesALayerDamagedAfterFlatteningInsteadOfWritingAShortFile()
    {
        using var temp = new TempDirectory("extract");
        var image = SmallThenLargeImage(temp, 1 << 20);
        using var rootfs = FlattenAssertions.Flatten(image);
        var blob = image.Layers[1].BlobPath;
        File.SetAttributes(blob, FileAttributes.Normal);
        using (var stream = new FileStream(blob, FileMode.Open, FileAccess.Write))
        {
            stream.SetLength(stream.Length / 2);
        }

        var error = Assert.Throws<RuncibleException>(() => FlattenAssertions.WriteTar(rootfs, temp.Combine("rootfs.tar")));
        Assert.Equal("RUNCIBLE2009", error.Code);
    }

    [Fact]
    public void AFileInTheWayOfTheTargetFailsWithoutTouchingIt()
    {
        using var temp = new TempDirectory("extract");
        using var rootfs = FlattenAssertions.Flatten(SmallThenLargeImage(temp, 1000));
        var inTheWay = temp.Combine("in-the-way");
        File.WriteAllText(inTheWay, "mine");

        var error = Assert.Throws<RuncibleException>(() => new RootfsExtractor(NullBuildLog.Instance).Extract(rootfs, Path.Combine(inTheWay, "rootfs")));
        Assert.Equal("RUNCIBLE2013", error.Code);
        Assert.Equal("mine", File.ReadAllText(inTheWay));
    }

    [Theory]
    [InlineData(RuleImages.SpecialModes)]
    [InlineData(RuleImages.FifosAndDevices)]
    [InlineData(RuleImages.ExtendedAttributes)]
    [InlineData(RuleImages.HardlinksAcrossLayers)]
    [InlineData(RuleImages.Owners)]
    public void AnOrdinaryUserGetsTheTreeOwnedByItselfWithoutDevices(string rule)
    {
        using var temp = new TempDirectory("extract");
        // The user must reach the layer blobs and its own directory.
        ProcessRunner.Run("chmod", ["0755", temp.Path]).EnsureSuccess("chmod");
        using var rootfs = FlattenAssertions.Flatten(RuleImages.Build(rule).Pull(temp.Combine("layout"), temp.Combine("cache")));
        // The content cache is created private to root (0700): opened up here for the test's other user only.
        ProcessRunner.Run("chmod", ["-R", "go+rX", temp.Combine("cache")]).EnsureSuccess("chmod");
        var asRoot = FlattenAssertions.ExtractWithExtractor(rootfs, temp.Combine("as-root"));
        var userDirectory = temp.Combine("user");
        Directory.CreateDirectory(userDirectory);
        ProcessRunner.Run("chown", [$"{Nobody}:{Nobody}", userDirectory]).EnsureSuccess("chown");

        var log = new RecordingBuildLog();
        var target = Path.Combine(userDirectory, "rootfs");
        var extraction = UnprivilegedThread.Run(Nobody, Nobody, () => new RootfsExtractor(log).Extract(rootfs, target));

        var devices = rootfs.Nodes().Where(n => n.Kind is RootfsNodeKind.CharacterDevice or RootfsNodeKind.BlockDevice).Select(n => "/" + n.Path).ToList();
        var capabilities = rootfs.Nodes().Where(n => n.ExtendedAttributes?.ContainsKey("security.capability") == true).Select(n => $"/{n.Path}: security.capability").ToList();
        Assert.False(extraction.OwnersKept);
        Assert.Equal(devices.Order(), extraction.SkippedDevices.Order());
        Assert.Equal(capabilities.Order(), extraction.SkippedAttributes.Order());
        Assert.Equal(
            devices.Select(_ => "RUNCIBLE2102").Concat(capabilities.Select(_ => "RUNCIBLE2040")).Order(),
            log.Warnings.Select(w => w.Code).Order());

        // Root's tree with everything owned by the user, devices and capabilities left out, is the user's tree.
        var expected = TreeSnapshot.Of(asRoot, withTimes: true);
        var expectedEntries = expected.Entries
            .Where(e => !devices.Contains("/" + e.Key))
            .ToDictionary(e => e.Key, e => AsOrdinaryUser(e.Value));
        TreeSnapshot.AssertEqual(expected with { Entries = expectedEntries }, TreeSnapshot.Of(target, withTimes: true), rule + " as nobody");

        // The original owners are still in the index.
        Assert.Contains(rootfs.Nodes(), n => n.Uid != 0 || n.Gid != 0);
    }

    private static readonly Regex FirstOwner = new(@"\d+:\d+");

    private static string AsOrdinaryUser(string description)
    {
        var owned = FirstOwner.Replace(description, $"{Nobody}:{Nobody}", 1);
        return Regex.Replace(owned, @" xattrs\[(.*)\]$", m =>
        {
            var kept = m.Groups[1].Value.Split(',').Where(x => !x.StartsWith("security.capability=", StringComparison.Ordinal)).ToList();
            return kept.Count == 0 ? "" : " xattrs[" + string.Join(",", kept) + "]";
        });
    }

    /// <summary>Layer 1: directories, a symlink, small files; layer 2: one incompressible file of <paramref name="largeBytes"/>.</summary>
    private static PulledImage SmallThenLargeImage(TempDirectory temp, int largeBytes)
    {
        var large = new byte[largeBytes];
        new Random(42).NextBytes(large);
        return new TestImage()
            .Layer(w =>
            {
                w.WriteEntry(TestImage.Dir("small/"));
                for (var i = 0; i < 20; i++)
                {
                    w.WriteEntry(TestImage.File($"small/file{i}", "small " + i));
                }

                w.WriteEntry(TestImage.Link(TarEntryType.SymbolicLink, "small/link", "file0"));
            })
            .Layer(w =>
            {
                w.WriteEntry(TestImage.Dir("large/"));
                w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "large/blob") { DataStream = new MemoryStream(large), Mode = (UnixFileMode)0x1A4 });
            })
            .Pull(temp.Combine("layout"), temp.Combine("cache"));
    }
}
