using System.Text.Json;
using Runcible.Core.Oci;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>A config generated for the runtime-deps fixture image (eng/fixture-images.sh) runs under runc.</summary>
public sealed class FixtureImageRuncTests : IDisposable
{
    private readonly TempDirectory _work = new("runcible-fixture-runc");

    public void Dispose() => _work.Dispose();

    private static T ReadBlob<T>(string layout, string digest)
    {
        var parsed = Digest.Parse(digest);
        var bytes = File.ReadAllBytes(Path.Combine(layout, "blobs", parsed.Algorithm, parsed.Encoded));
        Assert.True(parsed.Matches(System.Security.Cryptography.SHA256.HashData(bytes)), "blob digest mismatch");
        return JsonSerializer.Deserialize<T>(bytes, OciJson.Options)!;
    }

    [Fact]
    public void RuntimeDepsImageRunsAsItsAppUser()
    {
        var layout = Path.Combine(RepoPaths.FixtureImages, "oci", "runtime-deps");
        Assert.True(Directory.Exists(layout), $"fixture image missing at {layout}: run eng/fixture-images.sh (eng/test.sh does)");
        var index = JsonSerializer.Deserialize<ImageIndex>(File.ReadAllBytes(Path.Combine(layout, "index.json")), OciJson.Options)!;
        var manifest = ReadBlob<ImageManifest>(layout, index.Manifests!.Single(m => m.Annotations?.GetValueOrDefault("org.opencontainers.image.ref.name") == "latest").Digest);
        var image = ReadBlob<ImageConfiguration>(layout, manifest.Config!.Digest);

        // umoci unpack is the oracle for a correct rootfs; its own config.json is replaced by ours.
        var bundle = _work.Combine("bundle");
        ProcessRunner.Run("umoci", ["unpack", "--image", layout + ":latest", bundle], timeout: TimeSpan.FromMinutes(3)).EnsureSuccess("umoci unpack");
        Directory.CreateDirectory(Path.Combine(bundle, "rootfs", "app"));
        var result = new RuntimeSpecGenerator().Generate(image, new DirectoryRootfsReader(Path.Combine(bundle, "rootfs")), new RuntimeSpecSettings
        {
            BundleName = "fixture",
            BundleVersion = "1.0.0",
            AssemblyName = "Fixture",
            AppCommand = ["/bin/sh", "-c", "echo ids=$(id -u):$(id -g) cwd=$(pwd) home=$HOME; touch /var/lib/fixture/ok && echo volume=rw; grep CapEff /proc/self/status"],
            Volumes = [new("/var/lib/fixture")],
            OpenFilesLimit = 4096,
        });
        RuntimeSpecAssertions.ValidatesAgainstSchema(result.Config);
        RuntimeSpecBundleFiles.Write(result, bundle);
        foreach (var dir in new[] { "config", "logs", "data/var-lib-fixture" })
        {
            Directory.CreateDirectory(Path.Combine(bundle, dir));
        }

        ProcessRunner.Run("chown", [$"{result.Info.Uid}:{result.Info.Gid}", Path.Combine(bundle, "data", "var-lib-fixture")]).EnsureSuccess("chown");
        var run = ProcessRunner.Run(
            "runc",
            ["--root", _work.Combine("state"), "run", "--bundle", bundle, "runcible-fixture-" + Guid.NewGuid().ToString("N")[..8]],
            timeout: TimeSpan.FromMinutes(1));
        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        // APP_UID=1654 of the base image, resolved through the image's own /etc/passwd.
        Assert.Contains("ids=1654:1654 cwd=/app home=/home/app", run.StandardOutput);
        Assert.Contains("volume=rw", run.StandardOutput);
        Assert.Matches(@"CapEff:\s+0000000000000000", run.StandardOutput);
    }
}
