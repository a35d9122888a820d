using Runcible.Core.Contracts;

namespace Runcible.Tests.Host;

/// <summary>RuncNetwork=private for a rootless bundle as a user service of a real systemd (pasta in the host image).</summary>
internal static class RootlessNetworkScenarios
{
    /// <summary>
    /// A lingering unprivileged user installs a rootless private bundle whose app listens on 8080, published on a free
    /// host port; <c>systemctl --user</c> starts it, HTTP answers through the port pasta binds, the app's 8080 is not the
    /// host's, and after a crash (restarted by systemd) and a stop no pasta process and no network record is left.
    /// </summary>
    public static Task RootlessPrivateUserServiceAsync(HostContainer host) =>
        HostScenarios.WithDiagnosticsAsync(host, "pasted", () => RootlessPrivateUserServiceCoreAsync(host));

    private static async Task RootlessPrivateUserServiceCoreAsync(HostContainer host)
    {
        const string name = "pasted";
        using var alice = await LingeringUser.CreateAsync(host);
        var shim = $"{alice.Home}/containers/{name}-1.0.0/runcible";
        var port = TestBundle.FreePort();
        TestBundle.Write(Path.Combine(host.Root, "home", alice.Name, "containers"),
            new TestBundle.Options(name, "1.0.0", 8080) { Rootless = true, Network = BundleNetwork.Private, PublishPorts = [$"{port}:8080"] });
        host.ExecOk($"chown -R {alice.Name}:{alice.Name} {alice.Home}/containers");
        // The pasta processes of the user, and the records of the user's private networks.
        var leftovers = $"for p in /proc/[0-9]*; do tr \"\\\\0\" \" \" < $p/cmdline 2>/dev/null | grep \"^pasta \"; done; ls -A {alice.RuntimeDirectory}/runcible/.net 2>/dev/null | grep -v \"^.lock$\"; true";

        host.ExecOk(alice.Command(shim + " install"));
        host.ExecOk(alice.Command($"systemctl --user start {name}"));
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(port, "/version"));
        Assert.False(await HostScenarios.AnswersAsync(8080));
        Assert.Contains($"-t {port}:8080", host.ExecOk(leftovers), StringComparison.Ordinal);

        // The app crashes: systemd restarts it (ExecStopPost/ExecStartPre clean the old network up), HTTP answers again.
        var pid = HostScenarios.ContainerPid(host, name, alice.RuntimeDirectory + "/runc");
        host.ExecOk($"kill -KILL {pid}");
        await HostScenarios.GetAsync(port, "/starts", body => body.Split('\n').Length == 3, seconds: 60);
        Assert.Single(host.ExecOk(leftovers).Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("pasta ", StringComparison.Ordinal));

        host.ExecOk(alice.Command($"systemctl --user stop {name}"));
        Assert.False(await HostScenarios.AnswersAsync(port));
        Assert.Equal("", host.ExecOk(leftovers).Trim());
        host.ExecOk(alice.Command(shim + " uninstall --purge"));
    }
}
