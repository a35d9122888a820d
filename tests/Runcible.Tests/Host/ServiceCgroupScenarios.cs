using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Runcible.Tests.Host;

/// <summary>
/// systemd only: the container inside the service's own cgroup subtree (<c>Delegate=yes</c>, the shim in
/// <c>&lt;unit&gt;/supervisor</c>, the container in <c>&lt;unit&gt;/container</c>), the unit's <c>MemoryMax=</c> binding the
/// app, no cgroup left behind by a stop, restart, crash, upgrade or uninstall; and a credential of a
/// <c>LoadCredential=</c> drop-in at <c>/run/secrets</c> (docs/operations.md). The host has this machine's hybrid layout:
/// systemd manages the v1 memory, pids, cpu and devices hierarchies and the unified one (without controllers).
/// </summary>
internal static partial class ServiceCgroupScenarios
{
    private const string Unlimited = "9223372036854771712";

    // Every cgroup directory of the unit in any hierarchy (the slice's own directory is shared and not the unit's).
    private static string UnitCgroups(HostContainer host, string name) =>
        host.ExecOk($"find /sys/fs/cgroup -type d -path '*/system.slice/{name}.service*' | sort");

    private static string CgroupOf(HostContainer host, string pid) => host.ExecOk($"cat /proc/{pid}/cgroup");

    private static string MainPid(HostContainer host, string name) => host.ExecOk($"systemctl show -P MainPID {name}").Trim();

    public static Task ContainerInTheUnitsCgroupAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "bound", () => ContainerInTheUnitsCgroupCoreAsync(host));

    private static async Task ContainerInTheUnitsCgroupCoreAsync(HostContainer host)
    {
        const string name = "bound";
        var port = TestBundle.FreePort();
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port));
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.1.0", port));
        var v1 = $"/opt/containers/{name}-1.0.0/runcible";
        var v2 = $"/opt/containers/{name}-1.1.0/runcible";
        host.ExecOk($"{v1} install && mkdir -p /etc/runcible/{name} && printf 'memory=40M\\n' > /etc/runcible/{name}/limits && systemctl start {name}");
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));

        var app = HostScenarios.ContainerPid(host, name);
        var unit = $"/system.slice/{name}.service";
        // The app's processes: in <unit>/container in every hierarchy (runc creates it where systemd did not).
        var appCgroup = CgroupOf(host, app);
        foreach (var hierarchy in new[] { "memory", "pids", "cpu", "devices", "name=systemd", "freezer" })
        {
            Assert.Matches($@"(?m)^\d+:{Regex.Escape(hierarchy)}:{Regex.Escape(unit)}/container$", appCgroup);
        }

        Assert.Matches($@"(?m)^0::{Regex.Escape(unit)}/container$", appCgroup);
        // The shim (now runc run, the main process) and its health loop: <unit>/supervisor.
        Assert.Matches($@"(?m)^\d+:memory:{Regex.Escape(unit)}/supervisor$", CgroupOf(host, MainPid(host, name)));
        var status = host.ExecOk($"systemctl status --no-pager -l {name}");
        Assert.Matches($@"(?s)─container\n.*{app} /bin/sh /app/start\.sh", status);
        Assert.Matches(@"(?s)─supervisor\n.*runc run", status);
        Assert.Contains($"{app} ", host.ExecOk($"systemd-cgls --no-pager -u {name}.service"), StringComparison.Ordinal);

        // The limits file binds the container alone; a MemoryMax= on the unit (v1: memory.limit_in_bytes) binds both.
        var memory = $"/sys/fs/cgroup/memory{unit}";
        Assert.Equal("41943040\n", host.ExecOk($"cat {memory}/container/memory.limit_in_bytes"));
        Assert.Equal(Unlimited + "\n", host.ExecOk($"cat {memory}/memory.limit_in_bytes"));
        host.ExecOk($"systemctl set-property --runtime {name} MemoryMax=200M");
        Assert.Equal($"{200 * 1024 * 1024}\n", host.ExecOk($"cat {memory}/memory.limit_in_bytes"));
        Assert.Equal("41943040\n", host.ExecOk($"cat {memory}/container/memory.limit_in_bytes"));

        // A restart, a crash of runc run (the service's main process) and of the app: each start is back in
        // <unit>/container and leaves nothing of the last one behind.
        var expected = string.Concat(new[] { "cpu", "devices", "memory", "pids", "systemd", "unified" }
            .SelectMany(h => new[] { $"/sys/fs/cgroup/{h}{unit}\n", $"/sys/fs/cgroup/{h}{unit}/container\n", $"/sys/fs/cgroup/{h}{unit}/supervisor\n" })
            .Concat(new[] { "blkio", "cpuacct", "cpuset", "freezer" }.Select(h => $"/sys/fs/cgroup/{h}{unit}\n/sys/fs/cgroup/{h}{unit}/container\n"))
            .Order(StringComparer.Ordinal));
        Assert.Equal(expected, UnitCgroups(host, name));
        var first = HostScenarios.ContainerPid(host, name);
        host.ExecOk($"{v1} restart");
        await SampleScenarios.WaitForAsync(() => HostScenarios.ContainerStatus(host, name) == "running" && HostScenarios.ContainerPid(host, name) != first, $"{name} to come back after a restart");
        await HostScenarios.GetAsync(port, "/version");
        Assert.Equal(expected, UnitCgroups(host, name));
        foreach (var pidOf in new Func<string>[] { () => MainPid(host, name), () => HostScenarios.ContainerPid(host, name) })
        {
            var before = HostScenarios.ContainerPid(host, name);
            var victim = pidOf();
            host.ExecOk($"kill -KILL {victim}");
            await SampleScenarios.WaitForAsync(() => HostScenarios.ContainerStatus(host, name) == "running" && HostScenarios.ContainerPid(host, name) != before, $"{name} to be restarted after kill -KILL {victim}");
            await HostScenarios.GetAsync(port, "/version");
            Assert.Equal(expected, UnitCgroups(host, name));
        }

        host.ExecOk($"systemctl stop {name}");
        Assert.Equal("", UnitCgroups(host, name));

        host.ExecOk($"systemctl start {name} && RUNCIBLE_SETTLE_SECONDS=3 {v2} upgrade");
        Assert.Equal("1.1.0\n", await HostScenarios.GetAsync(port, "/version", body => body == "1.1.0\n"));
        Assert.Matches($@"(?m)^\d+:memory:{Regex.Escape(unit)}/container$", CgroupOf(host, HostScenarios.ContainerPid(host, name)));
        Assert.Equal(expected, UnitCgroups(host, name));
        host.ExecOk($"{v2} uninstall --purge");
        Assert.Equal("", UnitCgroups(host, name));
    }

    public static Task UnitMemoryMaxBindsTheAppAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "capped", () => UnitMemoryMaxBindsTheAppCoreAsync(host));

    private static async Task UnitMemoryMaxBindsTheAppCoreAsync(HostContainer host)
    {
        const string name = "capped";
        var port = TestBundle.FreePort();
        // No build-time limit and no limits file: only the unit's MemoryMax= (a drop-in) can stop dd's 96M block.
        const string hog = "#!/bin/sh\necho \"$APP_VERSION\" >> /data/starts\ndd if=/dev/zero of=/dev/null bs=96M count=1\necho \"dd exit $?\" >> /data/dd\nexec httpd -f -p \"$PORT\" -h /data\n";
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port) { App = hog });
        var shim = $"/opt/containers/{name}-1.0.0/runcible";
        host.ExecOk($"mkdir -p /etc/systemd/system/{name}.service.d && printf '[Service]\\nMemoryMax=48M\\n' > /etc/systemd/system/{name}.service.d/memory.conf");
        host.ExecOk($"{shim} install && systemctl start {name}");
        Assert.Equal("dd exit 137\n", await HostScenarios.GetAsync(port, "/dd"));
        Assert.Equal($"{48 * 1024 * 1024}\n", host.ExecOk($"cat /sys/fs/cgroup/memory/system.slice/{name}.service/memory.limit_in_bytes"));
        Assert.Equal(Unlimited + "\n", host.ExecOk($"cat /sys/fs/cgroup/memory/system.slice/{name}.service/container/memory.limit_in_bytes"));
        Assert.NotEqual(0, host.Exec($"test -e /etc/runcible/{name}/limits").ExitCode);

        // Without the drop-in the same app's dd gets its memory: the OOM kill above was the unit's limit.
        host.ExecOk($"rm -r /etc/systemd/system/{name}.service.d && systemctl daemon-reload && {shim} restart");
        Assert.Equal("dd exit 137\ndd exit 0\n", await HostScenarios.GetAsync(port, "/dd", body => body.Contains("dd exit 0", StringComparison.Ordinal)));
        host.ExecOk($"{shim} uninstall --purge");
    }

    public static Task LoadCredentialReachesRunSecretsAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "vault", () => LoadCredentialReachesRunSecretsCoreAsync(host));

    private static async Task LoadCredentialReachesRunSecretsCoreAsync(HostContainer host)
    {
        const string name = "vault";
        const string value = "cred-Pa55-9e2f";
        var port = TestBundle.FreePort();
        // The app publishes the hash of the credential it reads (never the value) and who may read it.
        var app = TestBundle.WebApp.Replace(
            "echo \"$APP_VERSION\" > /data/version",
            "echo \"$APP_VERSION\" > /data/version\nsha256sum < /run/secrets/db-password > /data/hash\nls -ln /run/secrets | grep db-password > /data/mode",
            StringComparison.Ordinal);
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port) { App = app });
        var shim = $"/opt/containers/{name}-1.0.0/runcible";
        host.ExecOk($"install -d -m 0700 /etc/credstore && printf '%s' '{value}' > /etc/credstore/db-password && chmod 0600 /etc/credstore/db-password");
        host.ExecOk($"mkdir -p /etc/systemd/system/{name}.service.d && printf '[Service]\\nLoadCredential=db-password:/etc/credstore/db-password\\n' > /etc/systemd/system/{name}.service.d/credentials.conf");
        host.ExecOk($"{shim} install && systemctl start {name}");

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value))) + "  -\n";
        Assert.Equal(hash, await HostScenarios.GetAsync(port, "/hash"));
        Assert.Matches(@"^-r-------- +1 1654 +1654 ", await HostScenarios.GetAsync(port, "/mode"));
        // Not in the bundle (its config.json included), the effective config, the settings directory or the log.
        Assert.Equal(1, host.Exec($"grep -r -q -F '{value}' /opt/containers/{name}-1.0.0 /run/runcible/.bundles/*/config.json /etc/runcible/{name}").ExitCode);
        Assert.DoesNotContain(value, host.ExecOk($"{shim} logs"), StringComparison.Ordinal);
        host.ExecOk($"{shim} uninstall --purge && rm -r /etc/systemd/system/{name}.service.d /etc/credstore && systemctl daemon-reload");
    }
}
