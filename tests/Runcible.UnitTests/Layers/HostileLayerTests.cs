using Runcible.Core.Oci;

namespace Runcible.Tests.Layers;

/// <summary>
/// The safety table for names, links and whiteouts. Every case either fails with its coded
/// error before anything is produced, or is kept inside the root (checked in the flattened tree and
/// after GNU tar extracted the stream as root); in both cases nothing outside the target changes.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class HostileLayerTests
{
    private static TestImage Image(RawTar layer) => new TestImage().RawLayer(layer.Build());

    private static TestImage Image(params RawTar[] layers)
    {
        var image = new TestImage();
        foreach (var layer in layers)
        {
            image.RawLayer(layer.Build(), LayerCompression.None);
        }

        return image;
    }

    [Theory]
    [InlineData("../x", "RUNCIBLE2001")]
    [InlineData("/../x", "RUNCIBLE2001")]
    [InlineData("a/../../x", "RUNCIBLE2001")]
    [InlineData("a/..", "RUNCIBLE2001")]
    [InlineData("", "RUNCIBLE2001")]
    [InlineData(".", "RUNCIBLE2002")]
    [InlineData("./", "RUNCIBLE2002")]
    [InlineData("/", "RUNCIBLE2002")]
    public void UnsafeFileNamesAreRefused(string name, string code)
    {
        using var harness = new EscapeHarness();
        harness.AssertRefused(Image(new RawTar().File(name, "pwned")), code);
    }

    [Theory]
    [InlineData(".")]
    [InlineData("/")]
    [InlineData("./")]
    public void ARootEntryThatIsASymlinkIsRefused(string name)
    {
        using var harness = new EscapeHarness();
        harness.AssertRefused(Image(new RawTar().Symlink(name, harness.Host)), "RUNCIBLE2002");
    }

    [Fact]
    public void ARootEntryThatIsAHardlinkIsRefused()
    {
        using var harness = new EscapeHarness();
        harness.AssertRefused(Image(new RawTar().File("f", "x").HardLink("./", "f")), "RUNCIBLE2002");
    }

    [Fact]
    public void AbsoluteNamesLandInsideTheRoot()
    {
        using var harness = new EscapeHarness();
        var rootfs = harness.FlattenAndExtract(Image(new RawTar().File(harness.Sentinel, "pwned").File("/etc/abs", "abs").Dir("/").Dir("./var/")));
        Assert.Equal("pwned", File.ReadAllText(Path.Combine(rootfs, harness.Sentinel.TrimStart('/'))));
        Assert.Equal("abs", File.ReadAllText(Path.Combine(rootfs, "etc/abs")));
        Assert.True(Directory.Exists(Path.Combine(rootfs, "var")));
    }

    [Fact]
    public void NulBytesInNamesAndLinkTargetsAreRefused()
    {
        using var harness = new EscapeHarness();
        harness.AssertRefused(Image(new RawTar().Pax(("path", "etc/a\0/../../x")).File("placeholder", "x")), "RUNCIBLE2001");
        harness.AssertRefused(Image(new RawTar().File("target", "x").Pax(("linkpath", "target\0../x")).HardLink("link", "placeholder")), "RUNCIBLE2005");
        harness.AssertRefused(Image(new RawTar().Pax(("linkpath", "/etc\0")).Symlink("link", "placeholder")), "RUNCIBLE2005");
    }

    [Fact]
    public void NamesAndLinkTargetsPastTheBoundAreRefused()
    {
        using var harness = new EscapeHarness();
        var longName = string.Join('/', Enumerable.Repeat(new string('d', 200), 25));
        harness.AssertRefused(Image(new RawTar().Pax(("path", longName)).File("placeholder", "x")), "RUNCIBLE2001");
        harness.AssertRefused(Image(new RawTar().GnuLongName(longName).File("placeholder", "x")), "RUNCIBLE2001");
        harness.AssertRefused(Image(new RawTar().Pax(("path", "a/" + new string('c', 256))).File("placeholder", "x")), "RUNCIBLE2001");
        harness.AssertRefused(Image(new RawTar().Pax(("linkpath", longName)).Symlink("link", "placeholder")), "RUNCIBLE2005");
    }

    [Fact]
    public void GnuSparseEntriesAreRefused()
    {
        using var harness = new EscapeHarness();
        harness.AssertRefused(Image(new RawTar().Entry("sparse", 'S', "data"u8.ToArray())), "RUNCIBLE2003");
        harness.AssertRefused(Image(new RawTar().Pax(("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", "sparse")).File("GNUSparseFile.0/sparse", "data")), "RUNCIBLE2003");
    }

    [Fact]
    public void AFileWrittenThroughASymlinkToOutsideStaysInside()
    {
        using var harness = new EscapeHarness();
        var rootfs = harness.FlattenAndExtract(Image(new RawTar()
            .Symlink("escape", harness.Host)
            .File("escape/sentinel", "pwned")
            .Symlink("up", "../../../../../../../../..")
            .File("up/sentinel", "relative")));
        Assert.Equal("pwned", File.ReadAllText(Path.Combine(rootfs, harness.Host.TrimStart('/'), "sentinel")));
        Assert.Equal("relative", File.ReadAllText(Path.Combine(rootfs, "sentinel")));
    }

    [Fact]
    public void ASymlinkToTheRootThenAFileUnderItLandsAtThatPathOfTheTree()
    {
        using var harness = new EscapeHarness();
        var rootfs = harness.FlattenAndExtract(Image(new RawTar().Symlink("a", "/").File("a/etc/x", "inside")));
        Assert.Equal("inside", File.ReadAllText(Path.Combine(rootfs, "etc/x")));
        Assert.Equal("/", new FileInfo(Path.Combine(rootfs, "a")).LinkTarget);
    }

    [Fact]
    public void ASymlinkLoopIsRefused()
    {
        using var harness = new EscapeHarness();
        harness.AssertRefused(Image(new RawTar().Symlink("loop", "loop").File("loop/x", "x")), "RUNCIBLE2005");
        harness.AssertRefused(Image(new RawTar().Symlink("a", "b").Symlink("b", "/a").File("a/x", "x")), "RUNCIBLE2005");
    }

    /// <summary>
    /// Each link names the one before three times, 13 levels deep: no branch passes 40 links, but the
    /// whole path takes 3^13 (1.6 million) if every branch had its own budget, for each of 100 entries.
    /// Like the kernel, the 40-link budget is for the whole path, so this is a loop error at once.
    /// </summary>
    [Fact]
    public void ASymlinkFanOutIsResolvedWithinOneBudgetForTheWholePath()
    {
        using var harness = new EscapeHarness();
        var layer = new RawTar().Symlink("l0", "/");
        for (var level = 1; level <= 13; level++)
        {
            layer.Symlink($"l{level}", $"l{level - 1}/l{level - 1}/l{level - 1}");
        }

        for (var file = 0; file < 100; file++)
        {
            layer.File($"l13/x{file}", "x");
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        harness.AssertRefused(Image(layer), "RUNCIBLE2005");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed}");
    }

    [Fact]
    public void HardlinksOutOfTheRootAreRefused()
    {
        using var harness = new EscapeHarness();
        harness.AssertRefused(Image(new RawTar().HardLink("h", "../sentinel")), "RUNCIBLE2005");
        harness.AssertRefused(Image(new RawTar().HardLink("h", "../../../../../../.." + harness.Sentinel)), "RUNCIBLE2005");
        harness.AssertRefused(Image(new RawTar().HardLink("h", "../dest-evil/secret")), "RUNCIBLE2005");
        // An absolute target means the tree's root: the host's file is not in the tree, so there is nothing to link.
        harness.AssertRefused(Image(new RawTar().HardLink("h", harness.Sentinel)), "RUNCIBLE2005");
        harness.AssertRefused(Image(new RawTar().HardLink("h", Path.Combine(harness.Host, "dest-evil", "secret"))), "RUNCIBLE2005");
    }

    [Fact]
    public void ASymlinkToASiblingWithTheRootsNameAsPrefixStaysInside()
    {
        using var harness = new EscapeHarness();
        var rootfs = harness.FlattenAndExtract(Image(new RawTar()
            .Symlink("evil", "../dest-evil")
            .File("evil/secret", "pwned")
            .Symlink("evil-abs", Path.Combine(harness.Host, "dest-evil"))
            .File("evil-abs/secret", "pwned-abs")));
        Assert.Equal("pwned", File.ReadAllText(Path.Combine(rootfs, "dest-evil/secret")));
        Assert.Equal("pwned-abs", File.ReadAllText(Path.Combine(rootfs, harness.Host.TrimStart('/'), "dest-evil/secret")));
    }

    [Fact]
    public void ASymlinkPlantedInOneLayerAndWrittenThroughInTheNextStaysInside()
    {
        using var harness = new EscapeHarness();
        var rootfs = harness.FlattenAndExtract(Image(
            new RawTar().Symlink("planted", harness.Host).Symlink("planted-up", "../.."),
            new RawTar().File("planted/sentinel", "pwned").File("planted-up/dest-evil/secret", "pwned-up")));
        Assert.Equal("pwned", File.ReadAllText(Path.Combine(rootfs, harness.Host.TrimStart('/'), "sentinel")));
        Assert.Equal("pwned-up", File.ReadAllText(Path.Combine(rootfs, "dest-evil/secret")));
        Assert.Equal(harness.Host, new FileInfo(Path.Combine(rootfs, "planted")).LinkTarget);
    }

    [Fact]
    public void ADirectoryReplacedByASymlinkThenWrittenUnderInTheSameLayerStaysInside()
    {
        using var harness = new EscapeHarness();
        var rootfs = harness.FlattenAndExtract(Image(new RawTar()
            .Dir("d/")
            .File("d/old", "old")
            .Symlink("d", harness.Host)
            .File("d/sentinel", "pwned")));
        Assert.Equal(harness.Host, new FileInfo(Path.Combine(rootfs, "d")).LinkTarget);
        Assert.Equal("pwned", File.ReadAllText(Path.Combine(rootfs, harness.Host.TrimStart('/'), "sentinel")));
    }

    /// <summary>containerd's HardlinkSymlinkChmod: a symlink (named by an absolute host path) to a host file, then a hardlink to that symlink with another mode.</summary>
    [Fact]
    public void AHardlinkToASymlinkToOutsideChangesNothingOutside()
    {
        using var harness = new EscapeHarness();
        var outsideLink = Path.Combine(harness.Host, "dest-evil", "secret");
        var rootfs = harness.FlattenAndExtract(Image(new RawTar()
            .Symlink(outsideLink, harness.Sentinel)
            .Entry("sketchylink", '1', linkName: outsideLink, mode: 0x1FF)
            .Entry("sketchyfile", '0', "x"u8.ToArray(), mode: 0x1FF)
            .Entry("sketchylink2", '1', linkName: "sketchylink", mode: 0xFFF)));
        Assert.Equal(harness.Sentinel, new FileInfo(Path.Combine(rootfs, "sketchylink")).LinkTarget);
        Assert.Equal(harness.Sentinel, new FileInfo(Path.Combine(rootfs, "sketchylink2")).LinkTarget);
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(harness.Sentinel));
    }

    [Theory]
    [InlineData(".wh..")]
    [InlineData(".wh...")]
    [InlineData(".wh.")]
    [InlineData("etc/.wh..")]
    [InlineData("etc/.wh...")]
    [InlineData(".wh..wh.unknown")]
    public void MalformedWhiteoutsAreRefused(string name)
    {
        using var harness = new EscapeHarness();
        harness.AssertRefused(Image(new RawTar().Dir("etc/").File("etc/passwd", "root"), new RawTar().File(name, "")), "RUNCIBLE2004");
    }

    [Fact]
    public void AWhiteoutUnderASymlinkOutOfTheRootOnlyHidesInsideTheTree()
    {
        using var harness = new EscapeHarness();
        var rootfs = harness.FlattenAndExtract(Image(
            new RawTar().Dir("etc/").File("etc/passwd", "root").File("sentinel", "inside")
                .Symlink("out", harness.Host).Symlink("up", "../../..").Symlink("etclink", "/etc"),
            new RawTar().File("out/.wh.sentinel", "").File("up/.wh.sentinel", "").File("etclink/.wh.passwd", "")));
        Assert.False(File.Exists(Path.Combine(rootfs, "sentinel")));
        Assert.False(File.Exists(Path.Combine(rootfs, "etc/passwd")));
        Assert.True(Directory.Exists(Path.Combine(rootfs, "etc")));
    }
}
