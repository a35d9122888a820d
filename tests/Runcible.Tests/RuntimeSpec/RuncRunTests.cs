using Runcible.Core.Oci;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>Generated configs run under the real runc with a busybox rootfs (busybox-static from Debian).</summary>
public sealed class RuncRunTests : IDisposable
{
    // The probe prints what the process sees, one fact per line.
    private const string Probe =
        "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); echo cwd=$(pwd); echo greeting=$GREETING home=$HOME; " +
        "if touch /rootprobe 2>/dev/null; then echo root=rw; else echo root=ro; fi; " +
        "if touch /tmp/probe; then echo tmp=rw; fi; " +
        "echo run >> /data/runs; echo runs=$(wc -l < /data/runs); " +
        "grep -E '^Cap(Eff|Prm|Bnd):' /proc/self/status | tr -s '\\t ' ' '; " +
        "if [ -n \"$NOTIFY_SOCKET\" ]; then echo notify=$NOTIFY_SOCKET socket=$([ -S \"$NOTIFY_SOCKET\" ] && echo yes); fi";

    private const string NoCapabilities = "0000000000000000";

    // CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10): root inside the user namespace only.
    private const string RuncDefaultCapabilities = "0000000020000420";

    private readonly TempDirectory _bundle = new("runcible-runc");
    private readonly TempDirectory _state = new("runcible-runc-state");

    public void Dispose()
    {
        _bundle.Dispose();
        _state.Dispose();
    }

    private static void MakeBusyboxRootfs(string rootfs)
    {
        foreach (var dir in new[] { "bin", "etc", "app", "tmp", "proc", "sys", "dev", "run", "var/tmp", "data" })
        {
            Directory.CreateDirectory(Path.Combine(rootfs, dir));
        }

        File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
        foreach (var applet in new[] { "sh", "id", "echo", "touch", "grep", "tr", "wc", "pwd", "cat" })
        {
            File.CreateSymbolicLink(Path.Combine(rootfs, "bin", applet), "busybox");
        }

        RuntimeSpecFixtures.WriteRootfs(rootfs);
        // As in real images: runc gives a tmpfs the mode of the directory it covers, whatever mode= says.
        ProcessRunner.Run("chmod", ["1777", Path.Combine(rootfs, "tmp"), Path.Combine(rootfs, "var", "tmp")]).EnsureSuccess("chmod");
    }

    private RuntimeSpecResult Prepare(RuntimeSpecSettings settings)
    {
        var rootfs = _bundle.Combine("rootfs");
        MakeBusyboxRootfs(rootfs);
        var image = new ImageConfiguration
        {
            OS = "linux",
            Architecture = "amd64",
            Config = new ContainerConfig { Env = ["PATH=/bin", "APP_UID=1654"] },
        };
        var result = new RuntimeSpecGenerator().Generate(image, new DirectoryRootfsReader(rootfs), settings);
        RuntimeSpecAssertions.ValidatesAgainstSchema(result.Config);
        RuntimeSpecBundleFiles.Write(result, _bundle.Path);
        Directory.CreateDirectory(_bundle.Combine("config"));
        Directory.CreateDirectory(_bundle.Combine("logs"));
        foreach (var volume in result.Info.Volumes)
        {
            // What the shim's install does: data/<name> owned by the container user.
            var dir = _bundle.Combine("data", volume.Name);
            Directory.CreateDirectory(dir);
            ProcessRunner.Run("chown", [$"{volume.Uid}:{volume.Gid}", dir]).EnsureSuccess("chown");
        }

        return result;
    }

    private static RuntimeSpecSettings Settings(bool rootless) => new()
    {
        BundleName = "probe",
        BundleVersion = "1.0.0",
        AssemblyName = "Probe",
        User = "app",
        AppCommand = ["/bin/sh", "-c", Probe],
        EnvironmentVariables = [new("GREETING", "hello")],
        Volumes = [new("/data", "state")],
        Rootless = rootless,
        RootlessHostUid = 1000,
        RootlessHostGid = 1000,
        // The machine's hard limit is lower than the server default and runc cannot raise it without CAP_SYS_RESOURCE.
        OpenFilesLimit = 4096,
    };

    private ProcessResult RunContainer(string id, string? asUser = null)
    {
        var runcArgs = new List<string> { "--root", _state.Path, "run", "--bundle", _bundle.Path, id };
        if (asUser is null)
        {
            return ProcessRunner.Run("runc", runcArgs, timeout: TimeSpan.FromMinutes(1));
        }

        return ProcessRunner.Run(
            "setpriv",
            ["--reuid", asUser, "--regid", asUser, "--init-groups", "--reset-env", "env", "XDG_RUNTIME_DIR=" + _state.Path, "runc", .. runcArgs],
            timeout: TimeSpan.FromMinutes(1));
    }

    private static void AssertProbe(ProcessResult result, string expectedIds, int runs, string expectedCapabilities)
    {
        var output = result.StandardOutput;
        Assert.True(result.ExitCode == 0, $"runc exited {result.ExitCode}\n{output}\n{result.StandardError}");
        Assert.True(output.Contains($"{expectedIds}\n", StringComparison.Ordinal), $"{expectedIds}\n" + " missing in:\n" + output + result.StandardError);
        Assert.True(output.Contains("cwd=/app\n", StringComparison.Ordinal), "cwd=/app\n" + " missing in:\n" + output + result.StandardError);
        Assert.True(output.Contains("greeting=hello home=/home/app\n", StringComparison.Ordinal), "greeting=hello home=/home/app\n" + " missing in:\n" + output + result.StandardError);
        Assert.True(output.Contains("root=ro\n", StringComparison.Ordinal), "root=ro\n" + " missing in:\n" + output + result.StandardError);
        Assert.True(output.Contains("tmp=rw\n", StringComparison.Ordinal), "tmp=rw\n" + " missing in:\n" + output + result.StandardError);
        Assert.True(output.Contains($"runs={runs}\n", StringComparison.Ordinal), $"runs={runs}\n" + " missing in:\n" + output + result.StandardError);
        Assert.True(output.Contains("CapPrm: " + expectedCapabilities, StringComparison.Ordinal), "CapPrm: " + expectedCapabilities + " missing in:\n" + output + result.StandardError);
        Assert.True(output.Contains("CapEff: " + expectedCapabilities, StringComparison.Ordinal), "CapEff: " + expectedCapabilities + " missing in:\n" + output + result.StandardError);
        Assert.True(output.Contains("CapBnd: " + expectedCapabilities, StringComparison.Ordinal), "CapBnd: " + expectedCapabilities + " missing in:\n" + output + result.StandardError);
    }

    [Fact]
    public void RootfulConfigRunsAsTheAppUserWithAPersistentVolume()
    {
        Prepare(Settings(rootless: false));
        AssertProbe(RunContainer("runcible-probe-" + Guid.NewGuid().ToString("N")[..8]), "uid=1654 gid=1654 groups=1654 3000", 1, NoCapabilities);
        // The volume survives a second container.
        AssertProbe(RunContainer("runcible-probe-" + Guid.NewGuid().ToString("N")[..8]), "uid=1654 gid=1654 groups=1654 3000", 2, NoCapabilities);
        Assert.False(File.Exists(_bundle.Combine("rootfs", "tmp", "probe")));
    }

    [Fact]
    public void RequestedCapabilitiesReachANonRootApp()
    {
        var settings = Settings(rootless: false);
        Prepare(new RuntimeSpecSettings
        {
            BundleName = settings.BundleName, BundleVersion = settings.BundleVersion, AssemblyName = settings.AssemblyName,
            User = settings.User, AppCommand = ["/bin/sh", "-c", "grep -E '^Cap(Eff|Prm|Bnd):' /proc/self/status | tr -s '\\t ' ' '"],
            Capabilities = ["NET_BIND_SERVICE"], OpenFilesLimit = settings.OpenFilesLimit,
        });
        var result = RunContainer("runcible-caps-" + Guid.NewGuid().ToString("N")[..8]);
        Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
        // CAP_NET_BIND_SERVICE is bit 10; ambient makes it effective for uid 1654 after exec.
        Assert.Contains("CapEff: 0000000000000400", result.StandardOutput);
        Assert.Contains("CapBnd: 0000000000000400", result.StandardOutput);
    }

    [Fact]
    public void WritableRootOverlayLayoutWorksAndLeavesTheLowerRootfsUntouched()
    {
        var settings = Settings(rootless: false);
        var result = Prepare(new RuntimeSpecSettings
        {
            BundleName = settings.BundleName, BundleVersion = settings.BundleVersion, AssemblyName = settings.AssemblyName,
            User = "root", AppCommand = ["/bin/sh", "-c", "echo changed > /etc/motd && echo rootwrite=ok"],
            WritableRootfs = true, OpenFilesLimit = settings.OpenFilesLimit,
        });
        Assert.False(result.Config.Root.Readonly);
        var layout = result.Info.WritableRootfs!;
        // What the shim does, following runcible.json (runtimeDir = a temp dir standing in for /run).
        string Expand(string path) => path.Replace("{runtimeDir}", _state.Combine("run"), StringComparison.Ordinal);
        var tmpfs = Expand(layout.Tmpfs);
        var merged = Path.Combine(_bundle.Path, layout.Merged);
        Directory.CreateDirectory(tmpfs);
        ProcessRunner.Run("mount", ["-t", "tmpfs", "-o", "mode=700", "tmpfs", tmpfs]).EnsureSuccess("mount tmpfs");
        try
        {
            Directory.CreateDirectory(Expand(layout.Upper));
            Directory.CreateDirectory(Expand(layout.Work));
            ProcessRunner.Run("mount", ["-t", "overlay", "overlay", "-o",
                $"lowerdir={Path.Combine(_bundle.Path, layout.Lower)},upperdir={Expand(layout.Upper)},workdir={Expand(layout.Work)}", merged]).EnsureSuccess("mount overlay");
            try
            {
                var run = RunContainer("runcible-overlay-" + Guid.NewGuid().ToString("N")[..8]);
                Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
                Assert.Contains("rootwrite=ok", run.StandardOutput);
                Assert.Equal("changed\n", File.ReadAllText(Path.Combine(Expand(layout.Upper), "etc", "motd")));
            }
            finally
            {
                ProcessRunner.Run("umount", [merged]).EnsureSuccess("umount overlay");
            }
        }
        finally
        {
            ProcessRunner.Run("umount", [tmpfs]).EnsureSuccess("umount tmpfs");
        }

        Assert.False(File.Exists(Path.Combine(_bundle.Path, "rootfs", "etc", "motd")));
    }

    [Fact]
    public async Task NotifySocketRelayReachesTheAppThroughTheRunTmpfs()
    {
        Prepare(Settings(rootless: false));
        var hostSocket = _state.Combine("notify.sock");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(hostSocket));
        var id = "runcible-notify-" + Guid.NewGuid().ToString("N")[..8];
        // busybox cannot send a datagram, so the test plays the app: it writes READY=1 into runc's relay socket.
        var relay = Path.Combine(_state.Path, id, "notify", "notify.sock");
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cancel.CancelAfter(TimeSpan.FromSeconds(50));
        var readySender = Task.Run(async () =>
        {
            while (!File.Exists(relay))
            {
                await Task.Delay(50, cancel.Token);
            }

            using var sender = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Unspecified);
            await sender.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(relay), cancel.Token);
            await sender.SendAsync("READY=1"u8.ToArray(), cancel.Token);
        }, cancel.Token);
        var result = ProcessRunner.Run(
            "runc",
            ["--root", _state.Path, "run", "--bundle", _bundle.Path, id],
            environment: new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = hostSocket },
            timeout: TimeSpan.FromMinutes(1));
        await readySender;
        var buffer = new byte[4096];
        listener.ReceiveTimeout = 10000;
        var received = System.Text.Encoding.UTF8.GetString(buffer, 0, listener.Receive(buffer));
        Assert.Contains("READY=1", received);
        Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
        // runc 1.1 bind-mounts its relay socket under /run/notify after our /run tmpfs, so the tmpfs does not hide it.
        Assert.Contains("notify=/run/notify/notify.sock socket=yes\n", result.StandardOutput);
    }

    [Fact]
    public void RootlessConfigRunsAsAnUnprivilegedUser()
    {
        var user = SystemUsers.Ensure(SystemUsers.Rootless);

        var hostUid = uint.Parse(ProcessRunner.Run("id", ["-u", user]).EnsureSuccess("id").StandardOutput.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var hostGid = uint.Parse(ProcessRunner.Run("id", ["-g", user]).EnsureSuccess("id").StandardOutput.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var settings = Settings(rootless: true);
        var result = Prepare(new RuntimeSpecSettings
        {
            BundleName = settings.BundleName, BundleVersion = settings.BundleVersion, AssemblyName = settings.AssemblyName,
            User = settings.User, AppCommand = settings.AppCommand, EnvironmentVariables = settings.EnvironmentVariables,
            Volumes = settings.Volumes, Rootless = true, RootlessHostUid = hostUid, RootlessHostGid = hostGid,
            OpenFilesLimit = settings.OpenFilesLimit,
        });
        Assert.Null(result.Config.Process.User.AdditionalGids);
        // In a rootless bundle the host user owns everything; the namespace maps it to container root.
        ProcessRunner.Run("chown", ["-R", $"{hostUid}:{hostGid}", _bundle.Path, _state.Path]).EnsureSuccess("chown");
        ProcessRunner.Run("chmod", ["755", _bundle.Path, _state.Path]).EnsureSuccess("chmod");
        AssertProbe(RunContainer("runcible-rootless-" + Guid.NewGuid().ToString("N")[..8], user), "uid=0 gid=0 groups=0", 1, RuncDefaultCapabilities);
    }
}
