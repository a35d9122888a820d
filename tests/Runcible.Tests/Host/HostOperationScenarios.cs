using System.Security.Cryptography;

namespace Runcible.Tests.Host;

/// <summary>
/// The shim's host operations on a booted <see cref="HostContainer"/> (both init systems): the per-name lock,
/// own-container checks, hosts without /etc/hosts or /etc/resolv.conf, the record of volumes that hold data,
/// adopting a host installed by an older shim, and interrupted upgrades finished or undone by the next command
/// or by the service's start after a reboot (docs/host-runtime.md).
/// </summary>
internal static class HostOperationScenarios
{
    private static string ServiceFile(HostContainer host, string name) =>
        host.Init == HostInit.Systemd ? $"/etc/systemd/system/{name}.service" : $"/etc/init.d/{name}";

    private static string RestartCommand(HostContainer host, string name) =>
        host.Init == HostInit.Systemd ? $"systemctl restart {name}" : $"rc-service {name} restart";

    /// <summary>An operator command waits for the lock, then refuses naming the holder; what the init system runs never waits.</summary>
    public static Task LockAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "lockd", () => LockCoreAsync(host));

    private static async Task LockCoreAsync(HostContainer host)
    {
        const string name = "lockd";
        var port = TestBundle.FreePort();
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port));
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.1.0", port));
        host.ExecOk($"/opt/containers/{name}-1.0.0/runcible install && " + HostScenarios.StartCommand(host, name));
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));

        // A stand-in for a long operator command: it holds the lock and names itself as the shim does.
        var lockFile = $"/var/lib/runcible/{name}/lock";
        host.ExecOk($"setsid sh -c 'exec 9<>{lockFile}; flock 9; echo \"pid=$$ command=held-by-the-test\" >{lockFile}; exec sleep 300' >/dev/null 2>&1 </dev/null &");
        var holder = "";
        for (var i = 0; i < 100 && !holder.Contains("held-by-the-test", StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
            holder = host.ExecOk($"cat {lockFile}");
        }

        var refused = host.Exec($"RUNCIBLE_LOCK_TIMEOUT=2 /opt/containers/{name}-1.1.0/runcible upgrade");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("runcible: error RUNCIBLE5024: ", refused.StandardError, StringComparison.Ordinal);
        Assert.Contains("command=held-by-the-test", refused.StandardError, StringComparison.Ordinal);
        Assert.Contains("waiting for", refused.StandardError, StringComparison.Ordinal);
        Assert.Contains("RUNCIBLE5024", host.Exec($"RUNCIBLE_LOCK_TIMEOUT=1 /opt/containers/{name}-1.0.0/runcible uninstall").StandardError, StringComparison.Ordinal);
        // Nothing changed, and the service's own start (run, cleanup) does not wait for the lock.
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));
        host.ExecOk(RestartCommand(host, name));
        Assert.Equal("1.0.0\n1.0.0\n", await HostScenarios.GetAsync(port, "/starts", body => body == "1.0.0\n1.0.0\n"));

        // Once the holder is gone, the upgrade goes through.
        var pid = holder.Split(' ')[0].Replace("pid=", "", StringComparison.Ordinal);
        host.ExecOk($"kill {pid}");
        host.ExecOk($"RUNCIBLE_SETTLE_SECONDS=3 /opt/containers/{name}-1.1.0/runcible upgrade");
        Assert.Equal("1.1.0\n", await HostScenarios.GetAsync(port, "/version"));
        host.ExecOk($"/opt/containers/{name}-1.1.0/runcible uninstall --purge && rm -rf /opt/containers/{name}-1.0.0");
    }

    /// <summary>cleanup and uninstall of a version that is not the installed one leave the installed version's container alone.</summary>
    public static Task OwnContainerAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "keep", () => OwnContainerCoreAsync(host));

    private static async Task OwnContainerCoreAsync(HostContainer host)
    {
        const string name = "keep";
        var port = TestBundle.FreePort();
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port));
        var other = TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "2.0.0", port));
        host.ExecOk($"/opt/containers/{name}-1.0.0/runcible install && " + HostScenarios.StartCommand(host, name));
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));
        var pid = HostScenarios.ContainerPid(host, name);

        var cleanup = host.Exec($"/opt/containers/{name}-2.0.0/runcible cleanup");
        Assert.True(cleanup.ExitCode == 0, cleanup.StandardError);
        Assert.Contains($"belongs to another bundle (/opt/containers/{name}-1.0.0); left alone", cleanup.StandardError, StringComparison.Ordinal);
        var run = host.Exec($"/opt/containers/{name}-2.0.0/runcible run");
        Assert.Contains("runcible: error RUNCIBLE5026: ", run.StandardError, StringComparison.Ordinal);
        var uninstall = host.Exec($"/opt/containers/{name}-2.0.0/runcible uninstall");
        Assert.True(uninstall.ExitCode == 0, uninstall.StandardError);
        Assert.Contains("left alone", uninstall.StandardError, StringComparison.Ordinal);

        // The installed version never noticed.
        Assert.Equal(pid, HostScenarios.ContainerPid(host, name));
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));
        Assert.Equal("running", HostScenarios.ContainerStatus(host, name));
        Assert.Equal(["data", "logs"], Directory.EnumerateFileSystemEntries(other).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        host.ExecOk($"/opt/containers/{name}-1.0.0/runcible uninstall --purge && rm -rf /opt/containers/{name}-2.0.0");
    }

    /// <summary>A host without /etc/hosts and /etc/resolv.conf: install says so once, the container starts with generated ones and answers.</summary>
    public static Task MissingHostFilesAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "bare", () => MissingHostFilesCoreAsync(host));

    private static async Task MissingHostFilesCoreAsync(HostContainer host)
    {
        const string name = "bare";
        var port = TestBundle.FreePort();
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port));
        // The test host's resolv.conf is bound from this machine: unmount it, then move both files away.
        host.ExecOk("mv /etc/hosts /etc/hosts.away && { umount /etc/resolv.conf 2>/dev/null || true; } && mv /etc/resolv.conf /etc/resolv.conf.away");
        try
        {
            var install = host.ExecOk($"/opt/containers/{name}-1.0.0/runcible install 2>&1");
            Assert.Contains("this host has no /etc/hosts", install, StringComparison.Ordinal);
            Assert.Contains("this host has no /etc/resolv.conf", install, StringComparison.Ordinal);
            host.ExecOk(HostScenarios.StartCommand(host, name));
            Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));
            var hosts = host.ExecOk($"/opt/containers/{name}-1.0.0/runcible exec cat /etc/hosts");
            Assert.Contains("127.0.0.1\tlocalhost", hosts, StringComparison.Ordinal);
            Assert.Contains($"127.0.1.1\t{name}", hosts, StringComparison.Ordinal);
            Assert.Contains("no /etc/resolv.conf", host.ExecOk($"/opt/containers/{name}-1.0.0/runcible exec cat /etc/resolv.conf"), StringComparison.Ordinal);
            // Said once, at install: a start does not repeat it.
            Assert.DoesNotContain("this host has no", HostScenarios.ServiceLog(host, name), StringComparison.Ordinal);
            host.ExecOk($"/opt/containers/{name}-1.0.0/runcible uninstall --purge");
        }
        finally
        {
            host.Exec("mv /etc/hosts.away /etc/hosts; mv /etc/resolv.conf.away /etc/resolv.conf");
        }
    }

    /// <summary>
    /// A volume once seen holding data is recorded; run refuses to start the installed bundle when its directory is
    /// missing instead of creating it empty. Install tightens the bundle's modes.
    /// </summary>
    public static Task VolumeRecordAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "vault", () => VolumeRecordCoreAsync(host));

    private static async Task VolumeRecordCoreAsync(HostContainer host)
    {
        const string name = "vault";
        var port = TestBundle.FreePort();
        var bundle = TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port));
        var shim = $"/opt/containers/{name}-1.0.0/runcible";
        Assert.Equal("755 644\n", host.ExecOk($"stat -c %a /opt/containers/{name}-1.0.0 /opt/containers/{name}-1.0.0/config.json | tr '\\n' ' ' | sed 's/ $/\\n/'"));
        host.ExecOk($"{shim} install");
        // No other user reaches rootfs/, the volumes or config.json (its environment may hold secrets).
        Assert.Equal("700 600\n", host.ExecOk($"stat -c %a /opt/containers/{name}-1.0.0 /opt/containers/{name}-1.0.0/config.json | tr '\\n' ' ' | sed 's/ $/\\n/'"));
        Assert.Equal("700\n", host.ExecOk($"stat -c %a /var/lib/runcible/{name}"));

        host.ExecOk(HostScenarios.StartCommand(host, name));
        await HostScenarios.GetAsync(port, "/starts", body => body == "1.0.0\n");
        // The next start sees the volume holding data and records it.
        host.ExecOk(RestartCommand(host, name));
        await HostScenarios.GetAsync(port, "/starts", body => body == "1.0.0\n1.0.0\n");
        Assert.Contains("volumes=state\n", host.ExecOk($"cat /var/lib/runcible/{name}/state"), StringComparison.Ordinal);
        host.ExecOk(HostScenarios.StopCommand(host, name));

        host.ExecOk($"mv {bundle.Replace(host.Root, "", StringComparison.Ordinal)}/data/state /root/state.away");
        var refused = host.Exec(shim + " run");
        Assert.Contains("runcible: error RUNCIBLE5025: the volume 'state' of vault held data", refused.StandardError, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(bundle, "data", "state")));
        // An empty directory in its place (what another version's tarball carries) is no better.
        host.ExecOk($"mkdir /opt/containers/{name}-1.0.0/data/state");
        Assert.Contains("runcible: error RUNCIBLE5025: ", host.Exec(shim + " run").StandardError, StringComparison.Ordinal);
        host.ExecOk($"rmdir /opt/containers/{name}-1.0.0/data/state");

        host.ExecOk($"mv /root/state.away /opt/containers/{name}-1.0.0/data/state && " + HostScenarios.StartCommand(host, name));
        Assert.Equal("1.0.0\n1.0.0\n1.0.0\n", await HostScenarios.GetAsync(port, "/starts", body => body.Split('\n').Length == 4));
        host.ExecOk($"{shim} uninstall --purge");
    }

    /// <summary>A host installed by a shim from before the state directory (a service file, no record) is adopted and upgraded.</summary>
    public static Task AdoptAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "heir", () => AdoptCoreAsync(host));

    private static async Task AdoptCoreAsync(HostContainer host)
    {
        const string name = "heir";
        var port = TestBundle.FreePort();
        var v1 = TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port));
        var v2 = TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "2.0.0", port));
        host.ExecOk($"/opt/containers/{name}-1.0.0/runcible install && " + HostScenarios.StartCommand(host, name));
        await HostScenarios.GetAsync(port, "/version");
        var blob = RandomNumberGenerator.GetBytes(64 * 1024);
        File.WriteAllBytes(Path.Combine(v1, "data", "state", "blob.bin"), blob);
        // What an older shim leaves: the service file and the bundle, no state directory.
        host.ExecOk($"rm -rf /var/lib/runcible/{name}");

        var upgrade = host.Exec($"RUNCIBLE_SETTLE_SECONDS=3 /opt/containers/{name}-2.0.0/runcible upgrade");
        Assert.True(upgrade.ExitCode == 0, upgrade.StandardError);
        Assert.Contains($"adopted {name} /opt/containers/{name}-1.0.0", upgrade.StandardError, StringComparison.Ordinal);
        Assert.Equal("2.0.0\n", await HostScenarios.GetAsync(port, "/version"));
        Assert.Equal(blob, File.ReadAllBytes(Path.Combine(v2, "data", "state", "blob.bin")));
        Assert.Equal($"installed=/opt/containers/{name}-2.0.0\nprevious=/opt/containers/{name}-1.0.0\nvolumes=state\n", host.ExecOk($"cat /var/lib/runcible/{name}/state"));
        host.ExecOk($"/opt/containers/{name}-2.0.0/runcible rollback");
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));
        Assert.Equal(blob, File.ReadAllBytes(Path.Combine(v1, "data", "state", "blob.bin")));
        host.ExecOk($"/opt/containers/{name}-1.0.0/runcible uninstall --purge && rm -rf /opt/containers/{name}-2.0.0");
    }

    // An mv that, after doing its work, when RUNCIBLE_TEST_KILL_WHEN holds: waits for the file RUNCIBLE_TEST_HOLD_UNTIL
    // to exist when that is set, else kills -9 every "runcible upgrade|rollback|uninstall" shell above it.
    private const string KillingMv = """
        #!/bin/sh
        /bin/mv "$@" || exit
        args="$*"
        eval "${RUNCIBLE_TEST_KILL_WHEN:-false}" || exit 0
        if [ -n "${RUNCIBLE_TEST_HOLD_UNTIL:-}" ]; then
          touch "$RUNCIBLE_TEST_HOLD_UNTIL.held"
          while [ ! -e "$RUNCIBLE_TEST_HOLD_UNTIL" ]; do sleep 0.1; done
          exit 0
        fi
        pid=$PPID
        while [ "$pid" -gt 1 ]; do
          parent=$(awk '{ print $4 }' "/proc/$pid/stat")
          if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -Eq 'runcible (upgrade|rollback|uninstall)'; then kill -9 "$pid"; fi
          pid=$parent
        done
        """;

    /// <summary>
    /// Bundles 1.0.0, 1.1.0 and 1.2.0 of <paramref name="name"/>; 1.0.0 installed and answering with a blob in its
    /// volume; <see cref="KillingMv"/> first on the host's PATH (the caller removes /usr/local/bin/mv).
    /// </summary>
    private static async Task<(string[] Bundles, byte[] Blob)> ThreeVersionsWithDataAsync(HostContainer host, string name, int port)
    {
        var bundles = new[] { "1.0.0", "1.1.0", "1.2.0" }.Select(v => TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, v, port))).ToArray();
        host.ExecOk($"/opt/containers/{name}-1.0.0/runcible install && " + HostScenarios.StartCommand(host, name));
        await HostScenarios.GetAsync(port, "/version");
        var blob = RandomNumberGenerator.GetBytes(128 * 1024);
        File.WriteAllBytes(Path.Combine(bundles[0], "data", "state", "blob.bin"), blob);
        File.WriteAllText(Path.Combine(host.Root, "usr", "local", "bin", "mv"), KillingMv.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");
        host.ExecOk("chmod 0755 /usr/local/bin/mv");
        return (bundles, blob);
    }

    /// <summary>
    /// upgrade killed after its data rename (journal begun) or right after committing: the service's start after a
    /// reboot, or the next shim command, finishes or undoes it; the service comes back on one version with every byte.
    /// </summary>
    public static Task InterruptedUpgradeAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "rec", () => InterruptedUpgradeCoreAsync(host));

    private static async Task InterruptedUpgradeCoreAsync(HostContainer host)
    {
        const string name = "rec";
        var port = TestBundle.FreePort();
        var (bundles, blob) = await ThreeVersionsWithDataAsync(host, name, port);
        var journal = $"/var/lib/runcible/{name}/journal";
        const string AfterDataRename = "RUNCIBLE_TEST_KILL_WHEN='case \"$args\" in */data) true ;; *) false ;; esac'";
        const string AfterCommit = "RUNCIBLE_TEST_KILL_WHEN='grep -qx phase=committed /var/lib/runcible/rec/journal 2>/dev/null'";
        try
        {
            // 1. Killed with the data already in 1.1.0 (phase begun), then a reboot: 1.0.0's start undoes it.
            var killed = host.Exec($"{AfterDataRename} RUNCIBLE_SETTLE_SECONDS=3 /opt/containers/{name}-1.1.0/runcible upgrade");
            Assert.Equal(137, killed.ExitCode);
            Assert.Equal(blob, File.ReadAllBytes(Path.Combine(bundles[1], "data", "state", "blob.bin")));
            Assert.Contains("phase=begun\n", host.ExecOk($"cat {journal}"), StringComparison.Ordinal);
            host.Reboot();
            Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version", seconds: 60));
            Assert.Equal(blob, File.ReadAllBytes(Path.Combine(bundles[0], "data", "state", "blob.bin")));
            Assert.NotEqual(0, host.Exec($"test -e {journal}").ExitCode);

            // 2. Killed there again; this time the next command recovers it (and upgrades).
            Assert.Equal(137, host.Exec($"{AfterDataRename} RUNCIBLE_SETTLE_SECONDS=3 /opt/containers/{name}-1.1.0/runcible upgrade").ExitCode);
            var again = host.Exec($"RUNCIBLE_SETTLE_SECONDS=3 /opt/containers/{name}-1.1.0/runcible upgrade");
            Assert.True(again.ExitCode == 0, again.StandardError);
            Assert.Contains($"undoing the interrupted upgrade of {name}", again.StandardError, StringComparison.Ordinal);
            Assert.Equal("1.1.0\n", await HostScenarios.GetAsync(port, "/version"));
            Assert.Equal(blob, File.ReadAllBytes(Path.Combine(bundles[1], "data", "state", "blob.bin")));

            // 3. Killed right after committing to 1.2.0, the service file still naming 1.1.0: after a reboot, 1.1.0's
            //    start finishes the upgrade and hands over to 1.2.0.
            Assert.Equal(137, host.Exec($"{AfterCommit} RUNCIBLE_SETTLE_SECONDS=3 /opt/containers/{name}-1.2.0/runcible upgrade").ExitCode);
            Assert.Contains("phase=committed\n", host.ExecOk($"cat {journal}"), StringComparison.Ordinal);
            Assert.Contains($"/opt/containers/{name}-1.1.0/runcible", host.ExecOk($"cat {ServiceFile(host, name)}"), StringComparison.Ordinal);
            host.Reboot();
            Assert.Equal("1.2.0\n", await HostScenarios.GetAsync(port, "/version", seconds: 60));
            Assert.Equal(blob, File.ReadAllBytes(Path.Combine(bundles[2], "data", "state", "blob.bin")));
            Assert.Contains($"/opt/containers/{name}-1.2.0/runcible", host.ExecOk($"cat {ServiceFile(host, name)}"), StringComparison.Ordinal);
            Assert.Equal($"installed=/opt/containers/{name}-1.2.0\nprevious=/opt/containers/{name}-1.1.0\nvolumes=state\n", host.ExecOk($"cat /var/lib/runcible/{name}/state"));
            Assert.NotEqual(0, host.Exec($"test -e {journal}").ExitCode);
            // And it stops and starts as any installed version.
            host.ExecOk(RestartCommand(host, name));
            Assert.Equal("1.2.0\n", await HostScenarios.GetAsync(port, "/version"));
        }
        finally
        {
            host.Exec("rm -f /usr/local/bin/mv");
        }

        host.ExecOk($"/opt/containers/{name}-1.2.0/runcible uninstall --purge && rm -rf /opt/containers/{name}-1.0.0 /opt/containers/{name}-1.1.0");
    }

    /// <summary>
    /// A start of the service while an upgrade is open: refused (RUNCIBLE5027) before the data moved, and after the commit
    /// it hands over to the new version; either way the upgrade then finishes on the new version with every byte.
    /// </summary>
    public static Task StartDuringUpgradeAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "busy", () => StartDuringUpgradeCoreAsync(host));

    private static async Task StartDuringUpgradeCoreAsync(HostContainer host)
    {
        const string name = "busy";
        var port = TestBundle.FreePort();
        var (bundles, blob) = await ThreeVersionsWithDataAsync(host, name, port);
        try
        {
            // 1. Held right after its data rename (phase begun): a start is refused; the upgrade then starts 1.1.0 anyway.
            var upgrade = HoldUpgradeAsync(host, name, "1.1.0", "case \"$args\" in */data) true ;; *) false ;; esac");
            await WaitForHoldAsync(host, name);
            // The init system may report the start before the shim refuses it: wait for the refusal in the service's log.
            var start = host.Exec(HostScenarios.StartCommand(host, name));
            var log = "";
            for (var i = 0; i < 100 && !log.Contains("RUNCIBLE5027", StringComparison.Ordinal); i++)
            {
                await Task.Delay(100);
                log = HostScenarios.ServiceLog(host, name);
            }

            Assert.True(log.Contains("RUNCIBLE5027", StringComparison.Ordinal), start.StandardError + log);
            Assert.False(await HostScenarios.AnswersAsync(port));
            Assert.False(Directory.Exists(Path.Combine(bundles[0], "data", "state")));
            host.ExecOk($"touch /run/{name}.release");
            var result = await upgrade;
            Assert.True(result.ExitCode == 0, result.StandardError);
            Assert.Equal("1.1.0\n", await HostScenarios.GetAsync(port, "/version"));
            Assert.Equal(blob, File.ReadAllBytes(Path.Combine(bundles[1], "data", "state", "blob.bin")));

            // 2. Held right after committing to 1.2.0 (service file and record still 1.1.0): a start brings up 1.2.0, never 1.1.0 on moved data.
            host.ExecOk($"rm -f /run/{name}.release /run/{name}.release.held");
            upgrade = HoldUpgradeAsync(host, name, "1.2.0", $"grep -qx phase=committed /var/lib/runcible/{name}/journal 2>/dev/null");
            await WaitForHoldAsync(host, name);
            Assert.Contains($"/opt/containers/{name}-1.1.0/runcible", host.ExecOk($"cat {ServiceFile(host, name)}"), StringComparison.Ordinal);
            host.ExecOk(HostScenarios.StartCommand(host, name));
            Assert.Equal("1.2.0\n", await HostScenarios.GetAsync(port, "/version"));
            host.ExecOk($"touch /run/{name}.release");
            result = await upgrade;
            Assert.True(result.ExitCode == 0, result.StandardError);
            Assert.Equal("1.2.0\n", await HostScenarios.GetAsync(port, "/version"));
            Assert.Equal(blob, File.ReadAllBytes(Path.Combine(bundles[2], "data", "state", "blob.bin")));
            Assert.Contains($"/opt/containers/{name}-1.2.0/runcible", host.ExecOk($"cat {ServiceFile(host, name)}"), StringComparison.Ordinal);
        }
        finally
        {
            host.Exec($"touch /run/{name}.release; rm -f /usr/local/bin/mv");
        }

        host.ExecOk($"/opt/containers/{name}-1.2.0/runcible uninstall --purge && rm -rf /opt/containers/{name}-1.0.0 /opt/containers/{name}-1.1.0 /run/{name}.release*");
    }

    private static Task<Infrastructure.ProcessResult> HoldUpgradeAsync(HostContainer host, string name, string version, string when) =>
        Task.Run(() => host.Exec(
            $"RUNCIBLE_TEST_KILL_WHEN='{when}' RUNCIBLE_TEST_HOLD_UNTIL=/run/{name}.release RUNCIBLE_SETTLE_SECONDS=3 /opt/containers/{name}-{version}/runcible upgrade",
            TimeSpan.FromMinutes(3)));

    private static async Task WaitForHoldAsync(HostContainer host, string name)
    {
        for (var i = 0; i < 600 && host.Exec($"test -e /run/{name}.release.held").ExitCode != 0; i++)
        {
            await Task.Delay(100);
        }

        Assert.Equal(0, host.Exec($"test -e /run/{name}.release.held").ExitCode);
    }

    /// <summary>
    /// OpenRC: install writes a logrotate snippet (copytruncate) when /etc/logrotate.d exists and uninstall removes it;
    /// after a rotation (logrotate itself when the host has it, else the same copy-then-truncate and gzip it does) the
    /// service keeps logging into the same file and <c>runcible logs</c> shows the rotated files, oldest first, then the log.
    /// </summary>
    public static Task OpenRcLogRotationAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "rota", () => OpenRcLogRotationCoreAsync(host));

    private static async Task OpenRcLogRotationCoreAsync(HostContainer host)
    {
        const string name = "rota";
        var port = TestBundle.FreePort();
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port));
        var shim = $"/opt/containers/{name}-1.0.0/runcible";
        var log = $"/var/log/runcible/{name}.log";
        host.ExecOk("mkdir -p /etc/logrotate.d");
        host.ExecOk($"{shim} install && rc-service {name} start");
        await HostScenarios.GetAsync(port, "/starts", body => body == "1.0.0\n");
        var snippet = host.ExecOk($"cat /etc/logrotate.d/runcible-{name}");
        Assert.StartsWith($"{log} {{\n", snippet, StringComparison.Ordinal);
        Assert.Contains("\tcopytruncate\n", snippet, StringComparison.Ordinal);

        // Two rotations, each followed by a new start of the app by the same supervise-daemon (its container killed,
        // respawned), which logs through the descriptor it opened at the service's start into the truncated file.
        for (var rotation = 1; rotation <= 2; rotation++)
        {
            host.ExecOk($"command -v logrotate >/dev/null && logrotate -f /etc/logrotate.d/runcible-{name} || " +
                $"{{ if [ -f {log}.1 ]; then gzip -c {log}.1 >{log}.2.gz && rm {log}.1; fi; cp {log} {log}.1 && : >{log}; }}");
            host.ExecOk($"kill -KILL {HostScenarios.ContainerPid(host, name)}");
            await HostScenarios.GetAsync(port, "/starts", body => body.Split('\n').Length == rotation + 2, seconds: 40);
            await Task.Delay(500);
        }

        Assert.True(host.Exec($"test -e {log}.2.gz").ExitCode == 0, host.ExecOk("ls -l /var/log/runcible"));
        // The daemon still writes into the log it had open, at its new end (appending: no hole of NULs where the
        // rotated lines were): the last start is there, alone.
        var current = host.ExecOk($"cat {log}");
        Assert.DoesNotContain("\0", current, StringComparison.Ordinal);
        Assert.Single(current.Split('\n'), l => l.StartsWith("app 1.0.0 starting", StringComparison.Ordinal));
        var all = host.ExecOk($"{shim} logs");
        Assert.Equal(3, all.Split('\n').Count(l => l.StartsWith("app 1.0.0 starting", StringComparison.Ordinal)));
        Assert.EndsWith(current, all, StringComparison.Ordinal);

        host.ExecOk($"{shim} uninstall --purge");
        Assert.NotEqual(0, host.Exec($"test -e /etc/logrotate.d/runcible-{name}").ExitCode);
    }

    /// <summary>
    /// uninstall killed right after it began (service stopped): the start after a reboot undoes it, the service answers;
    /// killed right after the service was unregistered: the next command finishes it and installs again.
    /// </summary>
    public static Task InterruptedUninstallAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "gone", () => InterruptedUninstallCoreAsync(host));

    private static async Task InterruptedUninstallCoreAsync(HostContainer host)
    {
        const string name = "gone";
        var port = TestBundle.FreePort();
        var (bundles, blob) = await ThreeVersionsWithDataAsync(host, name, port);
        var shim = $"/opt/containers/{name}-1.0.0/runcible";
        try
        {
            Assert.Equal(137, host.Exec($"RUNCIBLE_TEST_KILL_WHEN='grep -qx phase=begun /var/lib/runcible/{name}/journal 2>/dev/null' {shim} uninstall").ExitCode);
            host.Reboot();
            Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version", seconds: 60));
            Assert.NotEqual(0, host.Exec($"test -e /var/lib/runcible/{name}/journal").ExitCode);

            Assert.Equal(137, host.Exec($"RUNCIBLE_TEST_KILL_WHEN='grep -qx phase=unregistered /var/lib/runcible/{name}/journal 2>/dev/null' {shim} uninstall").ExitCode);
            Assert.NotEqual(0, host.Exec($"test -e {ServiceFile(host, name)}").ExitCode);
            Assert.False(await HostScenarios.AnswersAsync(port));
            var install = host.Exec($"{shim} install");
            Assert.True(install.ExitCode == 0, install.StandardError);
            Assert.Contains($"finishing the interrupted uninstall of {name}", install.StandardError, StringComparison.Ordinal);
            host.ExecOk(HostScenarios.StartCommand(host, name));
            Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));
            Assert.Equal(blob, File.ReadAllBytes(Path.Combine(bundles[0], "data", "state", "blob.bin")));
        }
        finally
        {
            host.Exec("rm -f /usr/local/bin/mv");
        }

        host.ExecOk($"{shim} uninstall --purge && rm -rf /opt/containers/{name}-1.1.0 /opt/containers/{name}-1.2.0");
    }
}
