using Runcible.Core.Contracts;

namespace Runcible.Tests.Host;

/// <summary>
/// RuncNetwork=private on a systemd or OpenRC host with a network namespace of its own
/// (<see cref="HostNetwork.Own"/>): the service manager runs the shim, which sets the network up at each start
/// and removes it at each stop, and the host's links, namespaces, rules and IPAM store end as they began.
/// </summary>
internal static class PrivateNetworkHostScenarios
{
    private const int AppPort = 8080;

    // What a private network leaves in the host: its links, network namespaces, IPv4 and IPv6 rules (a table's
    // built-in chains, which iptables-save lists once anything loaded it, and the counters left out), the IPAM
    // leases (host-local's lock and last_reserved_ip bookkeeping left out) and the shim's records.
    private const string SnapshotScript = """
        echo "links: $(ip -o link show | cut -d: -f2 | sed 's/@.*//; s/ //g' | sort | tr '\n' ' ')"
        echo "namespaces: $(ip netns list | cut -d' ' -f1 | sort | tr '\n' ' ')"
        for tool in iptables-save ip6tables-save; do
          echo "$tool:"
          $tool | grep -E '^(-A |:)' | grep -Ev '^:(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) ' | sed 's/ \[[0-9]*:[0-9]*\]$//'
        done
        echo "leases: $(ls -A /run/runcible/.net/ipam/runcible 2>/dev/null | grep -Ev '^(lock|last_reserved_ip.*)$' | sort | tr '\n' ' ')"
        echo "records: $(ls -A /run/runcible/.net 2>/dev/null | grep -Ev '^(\.lock|ipam)$' | sort | tr '\n' ' ')"
        """;

    public static string Snapshot(HostContainer host) => host.ExecOk(SnapshotScript);

    private static string Shim(string name) => $"/opt/containers/{name}-1.0.0/runcible";

    private static TestBundle.Options PrivateBundle(string name) =>
        new(name, "1.0.0", AppPort) { Network = BundleNetwork.Private, StopTimeoutSeconds = 10 };

    /// <summary>GET /path on the host's published port from inside the host (127.0.0.1, through portmap's OUTPUT DNAT), with bash's /dev/tcp.</summary>
    private static async Task<string> GetInsideAsync(HostContainer host, string path, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        string last;
        do
        {
            var result = host.Exec(
                $"exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/{AppPort} && printf \"GET {path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n\" >&3 && cat <&3'",
                TimeSpan.FromSeconds(10));
            last = result.StandardOutput + result.StandardError;
            var body = last.Replace("\r\n", "\n", StringComparison.Ordinal).Split("\n\n", 2);
            if (result.ExitCode == 0 && last.StartsWith("HTTP/1.", StringComparison.Ordinal) && last.Contains(" 200 ", StringComparison.Ordinal) && body.Length == 2)
            {
                return body[1];
            }

            await Task.Delay(300);
        }
        while (DateTime.UtcNow < deadline);
        throw new TimeoutException($"127.0.0.1:{AppPort}{path} inside the host did not answer 200 in {seconds}s; last: {last}");
    }

    /// <summary>
    /// install, start → HTTP on the published port from the machine (to the host's address) and from inside the
    /// host; the app killed, then runc killed with SIGKILL → the service manager restarts it with its network set up
    /// again (one namespace, one lease); stop → the host's network as before; start, uninstall → as before.
    /// </summary>
    public static Task LifecycleAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "pweb", () => LifecycleCoreAsync(host));

    private static async Task LifecycleCoreAsync(HostContainer host)
    {
        const string name = "pweb";
        TestBundle.Write(host.ContainersDirectory, PrivateBundle(name));
        var before = Snapshot(host);
        Assert.DoesNotContain("runcible0", before, StringComparison.Ordinal);

        host.ExecOk($"{Shim(name)} install");
        host.ExecOk(HostScenarios.StartCommand(host, name));
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(AppPort, "/version", address: host.Address));
        Assert.Equal("1.0.0\n", await GetInsideAsync(host, "/version"));
        var running = Snapshot(host);
        Assert.Contains("runcible0", running, StringComparison.Ordinal);
        Assert.Contains($"namespaces: runcible-{name} \n", running, StringComparison.Ordinal);
        Assert.Contains("--dport 8080", running, StringComparison.Ordinal);
        AssertOneLease(running);

        // The app killed: restarted, its network set up again.
        host.ExecOk($"kill -KILL {HostScenarios.ContainerPid(host, name)}");
        await HostScenarios.GetAsync(AppPort, "/starts", body => body == "1.0.0\n1.0.0\n", seconds: 60, address: host.Address);
        var restarted = Snapshot(host);
        Assert.Contains($"namespaces: runcible-{name} \n", restarted, StringComparison.Ordinal);
        AssertOneLease(restarted);

        // runc killed with SIGKILL (its container lives on): the stop's cleanup removes the container and its
        // network, the restart makes them again.
        host.ExecOk("kill -KILL $(pidof runc)");
        await HostScenarios.GetAsync(AppPort, "/starts", body => body == "1.0.0\n1.0.0\n1.0.0\n", seconds: 60, address: host.Address);
        Assert.Equal("1.0.0\n", await GetInsideAsync(host, "/version"));
        var again = Snapshot(host);
        Assert.Contains($"namespaces: runcible-{name} \n", again, StringComparison.Ordinal);
        AssertOneLease(again);

        host.ExecOk(HostScenarios.StopCommand(host, name));
        Assert.False(await HostScenarios.AnswersAsync(AppPort, host.Address));
        Assert.Equal(before, Snapshot(host));

        host.ExecOk(HostScenarios.StartCommand(host, name));
        await HostScenarios.GetAsync(AppPort, "/version", address: host.Address);
        host.ExecOk($"{Shim(name)} uninstall --purge");
        Assert.False(await HostScenarios.AnswersAsync(AppPort, host.Address));
        Assert.Equal(before, Snapshot(host));
    }

    /// <summary>
    /// A power cut while a private bundle runs: the host boots with a fresh /run and a fresh network namespace (as a
    /// real machine does), and the enabled service comes back with its network, blocked by no record, lease or rule
    /// of the last boot; stopped and uninstalled, the host's network is as before the install.
    /// </summary>
    public static Task PowerCutAsync(HostContainer host) => HostScenarios.WithDiagnosticsAsync(host, "pcut", () => PowerCutCoreAsync(host));

    private static async Task PowerCutCoreAsync(HostContainer host)
    {
        const string name = "pcut";
        TestBundle.Write(host.ContainersDirectory, PrivateBundle(name));
        var before = Snapshot(host);
        host.ExecOk($"{Shim(name)} install");
        host.ExecOk(HostScenarios.StartCommand(host, name));
        Assert.Equal("1.0.0\n", await HostScenarios.GetAsync(AppPort, "/version", address: host.Address));
        // Marks of this boot: a file under /run and a link in the host's network namespace.
        host.ExecOk("touch /run/boot-mark && ip link add mark0 type veth peer name mark1");
        var running = Snapshot(host);
        AssertOneLease(running);

        host.PowerCycle();

        Assert.NotEqual(0, host.Exec("test -e /run/boot-mark").ExitCode);
        Assert.NotEqual(0, host.Exec("ip link show mark0").ExitCode);
        Assert.Equal("1.0.0\n1.0.0\n", await HostScenarios.GetAsync(AppPort, "/starts", body => body.Split('\n').Length == 3, seconds: 90, address: host.Address));
        Assert.Equal("1.0.0\n", await GetInsideAsync(host, "/version"));
        var rebooted = Snapshot(host);
        Assert.Contains($"namespaces: runcible-{name} \n", rebooted, StringComparison.Ordinal);
        AssertOneLease(rebooted);

        host.ExecOk(HostScenarios.StopCommand(host, name));
        host.ExecOk($"{Shim(name)} uninstall --purge");
        Assert.Equal(before, Snapshot(host));
    }

    private static void AssertOneLease(string snapshot)
    {
        var leases = snapshot.Split('\n').Single(l => l.StartsWith("leases: ", StringComparison.Ordinal))["leases: ".Length..]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // One address a family: IPv4, and IPv6 when the host has it.
        Assert.True(leases.Length is 1 or 2 && leases.Count(l => !l.Contains(':', StringComparison.Ordinal)) == 1, "leases: " + string.Join(' ', leases));
    }
}
