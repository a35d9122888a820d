using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// The crash tests' harness, proven on its own: <see cref="HostContainer.PowerCycle"/> keeps the disk and loses
/// everything else, and <see cref="ShimFaults.HoldAtRename"/> stops a command exactly before its N-th rename.
/// </summary>
public sealed class HostHarnessTests
{
    [Theory]
    [InlineData(HostInit.Systemd)]
    [InlineData(HostInit.OpenRc)]
    public Task PowerCycleKeepsTheDiskAndLosesProcessesRunAndNestedRuncState(HostInit init) =>
        PowerCycleAsync(init);

    [Theory]
    [InlineData(HostInit.Systemd)]
    [InlineData(HostInit.OpenRc)]
    public void AnOwnNetworkIsFreshAtEveryBootReachesOnlyTheMachinesEndAndLeavesNothingOnTheMachine(HostInit init)
    {
        string name, link;
        using (var host = new HostContainer(init, network: HostNetwork.Own))
        {
            var network = host.Network!;
            (name, link) = (network.Name, network.MachineLink);
            Assert.Equal(network.HostAddress, host.Address);
            // Its own namespace: its eth0 with its address, the machine's interfaces not there, no default route.
            Assert.NotEqual(ProcessRunner.Run("readlink", ["/proc/self/ns/net"]).StandardOutput, host.ExecOk("readlink /proc/self/ns/net"));
            Assert.Contains($"inet {network.HostAddress}/24", host.ExecOk("ip -o -4 addr show dev eth0"), StringComparison.Ordinal);
            Assert.StartsWith($"{network.Subnet} dev eth0 ", host.ExecOk("ip -4 route show"), StringComparison.Ordinal);
            Assert.DoesNotContain("default", host.ExecOk("ip -4 route show table all; ip -6 route show table all"), StringComparison.Ordinal);
            Assert.NotEqual(0, host.Exec($"ip link show {link}").ExitCode);
            // Another host at the same time gets another /24.
            using (var other = new HostNetworkNamespace())
            {
                Assert.NotEqual(network.Subnet, other.Subnet);
            }

            // What the host sets up in its network (a link, an address, a rule) is gone after a power cut, as on a real machine.
            host.ExecOk("ip link add mark0 type veth peer name mark1 && ip addr add 10.99.0.1/24 dev mark0 && iptables -A INPUT -s 192.0.2.1 -j DROP");
            host.PowerCycle();
            Assert.NotEqual(0, host.Exec("ip link show mark0").ExitCode);
            Assert.DoesNotContain("192.0.2.1", host.ExecOk("iptables -S INPUT"), StringComparison.Ordinal);
            Assert.Contains($"inet {network.HostAddress}/24", host.ExecOk("ip -o -4 addr show dev eth0"), StringComparison.Ordinal);
            host.ExecOk("ip link add mark0 type veth peer name mark1");
            Assert.Contains($"/run/netns/{name}", host.MachineLeftovers());
        }

        // Disposed: the namespace and both ends of the veth are gone.
        Assert.False(File.Exists("/run/netns/" + name));
        Assert.NotEqual(0, ProcessRunner.Run("ip", ["link", "show", link]).ExitCode);
    }

    [Theory]
    [InlineData(HostInit.Systemd)]
    [InlineData(HostInit.OpenRc)]
    public void HoldAtRenameStopsTheWholeCommandJustBeforeItsNthRename(HostInit init)
    {
        const string Script = "cd /var/lib/moves && mv a1 b1 && touch after1 && mv a2 b2 && touch after2 && mv a3 b3 && touch after3";
        for (var n = 1; n <= 4; n++)
        {
            using var host = new HostContainer(init);
            host.ExecOk("mkdir -p /var/lib/moves && cd /var/lib/moves && touch a1 a2 a3");
            var fault = ShimFaults.HoldAtRename(host, Script, n);
            // The renames before N happened, N and everything after it did not, even after the power cut.
            host.PowerCycle();
            var left = host.ExecOk("cd /var/lib/moves && ls").Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToArray();
            if (n <= 3)
            {
                Assert.True(fault.Held, $"rename {n}: {fault}");
                Assert.Contains($"\"a{n}\"", fault.Call, StringComparison.Ordinal);
                var expected = Enumerable.Range(1, 3).Select(i => i < n ? $"b{i}" : $"a{i}")
                    .Concat(Enumerable.Range(1, n - 1).Select(i => $"after{i}")).Order(StringComparer.Ordinal);
                Assert.Equal(expected, left);
            }
            else
            {
                Assert.False(fault.Held);
                Assert.Equal((0, 3), (fault.ExitCode, fault.Renames));
                Assert.Equal(["after1", "after2", "after3", "b1", "b2", "b3"], left);
            }
        }
    }

    private static async Task PowerCycleAsync(HostInit init)
    {
        using var host = new HostContainer(init);
        await HostScenarios.WithDiagnosticsAsync(host, "cycle", async () =>
        {
            var port = TestBundle.FreePort();
            TestBundle.Write(host.ContainersDirectory, new TestBundle.Options("cycle", "1.0.0", port));
            host.ExecOk("/opt/containers/cycle-1.0.0/runcible install && " + HostScenarios.StartCommand(host, "cycle"));
            await HostScenarios.GetAsync(port, "/version");
            host.ExecOk("echo disk > /var/lib/marker && echo run > /run/marker && echo tmp > /tmp/marker && sync");
            // Nested runc keeps its state on the host's /run, a tmpfs, as on a real host.
            Assert.Equal("tmpfs\n", host.ExecOk("stat -f -c %T /run/runc"));
            var created = host.ExecOk("runc state cycle | grep '\"created\"'");
            var appPid = HostScenarios.ContainerPid(host, "cycle");
            var machinePid = host.ExecOk($"grep NSpid /proc/{appPid}/status").Split('\t', StringSplitOptions.RemoveEmptyEntries)[1];
            // The nested container's cgroups (systemd: the unit's container cgroup; OpenRC: runc's own, named by the
            // container id), under the host's on this machine: the cut must remove them too.
            var nested = host.Init == HostInit.Systemd ? "container" : "cycle";
            Assert.Contains(host.MachineLeftovers().Where(Directory.Exists), cgroup =>
                Directory.EnumerateDirectories(cgroup, nested, SearchOption.AllDirectories).Any());

            host.CutPower();
            // Nothing runs and nothing of the host is left on this machine: no process, cgroup or mount.
            Assert.False(Directory.Exists("/proc/" + machinePid) && File.ReadAllText($"/proc/{machinePid}/cmdline").Contains("httpd", StringComparison.Ordinal));
            Assert.Empty(host.MachineLeftovers());
            Assert.False(await HostScenarios.AnswersAsync(port));

            host.Boot();
            Assert.Equal("disk\n", host.ExecOk("cat /var/lib/marker"));
            Assert.NotEqual(0, host.Exec("test -e /run/marker").ExitCode);
            Assert.NotEqual(0, host.Exec("test -e /tmp/marker").ExitCode);
            // The enabled service starts again: a new container (the old one's runc state died with /run).
            Assert.Equal("1.0.0\n1.0.0\n", await HostScenarios.GetAsync(port, "/starts", body => body == "1.0.0\n1.0.0\n", seconds: 60));
            Assert.NotEqual(created, host.ExecOk("runc state cycle | grep '\"created\"'"));
            host.ExecOk(HostScenarios.StopCommand(host, "cycle") + " && /opt/containers/cycle-1.0.0/runcible uninstall --purge");
        });
    }
}
