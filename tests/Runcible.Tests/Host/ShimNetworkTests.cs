using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// RuncNetwork=private and none with the real runc and CNI plugins: each test's shim runs in a
/// <see cref="NetworkTestHost"/> (a network namespace of its own), which the test checks back to what it was.
/// </summary>
public sealed class ShimNetworkTests : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private readonly TempDirectory _dir = new("runcible-net");
    private readonly NetworkTestHost _host = new("nameserver 127.0.0.53\nnameserver " + NetworkTestHost.ServiceAddress + "\nsearch example.test\n");
    private readonly List<string> _names = [];

    public ShimNetworkTests()
    {
        ProcessRunner.Run("chmod", ["0755", _dir.Path]).EnsureSuccess("chmod");
    }

    public void Dispose()
    {
        _host.Dispose();
        foreach (var name in _names)
        {
            TestBundle.DeleteRuntimeBundles(name);
            foreach (var dir in new[] { $"/var/lib/runcible/{name}", $"/etc/runcible/{name}" })
            {
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
        }

        _dir.Dispose();
    }

    private string Bundle(TestBundle.Options options)
    {
        _names.Add(options.Name);
        return TestBundle.Write(_dir.Combine("opt", "containers"), options);
    }

    private TestBundle.Options Private(string version = "1.0.0", int port = 8080) =>
        new("net" + Guid.NewGuid().ToString("N")[..8], version, port) { Network = BundleNetwork.Private };

    private static string Shim(string bundle) => Path.Combine(bundle, "runcible");

    private static void AssertError(ProcessResult result, string code, string? mentions = null)
    {
        Assert.True(result.ExitCode != 0, $"expected {code}, got exit 0:\n{result.StandardOutput}{result.StandardError}");
        Assert.Contains($"runcible: error {code}: ", result.StandardError, StringComparison.Ordinal);
        if (mentions is not null)
        {
            Assert.Contains(mentions, result.StandardError, StringComparison.Ordinal);
        }
    }

    /// <summary>GET http://127.0.0.1:<paramref name="port"/>/version from the host, retried until the app answers.</summary>
    private string Get(int port, BackgroundProcess run, string address = "127.0.0.1")
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        // The app of THIS run answers (a killed run's container may still hold the port until this run's cleanup).
        while (!run.Output.Contains("starting on port", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            Assert.False(run.Process.HasExited, "the container stopped:\n" + run.Output);
            Thread.Sleep(100);
        }

        ProcessResult result;
        do
        {
            result = _host.Run("wget", "-q", "-T", "2", "-O", "-", $"http://{address}:{port}/version");
            if (result.ExitCode == 0)
            {
                return result.StandardOutput.Trim();
            }

            Assert.False(run.Process.HasExited, "the container stopped:\n" + run.Output);
            Thread.Sleep(300);
        }
        while (DateTime.UtcNow < deadline);
        throw new TimeoutException($"no answer on {address}:{port}: {result.StandardError}\n{run.Output}");
    }

    private void Stop(string bundle, string id, BackgroundProcess run)
    {
        _host.Run("runc", "--root", _host.RuncRoot, "kill", id, "TERM").EnsureSuccess("runc kill");
        run.WaitForExit(TimeSpan.FromSeconds(30));
        // What ExecStopPost / the OpenRC stop does after runc.
        _host.Run(Shim(bundle), "cleanup").EnsureSuccess("cleanup");
    }

    [Fact]
    public void TwoBundlesListeningOn8080RunSideBySideOnTwoHostPortsAndLeaveTheHostAsItWas()
    {
        var a = Private("1.0.0");
        var b = Private("2.0.0") with { PublishPorts = ["18081:8080"] };
        var bundleA = Bundle(a);
        var bundleB = Bundle(b);
        var before = _host.Snapshot(a.Name, b.Name);

        var runA = _host.Start(Shim(bundleA), "run");
        var runB = _host.Start(Shim(bundleB), "run");
        Assert.Equal("1.0.0", Get(8080, runA));
        Assert.Equal("2.0.0", Get(18081, runB));
        // Through the host's other address too (the published port is the host's on every address).
        Assert.Equal("2.0.0", Get(18081, runB, NetworkTestHost.ServiceAddress));
        // B's own 8080 is not published: the host's 8080 is A's.
        Assert.Equal("1.0.0", Get(8080, runB));
        var during = _host.Snapshot(a.Name, b.Name);
        Assert.Contains("runcible0", during, StringComparison.Ordinal);
        Assert.Contains($"runcible-{a.Name} runcible-{b.Name}", during, StringComparison.Ordinal);
        Assert.Contains("--dport 18081", during, StringComparison.Ordinal);

        Stop(bundleA, a.Name, runA);
        Stop(bundleB, b.Name, runB);
        Assert.Equal(before, _host.Snapshot(a.Name, b.Name));
    }

    [Fact]
    public void ThePrivateNetworkReachesNeitherTheHostsLoopbackNorItsAbstractSocketsButGoesOutAndResolves()
    {
        var www = _dir.Combine("www");
        Directory.CreateDirectory(www);
        File.WriteAllText(Path.Combine(www, "hello"), "outside\n");
        _host.Start(Python, "-m", "http.server", "9999", "--bind", "127.0.0.1", "--directory", www);
        _host.Start(Python, "-m", "http.server", "9998", "--bind", NetworkTestHost.ServiceAddress, "--directory", www);
        _host.Start(Python, "-c", DnsResponder, NetworkTestHost.ServiceAddress);
        _host.Start(Python, "-c", "import socket,time\ns=socket.socket(socket.AF_UNIX)\ns.bind('\\0runcible-test-abstract')\ns.listen()\ntime.sleep(600)");
        var options = Private();
        var bundle = Bundle(options);
        var run = _host.Start(Shim(bundle), "run");
        Get(8080, run);
        ProcessResult Exec(params string[] command) => _host.Run([Shim(bundle), "exec", .. command]);

        // Control: the host itself reaches all of them.
        Assert.Equal("outside", _host.Run("wget", "-q", "-T", "3", "-O", "-", "http://127.0.0.1:9999/hello").EnsureSuccess("host wget").StandardOutput.Trim());
        Assert.Equal(0, _host.Run(Python, "-c", AbstractConnect).ExitCode);

        // busybox 1.35's wget crashes with -T: none here (a refused or unreachable connection fails at once).
        var loopback = Exec("wget", "-q", "-O", "-", "http://127.0.0.1:9999/hello");
        Assert.Equal(1, loopback.ExitCode);
        Assert.Contains("Connection refused", loopback.StandardError, StringComparison.Ordinal);
        Assert.Equal("outside", Exec("wget", "-q", "-O", "-", $"http://{NetworkTestHost.ServiceAddress}:9998/hello").EnsureSuccess("wget out").StandardOutput.Trim());
        // Abstract sockets belong to a network namespace: the app's cannot see the host's.
        Assert.NotEqual(0, ProcessRunner.Run("ip", ["netns", "exec", "runcible-" + options.Name, Python, "-c", AbstractConnect]).ExitCode);

        // IPv4 and IPv6 addresses from the bridge's ranges.
        var addresses = Exec("ip", "-o", "addr", "show", "eth0").EnsureSuccess("ip addr").StandardOutput;
        Assert.Contains("inet 10.89.64.", addresses, StringComparison.Ordinal);
        Assert.Contains("inet6 fd52:756e:6369:", addresses, StringComparison.Ordinal);

        // The host's resolv.conf names a loopback stub first: the container gets the reachable server only.
        var resolv = Exec("cat", "/etc/resolv.conf").EnsureSuccess("cat resolv.conf").StandardOutput;
        Assert.DoesNotContain("127.0.0.53", resolv, StringComparison.Ordinal);
        Assert.Contains("nameserver " + NetworkTestHost.ServiceAddress, resolv, StringComparison.Ordinal);
        Assert.Contains("10.250.0.7", Exec("nslookup", "app.example.test").EnsureSuccess("nslookup").StandardOutput, StringComparison.Ordinal);
        Stop(bundle, options.Name, run);
    }

    [Fact]
    public void AKilledRuncAndACrashedAppLeaveNothingOnceCleanedUpAndTheNextStartWorks()
    {
        var options = Private();
        var bundle = Bundle(options);
        var before = _host.Snapshot(options.Name);

        var run = _host.Start(Shim(bundle), "run");
        Get(8080, run);
        // kill -9 of runc: the container and its network stay until the next cleanup (the service's ExecStopPost/ExecStartPre).
        run.Process.Kill();
        run.WaitForExit(TimeSpan.FromSeconds(10));
        Assert.Contains($"runcible-{options.Name}", _host.Snapshot(options.Name), StringComparison.Ordinal);
        _host.Run(Shim(bundle), "cleanup").EnsureSuccess("cleanup");
        Assert.Equal(before, _host.Snapshot(options.Name));

        // A run that finds the leftovers of a killed one (no cleanup in between) starts clean.
        run = _host.Start(Shim(bundle), "run");
        Get(8080, run);
        run.Process.Kill();
        run.WaitForExit(TimeSpan.FromSeconds(10));
        run = _host.Start(Shim(bundle), "run");
        Assert.Equal("1.0.0", Get(8080, run));

        // The app crashes: runc run ends, cleanup removes the network.
        _host.Run("runc", "--root", _host.RuncRoot, "kill", options.Name, "KILL").EnsureSuccess("runc kill");
        Assert.NotEqual(0, run.WaitForExit(TimeSpan.FromSeconds(30)));
        _host.Run(Shim(bundle), "cleanup").EnsureSuccess("cleanup");
        Assert.Equal(before, _host.Snapshot(options.Name));
    }

    [Fact]
    public void TheOperatorsPortsFileRemapsAndBadLinesAndTakenPortsAreCodedErrors()
    {
        var options = Private();
        var bundle = Bundle(options);
        var settings = $"/etc/runcible/{options.Name}";
        // As install makes it: root's alone (the shim refuses a settings directory others can reach, RUNCIBLE5030).
        ProcessRunner.Run("mkdir", ["-p", "-m", "0700", settings]).EnsureSuccess("mkdir");
        File.WriteAllText(Path.Combine(settings, "ports"), "# remapped by the operator\n18082:8080/tcp\n");
        var run = _host.Start(Shim(bundle), "run");
        Assert.Equal("1.0.0", Get(18082, run));
        Assert.NotEqual(0, _host.Run("wget", "-q", "-T", "2", "-O", "-", "http://127.0.0.1:8080/version").ExitCode);

        // Another bundle wanting the same host port is refused with the container that has it.
        var other = Private("3.0.0") with { PublishPorts = ["18082:8080"] };
        var otherBundle = Bundle(other);
        AssertError(_host.Run(Shim(otherBundle), "run"), "RUNCIBLE5072", "the Runcible container " + options.Name);
        Stop(bundle, options.Name, run);

        // A process of the host listening there is named.
        var listener = _host.Start(Python, "-c", "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',18082))\ns.listen()\ntime.sleep(600)");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!_host.Run("ss", "-Hltn", "sport = :18082").StandardOutput.Contains("18082", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }

        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5072", "python3");
        listener.Process.Kill();

        File.WriteAllText(Path.Combine(settings, "ports"), "18082:8080\n8080\n");
        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5071", "line 2");
        File.WriteAllText(Path.Combine(settings, "ports"), "18082:8080\n18082:9090\n");
        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5071", "18082/tcp");
        Assert.Equal("records: ", _host.Snapshot(options.Name).Split('\n').Single(l => l.StartsWith("records:", StringComparison.Ordinal)));
    }

    /// <summary>The IPv4 address of the container's eth0 (its namespace runcible-<paramref name="id"/>).</summary>
    private static string ContainerAddress(string id) =>
        ProcessRunner.Run("ip", ["-n", "runcible-" + id, "-4", "-o", "addr", "show", "dev", "eth0"]).EnsureSuccess("ip addr")
            .StandardOutput.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipWhile(f => f != "inet").Skip(1).First();

    [Fact]
    public void TheOperatorsSubnetIsTheBridgesAndAChangeTakesEffectOnceTheBridgeIsEmpty()
    {
        var a = Private("1.0.0");
        var b = Private("2.0.0") with { PublishPorts = ["18081:8080"] };
        var bundleA = Bundle(a);
        var bundleB = Bundle(b);
        var before = _host.Snapshot(a.Name, b.Name);
        File.WriteAllText(_host.NetworkSettingsFile, "# this host routes 10.89.0.0/16 elsewhere\n  subnet = 10.77.0.0/24  \n\nsubnet6=fd52:1:2:3::/64\n");

        var runA = _host.Start(Shim(bundleA), "run");
        Assert.Equal("1.0.0", Get(8080, runA));
        Assert.StartsWith("10.77.0.", ContainerAddress(a.Name), StringComparison.Ordinal);
        Assert.Contains("inet 10.77.0.1/24", _host.Run("ip", "-4", "addr", "show", "dev", "runcible0").EnsureSuccess("ip addr").StandardOutput, StringComparison.Ordinal);
        if (File.ReadAllText("/proc/sys/net/ipv6/conf/all/disable_ipv6").Trim() == "0")
        {
            Assert.Contains("inet6 fd52:1:2:3:", ProcessRunner.Run("ip", ["-n", "runcible-" + a.Name, "-6", "addr", "show", "dev", "eth0"]).StandardOutput, StringComparison.Ordinal);
        }

        // Changed while A is on the bridge: B joins A's subnet, with a warning; the change waits.
        File.WriteAllText(_host.NetworkSettingsFile, "subnet=10.78.0.0/24\n");
        var runB = _host.Start(Shim(bundleB), "run");
        Assert.Equal("2.0.0", Get(18081, runB));
        Assert.StartsWith("10.77.0.", ContainerAddress(b.Name), StringComparison.Ordinal);
        Assert.Contains("the new subnets take effect once they are all stopped", runB.Output, StringComparison.Ordinal);
        Stop(bundleA, a.Name, runA);
        Stop(bundleB, b.Name, runB);
        Assert.Equal(before, _host.Snapshot(a.Name, b.Name));

        // The bridge gone, the next start makes it with the new subnet.
        runB = _host.Start(Shim(bundleB), "run");
        Assert.Equal("2.0.0", Get(18081, runB));
        Assert.StartsWith("10.78.0.", ContainerAddress(b.Name), StringComparison.Ordinal);
        Assert.DoesNotContain("take effect", runB.Output, StringComparison.Ordinal);
        Stop(bundleB, b.Name, runB);
        Assert.Equal(before, _host.Snapshot(a.Name, b.Name));
    }

    [Fact]
    public void ABadSubnetSettingOrOneOverlappingAHostRouteIsACodedErrorAndLeavesNothing()
    {
        var options = Private();
        var bundle = Bundle(options);
        var before = _host.Snapshot(options.Name);

        File.WriteAllText(_host.NetworkSettingsFile, "subnet=10.77.0.0/24\nsubnet=10.77.0.1/24\n");
        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5075", "line 2");
        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5075", "the network is 10.77.0.0/24");
        File.WriteAllText(_host.NetworkSettingsFile, "subnet=10.77.0.0/31\n");
        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5075", "/8-/30");
        File.WriteAllText(_host.NetworkSettingsFile, "subnet6=fd52:1::1::/64\n");
        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5075", "is not an IPv6 network");
        File.WriteAllText(_host.NetworkSettingsFile, "bridge=br0\n");
        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5075", "'bridge=br0'");
        Assert.Equal(before, _host.Snapshot(options.Name));

        // The host's service network (10.250.0.0/24 on svc0) inside the subnet asked for.
        File.WriteAllText(_host.NetworkSettingsFile, "subnet=10.250.0.0/16\n");
        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5076", "overlaps the host's route '10.250.0.0/24 dev svc0");
        Assert.Equal(before, _host.Snapshot(options.Name));
        // And a route of the host inside the default subnet.
        File.Delete(_host.NetworkSettingsFile);
        _host.Run("ip", "route", "add", "10.89.64.128/25", "dev", "svc0").EnsureSuccess("ip route add");
        var overlapping = _host.Run(Shim(bundle), "run");
        AssertError(overlapping, "RUNCIBLE5076", "10.89.64.128/25 dev svc0");
        Assert.Contains("subnet= in ", overlapping.StandardError, StringComparison.Ordinal);
        _host.Run("ip", "route", "del", "10.89.64.128/25", "dev", "svc0").EnsureSuccess("ip route del");
        Assert.Equal(before, _host.Snapshot(options.Name));
    }

    [Fact]
    public void WithoutThePluginsAPrivateBundleIsACodedErrorNamingThePackage()
    {
        var bundle = Bundle(Private());
        var empty = _dir.Combine("no-plugins");
        Directory.CreateDirectory(empty);
        foreach (var command in new[] { "install", "run" })
        {
            var result = ProcessRunner.Run("unshare", ["--mount", "--propagation", "private", "sh", "-c", "mount --bind \"$1\" /usr/lib/cni && exec \"$2\" \"$3\"", "sh", empty, Shim(bundle), command]);
            AssertError(result, "RUNCIBLE5070", "containernetworking-plugins");
        }
    }

    [Fact]
    public void NoneHasLoopbackOnly()
    {
        _host.Start(Python, "-m", "http.server", "9998", "--bind", NetworkTestHost.ServiceAddress, "--directory", _dir.Path);
        var options = new TestBundle.Options("net" + Guid.NewGuid().ToString("N")[..8], "1.0.0", 8080)
        {
            Network = BundleNetwork.None,
            App = "#!/bin/sh\nip -o link\nwget -q -O /dev/null http://" + NetworkTestHost.ServiceAddress + ":9998/ && echo reached || echo unreachable\n",
        };
        var bundle = Bundle(options);
        var before = _host.Snapshot(options.Name);
        var result = _host.Run(Shim(bundle), "run");
        Assert.True(result.ExitCode == 0, result.StandardError);
        var links = result.StandardOutput.Split('\n').Where(l => l.Contains(": <", StringComparison.Ordinal)).ToList();
        Assert.Contains(": lo: <LOOPBACK,UP,LOWER_UP>", Assert.Single(links), StringComparison.Ordinal);
        Assert.Contains("unreachable", result.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(before, _host.Snapshot(options.Name));
    }

    private const string AbstractConnect = "import socket\ns=socket.socket(socket.AF_UNIX)\ns.connect('\\0runcible-test-abstract')";

    // Answers every A query for app.example.test with 10.250.0.7 and anything else with NXDOMAIN.
    private const string DnsResponder = """
        import socket, struct, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((sys.argv[1], 53))
        while True:
            data, peer = s.recvfrom(512)
            qid, flags, qd = struct.unpack('>HHH', data[:6])
            i = 12
            labels = []
            while data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode())
                i += data[i] + 1
            qtype = struct.unpack('>H', data[i + 1:i + 3])[0]
            question = data[12:i + 5]
            name = '.'.join(labels).lower()
            if name == 'app.example.test' and qtype == 1:
                answer = b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + socket.inet_aton('10.250.0.7')
                s.sendto(struct.pack('>HHHHHH', qid, 0x8180, 1, 1, 0, 0) + question + answer, peer)
            else:
                rcode = 0 if name == 'app.example.test' else 3
                s.sendto(struct.pack('>HHHHHH', qid, 0x8180 | rcode, 1, 0, 0, 0) + question, peer)
        """;
}
