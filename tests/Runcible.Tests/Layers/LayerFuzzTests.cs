using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using Runcible.Core.Diagnostics;
using Runcible.Core.Layers;
using Runcible.Core.Oci;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Layers;

/// <summary>
/// Mutates the bytes of a small valid two-layer image with fixed seeds (uncompressed tars with a
/// matching diff_id and header checksums fixed up so the parser reads the odd fields, tars gzipped
/// after mutation, and the gzip blobs themselves) and feeds each
/// result through flatten and stream write. Asserted only: each run ends in time, fails with nothing
/// but a RUNCIBLE2xxx error, and a stream that is produced stays under its prefix (and, extracted by
/// GNU tar, changes nothing outside its target).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class LayerFuzzTests
{
    private const int Iterations = 400;
    private static readonly TimeSpan PerRun = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Total = TimeSpan.FromSeconds(120);

    private static readonly FlattenOptions Bounds = new() { MaxLayerBytes = 16 << 20, RatioCheckFloor = 1 << 20, MaxEntries = 10_000 };

    private enum Mutation
    {
        Uncompressed,
        GzippedAfterMutation,
        GzipBlob,
    }

    [Fact]
    public async Task MutatedLayersFailOnlyWithCodedErrorsAndNeverEscape()
    {
        using var harness = new EscapeHarness();
        var tars = new[] { LowerLayer(harness.Host), UpperLayer() };
        var valid = harness.Pull(new TestImage().RawLayer(tars[0]).RawLayer(tars[1]));
        var gzipBlobs = valid.Layers.Select(l => File.ReadAllBytes(l.BlobPath)).ToArray();
        var blobs = Directory.CreateTempSubdirectory("fuzz-blobs-").FullName;
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        try
        {
            for (var seed = 0; seed < Iterations && clock.Elapsed < Total; seed++)
            {
                var random = new Random(seed);
                var layerIndex = random.Next(2);
                var mutation = (Mutation)random.Next(3);
                var (blob, compression, diffId) = mutation switch
                {
                    Mutation.Uncompressed => Consistent(RawTar.FixChecksums(Mutate(tars[layerIndex], random)), LayerCompression.None),
                    Mutation.GzippedAfterMutation => Consistent(RawTar.FixChecksums(Mutate(tars[layerIndex], random)), LayerCompression.Gzip),
                    _ => (Mutate(gzipBlobs[layerIndex], random), LayerCompression.Gzip, valid.Layers[layerIndex].DiffId.ToString()),
                };
                var image = WithLayer(valid, layerIndex, blob, compression, diffId, Path.Combine(blobs, $"seed{seed}"));
                var run = Task.Run(() => FlattenAndWrite(image), TestContext.Current.CancellationToken);
                var finished = await Task.WhenAny(run, Task.Delay(PerRun, TestContext.Current.CancellationToken));
                if (finished != run)
                {
                    // The run may go on in the background; the test fails either way.
                    failures.Add($"seed {seed} ({mutation} of layer {layerIndex + 1}): no result after {PerRun}");
                    break;
                }

                var (outcome, stream) = await run;
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
                if (!outcome.StartsWith("RUNCIBLE2", StringComparison.Ordinal) && outcome != "ok")
                {
                    failures.Add($"seed {seed} ({mutation} of layer {layerIndex + 1}): {outcome}");
                    continue;
                }

                if (stream is not null)
                {
                    EscapeHarness.AssertStreamStaysUnderPrefix(new MemoryStream(stream), "rootfs/");
                    Extract(stream, harness, seed);
                }
            }
        }
        finally
        {
            Directory.Delete(blobs, recursive: true);
        }

        harness.AssertHostUnchanged();
        var summary = string.Join(", ", outcomes.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}: {o.Value}"));
        TestContext.Current.TestOutputHelper?.WriteLine($"{outcomes.Values.Sum()} runs in {clock.Elapsed}: {summary}");
        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\noutcomes: " + summary);
        Assert.True(outcomes.Values.Sum() >= 200, $"only {outcomes.Values.Sum()} runs in {Total}: {summary}");
        // The mutations must reach both ends: some runs still produce a tree, some are refused.
        Assert.True(outcomes.GetValueOrDefault("ok") > 0 && outcomes.Keys.Count(k => k.StartsWith("RUNCIBLE2", StringComparison.Ordinal)) >= 2, summary);
    }

    /// <summary>"ok" with the stream, a RUNCIBLE code, or the unexpected exception's type and message.</summary>
    private static (string Outcome, byte[]? Stream) FlattenAndWrite(PulledImage image)
    {
        try
        {
            using var rootfs = FlattenAssertions.Flatten(image, options: Bounds);
            var output = new MemoryStream();
            using (var writer = new TarWriter(output, TarEntryFormat.Gnu, leaveOpen: true))
            {
                rootfs.WriteEntries(writer, "rootfs/");
            }

            return ("ok", output.ToArray());
        }
        catch (RuncibleException e)
        {
            return (e.Code, null);
        }
        catch (Exception e)
        {
            return ($"{e.GetType().Name}: {e.Message}\n{e.StackTrace}", null);
        }
    }

    private static void Extract(byte[] stream, EscapeHarness harness, int seed)
    {
        var target = Path.Combine(harness.Target, $"fuzz{seed}");
        Directory.CreateDirectory(target);
        var tar = target + ".tar";
        File.WriteAllBytes(tar, stream);
        ProcessRunner.Run("tar", ["--numeric-owner", "-xpf", tar, "-C", target], timeout: TimeSpan.FromMinutes(1)).EnsureSuccess($"tar -x of seed {seed}");
        File.Delete(tar);
        Directory.Delete(target, recursive: true);
    }

    /// <summary>Flips, overwrites, truncates or inserts bytes, mostly in the headers (the first bytes of each 512-byte block), or changes an entry's kind.</summary>
    private static byte[] Mutate(byte[] original, Random random)
    {
        var bytes = original.ToList();
        var edits = random.Next(1, 9);
        for (var i = 0; i < edits; i++)
        {
            var block = random.Next(Math.Max(1, bytes.Count / RawTar.Block));
            var position = Math.Min(bytes.Count - 1, block * RawTar.Block + (random.Next(4) == 0 ? random.Next(RawTar.Block) : random.Next(160)));
            switch (random.Next(12))
            {
                case 10:
                case 11:
                    // Another entry kind: links, devices, PAX/GNU metadata, sparse, multi-volume, unknown.
                    bytes[block * RawTar.Block + 156] = (byte)"0123456LKxgSMVNDA\0"[random.Next(18)];
                    break;
                case 0:
                    bytes.RemoveRange(position, bytes.Count - position);
                    return bytes.ToArray();
                case 1:
                    bytes.InsertRange(position, Enumerable.Range(0, random.Next(1, 64)).Select(_ => (byte)random.Next(256)));
                    break;
                case 2:
                    bytes[position] = (byte)"01234567 \0/.x"[random.Next(13)];
                    break;
                case 3:
                    bytes[position] = 0xFF;
                    break;
                default:
                    bytes[position] ^= (byte)(1 << random.Next(8));
                    break;
            }
        }

        return bytes.ToArray();
    }

    private static (byte[] Blob, LayerCompression Compression, string DiffId) Consistent(byte[] tar, LayerCompression compression)
    {
        var diffId = "sha256:" + Convert.ToHexString(SHA256.HashData(tar)).ToLowerInvariant();
        if (compression == LayerCompression.None)
        {
            return (tar, compression, diffId);
        }

        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(tar);
        }

        return (output.ToArray(), compression, diffId);
    }

    /// <summary>The valid image with one layer's blob replaced (the flattener trusts the puller for blob digests).</summary>
    private static PulledImage WithLayer(PulledImage valid, int index, byte[] blob, LayerCompression compression, string diffId, string path)
    {
        File.WriteAllBytes(path, blob);
        var descriptor = new Descriptor
        {
            MediaType = compression == LayerCompression.Gzip ? MediaTypes.OciLayerGzip : MediaTypes.OciLayer,
            Digest = "sha256:" + Convert.ToHexString(SHA256.HashData(blob)).ToLowerInvariant(),
            Size = blob.Length,
        };
        var layers = valid.Layers.ToArray();
        layers[index] = new LocalLayer(descriptor, Digest.Parse(diffId), path);
        return valid with { Layers = layers };
    }

    /// <summary>Directories, files, symlinks out of the root, hardlinks, xattrs, a long name, a device and a FIFO (PAX headers).</summary>
    private static byte[] LowerLayer(string outside)
    {
        var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(TestImage.Dir("etc/"));
            writer.WriteEntry(TestImage.File("etc/passwd", "root:x:0:0::/root:/bin/sh\n"));
            writer.WriteEntry(TestImage.File("etc/attrs", "x", xattrs: [new("SCHILY.xattr.user.note", "hello")]));
            writer.WriteEntry(TestImage.Link(TarEntryType.SymbolicLink, "out", outside));
            writer.WriteEntry(TestImage.Link(TarEntryType.SymbolicLink, "up", "../../.."));
            writer.WriteEntry(TestImage.Link(TarEntryType.HardLink, "passwd-link", "etc/passwd"));
            writer.WriteEntry(TestImage.Dir("usr/share/" + new string('n', 120) + "/"));
            writer.WriteEntry(TestImage.File("usr/share/" + new string('n', 120) + "/" + new string('f', 120), "long"));
            writer.WriteEntry(new PaxTarEntry(TarEntryType.CharacterDevice, "null") { DeviceMajor = 1, DeviceMinor = 3, Mode = (UnixFileMode)0x1B6 });
            writer.WriteEntry(new PaxTarEntry(TarEntryType.Fifo, "fifo") { Mode = (UnixFileMode)0x1A4 });
        }

        return tar.ToArray();
    }

    /// <summary>Whiteouts, an opaque directory, writes through symlinks and a replaced directory (GNU headers).</summary>
    private static byte[] UpperLayer()
    {
        var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Gnu, leaveOpen: true))
        {
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, "etc/.wh.attrs") { DataStream = new MemoryStream() });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, "usr/.wh..wh..opq") { DataStream = new MemoryStream() });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, "out/sentinel") { DataStream = new MemoryStream("pwned"u8.ToArray()), Mode = (UnixFileMode)0x1A4 });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, "up/sentinel") { DataStream = new MemoryStream("pwned"u8.ToArray()), Mode = (UnixFileMode)0x1A4 });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.SymbolicLink, "etc") { LinkName = "/usr", Mode = (UnixFileMode)0x1FF });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, "etc/hostname") { DataStream = new MemoryStream("box"u8.ToArray()), Mode = (UnixFileMode)0x1A4 });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.HardLink, "hostname-link") { LinkName = "usr/hostname", Mode = (UnixFileMode)0x1A4 });
        }

        return tar.ToArray();
    }
}
