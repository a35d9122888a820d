using System.Collections.Concurrent;
using System.Formats.Tar;
using System.Security.Cryptography;
using Runcible.Core.Diagnostics;
using Runcible.Core.Images;
using Runcible.Core.Layers;
using Runcible.Core.Oci;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Layers;

/// <summary>
/// The index reads layers on their own threads, several at once, and applies them in order
/// (<see cref="LayerReadAhead"/>): the same stream as one layer at a time, errors in layer order, every
/// reader stopped and every layer file closed when Flatten throws. Concurrency is shown with the
/// readers' hooks (a reader waits for another to make progress), never with timings; the waits only
/// bound how long a broken implementation takes to fail.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class ParallelFlattenTests
{
    private static readonly TimeSpan HookWait = TimeSpan.FromSeconds(30);

    private static readonly FlattenOptions OneAtATime = new() { MaxParallelLayers = 1 };

    private static readonly FlattenOptions TinyQueues = new() { MaxParallelLayers = 8, MaxQueuedEntries = 2, MaxQueuedBytes = 1024 };

    [Theory]
    [InlineData(FixtureImages.Busybox)]
    [InlineData(FixtureImages.RuntimeDeps)]
    [InlineData(FixtureImages.Runtime)]
    [InlineData(FixtureImages.AspNet)]
    [InlineData(FixtureImages.MultiArch)]
    public void AFixtureImageGivesTheSameStreamReadInParallelAsOneLayerAtATime(string image)
    {
        using var temp = new TempDirectory("parallel");
        var pulled = PullFixture(image, temp.Combine("cache"));
        AssertSameStream(pulled, image, new FlattenOptions(), TinyQueues, new FlattenOptions { MaxParallelLayers = pulled.Layers.Count });
    }

    public static TheoryData<string> Rules => new(RuleImages.Names);

    [Theory]
    [MemberData(nameof(Rules))]
    public void ARuleImageGivesTheSameStreamReadInParallelAsOneLayerAtATime(string rule)
    {
        using var temp = new TempDirectory("parallel");
        var pulled = RuleImages.Build(rule).Pull(temp.Combine("layout"), temp.Combine("cache"));
        AssertSameStream(pulled, rule, new FlattenOptions(), TinyQueues);
    }

    /// <summary>
    /// Queues of two entries / 1 KiB and every layer read at once: the upper layers' readers fill their
    /// queues and wait while the lowest is applied, and the result is the same.
    /// </summary>
    [Fact]
    public void TinyQueuesOverManyEntriesNeitherDeadlockNorChangeTheResult()
    {
        using var temp = new TempDirectory("parallel");
        var image = new TestImage()
            .Layer(w =>
            {
                w.WriteEntry(TestImage.Dir("etc"));
                w.WriteEntry(TestImage.File("etc/base", "base"));
            })
            .Layer(w =>
            {
                for (var i = 0; i < 5_000; i++)
                {
                    w.WriteEntry(TestImage.File($"many/f{i}", $"file {i}"));
                }

                w.WriteEntry(TestImage.File("etc/base", "replaced"));
            })
            .Layer(w =>
            {
                for (var i = 0; i < 5_000; i += 2)
                {
                    w.WriteEntry(TestImage.File($"many/.wh.f{i}", ""));
                }

                w.WriteEntry(TestImage.Link(TarEntryType.HardLink, "etc/linked", "many/f1"));
            }, LayerCompression.Zstd);
        var pulled = image.Pull(temp.Combine("layout"), temp.Combine("cache"));
        AssertSameStream(pulled, "many entries", TinyQueues, new FlattenOptions { MaxParallelLayers = 3, MaxQueuedEntries = 1, MaxQueuedBytes = 0 });

        using var rootfs = FlattenAssertions.Flatten(pulled, options: TinyQueues);
        Assert.Equal(2_500, rootfs.Resolve("/many")!.Children!.Count);
        Assert.Same(rootfs.Resolve("/many/f1")!.Content, rootfs.Resolve("/etc/linked")!.Content);
    }

    /// <summary>
    /// Layer 3 fails (corrupt gzip) before layer 1 reaches its end, where layer 1 fails too: layer 1's
    /// error is thrown, as reading one layer after another would.
    /// </summary>
    [Theory]
    [InlineData("diff_id", "RUNCIBLE2010")]
    [InlineData("unsafe name", "RUNCIBLE2001")]
    public void WhenTwoLayersAreBadTheLowerOnesErrorIsThrown(string problem, string code)
    {
        using var temp = new TempDirectory("parallel");
        var lower = new RawTar().Dir("etc/").File("etc/a", "a");
        if (problem == "unsafe name")
        {
            lower.File("../escape", "x");
        }

        lower.File("etc/b", "b");
        var image = new TestImage()
            .RawLayer(lower.Build(), diffId: problem == "diff_id" ? "sha256:" + new string('0', 64) : null)
            .RawLayer(new RawTar().File("middle", "m").Build())
            .CompressedBlob([0x1F, 0x8B, 0x08, 0x00, .. new byte[100]], LayerCompression.Gzip, "sha256:" + new string('1', 64));
        var pulled = image.Pull(temp.Combine("layout"), temp.Combine("cache"));

        var layer3Failed = new Gate();
        var flattener = new RootfsFlattener(new FlattenOptions { MaxParallelLayers = 3 }, NullBuildLog.Instance)
        {
            Hooks = new ReadAheadHooks(
                EntryRead: layer =>
                {
                    if (layer == 1)
                    {
                        layer3Failed.WaitOnce();
                    }
                },
                Ended: (layer, error) =>
                {
                    if (layer == 3 && error is RuncibleException { Code: "RUNCIBLE2009" })
                    {
                        layer3Failed.Open();
                    }
                }),
        };

        var thrown = Assert.Throws<RuncibleException>(() => flattener.Flatten(pulled));
        Assert.True(layer3Failed.OpenedWhileWaiting, "layer 3 was not read, and did not fail, while layer 1 was read");
        Assert.Equal(code, thrown.Code);
        Assert.StartsWith("Layer 1 of ", thrown.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Layer 1 fails while layer 3, 256 GiB of sparse zeros behind one entry's header, is being read and
    /// layer 2's reader waits for room: Flatten throws layer 1's error only after both readers stopped
    /// (layer 3's with a cancellation, part-way, not after reading to its end) and no layer file is open.
    /// </summary>
    [Theory]
    [InlineData("diff_id", "RUNCIBLE2010")]
    [InlineData("unsafe name", "RUNCIBLE2001")]
    public async Task AFailureStopsEveryReaderAndClosesEveryLayerBeforeFlattenThrows(string problem, string code)
    {
        using var temp = new TempDirectory("parallel");
        var lower = new RawTar().Dir("etc/").File("etc/a", "a");
        if (problem == "unsafe name")
        {
            lower.File("../escape", "x");
        }

        var middle = new RawTar();
        for (var i = 0; i < 1_000; i++)
        {
            middle.File($"m{i}", "m");
        }

        var image = new TestImage()
            .RawLayer(lower.Build(), diffId: problem == "diff_id" ? "sha256:" + new string('0', 64) : null)
            .RawLayer(middle.Build())
            .RawLayer(new RawTar().File("placeholder", "p").Build(), LayerCompression.None);
        var pulled = image.Pull(temp.Combine("layout"), temp.Combine("cache"));

        const long hugeSize = 256L << 30;
        var huge = temp.Combine("huge.tar");
        using (var file = File.Create(huge))
        {
            var header = new RawTar().Pax(("size", hugeSize.ToString(System.Globalization.CultureInfo.InvariantCulture))).Bytes(RawTar.Header("huge", '0', 0)).Build(endMarker: false);
            file.Write(header);
            file.SetLength(header.Length + hugeSize + (2 * RawTar.Block));
        }

        pulled = pulled with { Layers = [pulled.Layers[0], pulled.Layers[1], pulled.Layers[2] with { BlobPath = huge }] };
        var blobs = pulled.Layers.Select(l => Path.GetFullPath(l.BlobPath)).ToHashSet();

        var layer3Reading = new Gate();
        var ended = new ConcurrentDictionary<int, Exception?>();
        var flattener = new RootfsFlattener(
            new FlattenOptions { MaxParallelLayers = 3, MaxQueuedEntries = 4, MaxLayerBytes = 1L << 40 },
            NullBuildLog.Instance)
        {
            Hooks = new ReadAheadHooks(
                EntryRead: layer =>
                {
                    if (layer == 3)
                    {
                        layer3Reading.Open();
                    }
                    else if (layer == 1)
                    {
                        layer3Reading.WaitOnce();
                    }
                },
                Ended: (layer, error) => ended[layer] = error),
        };

        // Without the stop, Flatten would return only once layer 3 was read whole: minutes.
        var thrown = await Task.Run(() => Assert.Throws<RuncibleException>(() => flattener.Flatten(pulled)), TestContext.Current.CancellationToken)
            .WaitAsync(TimeSpan.FromMinutes(2), TestContext.Current.CancellationToken);

        Assert.Equal(code, thrown.Code);
        Assert.StartsWith("Layer 1 of ", thrown.Message, StringComparison.Ordinal);
        Assert.True(layer3Reading.OpenedWhileWaiting, "layer 3 was not being read when layer 1 failed");
        Assert.Equal([1, 2, 3], ended.Keys.Order());
        Assert.IsAssignableFrom<OperationCanceledException>(ended[3]);
        Assert.DoesNotContain(OpenFiles(), blobs.Contains);
    }

    /// <summary>Layer 1's reader waits, mid-layer, until layer 2's reader has read an entry: both run at once.</summary>
    [Fact]
    public void LayersAreReadAtTheSameTime()
    {
        using var temp = new TempDirectory("parallel");
        var pulled = HundredFilesPerLayer(temp, layers: 2);
        var layer2Read = new Gate();
        var flattener = new RootfsFlattener(new FlattenOptions { MaxParallelLayers = 2 }, NullBuildLog.Instance)
        {
            Hooks = new ReadAheadHooks(EntryRead: layer =>
            {
                if (layer == 2)
                {
                    layer2Read.Open();
                }
                else
                {
                    layer2Read.WaitOnce();
                }
            }),
        };

        using var rootfs = flattener.Flatten(pulled);
        Assert.True(layer2Read.OpenedWhileWaiting, "layer 2 was not read while layer 1 was");
        Assert.NotNull(rootfs.Resolve("/l2/f99"));
    }

    /// <summary>
    /// With two slots and three layers, layer 3 is read only once layer 1 is done, and with one slot
    /// every layer waits for the one before: slots go to layers in order.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void AtMostMaxParallelLayersAreReadAtOnceLowestFirst(int slots)
    {
        using var temp = new TempDirectory("parallel");
        var pulled = HundredFilesPerLayer(temp, layers: 3);
        var ended = new ConcurrentDictionary<int, bool>();
        var readBeforeItsTurn = new ConcurrentBag<int>();
        var flattener = new RootfsFlattener(new FlattenOptions { MaxParallelLayers = slots }, NullBuildLog.Instance)
        {
            Hooks = new ReadAheadHooks(
                EntryRead: layer =>
                {
                    if (layer > slots && !ended.ContainsKey(layer - slots))
                    {
                        readBeforeItsTurn.Add(layer);
                    }
                },
                Ended: (layer, _) => ended[layer] = true),
        };

        using var rootfs = flattener.Flatten(pulled);
        Assert.Empty(readBeforeItsTurn);
        Assert.NotNull(rootfs.Resolve("/l3/f99"));
    }

    /// <summary>
    /// Entries carrying 300 KiB of PAX records each, with a 1 MiB byte bound: a reader that is ahead holds
    /// at most the three that fit, plus the one it waits to queue, however many its count bound allows.
    /// </summary>
    [Fact]
    public void AReaderAheadHoldsNoMoreThanTheByteBound()
    {
        using var temp = new TempDirectory("parallel");
        var lower = new RawTar();
        for (var i = 0; i < 20_000; i++)
        {
            lower.File($"f{i}", "");
        }

        var upper = new RawTar();
        for (var i = 0; i < 50; i++)
        {
            upper.Pax(("comment", new string('c', 150_000))).File($"big{i}", "");
        }

        var pulled = new TestImage().RawLayer(lower.Build()).RawLayer(upper.Build()).Pull(temp.Combine("layout"), temp.Combine("cache"));
        var upperRead = 0;
        var upperReadWhenLowerEnded = -1;
        var upperCaughtUp = new Gate();
        var flattener = new RootfsFlattener(new FlattenOptions { MaxParallelLayers = 2, MaxQueuedBytes = 1 << 20 }, NullBuildLog.Instance)
        {
            Hooks = new ReadAheadHooks(
                EntryRead: layer =>
                {
                    if (layer == 2 && Interlocked.Increment(ref upperRead) == 4)
                    {
                        upperCaughtUp.Open();
                    }
                    else if (layer == 1)
                    {
                        upperCaughtUp.WaitOnce();
                    }
                },
                Ended: (layer, _) =>
                {
                    if (layer == 1)
                    {
                        upperReadWhenLowerEnded = Volatile.Read(ref upperRead);
                    }
                }),
        };

        using var rootfs = flattener.Flatten(pulled);
        Assert.True(upperCaughtUp.OpenedWhileWaiting, "layer 2 was not read ahead while layer 1 was");
        Assert.Equal(4, upperReadWhenLowerEnded);
        Assert.NotNull(rootfs.Resolve("/big49"));
    }

    private static PulledImage PullFixture(string image, string cache) => FixtureFlattenTests.Pull(FixtureImages.LayoutReference(image), cache);

    private static PulledImage HundredFilesPerLayer(TempDirectory temp, int layers)
    {
        var image = new TestImage();
        for (var layer = 1; layer <= layers; layer++)
        {
            var tar = new RawTar().Dir($"l{layer}/");
            for (var i = 0; i < 100; i++)
            {
                tar.File($"l{layer}/f{i}", "x");
            }

            image.RawLayer(tar.Build());
        }

        return image.Pull(temp.Combine("layout"), temp.Combine("cache"));
    }

    private static void AssertSameStream(PulledImage pulled, string what, params FlattenOptions[] options)
    {
        var expected = StreamHash(pulled, OneAtATime);
        foreach (var option in options)
        {
            Assert.True(expected == StreamHash(pulled, option), $"{what}: the stream with {option} differs from one layer at a time");
        }
    }

    private static string StreamHash(PulledImage pulled, FlattenOptions options)
    {
        using var rootfs = FlattenAssertions.Flatten(pulled, options: options);
        using var sha = SHA256.Create();
        using (var hashing = new CryptoStream(Stream.Null, sha, CryptoStreamMode.Write))
        using (var writer = new TarWriter(hashing, TarEntryFormat.Gnu, leaveOpen: true))
        {
            rootfs.WriteEntries(writer, "rootfs/");
        }

        return Convert.ToHexString(sha.Hash!);
    }

    /// <summary>
    /// Layer 1's reader waits at its first entry (once: a broken implementation then fails in one
    /// wait, not one per entry) until another reader opens the gate.
    /// </summary>
    private sealed class Gate
    {
        private readonly ManualResetEventSlim _open = new();
        private bool _waited;

        /// <summary>Whether the gate was opened while layer 1's reader waited at it (read once Flatten returned).</summary>
        public bool OpenedWhileWaiting { get; private set; }

        public void Open() => _open.Set();

        public void WaitOnce()
        {
            if (!_waited)
            {
                _waited = true;
                OpenedWhileWaiting = _open.Wait(HookWait);
            }
        }
    }

    /// <summary>What this process's file descriptors point at.</summary>
    private static IEnumerable<string> OpenFiles() =>
        new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos()
            .Select(fd =>
            {
                try
                {
                    return fd.LinkTarget;
                }
                catch (IOException)
                {
                    // Closed between listing and reading.
                    return null;
                }
            })
            .OfType<string>()
            .ToList();
}
