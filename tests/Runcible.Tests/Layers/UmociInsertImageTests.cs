using System.IO.Compression;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.RuntimeSpec;

namespace Runcible.Tests.Layers;

/// <summary>
/// An image made by Debian 12's umoci 0.4.7 <c>insert</c>, whose layer has neither the last entry's padding nor
/// the end-of-archive blocks (umoci, containerd and podman read it with Go's archive/tar): we flatten it to
/// umoci's own rootfs, and the result runs under runc.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class UmociInsertImageTests : IDisposable
{
    private readonly TempDirectory _work = new("runcible-umoci-insert");

    public void Dispose() => _work.Dispose();

    [Fact]
    public void AnImageMadeByUmociInsertFlattensAsUmociUnpacksItAndRuns()
    {
        var layout = _work.Combine("layout");
        ProcessRunner.Run("cp", ["-a", FixtureImages.LayoutPath(FixtureImages.Busybox), layout]).EnsureSuccess("copy the busybox layout");
        var inserted = _work.Combine("inserted");
        Directory.CreateDirectory(inserted);
        File.WriteAllText(Path.Combine(inserted, "hello.txt"), "inserted by umoci\n");
        ProcessRunner.Run("umoci", ["insert", "--image", layout + ":latest", inserted, "/opt/inserted"]).EnsureSuccess("umoci insert");

        var pulled = FixtureFlattenTests.Pull(layout + ":latest", _work.Combine("cache"));
        // The fixture is what it claims: its last layer stops short of a whole block, without end blocks.
        var insertedLayer = Decompressed(pulled.Layers[^1].BlobPath);
        Assert.NotEqual(0, insertedLayer.Length % RawTar.Block);

        using var rootfs = FlattenAssertions.Flatten(pulled);
        var umoci = FlattenAssertions.UmociUnpack(layout, "latest", _work.Combine("umoci"));
        var ours = FlattenAssertions.ExtractWithExtractor(rootfs, _work.Combine("bundle", "rootfs"));
        FlattenAssertions.AssertSameTree(umoci, ours, "umoci insert image");
        Assert.Equal("inserted by umoci\n", File.ReadAllText(Path.Combine(ours, "opt/inserted/hello.txt")));

        var bundle = _work.Combine("bundle");
        Directory.CreateDirectory(Path.Combine(ours, "app"));
        var result = new RuntimeSpecGenerator().Generate(pulled.Config, rootfs.Reader, new RuntimeSpecSettings
        {
            BundleName = "inserted",
            BundleVersion = "1.0.0",
            AssemblyName = "Inserted",
            AppCommand = ["/bin/sh", "-c", "cat /opt/inserted/hello.txt"],
            OpenFilesLimit = 4096,
        });
        RuntimeSpecBundleFiles.Write(result, bundle);
        Directory.CreateDirectory(Path.Combine(bundle, "config"));
        Directory.CreateDirectory(Path.Combine(bundle, "logs"));
        var run = ProcessRunner.Run(
            "runc",
            ["--root", _work.Combine("state"), "run", "--bundle", bundle, "runcible-insert-" + Guid.NewGuid().ToString("N")[..8]],
            timeout: TimeSpan.FromMinutes(1));
        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        Assert.Contains("inserted by umoci", run.StandardOutput);
    }

    private static byte[] Decompressed(string blobPath)
    {
        using var gzip = new GZipStream(File.OpenRead(blobPath), CompressionMode.Decompress);
        var bytes = new MemoryStream();
        gzip.CopyTo(bytes);
        return bytes.ToArray();
    }
}
