using System.Diagnostics;
using System.Security.Cryptography;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;

namespace Runcible.Tests.Host;

/// <summary>
/// Health checks on a booted <see cref="HostContainer"/> (both init systems, docs/health-checks.md): the shim's loop
/// beside runc restarts a service whose check fails N times in a row, <c>runcible status</c> shows the state and the
/// last output, and <c>upgrade</c> rolls back (RUNCIBLE5017, with the data) a version that never becomes healthy.
/// </summary>
internal static class HealthScenarios
{
    /// <summary>The web app that also marks itself healthy at each start (/data/healthy), which the test can remove.</summary>
    private static readonly string SelfMarkingApp = TestBundle.WebApp.Replace(
        "echo \"$APP_VERSION\" > /data/version", "echo \"$APP_VERSION\" > /data/version\ntouch /data/healthy", StringComparison.Ordinal);

    /// <summary>A check every second, 2 failures in a row make it unhealthy.</summary>
    private static HealthCheckSettings Check(string check) =>
        HealthCheckParser.Parse(check, "1s", "3s", "2", "0")!;

    /// <summary>`runcible status` until it shows <paramref name="expected"/>, or the deadline.</summary>
    public static async Task<string> StatusShowsAsync(HostContainer host, string shim, string expected, int seconds = 60)
    {
        var deadline = Stopwatch.StartNew();
        var last = "";
        while (deadline.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            last = host.Exec($"{shim} status 2>&1").StandardOutput;
            if (last.Contains(expected, StringComparison.Ordinal))
            {
                return last;
            }

            await Task.Delay(300);
        }

        throw new TimeoutException($"'{shim} status' did not show '{expected}' in {seconds}s; last:\n{last}");
    }

    /// <summary>A command check (runc exec, no shell) that turns bad: the service is restarted after 2 failures and is healthy again.</summary>
    public static Task RestartWhenUnhealthyAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "medic", () => RestartWhenUnhealthyCoreAsync(host));

    private static async Task RestartWhenUnhealthyCoreAsync(HostContainer host)
    {
        const string name = "medic";
        var port = TestBundle.FreePort();
        var bundle = TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port)
        {
            App = SelfMarkingApp,
            Health = Check("test -f /data/healthy"),
        });
        const string shim = "/opt/containers/medic-1.0.0/runcible";
        host.ExecOk($"{shim} install && " + HostScenarios.StartCommand(host, name));
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/starts"));
        var healthy = await StatusShowsAsync(host, shim, "health: healthy");
        Assert.Contains("check: test -f /data/healthy", healthy, StringComparison.Ordinal);
        Assert.Equal(0, host.Exec($"{shim} health").ExitCode);
        var pid = HostScenarios.ContainerPid(host, name);

        // The app's health turns bad: 2 failed checks later the init system restarts the service (a new container,
        // which marks itself healthy again).
        File.Delete(Path.Combine(bundle, "data", "state", "healthy"));
        Assert.Equal(1, host.Exec($"{shim} health").ExitCode);
        Assert.Equal("1.0.0\n1.0.0\n", await HostScenarios.GetAsync(port, "/starts", body => body == "1.0.0\n1.0.0\n", seconds: 60));
        Assert.NotEqual(pid, HostScenarios.ContainerPid(host, name));
        Assert.Contains("failed its health check 2 times in a row; restarting it", HostScenarios.ServiceLog(host, name), StringComparison.Ordinal);
        await StatusShowsAsync(host, shim, "health: healthy");
        // Only one restart: healthy again, the loop of the new start does not restart it.
        await Task.Delay(4000);
        Assert.Equal("1.0.0\n1.0.0\n", await HostScenarios.GetAsync(port, "/starts"));

        host.ExecOk(HostScenarios.StopCommand(host, name));
        host.ExecOk($"{shim} uninstall --purge");
    }

    /// <summary>
    /// An HTTP check (bash /dev/tcp on the host): an upgrade to a version whose health URL answers 404 is rolled back
    /// with every byte of data (RUNCIBLE5017); one whose check passes is committed only once healthy.
    /// </summary>
    public static Task UpgradeToUnhealthyVersionRollsBackAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "vital", () => UpgradeCoreAsync(host));

    private static async Task UpgradeCoreAsync(HostContainer host)
    {
        const string name = "vital";
        var port = TestBundle.FreePort();
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port) { Health = Check($"http://127.0.0.1:{port}/version") });
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.1.0", port) { Health = Check($"http://127.0.0.1:{port}/missing") });
        var v12 = TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.2.0", port) { Health = Check($"http://localhost:{port}/version") });
        var v1 = Path.Combine(host.ContainersDirectory, "vital-1.0.0");
        host.ExecOk($"/opt/containers/{name}-1.0.0/runcible install && " + HostScenarios.StartCommand(host, name));
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));
        var status = await StatusShowsAsync(host, $"/opt/containers/{name}-1.0.0/runcible", "health: healthy");
        Assert.Contains("HTTP/1.1 200 OK", status, StringComparison.Ordinal);
        var blob = RandomNumberGenerator.GetBytes(128 * 1024);
        File.WriteAllBytes(Path.Combine(v1, "data", "state", "blob.bin"), blob);
        var checksum = SHA256.HashData(blob);

        // 1.1.0 starts and keeps running, but its health URL answers 404: rolled back, data included.
        var failed = host.Exec($"RUNCIBLE_SETTLE_SECONDS=1 /opt/containers/{name}-1.1.0/runcible upgrade", TimeSpan.FromMinutes(3));
        Assert.NotEqual(0, failed.ExitCode);
        Assert.Contains("RUNCIBLE5017", failed.StandardError, StringComparison.Ordinal);
        Assert.Contains("its health check failed", failed.StandardError, StringComparison.Ordinal);
        Assert.Contains("404", failed.StandardError, StringComparison.Ordinal);
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));
        Assert.Equal(checksum, SHA256.HashData(File.ReadAllBytes(Path.Combine(v1, "data", "state", "blob.bin"))));
        Assert.StartsWith("1.0.0\n1.1.0\n1.0.0\n", await HostScenarios.GetAsync(port, "/starts"), StringComparison.Ordinal);
        Assert.Equal($"installed={v1.Replace(host.Root, "", StringComparison.Ordinal)}", host.ExecOk($"head -n 1 /var/lib/runcible/{name}/state").Trim());
        await StatusShowsAsync(host, $"/opt/containers/{name}-1.0.0/runcible", "health: healthy");

        // 1.2.0 answers on its health URL: committed.
        var upgrade = host.Exec($"RUNCIBLE_SETTLE_SECONDS=1 /opt/containers/{name}-1.2.0/runcible upgrade", TimeSpan.FromMinutes(3));
        Assert.True(upgrade.ExitCode == 0, upgrade.StandardOutput + upgrade.StandardError);
        Assert.Equal("1.2.0\n", await HostScenarios.GetAsync(port, "/version"));
        Assert.Contains("health: healthy", host.ExecOk($"/opt/containers/{name}-1.2.0/runcible status 2>&1; true"), StringComparison.Ordinal);
        Assert.Equal(checksum, SHA256.HashData(File.ReadAllBytes(Path.Combine(v12, "data", "state", "blob.bin"))));

        host.ExecOk(HostScenarios.StopCommand(host, name));
        host.ExecOk($"/opt/containers/{name}-1.2.0/runcible uninstall --purge");
        host.ExecOk($"rm -rf /opt/containers/{name}-1.0.0 /opt/containers/{name}-1.1.0");
    }
}
