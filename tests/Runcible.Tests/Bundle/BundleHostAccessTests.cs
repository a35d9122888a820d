using System.Formats.Tar;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Bundle;

/// <summary>
/// A bundle extracted as root the way README says, seen by another user of the host: nothing of the image (setuid
/// programs, device nodes), of config.json or of the volumes is reachable; and the host's own opt/ is left as it was.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class BundleHostAccessTests : IDisposable
{
    private const string Prefix = "opt/containers/helloweb-1.0.0/";
    private const string HostUser = "runcible-hostuser";

    private readonly TempDirectory _temp = new("runcible-host-access");

    public void Dispose() => _temp.Dispose();

    /// <summary>What a base image may carry: a setuid-root program (a copy of id), a device node, an ordinary program.</summary>
    private sealed class HostileRootfs : IRootfsContent
    {
        public string CacheKey => "hostile-rootfs";

        public void WriteEntries(TarWriter writer, string prefix)
        {
            var time = DateTimeOffset.FromUnixTimeSeconds(1600000000);
            writer.WriteEntry(new GnuTarEntry(TarEntryType.Directory, prefix + "usr/") { Mode = (UnixFileMode)0b111_101_101, ModificationTime = time });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.Directory, prefix + "usr/bin/") { Mode = (UnixFileMode)0b111_101_101, ModificationTime = time });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, prefix + "usr/bin/suid-id")
            {
                Mode = (UnixFileMode)0b100_111_101_101, ModificationTime = time, DataStream = new MemoryStream(File.ReadAllBytes("/usr/bin/id")),
            });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, prefix + "usr/bin/true")
            {
                Mode = (UnixFileMode)0b111_101_101, ModificationTime = time, DataStream = new MemoryStream(File.ReadAllBytes("/usr/bin/true")),
            });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.Directory, prefix + "dev/") { Mode = (UnixFileMode)0b111_101_101, ModificationTime = time });
            // A world-writable /dev/mem-like node: 1:1 is /dev/mem; 1:3 (/dev/null) is harmless to open in a test.
            writer.WriteEntry(new GnuTarEntry(TarEntryType.CharacterDevice, prefix + "dev/null") { Mode = (UnixFileMode)0b110_110_110, DeviceMajor = 1, DeviceMinor = 3, ModificationTime = time });
        }
    }

    private string WriteBundle()
    {
        var publish = _temp.Combine("publish");
        TestPublishDirectory.Create(publish);
        var settings = new BundleSettingsValidator().Validate(new RawBundleSettings
        {
            AssemblyName = "HelloWeb", BundleVersion = "1.0.0", RuntimeIdentifier = "linux-x64", TargetFramework = "net10.0", SourceDateEpoch = "1700000000",
            Volumes = [new BundleVolume("state", "/var/lib/helloweb")],
        });
        var content = new BundleContent(
            settings,
            new HostileRootfs(),
            new AppLayer(publish, "/app", "HelloWeb", settings.Created),
            new BundleBaseImage("localhost:5000/runtime:latest", "sha256:" + new string('a', 64), ["sha256:" + new string('b', 64)]),
            """{"process":{"env":["DB=Password=secret"]}}"""u8.ToArray(),
            0,
            0,
            ["state"],
            [new BundleFile("runcible", "#!/bin/sh\n"u8.ToArray(), (UnixFileMode)0b111_101_101)]);
        return new BundleWriter(_temp.Combine("cache"), "0.1.0", NullBuildLog.Instance).Write(content, _temp.Combine("out")).Path;
    }

    private static void Extract(string tarball, string root) =>
        ProcessRunner.Run("tar", ["--xattrs", "--xattrs-include=*", "-xpf", tarball, "-C", root]).EnsureSuccess("tar -xpf");

    private static ProcessResult AsHostUser(string command) =>
        ProcessRunner.Run("setpriv", ["--reuid", HostUser, "--regid", HostUser, "--clear-groups", "--reset-env", "sh", "-c", command]);

    [Fact]
    public void AnotherHostUserReachesNothingInTheBundle()
    {
        SystemUsers.Ensure(HostUser);
        var tarball = WriteBundle();
        // The scratch root stands for '/': every other user may walk to the bundle directory, which is the only barrier.
        var root = _temp.Combine("root");
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(_temp.Path, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101);
        Extract(tarball, root);
        var bundle = Path.Combine(root, Prefix);
        Assert.Equal((UnixFileMode)0b111_000_000, File.GetUnixFileMode(bundle));
        Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(Path.Combine(bundle, "config.json")));
        Assert.Equal(UnixFileMode.SetUser, File.GetUnixFileMode(Path.Combine(bundle, "rootfs/usr/bin/suid-id")) & UnixFileMode.SetUser);

        // What a root app can leave in its volume: a setuid-root copy of a program.
        var planted = Path.Combine(bundle, "data/state/suid-id");
        File.Copy("/usr/bin/id", planted);
        File.SetUnixFileMode(planted, (UnixFileMode)0b100_111_101_101);

        // The bundle directory is what stops each of these (with it at 0755, every one succeeds, suid-id as euid 0).
        foreach (var (command, what) in new[]
        {
            ($"'{bundle}rootfs/usr/bin/suid-id' -u", "run the image's setuid program"),
            ($"'{bundle}rootfs/usr/bin/true'", "run a program of the image"),
            ($"cat '{bundle}config.json'", "read config.json"),
            ($"head -c 1 '{bundle}rootfs/dev/null' && : > '{bundle}rootfs/dev/null'", "open the image's device node"),
            ($"'{planted}' -u", "run a setuid program from a volume"),
            ($"ls '{bundle}data/state'", "list a volume"),
        })
        {
            var result = AsHostUser(command);
            Assert.True(result.ExitCode != 0, $"{HostUser} could {what}: {result.StandardOutput}");
            Assert.Contains("Permission denied", result.StandardError);
        }

        // The user exists and can run things: the refusals above are the bundle's modes, not a broken setpriv.
        Assert.Equal(0, AsHostUser("/usr/bin/true").ExitCode);
    }

    [Fact]
    public void ExtractingIntoRootLeavesTheHostsOptAsItWas()
    {
        var tarball = WriteBundle();
        var root = _temp.Combine("root");
        var opt = Path.Combine(root, "opt");
        Directory.CreateDirectory(opt);
        ProcessRunner.Run("chown", ["1234:1234", opt]).EnsureSuccess("chown");
        File.SetUnixFileMode(opt, (UnixFileMode)0b111_001_001);
        var before = ProcessRunner.Run("stat", ["-c", "%u:%g %a", opt]).EnsureSuccess("stat").StandardOutput;

        Extract(tarball, root);

        Assert.Equal("1234:1234 711\n", before);
        Assert.Equal(before, ProcessRunner.Run("stat", ["-c", "%u:%g %a", opt]).EnsureSuccess("stat").StandardOutput);
        Assert.True(Directory.Exists(Path.Combine(opt, "containers", "helloweb-1.0.0", "rootfs")));
        var entries = ProcessRunner.Run("tar", ["-tf", tarball]).EnsureSuccess("tar -tf").StandardOutput.Split('\n');
        Assert.DoesNotContain("opt/", entries);
        Assert.DoesNotContain("opt/containers/", entries);
    }
}
