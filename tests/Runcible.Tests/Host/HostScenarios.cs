using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// The scenarios both init systems must pass, driven through the shim and the init system's own
/// commands inside a booted <see cref="HostContainer"/>.
/// </summary>
internal static class HostScenarios
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    public static string StartCommand(HostContainer host, string name) =>
        host.Init == HostInit.Systemd ? $"systemctl start {name}" : $"rc-service {name} start";

    public static string StopCommand(HostContainer host, string name) =>
        host.Init == HostInit.Systemd ? $"systemctl stop {name}" : $"rc-service {name} stop";

    public static string ServiceLog(HostContainer host, string name) =>
        host.Init == HostInit.Systemd
            ? host.ExecOk($"journalctl -u {name} --no-pager -o cat")
            : host.ExecOk($"cat /var/log/runcible/{name}.log");

    /// <summary>GET http://<paramref name="address"/>:port/path until it answers 200 and <paramref name="accept"/> holds, or the deadline.</summary>
    public static async Task<string> GetAsync(int port, string path, Func<string, bool>? accept = null, int seconds = 30, string address = "127.0.0.1")
    {
        var deadline = Stopwatch.StartNew();
        string last = "(no answer)";
        while (deadline.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            try
            {
                using var response = await Http.GetAsync(new Uri($"http://{address}:{port}{path}"));
                var body = await response.Content.ReadAsStringAsync();
                last = $"{(int)response.StatusCode}: {body}";
                if (response.IsSuccessStatusCode && (accept is null || accept(body)))
                {
                    return body;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                last = e.Message;
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"http://{address}:{port}{path} did not answer as expected in {seconds}s; last: {last}");
    }

    /// <summary>GET http://127.0.0.1:port/path until it answers 200 (the body as bytes), or the deadline.</summary>
    public static async Task<byte[]> GetBytesAsync(int port, string path, int seconds = 30)
    {
        var deadline = Stopwatch.StartNew();
        string last = "(no answer)";
        while (deadline.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            try
            {
                using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{port}{path}"));
                if (response.IsSuccessStatusCode)
                {
                    return await response.Content.ReadAsByteArrayAsync();
                }

                if (response.StatusCode == HttpStatusCode.NotFound)
                {
                    throw new FileNotFoundException($"http://127.0.0.1:{port}{path}: 404, no such file");
                }

                last = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                last = e.Message;
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"http://127.0.0.1:{port}{path} did not answer 200 in {seconds}s; last: {last}");
    }

    public static async Task<bool> AnswersAsync(int port, string address = "127.0.0.1")
    {
        try
        {
            using var response = await Http.GetAsync(new Uri($"http://{address}:{port}/version"));
            return true;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    /// <summary>Runs a scenario; on failure, adds what the host knows about the service to the message.</summary>
    public static async Task WithDiagnosticsAsync(HostContainer host, string name, Func<Task> scenario)
    {
        try
        {
            await scenario();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var status = host.Init == HostInit.Systemd
                ? $"systemctl status --no-pager {name}; journalctl -u {name} --no-pager | tail -n 60"
                : $"rc-service {name} status; tail -n 60 /var/log/runcible/{name}.log";
            var diagnostics = host.Exec(status + "; runc list", TimeSpan.FromSeconds(30));
            throw new InvalidOperationException($"{e.Message}\n--- host diagnostics ---\n{diagnostics.StandardOutput}{diagnostics.StandardError}", e);
        }
    }

    public static string ContainerPid(HostContainer host, string id, string runcRoot = "/run/runc") =>
        host.ExecOk($"runc --root {runcRoot} state {id} | sed -n 's/^  \"pid\": \\([0-9]*\\),$/\\1/p'").Trim();

    /// <summary>The container's runc status ("running", "stopped", …), empty when there is none.</summary>
    public static string ContainerStatus(HostContainer host, string id, string runcRoot = "/run/runc") =>
        host.Exec($"runc --root {runcRoot} state {id} | sed -n 's/^  \"status\": \"\\([a-z]*\\)\",$/\\1/p'").StandardOutput.Trim();

    /// <summary>install, start → HTTP answers; killed app → restarted; stop → graceful and in time; reboot → back.</summary>
    public static Task ServiceLifecycleAsync(HostContainer host) => WithDiagnosticsAsync(host, "web", () => ServiceLifecycleCoreAsync(host));

    private static async Task ServiceLifecycleCoreAsync(HostContainer host)
    {
        var port = TestBundle.FreePort();
        const string name = "web";
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port) { StopTimeoutSeconds = 10 });
        var install = host.ExecOk("/opt/containers/web-1.0.0/runcible install 2>&1");
        Assert.Contains("installed web 1.0.0", install, StringComparison.Ordinal);
        // Idempotent.
        host.ExecOk("/opt/containers/web-1.0.0/runcible install");
        // data/<volume> belongs to the container user, so the app never has to chown.
        Assert.Equal("1654:1654", host.ExecOk("stat -c %u:%g /opt/containers/web-1.0.0/data/state").Trim());

        host.ExecOk(StartCommand(host, name));
        Assert.Equal("1.0.0\n", await GetAsync(port, "/version"));
        Assert.Contains("running", host.ExecOk("/opt/containers/web-1.0.0/runcible status; true"), StringComparison.Ordinal);
        Assert.Equal("web\n", host.ExecOk("/opt/containers/web-1.0.0/runcible exec cat /etc/hostname 2>/dev/null || /opt/containers/web-1.0.0/runcible exec sh -c 'echo $(cat /proc/sys/kernel/hostname)'"));

        // A killed app is restarted by the init system.
        var pid = ContainerPid(host, name);
        host.ExecOk($"kill -KILL {pid}");
        await GetAsync(port, "/starts", body => body == "1.0.0\n1.0.0\n", seconds: 40);
        Assert.NotEqual(pid, ContainerPid(host, name));

        // Stop: the stop signal reaches the app, which shuts down gracefully well within the timeout.
        var stopwatch = Stopwatch.StartNew();
        host.ExecOk(StopCommand(host, name));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10), $"stop took {stopwatch.Elapsed}");
        var log = ServiceLog(host, name);
        Assert.Contains("app 1.0.0: SIGTERM received, shutting down gracefully", log, StringComparison.Ordinal);
        Assert.Contains("app 1.0.0 stopped", log, StringComparison.Ordinal);
        Assert.False(await AnswersAsync(port));
        Assert.NotEqual(0, host.Exec("runc state web").ExitCode);

        // The enabled service comes back after a reboot.
        host.ExecOk(StartCommand(host, name));
        await GetAsync(port, "/version");
        host.Reboot();
        Assert.Equal("1.0.0\n1.0.0\n1.0.0\n1.0.0\n", await GetAsync(port, "/starts", body => body.Split('\n').Length == 5, seconds: 60));
        host.ExecOk(StopCommand(host, name));
        host.ExecOk("/opt/containers/web-1.0.0/runcible uninstall --purge");
    }

    /// <summary>upgrade keeps data; a failing upgrade is rolled back; rollback; uninstall keeps data/; --purge removes all.</summary>
    public static Task UpgradeRollbackUninstallAsync(HostContainer host) => WithDiagnosticsAsync(host, "shop", () => UpgradeRollbackUninstallCoreAsync(host));

    private static async Task UpgradeRollbackUninstallCoreAsync(HostContainer host)
    {
        var port = TestBundle.FreePort();
        const string name = "shop";
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port));
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.1.0", port));
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.2.0", port) { App = TestBundle.FailingApp });
        var v1 = Path.Combine(host.ContainersDirectory, "shop-1.0.0");
        var v11 = Path.Combine(host.ContainersDirectory, "shop-1.1.0");

        host.ExecOk("/opt/containers/shop-1.0.0/runcible install");
        // Installing another version over it is refused: that is what upgrade is for.
        var refused = host.Exec("/opt/containers/shop-1.1.0/runcible install");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("RUNCIBLE5015", refused.StandardError, StringComparison.Ordinal);

        host.ExecOk(StartCommand(host, name));
        Assert.Equal("1.0.0\n", await GetAsync(port, "/version"));
        // Data written by 1.0.0, every byte of which must survive.
        var blob = RandomNumberGenerator.GetBytes(256 * 1024);
        File.WriteAllBytes(Path.Combine(v1, "data", "state", "blob.bin"), blob);

        var upgrade = host.Exec("RUNCIBLE_SETTLE_SECONDS=3 /opt/containers/shop-1.1.0/runcible upgrade");
        Assert.True(upgrade.ExitCode == 0, upgrade.StandardOutput + upgrade.StandardError);
        Assert.Equal("1.1.0\n", await GetAsync(port, "/version"));
        Assert.Equal("1.0.0\n1.1.0\n", await GetAsync(port, "/starts"));
        Assert.Equal(blob, File.ReadAllBytes(Path.Combine(v11, "data", "state", "blob.bin")));
        Assert.False(Directory.Exists(Path.Combine(v1, "data")));

        // 1.2.0 cannot start: put back automatically, data included.
        var failed = host.Exec("RUNCIBLE_SETTLE_SECONDS=3 /opt/containers/shop-1.2.0/runcible upgrade");
        Assert.NotEqual(0, failed.ExitCode);
        Assert.Contains("RUNCIBLE5017", failed.StandardError, StringComparison.Ordinal);
        Assert.Equal("1.1.0\n", await GetAsync(port, "/version"));
        Assert.Equal(blob, File.ReadAllBytes(Path.Combine(v11, "data", "state", "blob.bin")));
        Assert.StartsWith("1.0.0\n1.1.0\n", await GetAsync(port, "/starts"), StringComparison.Ordinal);

        // rollback: back to 1.0.0 with the data.
        host.ExecOk("/opt/containers/shop-1.1.0/runcible rollback");
        Assert.Equal("1.0.0\n", await GetAsync(port, "/version"));
        Assert.Equal(blob, File.ReadAllBytes(Path.Combine(v1, "data", "state", "blob.bin")));
        Assert.Contains("/opt/containers/shop-1.0.0", host.ExecOk(host.Init == HostInit.Systemd ? "cat /etc/systemd/system/shop.service" : "cat /etc/init.d/shop"), StringComparison.Ordinal);
        var noMore = host.Exec("/opt/containers/shop-1.0.0/runcible rollback");
        Assert.Contains("RUNCIBLE5018", noMore.StandardError, StringComparison.Ordinal);

        // uninstall: service and container gone, only data/ and logs/ left (the app's /var/log/shop, like data).
        host.ExecOk("/opt/containers/shop-1.0.0/runcible uninstall");
        Assert.False(await AnswersAsync(port));
        Assert.Equal(["data", "logs"], Directory.EnumerateFileSystemEntries(v1).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(blob, File.ReadAllBytes(Path.Combine(v1, "data", "state", "blob.bin")));
        Assert.NotEqual(0, host.Exec(host.Init == HostInit.Systemd ? "test -e /etc/systemd/system/shop.service" : "test -e /etc/init.d/shop").ExitCode);
        Assert.NotEqual(0, host.Exec("runc state shop").ExitCode);

        // --purge leaves nothing.
        host.ExecOk("/opt/containers/shop-1.1.0/runcible install && " + StartCommand(host, name));
        await GetAsync(port, "/version");
        host.ExecOk("/opt/containers/shop-1.1.0/runcible uninstall --purge");
        Assert.False(Directory.Exists(v11));
        Assert.False(await AnswersAsync(port));
        host.ExecOk("rm -rf /opt/containers/shop-1.0.0 /opt/containers/shop-1.2.0");
    }

    /// <summary>
    /// Rootless: an unprivileged user with lingering (a systemd user manager without a login) installs a rootless
    /// bundle extracted under their home as a user unit; <c>systemctl --user</c> starts it (HTTP answers, the app's
    /// processes are the user's) and stops it gracefully.
    /// </summary>
    public static Task RootlessUserServiceAsync(HostContainer host) => WithDiagnosticsAsync(host, "solo", () => RootlessUserServiceCoreAsync(host));

    private static async Task RootlessUserServiceCoreAsync(HostContainer host)
    {
        const string name = "solo";
        using var alice = await LingeringUser.CreateAsync(host);
        var (user, uid, runtimeDir) = (alice.Name, alice.Uid, alice.RuntimeDirectory);
        var shim = $"/home/{user}/containers/solo-1.0.0/runcible";
        string AsUser(string command) => alice.Command(command);

        var port = TestBundle.FreePort();
        var bundle = TestBundle.Write(Path.Combine(host.Root, "home", user, "containers"), new TestBundle.Options(name, "1.0.0", port) { Rootless = true });
        host.ExecOk($"chown -R {user}:{user} /home/{user}/containers");

        // root may not install it: it belongs to the user.
        Assert.Contains("RUNCIBLE5021", host.Exec(shim + " install").StandardError, StringComparison.Ordinal);
        var install = host.ExecOk(AsUser(shim + " install 2>&1"));
        Assert.Contains($"installed {name} 1.0.0 (systemd service /home/{user}/.config/systemd/user/{name}.service)", install, StringComparison.Ordinal);
        Assert.Equal("enabled\n", host.ExecOk(AsUser($"systemctl --user is-enabled {name}")));

        host.ExecOk(AsUser($"systemctl --user start {name}"));
        Assert.Equal("1.0.0\n", await GetAsync(port, "/version"));
        // The app runs as the user on the host (container root is mapped to it), and so do its files.
        var pid = ContainerPid(host, name, runtimeDir + "/runc");
        Assert.Equal($"{uid}\n", host.ExecOk($"stat -c %u /proc/{pid}"));
        Assert.Equal($"{uid}:{uid}\n", host.ExecOk($"stat -c %u:%g /home/{user}/containers/solo-1.0.0/data/state/starts"));
        Assert.Contains("running", host.ExecOk(AsUser(shim + " status; true")), StringComparison.Ordinal);

        // Lingering: after a reboot the user manager starts without a login, and with it the enabled user unit.
        host.Reboot();
        Assert.Equal("1.0.0\n1.0.0\n", await GetAsync(port, "/starts", body => body.Split('\n').Length == 3, seconds: 60));

        var stopwatch = Stopwatch.StartNew();
        host.ExecOk(AsUser($"systemctl --user stop {name}"));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10), $"stop took {stopwatch.Elapsed}");
        var log = host.ExecOk($"journalctl _SYSTEMD_USER_UNIT={name}.service --no-pager -o cat");
        Assert.Contains("app 1.0.0: SIGTERM received, shutting down gracefully", log, StringComparison.Ordinal);
        Assert.Contains("app 1.0.0 stopped", log, StringComparison.Ordinal);
        Assert.False(await AnswersAsync(port));
        Assert.Equal("", ContainerStatus(host, name, runtimeDir + "/runc"));
        // The user reads the unit's output through the shim (their own journal).
        Assert.Contains("app 1.0.0 stopped", host.ExecOk(AsUser(shim + " logs -o cat")), StringComparison.Ordinal);

        host.ExecOk(AsUser(shim + " uninstall --purge"));
        Assert.False(Directory.Exists(bundle));
        Assert.NotEqual(0, host.Exec($"test -e /home/{user}/.config/systemd/user/{name}.service").ExitCode);
    }

    /// <summary>Writable root: writes outside volumes are visible while running, gone after a restart; the lower rootfs is untouched.</summary>
    public static Task WritableRootAsync(HostContainer host) => WithDiagnosticsAsync(host, "scratch", () => WritableRootCoreAsync(host));

    private static async Task WritableRootCoreAsync(HostContainer host)
    {
        var port = TestBundle.FreePort();
        const string name = "scratch";
        var bundle = TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port) { WritableRootfs = true });
        host.ExecOk("/opt/containers/scratch-1.0.0/runcible install && " + StartCommand(host, name));
        await GetAsync(port, "/version");
        host.ExecOk("/opt/containers/scratch-1.0.0/runcible exec sh -c 'echo written > /app/written && echo more > /home/app/more'");
        Assert.Equal("written\n", host.ExecOk("/opt/containers/scratch-1.0.0/runcible exec cat /app/written"));
        // The upper layer lives on a tmpfs under /run; the bundle's rootfs is never written.
        Assert.Equal("written\n", host.ExecOk("cat /run/runcible/scratch/upper/app/written"));
        Assert.False(File.Exists(Path.Combine(bundle, "rootfs", "app", "written")));

        host.ExecOk(host.Init == HostInit.Systemd ? "systemctl restart scratch" : "rc-service scratch restart");
        await GetAsync(port, "/starts", body => body == "1.0.0\n1.0.0\n");
        Assert.NotEqual(0, host.Exec("/opt/containers/scratch-1.0.0/runcible exec test -e /app/written").ExitCode);
        Assert.NotEqual(0, host.Exec("/opt/containers/scratch-1.0.0/runcible exec test -e /home/app/more").ExitCode);
        host.ExecOk(StopCommand(host, name));
        // After stop the overlay and its tmpfs are gone from the host.
        Assert.NotEqual(0, host.Exec("grep -q ' /opt/containers/scratch-1.0.0/rootfs ' /proc/self/mountinfo").ExitCode);
        Assert.NotEqual(0, host.Exec("test -e /run/runcible/scratch").ExitCode);
        Assert.False(File.Exists(Path.Combine(bundle, "rootfs", "app", "written")));
        host.ExecOk("/opt/containers/scratch-1.0.0/runcible uninstall --purge");
    }
}

/// <summary>
/// The unprivileged user <c>alice</c> (uid 2000) of a systemd host with lingering: logind starts her user manager
/// without a login (pam_systemd gives it its XDG_RUNTIME_DIR). Dispose disables lingering, which stops it.
/// </summary>
internal sealed class LingeringUser : IDisposable
{
    private readonly HostContainer _host;

    private LingeringUser(HostContainer host) => _host = host;

    public string Name => "alice";

    public int Uid => 2000;

    public string Home => "/home/" + Name;

    public string RuntimeDirectory => $"/run/user/{Uid}";

    public static async Task<LingeringUser> CreateAsync(HostContainer host)
    {
        var user = new LingeringUser(host);
        host.ExecOk($"id -u {user.Name} >/dev/null 2>&1 || useradd --create-home --uid {user.Uid} --user-group --shell /bin/sh {user.Name}");
        host.ExecOk($"loginctl enable-linger {user.Name}");
        var deadline = Stopwatch.StartNew();
        while (host.Exec($"systemctl is-active user@{user.Uid}.service").StandardOutput.Trim() != "active")
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), $"the user manager of {user.Name} did not start: " + host.Exec($"systemctl status --no-pager user@{user.Uid}.service").StandardOutput);
            await Task.Delay(250);
        }

        return user;
    }

    /// <summary>A shell command run as the user, with the environment a login gives (the user manager's bus is found through XDG_RUNTIME_DIR); no single quotes in it.</summary>
    public string Command(string command) => $"runuser -u {Name} -- env HOME={Home} XDG_RUNTIME_DIR={RuntimeDirectory} sh -c '{command}'";

    public void Dispose() => _host.Exec($"loginctl disable-linger {Name}");
}
