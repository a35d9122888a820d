using System.Text.Json;
using Runcible.Core.Oci;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>
/// The default seccomp profile under the real runc, on the runtime-deps fixture image (Debian minbase: util-linux's
/// unshare, perl-base): what it denies, for a non-root and a root app user, and that RuncSeccompProfile=unconfined
/// (no filter, the same config otherwise) allows it, so the profile is what denies it.
/// </summary>
public sealed class SeccompRuncTests : IDisposable
{
    // x86_64 syscall numbers; invalid commands, so that without a filter the kernel answers with something other
    // than EPERM (keyctl: EOPNOTSUPP, bpf: EINVAL) and EPERM can only come from the filter.
    private const string Probe =
        "if unshare -U -r true 2>/dev/null; then echo unshare-map-root=allowed; else echo unshare-map-root=denied; fi; " +
        "if unshare -U true 2>/dev/null; then echo unshare=allowed; else echo unshare=denied; fi; " +
        "perl -e '$! = 0; syscall(250, 9999, 0, 0, 0, 0); print \"keyctl=\", $! + 0, \"\\n\"; $! = 0; syscall(321, 9999, 0, 0); print \"bpf=\", $! + 0, \"\\n\"'";

    private const int Eperm = 1;

    private readonly TempDirectory _work = new("runcible-seccomp-runc");

    public void Dispose() => _work.Dispose();

    private static T ReadBlob<T>(string layout, string digest)
    {
        var parsed = Digest.Parse(digest);
        return JsonSerializer.Deserialize<T>(File.ReadAllBytes(Path.Combine(layout, "blobs", parsed.Algorithm, parsed.Encoded)), OciJson.Options)!;
    }

    private (string Bundle, ImageConfiguration Image) Unpack()
    {
        var layout = Path.Combine(RepoPaths.FixtureImages, "oci", "runtime-deps");
        Assert.True(Directory.Exists(layout), $"fixture image missing at {layout}: run eng/fixture-images.sh (eng/test.sh does)");
        var index = JsonSerializer.Deserialize<ImageIndex>(File.ReadAllBytes(Path.Combine(layout, "index.json")), OciJson.Options)!;
        var manifest = ReadBlob<ImageManifest>(layout, index.Manifests!.Single(m => m.Annotations?.GetValueOrDefault("org.opencontainers.image.ref.name") == "latest").Digest);
        var bundle = _work.Combine("bundle");
        ProcessRunner.Run("umoci", ["unpack", "--image", layout + ":latest", bundle], timeout: TimeSpan.FromMinutes(3)).EnsureSuccess("umoci unpack");
        Directory.CreateDirectory(Path.Combine(bundle, "rootfs", "app"));
        Directory.CreateDirectory(Path.Combine(bundle, "config"));
        Directory.CreateDirectory(Path.Combine(bundle, "logs"));
        return (bundle, ReadBlob<ImageConfiguration>(layout, manifest.Config!.Digest));
    }

    private Dictionary<string, string> Run(string bundle, ImageConfiguration image, string user, SeccompSetting seccomp)
    {
        var result = new RuntimeSpecGenerator().Generate(image, new DirectoryRootfsReader(Path.Combine(bundle, "rootfs")), new RuntimeSpecSettings
        {
            BundleName = "seccomp",
            BundleVersion = "1.0.0",
            AssemblyName = "Seccomp",
            User = user,
            AppCommand = ["/bin/sh", "-c", Probe],
            OpenFilesLimit = 4096,
            Seccomp = seccomp,
            Architecture = "amd64",
        });
        RuntimeSpecAssertions.ValidatesAgainstSchema(result.Config);
        Assert.Equal(seccomp.IsUnconfined, result.Config.Linux.Seccomp is null);
        RuntimeSpecBundleFiles.Write(result, bundle);
        var run = ProcessRunner.Run(
            "runc",
            ["--root", _work.Combine("state"), "run", "--bundle", bundle, "runcible-seccomp-" + Guid.NewGuid().ToString("N")[..8]],
            timeout: TimeSpan.FromMinutes(1));
        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        return run.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1]);
    }

    [Fact]
    public void TheDefaultProfileDeniesUserNamespacesKeyctlAndBpfWhichUnconfinedAllows()
    {
        Assert.True(RuntimeIsX64(), "the probe uses x86_64 syscall numbers");
        var (bundle, image) = Unpack();
        foreach (var user in new[] { "1654", "root" })
        {
            var confined = Run(bundle, image, user, SeccompSetting.Default);
            Assert.True(confined.GetValueOrDefault("unshare-map-root") == "denied", $"{user}: " + string.Join(", ", confined));
            Assert.True(confined.GetValueOrDefault("unshare") == "denied", $"{user}: " + string.Join(", ", confined));
            Assert.True(confined.GetValueOrDefault("keyctl") == Eperm.ToString(), $"{user}: " + string.Join(", ", confined));
            Assert.True(confined.GetValueOrDefault("bpf") == Eperm.ToString(), $"{user}: " + string.Join(", ", confined));

            var unconfined = Run(bundle, image, user, SeccompSetting.Unconfined);
            Assert.True(unconfined.GetValueOrDefault("unshare") == "allowed", $"{user} unconfined: " + string.Join(", ", unconfined));
            // Container root may not map the host's uid 0 without CAP_SETFCAP (Linux 5.12+), filter or not: -r is the non-root proof.
            if (user != "root")
            {
                Assert.True(unconfined.GetValueOrDefault("unshare-map-root") == "allowed", $"{user} unconfined: " + string.Join(", ", unconfined));
            }
            Assert.True(unconfined.TryGetValue("keyctl", out var keyctl) && keyctl != Eperm.ToString(), $"{user} unconfined: " + string.Join(", ", unconfined));
            Assert.True(unconfined.TryGetValue("bpf", out var bpf) && bpf != Eperm.ToString(), $"{user} unconfined: " + string.Join(", ", unconfined));
        }
    }

    private static bool RuntimeIsX64() => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.X64;
}
