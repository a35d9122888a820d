using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.RuntimeSpec;

public sealed class RuntimeSpecMappingTests : IDisposable
{
    private readonly TempDirectory _rootfs = new("runcible-rootfs");
    private readonly DirectoryRootfsReader _reader;

    public RuntimeSpecMappingTests()
    {
        RuntimeSpecFixtures.WriteRootfs(_rootfs.Path);
        _reader = new DirectoryRootfsReader(_rootfs.Path);
    }

    public void Dispose() => _rootfs.Dispose();

    private RuntimeSpecResult Generate(RuntimeSpecSettings settings, ImageConfiguration? image = null) =>
        new RuntimeSpecGenerator().Generate(image ?? RuntimeSpecFixtures.RuntimeDeps(), _reader, settings);

    private static RuntimeSpecSettings With(string? user = null, string? cwd = null, IReadOnlyList<VolumeSetting>? volumes = null) => new()
    {
        BundleName = "hello",
        BundleVersion = "1.0.0",
        AssemblyName = "Hello",
        User = user,
        WorkingDirectory = cwd,
        Volumes = volumes ?? [],
    };

    [Theory]
    [InlineData("app", 1654u, 1654u, new uint[] { 3000 }, "/home/app")]
    [InlineData("1654", 1654u, 1654u, new uint[] { 3000 }, "/home/app")]
    [InlineData("web:app", 2000u, 1654u, new uint[] { 3000, 3001 }, "/srv/web")]
    [InlineData("2000:3000", 2000u, 3000u, new uint[] { 3001 }, "/srv/web")]
    [InlineData("1654:shared", 1654u, 3000u, new uint[0], "/home/app")]
    [InlineData("web:5", 2000u, 5u, new uint[] { 3000, 3001 }, "/srv/web")]
    [InlineData("4242", 4242u, 0u, new uint[0], "/")]
    [InlineData("4294967294:7", 4294967294u, 7u, new uint[0], "/")]
    [InlineData("root", 0u, 0u, new uint[0], "/root")]
    public void EveryUserFormResolves(string user, uint uid, uint gid, uint[] additional, string home)
    {
        var result = Generate(With(user));
        RuntimeSpecAssertions.ValidatesAgainstSchema(result.Config);
        Assert.Equal(uid, result.Config.Process.User.Uid);
        Assert.Equal(gid, result.Config.Process.User.Gid);
        Assert.Equal(additional, result.Config.Process.User.AdditionalGids ?? []);
        Assert.Contains("HOME=" + home, result.Config.Process.Env);
        Assert.Equal(uid, result.Info.Uid);
        Assert.Equal(gid, result.Info.Gid);
    }

    [Fact]
    public void UserFallsBackToImageUserThenAppUidThenRoot()
    {
        var image = RuntimeSpecFixtures.RuntimeDeps();
        Assert.Equal(1654u, Generate(With(), image).Config.Process.User.Uid);
        image.Config!.User = "web";
        Assert.Equal(2000u, Generate(With(), image).Config.Process.User.Uid);
        var bare = new ImageConfiguration { OS = "linux", Architecture = "amd64" };
        var root = Generate(With(), bare).Config;
        Assert.Equal(0u, root.Process.User.Uid);
        Assert.Equal(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"], root.Process.Capabilities.Bounding);
        Assert.Empty(Generate(With("app")).Config.Process.Capabilities.Bounding);
    }

    [Theory]
    [InlineData("nobody-here")]
    [InlineData("app:nogroup")]
    [InlineData("ghost:0")]
    public void UnknownNamesAreErrors(string user)
    {
        var error = Assert.Throws<RuncibleException>(() => Generate(With(user)));
        Assert.Equal(RuncibleErrors.UnknownUser.Code, error.Code);
    }

    [Theory]
    [InlineData("4294967295")]
    [InlineData("1:4294967295")]
    [InlineData("99999999999999999999")]
    [InlineData(":1")]
    [InlineData("1:")]
    [InlineData("1:2:3")]
    public void OutOfRangeOrMalformedIdsAreErrors(string user)
    {
        var error = Assert.Throws<RuncibleException>(() => Generate(With(user)));
        Assert.Equal(RuncibleErrors.BadUserId.Code, error.Code);
    }

    [Fact]
    public void AccountFilesAreReadThroughSymlinksInsideTheTree()
    {
        using var tree = new TempDirectory("runcible-rootfs");
        Directory.CreateDirectory(tree.Combine("etc"));
        Directory.CreateDirectory(tree.Combine("usr", "share", "base"));
        File.WriteAllText(tree.Combine("usr", "share", "base", "passwd"), "svc:x:77:77::/var/svc:/bin/sh\n");
        File.CreateSymbolicLink(tree.Combine("etc", "passwd"), "/usr/share/base/passwd");
        var result = new RuntimeSpecGenerator().Generate(RuntimeSpecFixtures.RuntimeDeps(), new DirectoryRootfsReader(tree.Path), With("svc"));
        Assert.Equal(77u, result.Config.Process.User.Uid);
    }

    [Theory]
    [InlineData("app", "it is not absolute")]
    [InlineData("/app/", "normalised")]
    [InlineData("/app/../etc", "normalised")]
    [InlineData("/a//b", "normalised")]
    [InlineData("/proc/self/fd/7", "/proc")]
    [InlineData("/proc", "/proc")]
    public void BadWorkingDirectoriesAreErrors(string cwd, string reason)
    {
        var error = Assert.Throws<RuncibleException>(() => Generate(With(cwd: cwd)));
        Assert.Equal(RuncibleErrors.BadWorkingDirectory.Code, error.Code);
        Assert.Contains(reason, error.Message);
    }

    [Theory]
    [InlineData("data")]
    [InlineData("/")]
    [InlineData("/proc/x")]
    [InlineData("/sys/fs")]
    [InlineData("/dev/foo")]
    [InlineData("/var/../etc")]
    public void BadVolumePathsAreErrors(string path)
    {
        var error = Assert.Throws<RuncibleException>(() => Generate(With(volumes: [new(path)])));
        Assert.Equal(RuncibleErrors.BadVolumePath.Code, error.Code);
    }

    [Theory]
    [InlineData("/tmp")]
    [InlineData("/run")]
    [InlineData("/etc/hello")]
    [InlineData("/var/log/hello")]
    [InlineData("/etc/hosts")]
    public void MountsOnTheSamePathAreErrors(string path)
    {
        var error = Assert.Throws<RuncibleException>(() => Generate(With(volumes: [new(path, "v")])));
        Assert.Equal(RuncibleErrors.ConflictingMounts.Code, error.Code);
    }

    [Fact]
    public void VolumeNameCollisionsAndBadNamesAreErrors()
    {
        var collision = Assert.Throws<RuncibleException>(() => Generate(With(volumes: [new("/a", "x"), new("/b", "X")])));
        Assert.Equal(RuncibleErrors.VolumeNameCollision.Code, collision.Code);
        var derived = Assert.Throws<RuncibleException>(() => Generate(With(volumes: [new("/var/lib"), new("/var-lib")])));
        Assert.Equal(RuncibleErrors.VolumeNameCollision.Code, derived.Code);
        var bad = Assert.Throws<RuncibleException>(() => Generate(With(volumes: [new("/a", "../escape")])));
        Assert.Equal(RuncibleErrors.BadVolumeName.Code, bad.Code);
    }

    [Fact]
    public void EnvironmentKeepsOrderLaterWinsAndHasPath()
    {
        var image = new ImageConfiguration { OS = "linux", Architecture = "amd64", Config = new() { Env = ["A=1", "B=2", "A=3"] } };
        var settings = new RuntimeSpecSettings
        {
            BundleName = "hello", BundleVersion = "1", AssemblyName = "Hello",
            EnvironmentVariables = [new("B", "project"), new("C", "x=y"), new("B", "last")],
        };
        var env = Generate(settings, image).Config.Process.Env;
        Assert.Equal(["A=3", "B=last", "C=x=y", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"], env);
        var bad = Assert.Throws<RuncibleException>(() => Generate(new RuntimeSpecSettings
        {
            BundleName = "hello", BundleVersion = "1", AssemblyName = "Hello", EnvironmentVariables = [new("A=B", "x")],
        }));
        Assert.Equal(RuncibleErrors.BadEnvironmentVariable.Code, bad.Code);
    }

    [Fact]
    public void AppCommandFollowsTheDotnetSdkRules()
    {
        var runtime = RuntimeSpecFixtures.Runtime();
        Assert.Equal(["dotnet", "/app/Hello.dll"], Generate(With(), runtime).Config.Process.Args);

        var withEntrypoint = RuntimeSpecFixtures.RuntimeDeps();
        withEntrypoint.Config!.Entrypoint = ["/bin/tini", "--"];
        withEntrypoint.Config.Cmd = ["ignored"];
        var settings = new RuntimeSpecSettings
        {
            BundleName = "hello", BundleVersion = "1", AssemblyName = "Hello", SelfContained = true,
            AppCommandArgs = ["--mode", "a"], DefaultArgs = ["--verbose"], AppCommandInstruction = AppCommandInstruction.DefaultArgs,
        };
        Assert.Equal(["/bin/tini", "--", "/app/Hello", "--mode", "a", "--verbose"], Generate(settings, withEntrypoint).Config.Process.Args);

        var none = new RuntimeSpecSettings { BundleName = "hello", BundleVersion = "1", AssemblyName = "Hello", AppCommandInstruction = AppCommandInstruction.None };
        Assert.Equal(["/bin/tini", "--", "ignored"], Generate(none, withEntrypoint).Config.Process.Args);

        var custom = new RuntimeSpecSettings { BundleName = "hello", BundleVersion = "1", AssemblyName = "Hello", AppCommand = ["/app/run.sh"], DefaultArgs = ["x"] };
        Assert.Equal(["/app/run.sh", "x"], Generate(custom, withEntrypoint).Config.Process.Args);

        var contradictory = new RuntimeSpecSettings
        {
            BundleName = "hello", BundleVersion = "1", AssemblyName = "Hello", AppCommand = ["x"], AppCommandInstruction = AppCommandInstruction.None,
        };
        Assert.Equal(RuncibleErrors.BadAppCommand.Code, Assert.Throws<RuncibleException>(() => Generate(contradictory)).Code);
    }

    [Fact]
    public void CapabilitiesAreValidated()
    {
        var settings = new RuntimeSpecSettings { BundleName = "hello", BundleVersion = "1", AssemblyName = "Hello", User = "app", Capabilities = ["CAP_NET_RAW", "net_bind_service"] };
        var caps = Generate(settings).Config.Process.Capabilities;
        Assert.Equal(["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"], caps.Ambient);
        var bad = new RuntimeSpecSettings { BundleName = "hello", BundleVersion = "1", AssemblyName = "Hello", Capabilities = ["CAP_FLY"] };
        Assert.Equal(RuncibleErrors.BadCapability.Code, Assert.Throws<RuncibleException>(() => Generate(bad)).Code);
    }

    [Fact]
    public void OutputIsDeterministicAndWrittenAtomically()
    {
        var first = RuntimeSpecGenerator.Serialize(Generate(With("web")).Config);
        var second = RuntimeSpecGenerator.Serialize(Generate(With("web")).Config);
        Assert.Equal(first, second);
        Assert.Equal((byte)'\n', first[^1]);
        using var bundle = new TempDirectory("runcible-bundle");
        RuntimeSpecBundleFiles.Write(Generate(With("web")), bundle.Path);
        Assert.Equal(["config.json", "runcible.json"], Directory.GetFiles(bundle.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(first, File.ReadAllBytes(bundle.Combine("config.json")));
    }

    // The security defaults of an app with one volume.
    private RuntimeConfig GenerateSecured(SeccompSetting? seccomp = null, string? user = "app", string? architecture = null, bool rootless = false) =>
        Generate(new RuntimeSpecSettings
        {
            BundleName = "hello",
            BundleVersion = "1.0.0",
            AssemblyName = "Hello",
            User = user,
            Rootless = rootless,
            Volumes = [new("/var/lib/hello")],
            Seccomp = seccomp ?? SeccompSetting.Default,
            Architecture = architecture,
        }).Config;

    [Fact]
    public void EveryConfigGetsTheDefaultSeccompProfileForItsArchitectureAndCapabilities()
    {
        var config = GenerateSecured();
        RuntimeSpecAssertions.ValidatesAgainstSchema(config);
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], config.Linux.Seccomp!.Architectures!);
        Assert.Equal(RuntimeSpecGenerator.Serialize(SeccompProfiles.Default("amd64", [])), RuntimeSpecGenerator.Serialize(config.Linux.Seccomp));

        // The bundle's architecture wins over the image's; root's capabilities are the ones resolved against.
        var arm = GenerateSecured(user: "root", architecture: "arm64");
        Assert.Equal(RuntimeSpecGenerator.Serialize(SeccompProfiles.Default("arm64", arm.Process.Capabilities.Bounding)), RuntimeSpecGenerator.Serialize(arm.Linux.Seccomp));
        Assert.Contains("CAP_KILL", arm.Process.Capabilities.Bounding);

        var e = Assert.Throws<RuncibleException>(() => GenerateSecured(architecture: "mips64le"));
        Assert.Equal("RUNCIBLE3011", e.Code);
        Assert.Contains("RuncSeccompProfile", e.Message);
    }

    [Fact]
    public void UnconfinedHasNoSeccompAndAGivenProfileIsEmbedded()
    {
        Assert.Null(GenerateSecured(SeccompSetting.Unconfined).Linux.Seccomp);
        Assert.DoesNotContain("seccomp", System.Text.Encoding.UTF8.GetString(RuntimeSpecGenerator.Serialize(GenerateSecured(SeccompSetting.Unconfined))));

        var given = new RuntimeSeccomp { DefaultAction = "SCMP_ACT_LOG", Syscalls = [new() { Names = ["ptrace"], Action = "SCMP_ACT_ERRNO" }] };
        var config = GenerateSecured(SeccompSetting.FromProfile(given));
        Assert.Same(given, config.Linux.Seccomp);
        RuntimeSpecAssertions.ValidatesAgainstSchema(config);
    }

    [Fact]
    public void MaskedAndReadOnlyPathsArePodmansDefaults()
    {
        var linux = GenerateSecured().Linux;
        Assert.Equal(
            ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
             "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware", "/sys/fs/selinux", "/proc/interrupts"],
            linux.MaskedPaths);
        Assert.Equal(["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"], linux.ReadonlyPaths);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void NoMountButTheDeviceFileSystemsAllowsDevicesOrSetuid(bool rootless)
    {
        var mounts = GenerateSecured(rootless: rootless).Mounts;
        foreach (var mount in mounts)
        {
            Assert.Contains("nosuid", mount.Options ?? []);
            // runc creates /dev's device nodes in its tmpfs and devpts is one.
            if (mount.Destination is not ("/dev" or "/dev/pts"))
            {
                Assert.Contains("nodev", mount.Options ?? []);
            }
        }

        Assert.Equal(["rbind", "rw", "nosuid", "nodev"], mounts.Single(m => m.Destination == "/var/lib/hello").Options);
        Assert.Equal(["nosuid", "noexec", "nodev"], mounts.Single(m => m.Destination == "/proc").Options);
    }

    [Fact]
    public void NetworkModesChooseTheNetworkNamespaceAndTheContract()
    {
        var host = Generate(With());
        Assert.DoesNotContain(host.Config.Linux!.Namespaces, n => n.Type == "network");
        Assert.Null(host.Info.Network);
        Assert.Null(host.Info.PublishPorts);

        var none = Generate(new RuntimeSpecSettings { BundleName = "hello", BundleVersion = "1.0.0", AssemblyName = "Hello", Network = Core.Contracts.BundleNetwork.None, Ports = ["8080"] });
        RuntimeSpecAssertions.ValidatesAgainstSchema(none.Config);
        var noneNamespace = Assert.Single(none.Config.Linux!.Namespaces, n => n.Type == "network");
        Assert.Null(noneNamespace.Path);
        Assert.Equal("none", none.Info.Network);
        Assert.Null(none.Info.PublishPorts);

        var published = new[] { Core.Contracts.PublishedPort.TryParse("127.0.0.1:8081:8080", out _)! };
        var isolated = Generate(new RuntimeSpecSettings
        {
            BundleName = "hello", BundleVersion = "1.0.0", AssemblyName = "Hello",
            Network = Core.Contracts.BundleNetwork.Private, PublishPorts = published, Ports = ["8080", "9000/udp"],
        });
        RuntimeSpecAssertions.ValidatesAgainstSchema(isolated.Config);
        Assert.Equal(RuntimeSpecGenerator.NetworkNamespacePlaceholder, Assert.Single(isolated.Config.Linux!.Namespaces, n => n.Type == "network").Path);
        Assert.Equal("private", isolated.Info.Network);
        Assert.Equal(["127.0.0.1:8081:8080/tcp", "9000:9000/udp"], isolated.Info.PublishPorts!);
        var json = System.Text.Encoding.UTF8.GetString(RuntimeSpecGenerator.Serialize(isolated.Info));
        // The shim reads these with sed: one scalar per line, one port per line.
        Assert.Contains("\n  \"network\": \"private\",\n", json);
        Assert.Contains("\n    \"127.0.0.1:8081:8080/tcp\",\n    \"9000:9000/udp\"\n", json);

        // Rootless: runc makes the namespace inside the user namespace (the shim's hook connects it), no path.
        var rootless = Generate(new RuntimeSpecSettings
        {
            BundleName = "hello", BundleVersion = "1.0.0", AssemblyName = "Hello", Rootless = true,
            Network = Core.Contracts.BundleNetwork.Private, PublishPorts = published, Ports = ["8080"],
        });
        RuntimeSpecAssertions.ValidatesAgainstSchema(rootless.Config);
        Assert.Null(Assert.Single(rootless.Config.Linux!.Namespaces, n => n.Type == "network").Path);
        Assert.Equal("private", rootless.Info.Network);
        Assert.Equal(["127.0.0.1:8081:8080/tcp"], rootless.Info.PublishPorts!);
    }

    [Fact]
    public void TheConfigStageCarriesTheNetworkSettingsToTheGenerator()
    {
        var settings = new Core.Contracts.BundleSettingsValidator().Validate(new Core.Contracts.RawBundleSettings
        {
            AssemblyName = "Hello", RuntimeIdentifier = "linux-x64", TargetFramework = "net10.0",
            Network = "private", PublishPorts = ["8081:8080"],
        });
        var spec = RuntimeConfigStage.ToSpecSettings(settings, new Core.Contracts.ContainerSettings { AssemblyName = "Hello", Ports = ["8080", "9090"] });
        Assert.Equal(Core.Contracts.BundleNetwork.Private, spec.Network);
        Assert.Equal(["8081:8080/tcp", "9090:9090/tcp"], Generate(spec).Info.PublishPorts!);
    }
}
