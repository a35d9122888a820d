using System.Security.Cryptography;
using System.Text;

namespace Runcible.Tests.Host;

/// <summary>
/// The operator's settings directory and the limits on a booted <see cref="HostContainer"/> (both init systems):
/// an env override and a secret set with the shim reach the service's app after a restart and survive an
/// upgrade; a memory hog is OOM-killed at its limit and restarted by the init system (docs/operations.md).
/// </summary>
internal static class OperatorSettingsScenarios
{
    private const string SecretValue = "host-s3cret-4b1d";

    // TestBundle's web app, which also publishes the operator's GREETING and the hash of its secret (never the value).
    private static readonly string App = TestBundle.WebApp.Replace(
        "echo \"$APP_VERSION\" > /data/version",
        "echo \"$APP_VERSION\" > /data/version\necho \"$APP_VERSION $GREETING\" > /data/greeting\n" +
        "if [ -r /run/secrets/token ]; then sha256sum < /run/secrets/token > /data/token; else echo none > /data/token; fi",
        StringComparison.Ordinal);

    private static string SecretHash => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(SecretValue))) + "  -\n";

    public static Task EnvAndSecretSurviveUpgradeAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "tuned", () => EnvAndSecretCoreAsync(host));

    private static async Task EnvAndSecretCoreAsync(HostContainer host)
    {
        const string name = "tuned";
        var port = TestBundle.FreePort();
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port) { App = App });
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.1.0", port) { App = App });
        var v1 = $"/opt/containers/{name}-1.0.0/runcible";
        var v2 = $"/opt/containers/{name}-1.1.0/runcible";
        host.ExecOk($"{v1} install && " + HostScenarios.StartCommand(host, name));
        Assert.Equal("1.0.0 \n", await HostScenarios.GetAsync(port, "/greeting"));
        Assert.Equal("700 0", host.ExecOk($"stat -c '%a %u' /etc/runcible/{name}").Trim());

        var set = host.Exec($"{v1} config set 'GREETING=hello operator' && printf '%s' '{SecretValue}' | {v1} secret set token");
        Assert.True(set.ExitCode == 0, set.StandardError);
        Assert.Contains("applies at the next start", set.StandardError, StringComparison.Ordinal);
        // Nothing changes under the running app.
        Assert.Equal("1.0.0 \n", await HostScenarios.GetAsync(port, "/greeting"));
        host.ExecOk($"{v1} restart");
        Assert.Equal("1.0.0 hello operator\n", await HostScenarios.GetAsync(port, "/greeting", body => body != "1.0.0 \n"));
        Assert.Equal(SecretHash, await HostScenarios.GetAsync(port, "/token"));
        // The value is in neither the bundle, the effective config nor the service's log.
        Assert.Equal(1, host.Exec($"grep -r -q -F '{SecretValue}' /opt/containers/{name}-1.0.0 /run/runcible/.bundles/*/config.json").ExitCode);
        Assert.DoesNotContain(SecretValue, host.ExecOk($"{v1} logs"), StringComparison.Ordinal);
        Assert.Equal("token\n", host.ExecOk($"{v1} secret ls"));

        // A settings file the new version would refuse to start with stops the upgrade before anything changes.
        host.ExecOk($"cp /etc/runcible/{name}/env /tmp/{name}.env && echo 'not a line' >> /etc/runcible/{name}/env");
        var refused = host.Exec($"RUNCIBLE_SETTLE_SECONDS=3 {v2} upgrade");
        Assert.Contains("runcible: error RUNCIBLE5031: ", refused.StandardError, StringComparison.Ordinal);
        Assert.NotEqual(0, host.Exec($"test -e /var/lib/runcible/{name}/journal").ExitCode);
        Assert.Equal("1.0.0 hello operator\n", await HostScenarios.GetAsync(port, "/greeting"));
        host.ExecOk($"cp /tmp/{name}.env /etc/runcible/{name}/env");

        host.ExecOk($"RUNCIBLE_SETTLE_SECONDS=3 {v2} upgrade");
        Assert.Equal("1.1.0 hello operator\n", await HostScenarios.GetAsync(port, "/greeting", body => body.StartsWith("1.1.0", StringComparison.Ordinal)));
        Assert.Equal(SecretHash, await HostScenarios.GetAsync(port, "/token"));

        // uninstall keeps the settings; only a purge of the installed version removes them.
        host.ExecOk($"{v2} uninstall");
        Assert.Equal("env\nsecrets\n", host.ExecOk($"ls /etc/runcible/{name}"));
        host.ExecOk($"rm -rf /opt/containers/{name}-1.1.0 /etc/systemd/system/{name}.service.d; {v1} install && {v1} uninstall --purge");
        Assert.NotEqual(0, host.Exec($"test -e /etc/runcible/{name}").ExitCode);
    }

    public static Task MemoryHogIsRestartedAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "hog", () => MemoryHogCoreAsync(host));

    private static async Task MemoryHogCoreAsync(HostContainer host)
    {
        const string name = "hog";
        var port = TestBundle.FreePort();
        // Each start is counted, then the app's own process grows past the 32M limit (dd's 96M block).
        const string hog = "#!/bin/sh\necho \"$APP_VERSION\" >> /data/starts\nexec dd if=/dev/zero of=/dev/null bs=96M count=1\n";
        TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(name, "1.0.0", port) { App = hog, MemoryLimit = "32M" });
        host.ExecOk($"/opt/containers/{name}-1.0.0/runcible install && " + HostScenarios.StartCommand(host, name));
        var starts = "";
        for (var i = 0; i < 100 && starts.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length < 2; i++)
        {
            await Task.Delay(200);
            starts = host.Exec($"cat /opt/containers/{name}-1.0.0/data/state/starts").StandardOutput;
        }

        Assert.True(starts.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length >= 2, $"the OOM-killed app was not restarted: starts '{starts}'");
        var log = HostScenarios.ServiceLog(host, name);
        Assert.DoesNotContain("0+1 records out", log, StringComparison.Ordinal);
        host.ExecOk($"/opt/containers/{name}-1.0.0/runcible uninstall --purge");
    }
}
