using System.Formats.Tar;
using System.Text;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Layers;
using Runcible.Core.Oci;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Bundle;

public class BundleBuilderTests
{
    private static readonly Digest ManifestDigest = Digest.ComputeSha256("manifest"u8);
    private static readonly Digest LayerDigest = Digest.ComputeSha256("layer"u8);

    [Fact]
    public async Task PipelinePassesEachStageWhatItNeedsAndWritesTheBundle()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var settings = new BundleSettingsValidator().Validate(new RawBundleSettings
        {
            AssemblyName = "HelloWeb", BundleVersion = "2.0.0", RuntimeIdentifier = "linux-arm64", TargetFramework = "net10.0",
        });
        var images = new RecordingImages();
        var config = new PasswdConfig();
        var builder = new BundleBuilder(
            new BundleStages(images, new TestFlattener(), config, new ShimFiles()),
            new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance),
            NullBuildLog.Instance);

        var result = await builder.BuildAsync(
            new BundleRequest("localhost:5000/aspnet:10.0", temp.Combine("publish"), settings, new ContainerSettings { AssemblyName = "HelloWeb", AppHostName = "HelloWeb", User = "app" }, temp.Combine("out")),
            TestContext.Current.CancellationToken);

        Assert.Equal(("localhost:5000/aspnet:10.0", "linux", "arm64"), images.Asked);
        Assert.Equal("app", config.SeenUser);
        var listing = ProcessRunner.Run("tar", ["--numeric-owner", "-tvf", result.Path]).EnsureSuccess("tar").StandardOutput;
        Assert.Contains("1654/1654", listing.Split('\n').Single(l => l.EndsWith("helloweb-2.0.0/data/db/", StringComparison.Ordinal)));
        Assert.Contains("helloweb-2.0.0/runcible", listing);
        Assert.Contains("helloweb-2.0.0/rootfs/etc/passwd", listing);
        Assert.Contains("helloweb-2.0.0/rootfs/app/HelloWeb.dll", listing);
    }

    [Fact]
    public async Task ABasePartPreparedAheadIsWhatTheBuildUsesWithoutASecondPull()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var settings = new BundleSettingsValidator().Validate(new RawBundleSettings { AssemblyName = "HelloWeb", RuntimeIdentifier = "linux-x64", TargetFramework = "net10.0" });
        var container = new ContainerSettings { AssemblyName = "HelloWeb", AppHostName = "HelloWeb", User = "app" };
        var images = new RecordingImages();
        var config = new PasswdConfig();
        var writer = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance);

        // Before the app exists: pulled, configured (the rootfs reads), base part compressed into the cache.
        var prepared = await new BundleBuilder(new BundleStages(images, new TestFlattener(), config, null), writer, NullBuildLog.Instance)
            .PrepareBasePartAsync("localhost:5000/aspnet:10.0", settings, container, TestContext.Current.CancellationToken);
        var pulled = prepared.Image;
        Assert.True(prepared.WroteBasePart);
        Assert.Equal(1, images.Pulls);
        Assert.Equal("app", config.SeenUser);
        Assert.Single(Directory.GetFiles(temp.Combine("cache", "bundle-base")));

        var stages = new BundleStages(new PulledInThisBuild(images, "localhost:5000/aspnet:10.0", "linux-x64", pulled), new TestFlattener(), config, null);
        var request = new BundleRequest("localhost:5000/aspnet:10.0", temp.Combine("publish"), settings, container, temp.Combine("out"));
        var result = await new BundleBuilder(stages, writer, NullBuildLog.Instance).BuildAsync(request, TestContext.Current.CancellationToken);
        Assert.True(result.ReusedBaseChunk);
        Assert.Equal(1, images.Pulls);

        // Prepared again (a republish of a changed app): nothing to compress.
        Assert.False((await new BundleBuilder(new BundleStages(images, new TestFlattener(), config, null), writer, NullBuildLog.Instance)
            .PrepareBasePartAsync("localhost:5000/aspnet:10.0", settings, container, TestContext.Current.CancellationToken)).WroteBasePart);
        images = new RecordingImages();

        // The same bytes as a build that did it all at once.
        using var other = new TempDirectory();
        var oneGo = await new BundleBuilder(new BundleStages(new RecordingImages(), new TestFlattener(), new PasswdConfig(), null), new BundleWriter(other.Combine("cache"), "0.1.0", NullBuildLog.Instance), NullBuildLog.Instance)
            .BuildAsync(request with { OutputDirectory = other.Combine("out") }, TestContext.Current.CancellationToken);
        Assert.False(oneGo.ReusedBaseChunk);
        Assert.Equal(File.ReadAllBytes(oneGo.Path), File.ReadAllBytes(result.Path));

        // Another reference, or another platform, goes to the real stage.
        var inThisBuild = new PulledInThisBuild(images, "localhost:5000/aspnet:10.0", "linux-x64", pulled);
        Assert.Same(pulled, await inThisBuild.PullAsync("localhost:5000/aspnet:10.0", Runcible.Core.Images.PlatformSelector.FromRuntimeIdentifier("linux-x64"), TestContext.Current.CancellationToken));
        await inThisBuild.PullAsync("localhost:5000/runtime:10.0", Runcible.Core.Images.PlatformSelector.FromRuntimeIdentifier("linux-x64"), TestContext.Current.CancellationToken);
        await inThisBuild.PullAsync("localhost:5000/aspnet:10.0", Runcible.Core.Images.PlatformSelector.FromRuntimeIdentifier("linux-arm64"), TestContext.Current.CancellationToken);
        Assert.Equal(2, images.Pulls);
    }

    [Fact]
    public async Task TheBundleIsTheCopyOfTheBasePartMadeAheadUnlessThePartChangedSince()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var settings = PlainSettings();
        var container = new ContainerSettings { AssemblyName = "HelloWeb", AppHostName = "HelloWeb", User = "app" };
        var writer = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance);
        var request = new BundleRequest("localhost:5000/aspnet:10.0", temp.Combine("publish"), settings, container, temp.Combine("out"));

        async Task<(string Copy, ulong CopyInode, BundleWriteResult Result)> PrepareAndBuild(Action<string>? betweenThem = null)
        {
            var images = new RecordingImages();
            var prepared = await new BundleBuilder(new BundleStages(images, new TestFlattener(), new PasswdConfig(), null), writer, NullBuildLog.Instance)
                .PrepareBasePartAsync("localhost:5000/aspnet:10.0", settings, container, TestContext.Current.CancellationToken);

            // The copy waits in the trash directory, and is not trash while it waits.
            var copy = Assert.Single(Directory.GetFiles(writer.TrashDirectory).Except(writer.ListTrash()));
            var copyInode = Runcible.Core.IO.FileIdentity.Of(copy)!.Inode;
            betweenThem?.Invoke(copy);
            var stages = new BundleStages(new PulledInThisBuild(images, "localhost:5000/aspnet:10.0", "linux-x64", prepared.Image), new TestFlattener(), new PasswdConfig(), null);
            return (copy, copyInode, await new BundleBuilder(stages, writer, NullBuildLog.Instance).BuildAsync(request, TestContext.Current.CancellationToken));
        }

        // The tarball is the copy made ahead, renamed into place (the same inode), with the app appended.
        var (copy, copyInode, first) = await PrepareAndBuild();
        Assert.Equal(copyInode, Runcible.Core.IO.FileIdentity.Of(first.Path)!.Inode);
        Assert.False(File.Exists(copy));

        // Byte for byte what a build without a copy ahead writes.
        using var other = new TempDirectory();
        var oneGo = await new BundleBuilder(new BundleStages(new RecordingImages(), new TestFlattener(), new PasswdConfig(), null), new BundleWriter(other.Combine("cache"), "0.1.0", NullBuildLog.Instance), NullBuildLog.Instance)
            .BuildAsync(request with { OutputDirectory = other.Combine("out") }, TestContext.Current.CancellationToken);
        Assert.Equal(File.ReadAllBytes(oneGo.Path), File.ReadAllBytes(first.Path));

        // A base part changed after its copy was made (here: replaced by the same bytes, a new file): the copy is not used, and is freed.
        var basePart = Assert.Single(Directory.GetFiles(temp.Combine("cache", "bundle-base")));
        // The stale copy is held open, so that its inode, freed when the copy is, cannot be the new tarball's by reuse.
        FileStream? heldOpen = null;
        var (staleCopy, staleInode, second) = await PrepareAndBuild(copy =>
        {
            heldOpen = new FileStream(copy, FileMode.Open, FileAccess.Read);
            File.Copy(basePart, basePart + ".new");
            File.Move(basePart + ".new", basePart, overwrite: true);
        });
        using (heldOpen)
        {
            Assert.NotEqual(staleInode, Runcible.Core.IO.FileIdentity.Of(second.Path)!.Inode);
        }

        Assert.False(File.Exists(staleCopy));
        Assert.Equal(File.ReadAllBytes(oneGo.Path), File.ReadAllBytes(second.Path));
    }

    [Fact]
    public void AnotherBuildsCopyMadeAheadIsTrashOnlyOnceAbandoned()
    {
        using var temp = new TempDirectory();
        var writer = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance);
        Directory.CreateDirectory(writer.TrashDirectory);
        var replaced = Path.Combine(writer.TrashDirectory, new string('a', 32));
        var young = Path.Combine(writer.TrashDirectory, new string('b', 32) + ".ahead");
        var old = Path.Combine(writer.TrashDirectory, new string('c', 32) + ".ahead");
        var foreign = Path.Combine(writer.TrashDirectory, "notes.ahead");
        foreach (var file in new[] { replaced, young, old, foreign })
        {
            File.WriteAllText(file, "x");
        }

        // Another process's copy made ahead, still waiting for its bundle write, is not freed under it.
        File.SetLastWriteTimeUtc(old, DateTime.UtcNow.AddHours(-2));
        Assert.Equal([replaced, old], writer.ListTrash().Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task ACancelledPreparationLeavesNoBasePart()
    {
        using var temp = new TempDirectory();
        var settings = new BundleSettingsValidator().Validate(new RawBundleSettings { AssemblyName = "HelloWeb", RuntimeIdentifier = "linux-x64", TargetFramework = "net10.0" });
        using var cancellation = new CancellationTokenSource();
        var config = new CancellingConfig(cancellation);
        var builder = new BundleBuilder(new BundleStages(new RecordingImages(), new TestFlattener(), config, null), new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance), NullBuildLog.Instance);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => builder.PrepareBasePartAsync("localhost:5000/aspnet:10.0", settings, new ContainerSettings(), cancellation.Token));
        Assert.Empty(Directory.Exists(temp.Combine("cache", "bundle-base")) ? Directory.GetFiles(temp.Combine("cache", "bundle-base")) : []);
    }

    /// <summary>Cancels the build the moment the config stage ran: what follows (the base part) must stop and leave nothing.</summary>
    private sealed class CancellingConfig(CancellationTokenSource cancellation) : IRuntimeConfigProvider
    {
        public RuntimeConfigOutput Create(PulledImage image, IRootfsReader rootfs, BundleSettings settings, ContainerSettings container)
        {
            cancellation.Cancel();
            return new RuntimeConfigOutput("{}"u8.ToArray(), 0, 0, []);
        }
    }

    [Fact]
    public async Task AMissingPublishDirectoryIsACodedError()
    {
        using var temp = new TempDirectory();
        var settings = new BundleSettingsValidator().Validate(new RawBundleSettings { AssemblyName = "a", RuntimeIdentifier = "linux-x64", TargetFramework = "net10.0" });
        var builder = new BundleBuilder(new BundleStages(new RecordingImages(), new TestFlattener(), new PasswdConfig(), null), new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance), NullBuildLog.Instance);
        var error = await Assert.ThrowsAsync<RuncibleException>(() => builder.BuildAsync(new BundleRequest("x", temp.Combine("nope"), settings, new ContainerSettings(), temp.Combine("out")), TestContext.Current.CancellationToken));
        Assert.Equal("RUNCIBLE4010", error.Code);
        Assert.False(Directory.Exists(temp.Combine("out")));
    }

    [Fact]
    public async Task ASeccompProfileFileIsCheckedBySettingsValidationAndReachesConfigJson()
    {
        using var temp = new TempDirectory();
        TestPublishDirectory.Create(temp.Combine("publish"));
        var profile = temp.Combine("seccomp.json");
        var raw = new RawBundleSettings { AssemblyName = "HelloWeb", RuntimeIdentifier = "linux-x64", TargetFramework = "net10.0", AppHostName = "HelloWeb", User = "app", SeccompProfile = "seccomp.json", ProjectDirectory = temp.Path };
        var settings = new BundleSettingsValidator().Validate(raw);

        // A bad profile is the settings' error (its code, the file named), before any stage runs.
        File.WriteAllText(profile, """{ "defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{ "names": [], "action": "SCMP_ACT_ALLOW" }] }""");
        var e = Assert.Throws<RuncibleException>(() => Runcible.Core.RuntimeSpec.ContainerSettingsValidator.Validate(raw, settings));
        Assert.Equal("RUNCIBLE3012", e.Code);
        Assert.Contains(profile, e.Message);

        // A good one is parsed once and the config stage embeds it as it is.
        File.WriteAllText(profile, """{ "defaultAction": "SCMP_ACT_LOG" }""");
        var container = Runcible.Core.RuntimeSpec.ContainerSettingsValidator.Validate(raw, settings);
        var builder = new BundleBuilder(
            new BundleStages(new RecordingImages(), new TestFlattener(), new Runcible.Core.RuntimeSpec.RuntimeConfigStage(), new ShimFiles()),
            new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance),
            NullBuildLog.Instance);
        var result = await builder.BuildAsync(
            new BundleRequest("localhost:5000/aspnet:10.0", temp.Combine("publish"), settings, container, temp.Combine("out")), TestContext.Current.CancellationToken);
        var config = ProcessRunner.Run("tar", ["-xOzf", result.Path, settings.TreePrefix + "config.json"]).EnsureSuccess("tar").StandardOutput;
        Assert.Contains("\"defaultAction\": \"SCMP_ACT_LOG\"", config);
    }

    [Fact]
    public async Task EachBuildFreesTheTarballsReplacedBeforeItAndLeavesOnlyTheOneItReplaced()
    {
        using var temp = new TempDirectory();
        var writer = new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance);
        var builder = new BundleBuilder(new BundleStages(new RecordingImages(), new TestFlattener(), new PasswdConfig(), null), writer, NullBuildLog.Instance);
        var hashes = new List<string>();
        foreach (var marker in new[] { "v1", "v2", "v3" })
        {
            TestPublishDirectory.Create(temp.Combine("publish-" + marker), marker);
            var result = await builder.BuildAsync(
                new BundleRequest("localhost:5000/aspnet:10.0", temp.Combine("publish-" + marker), PlainSettings(), new ContainerSettings { AssemblyName = "HelloWeb", User = "app" }, temp.Combine("out")),
                TestContext.Current.CancellationToken);
            hashes.Add(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(result.Path))));
        }

        var left = Assert.Single(writer.ListTrash());
        Assert.Equal(hashes[1], Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(left))));
    }

    private static readonly Digest OtherManifestDigest = Digest.ComputeSha256("moved manifest"u8);

    private static BundleSettings PlainSettings() => new BundleSettingsValidator().Validate(new RawBundleSettings
    {
        AssemblyName = "HelloWeb", BundleVersion = "1.0.0", RuntimeIdentifier = "linux-x64", TargetFramework = "net10.0",
    });

    private static PulledImage Image(string reference, Digest manifest)
    {
        var layer = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = LayerDigest.ToString(), Size = 5 };
        return new PulledImage(reference, manifest, null, new ImageManifest { SchemaVersion = 2, Layers = [layer] }, manifest, [], new ImageConfiguration { OS = "linux", Architecture = "amd64" }, [new LocalLayer(layer, LayerDigest, "/nonexistent")]);
    }

    private static async Task<(BundleWriteResult? Result, Exception? Error, SlowRegistry Images, AnsweringConfig Config)> Republish(
        TempDirectory temp, Digest registryAnswer, Digest? failFor = null, Exception? registryError = null)
    {
        TestPublishDirectory.Create(temp.Combine("publish"));
        const string reference = "localhost:5000/aspnet:10.0";
        var images = new SlowRegistry(Image(reference, ManifestDigest));
        var config = new AnsweringConfig(images, registryError is null ? Image(reference, registryAnswer) : null, registryError, failFor);
        var builder = new BundleBuilder(new BundleStages(images, new TestFlattener(), config, null), new BundleWriter(temp.Combine("cache"), "0.1.0", NullBuildLog.Instance), NullBuildLog.Instance);
        try
        {
            var result = await builder.BuildAsync(
                new BundleRequest(reference, temp.Combine("publish"), PlainSettings(), new ContainerSettings { AssemblyName = "HelloWeb", User = "app" }, temp.Combine("out")),
                TestContext.Current.CancellationToken);
            return (result, null, images, config);
        }
        catch (Exception e)
        {
            return (null, e, images, config);
        }
    }

    private static string BundleJson(string tarball) =>
        ProcessRunner.Run("tar", ["-xzOf", tarball, "opt/containers/helloweb-1.0.0/bundle.json"]).EnsureSuccess("tar").StandardOutput;

    [Fact]
    public async Task ARepublishWritesOnTheImageLastPulledWhileTheRegistryIsAsked()
    {
        using var temp = new TempDirectory();
        var (result, error, _, config) = await Republish(temp, registryAnswer: ManifestDigest);

        Assert.Null(error);
        // The config stage ran on the assumed image before the registry had answered, and only once.
        Assert.Equal([(ManifestDigest, false)], config.Calls);
        Assert.Contains(ManifestDigest.ToString(), BundleJson(result!.Path));
        Assert.Equal([result.Path], Directory.GetFiles(temp.Combine("out")));
    }

    [Fact]
    public async Task WhenTheTagNamesAnotherImageNowTheBundleIsWrittenAgainFromIt()
    {
        using var temp = new TempDirectory();
        var (result, error, _, config) = await Republish(temp, registryAnswer: OtherManifestDigest);

        Assert.Null(error);
        Assert.Equal([(ManifestDigest, false), (OtherManifestDigest, true)], config.Calls);
        var manifest = BundleJson(result!.Path);
        Assert.Contains(OtherManifestDigest.ToString(), manifest);
        Assert.DoesNotContain(ManifestDigest.ToString(), manifest);
        Assert.Equal([result.Path], Directory.GetFiles(temp.Combine("out")));
    }

    [Fact]
    public async Task ARegistryFailureFailsTheRepublishAndLeavesNoTarball()
    {
        using var temp = new TempDirectory();
        var registryError = new RuncibleException(RuncibleErrors.RegistryRequestFailed, "localhost:5000", "manifest '10.0'", 503, "unavailable");
        var (_, error, _, config) = await Republish(temp, registryAnswer: ManifestDigest, registryError: registryError);

        Assert.Same(registryError, error);
        Assert.Single(config.Calls);
        Assert.Empty(Directory.GetFiles(temp.Combine("out")));
    }

    [Fact]
    public async Task AFailureOnTheAssumedImageIsTheAnswerOnlyIfTheRegistryStillNamesIt()
    {
        using (var temp = new TempDirectory())
        {
            var (_, error, _, config) = await Republish(temp, registryAnswer: ManifestDigest, failFor: ManifestDigest);
            Assert.Equal("RUNCIBLE3001", Assert.IsType<RuncibleException>(error).Code);
            Assert.Single(config.Calls);
            Assert.False(Directory.Exists(temp.Combine("out")) && Directory.GetFiles(temp.Combine("out")).Length > 0);
        }

        using (var temp = new TempDirectory())
        {
            var (result, error, _, config) = await Republish(temp, registryAnswer: OtherManifestDigest, failFor: ManifestDigest);
            Assert.Null(error);
            Assert.Equal([ManifestDigest, OtherManifestDigest], config.Calls.Select(c => c.Image));
            Assert.Contains(OtherManifestDigest.ToString(), BundleJson(result!.Path));
        }
    }

    /// <summary>A registry that answers only when told to (by the config stage, below); the cache holds the image it named last.</summary>
    private sealed class SlowRegistry(PulledImage lastPulled) : IBaseImageProvider
    {
        private readonly TaskCompletionSource<PulledImage> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Answered => _answer.Task.IsCompleted;

        public void Answer(PulledImage? image, Exception? error)
        {
            if (error is null)
            {
                _answer.TrySetResult(image!);
            }
            else
            {
                _answer.TrySetException(error);
            }
        }

        // Bounded: a builder that waited for the registry before building would otherwise hang the test.
        public Task<PulledImage> PullAsync(string reference, Platform platform, CancellationToken cancellationToken) =>
            _answer.Task.WaitAsync(TimeSpan.FromSeconds(20), cancellationToken);

        public Task<PulledImage?> TryGetLastPulledAsync(string reference, Platform platform, CancellationToken cancellationToken) =>
            Task.FromResult<PulledImage?>(lastPulled);
    }

    /// <summary>Records each image it configures and whether the registry had answered by then; then lets the registry answer.</summary>
    private sealed class AnsweringConfig(SlowRegistry registry, PulledImage? answer, Exception? registryError, Digest? failFor) : IRuntimeConfigProvider
    {
        public List<(Digest Image, bool RegistryHadAnswered)> Calls { get; } = [];

        public RuntimeConfigOutput Create(PulledImage image, IRootfsReader rootfs, BundleSettings settings, ContainerSettings container)
        {
            Calls.Add((image.ManifestDigest, registry.Answered));
            registry.Answer(answer, registryError);
            if (image.ManifestDigest == failFor)
            {
                throw new RuncibleException(RuncibleErrors.UnknownUser, "app", "user", "app", "passwd");
            }

            return new RuntimeConfigOutput("{}"u8.ToArray(), 1654, 1654, ["db"]);
        }
    }

    private sealed class RecordingImages : IBaseImageProvider
    {
        public (string, string, string) Asked { get; private set; }

        public int Pulls { get; private set; }

        public Task<PulledImage> PullAsync(string reference, Platform platform, CancellationToken cancellationToken)
        {
            Pulls++;
            Asked = (reference, platform.OS, platform.Architecture);
            var layer = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = LayerDigest.ToString(), Size = 5 };
            var image = new PulledImage(reference, ManifestDigest, null, new ImageManifest { SchemaVersion = 2, Layers = [layer] }, ManifestDigest, [], new ImageConfiguration { OS = "linux", Architecture = platform.Architecture }, [new LocalLayer(layer, LayerDigest, "/nonexistent")]);
            return Task.FromResult(image);
        }
    }

    private sealed class TestFlattener : IRootfsFlattener
    {
        public IFlattenedRootfs Flatten(PulledImage image) => new Flattened(image.ManifestDigest.ToString());

        private sealed class Flattened(string key) : IFlattenedRootfs
        {
            private readonly TestRootfs _rootfs = new(key, 64 * 1024);

            public string CacheKey => _rootfs.CacheKey;

            public IRootfsReader Reader => new PasswdReader();

            public void WriteEntries(TarWriter writer, string prefix) => _rootfs.WriteEntries(writer, prefix);

            public void Dispose()
            {
            }
        }

        private sealed class PasswdReader : IRootfsReader
        {
            public byte[]? ReadFile(string path, int maxBytes) =>
                path == "/etc/passwd" ? "app:x:1654:1654::/home/app:/bin/sh\n"u8.ToArray() : null;

            // Its tree is /etc/passwd alone: no component of a working directory is anything but absent.
            public (string Path, RootfsNodeKind Kind)? FindNonDirectoryComponent(string path) => null;
        }
    }

    /// <summary>Resolves the user from the rootfs' /etc/passwd, as the real config stage will.</summary>
    private sealed class PasswdConfig : IRuntimeConfigProvider
    {
        public string? SeenUser { get; private set; }

        public RuntimeConfigOutput Create(PulledImage image, IRootfsReader rootfs, BundleSettings settings, ContainerSettings container)
        {
            SeenUser = container.User;
            var passwd = Encoding.UTF8.GetString(rootfs.ReadFile("/etc/passwd", 4096)!);
            var fields = passwd.Split('\n').Select(l => l.Split(':')).Single(f => f[0] == container.User);
            return new RuntimeConfigOutput("{}"u8.ToArray(), uint.Parse(fields[2]), uint.Parse(fields[3]), ["db"]);
        }
    }

    private sealed class ShimFiles : IHostRuntimeFiles
    {
        public IReadOnlyList<BundleFile> Create(BundleSettings settings, RuntimeConfigOutput config) =>
            [new BundleFile("runcible", "#!/bin/sh\n"u8.ToArray(), (UnixFileMode)0b111_101_101)];
    }
}
