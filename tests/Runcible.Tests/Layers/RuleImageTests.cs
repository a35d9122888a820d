using Runcible.Core.Diagnostics;

namespace Runcible.Tests.Layers;

/// <summary>
/// For each purpose-built rule image (<see cref="RuleImages"/>): our flattened stream extracted by GNU
/// tar and our <see cref="Runcible.Core.Layers.RootfsExtractor"/>'s tree are both umoci's rootfs of the
/// same layout (as root); the extractor's modification times are umoci's too.
/// </summary>
public class RuleImageTests
{
    public static TheoryData<string> Rules => new(RuleImages.Names);

    [Theory]
    [MemberData(nameof(Rules))]
    public void TheStreamAndTheExtractionAreUmocisRootfs(string rule)
    {
        using var temp = new Infrastructure.TempDirectory("rules");
        var layout = temp.Combine("layout");
        var pulled = RuleImages.Build(rule).Pull(layout, temp.Combine("cache"));
        var flattenLog = new RecordingBuildLog();
        var extractLog = new RecordingBuildLog();
        using var rootfs = FlattenAssertions.Flatten(pulled, flattenLog);

        var umoci = FlattenAssertions.UmociUnpack(layout, "latest", temp.Combine("umoci"));
        var tar = FlattenAssertions.ExtractWithTar(rootfs, temp.Combine("tar"));
        var extracted = FlattenAssertions.ExtractWithExtractor(rootfs, temp.Combine("extracted"), extractLog);

        var umociTree = TreeSnapshot.Of(umoci, FlattenAssertions.OutsideKernelMountPoints);
        foreach (var (path, fragment) in RuleImages.Expectations(rule))
        {
            var description = umociTree.Entries.GetValueOrDefault(path);
            if (fragment is null)
            {
                Assert.True(description is null, $"{rule}: umoci has {path} ({description}), which the image hides");
            }
            else
            {
                Assert.True(description?.Contains(fragment, StringComparison.Ordinal) == true, $"{rule}: umoci's {path} is '{description ?? "(absent)"}', expected '{fragment}'");
            }
        }

        FlattenAssertions.AssertSameTree(umoci, tar, rule + " (our stream, extracted by tar)");
        var umociTimeArtifacts = RuleImages.UmociTimeArtifacts(rule);
        FlattenAssertions.AssertSameTreeAndTimes(umoci, extracted, rule + " (our extractor, with times)", umociTimeArtifacts);
        foreach (var path in umociTimeArtifacts)
        {
            Assert.Equal(rootfs.Resolve("/" + path)!.ModificationTime.UtcDateTime, File.GetLastWriteTimeUtc(Path.Combine(extracted, path)));
        }

        FlattenAssertions.AssertKernelMountPointsAreEmptyDirectories(extracted);
        Assert.False(Path.Exists(Path.Combine("/tmp", RuleImages.HostEscapeProbe)), "written through a symlink onto the host");
        Assert.False(Path.Exists(Path.Combine("/tmp", RuleImages.HostEscapeProbe + "-climbed")), "written through a symlink onto the host");
        Assert.Empty(flattenLog.Warnings);
        Assert.Empty(extractLog.Warnings);
    }
}
