using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// RuncNetwork=private and none with the real runc and CNI plugins (rootful) or pasta (rootless, run as an
/// unprivileged user): each test's shim runs in a <see cref="NetworkTestHost"/> (a network namespace of its own,
/// with an uplink for pasta), which the test checks back to what it was.
/// </summary>
public sealed class ShimNetworkTests : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private const string RootlessUser = SystemUsers.Rootless;
    private readonly TempDirectory _dir = new("runcible-net");
    private readonly NetworkTestHost _host = new("nameserver 127.0.0.53\nnameserver " + NetworkTestHost.ServiceAddress + "\nsearch example.test\n", uplink: true);
    private readonly List<string> _names = [];

    // The rootless user's XDG_RUNTIME_DIR (its runc state, runtime bundles, network records) and HOME (state, settings).
    private readonly TempDirectory _userRuntime = new("runcible-net-xdg");
    private readonly TempDirectory _userHome = new("runcible-net-home");

    public ShimNetworkTests()
    {
        ProcessRunner.Run("chmod", ["0755", _dir.Path]).EnsureSuccess("chmod");
        SystemUsers.Ensure(RootlessUser);
        ProcessRunner.Run("chown", [$"{RootlessUser}:{RootlessUser}", _userRuntime.Path, _userHome.Path]).EnsureSuccess("chown");
        // pasta opens /dev/net/tun as the user: the distributions make it 0666 (udev); some machines have it 0600.
        ProcessRunner.Run("chmod", ["0666", "/dev/net/tun"]).EnsureSuccess("chmod /dev/net/tun");
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
        _userRuntime.Dispose();
        _userHome.Dispose();
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

    /// <summary>
    /// The host's services the isolation tests try to reach: "outside" over HTTP on 127.0.0.1:9999 and on the service
    /// address's 9998, the DNS answerer on <paramref name="dnsAddress"/>, and a listening abstract socket.
    /// </summary>
    private void StartHostServices(string dnsAddress)
    {
        var www = _dir.Combine("www");
        Directory.CreateDirectory(www);
        File.WriteAllText(Path.Combine(www, "hello"), "outside\n");
        _host.Start(Python, "-m", "http.server", "9999", "--bind", "127.0.0.1", "--directory", www);
        _host.Start(Python, "-m", "http.server", "9998", "--bind", NetworkTestHost.ServiceAddress, "--directory", www);
        _host.Start(Python, "-c", DnsResponder, dnsAddress);
        _host.Start(Python, "-c", "import socket,time\ns=socket.socket(socket.AF_UNIX)\ns.bind('\\0runcible-test-abstract')\ns.listen()\ntime.sleep(600)");
    }

    private TestBundle.Options RootlessPrivate(string version = "1.0.0") => Private(version) with { Rootless = true };

    /// <summary>Writes the bundle owned by the rootless user (as its tarball extracted by that user would be).</summary>
    private string RootlessBundle(TestBundle.Options options)
    {
        var bundle = Bundle(options);
        ProcessRunner.Run("chown", ["-R", $"{RootlessUser}:{RootlessUser}", bundle]).EnsureSuccess("chown");
        return bundle;
    }

    /// <summary>The command run as the rootless user, with its own runtime directory and home (not the host's root-only overrides).</summary>
    private string[] AsUser(params string[] command) =>
        ["setpriv", "--reuid", RootlessUser, "--regid", RootlessUser, "--clear-groups", "env", "-u", "RUNCIBLE_NET_RUN_DIR", "-u", "RUNCIBLE_RUNC_ROOT",
         "XDG_RUNTIME_DIR=" + _userRuntime.Path, "HOME=" + _userHome.Path, .. command];

    private string UserRuncRoot => Path.Combine(_userRuntime.Path, "runc");

    private void StopRootless(string bundle, string id, BackgroundProcess run)
    {
        _host.Run(AsUser("runc", "--root", UserRuncRoot, "kill", id, "TERM")).EnsureSuccess("runc kill");
        run.WaitForExit(TimeSpan.FromSeconds(30));
        _host.Run(AsUser(Shim(bundle), "cleanup")).EnsureSuccess("cleanup");
    }

    /// <summary>The pasta processes of this test's rootless bundles (their pid files are under its runtime directory).</summary>
    private List<string> PastaProcesses() =>
        Directory.EnumerateDirectories("/proc").Select(d => Path.GetFileName(d)).Where(p => p.All(char.IsAsciiDigit))
            .Select(p => (Pid: p, Command: ReadCommandLine(p)))
            .Where(p => p.Command.StartsWith("pasta ", StringComparison.Ordinal) && p.Command.Contains(_userRuntime.Path, StringComparison.Ordinal))
            .Select(p => $"{p.Pid}: {p.Command}").ToList();

    private static string ReadCommandLine(string pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>What a rootless private network leaves: pasta processes, the network records, runc containers.</summary>
    private string RootlessLeftovers()
    {
        var net = Path.Combine(_userRuntime.Path, "runcible", ".net");
        var records = Directory.Exists(net) ? Directory.EnumerateFileSystemEntries(net).Select(e => Path.GetFileName(e)).Where(n => n != ".lock").Order().ToList() : [];
        var containers = Directory.Exists(UserRuncRoot) ? Directory.EnumerateDirectories(UserRuncRoot).Select(e => Path.GetFileName(e)).ToList() : [];
        return $"pasta: {string.Join(" | ", PastaProcesses())}; records: {string.Join(' ', records)}; containers: {string.Join(' ', containers)}";
    }

    private const string NothingLeft = "pasta: ; records: ; containers: ";

    /// <summary>The pid of the container's process on the host (root enters its network namespace with it).</summary>
    private string ContainerPid(string id) =>
        System.Text.RegularExpressions.Regex.Match(_host.Run(AsUser("runc", "--root", UserRuncRoot, "state", id)).EnsureSuccess("runc state").StandardOutput, "\"pid\": ([0-9]+)").Groups[1].Value;

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
        StartHostServices(NetworkTestHost.ServiceAddress);
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
        // Leading zeros: Go's CIDR parser in the plugins refuses them, so the setting must too.
        File.WriteAllText(_host.NetworkSettingsFile, "subnet=010.77.0.0/24\n");
        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5075", "is not an IPv4 network");
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
        // A network the host is on (an interface address's connected route) wider than the subnet overlaps too.
        _host.Run("ip", "addr", "add", "10.89.0.1/16", "dev", "svc0").EnsureSuccess("ip addr add");
        AssertError(_host.Run(Shim(bundle), "run"), "RUNCIBLE5076", "10.89.0.0/16 dev svc0");
        _host.Run("ip", "addr", "del", "10.89.0.1/16", "dev", "svc0").EnsureSuccess("ip addr del");
        Assert.Equal(before, _host.Snapshot(options.Name));
    }

    [Fact]
    public void ARouteWiderThanTheSubnetThatNoInterfaceIsOnDoesNotBlockThePrivateNetwork()
    {
        // A VPN's redirect-gateway routes (0.0.0.0/1, 128.0.0.0/1) and a corporate 10.0.0.0/8: the bridge's /24 route
        // is more specific and wins, so they must not refuse every subnet.
        foreach (var route in new[] { "0.0.0.0/1", "128.0.0.0/1", "10.0.0.0/8" })
        {
            _host.Run("ip", "route", "add", route, "dev", "svc0").EnsureSuccess("ip route add " + route);
        }

        try
        {
            var options = Private();
            var bundle = Bundle(options);
            var run = _host.Start(Shim(bundle), "run");
            try
            {
                Assert.Equal("1.0.0", Get(8080, run));
            }
            finally
            {
                Stop(bundle, options.Name, run);
            }
        }
        finally
        {
            foreach (var route in new[] { "0.0.0.0/1", "128.0.0.0/1", "10.0.0.0/8" })
            {
                _host.Run("ip", "route", "del", route, "dev", "svc0");
            }
        }
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

    [Fact]
    public void TwoRootlessBundlesListeningOn8080RunSideBySideThroughPastaAndLeaveNothing()
    {
        var a = RootlessPrivate("1.0.0");
        var b = RootlessPrivate("2.0.0") with { PublishPorts = ["18081:8080"] };
        var bundleA = RootlessBundle(a);
        var bundleB = RootlessBundle(b);
        Assert.Equal(NothingLeft, RootlessLeftovers());

        var runA = _host.Start(AsUser(Shim(bundleA), "run"));
        var runB = _host.Start(AsUser(Shim(bundleB), "run"));
        Assert.Equal("1.0.0", Get(8080, runA));
        Assert.Equal("2.0.0", Get(18081, runB));
        Assert.Equal("2.0.0", Get(18081, runB, NetworkTestHost.ServiceAddress));
        Assert.Equal("1.0.0", Get(8080, runB));
        // One pasta per container, bound by the user (not root) on the published host ports.
        Assert.Equal(2, PastaProcesses().Count);
        var listeners = _host.Run("ss", "-Hltnp", "sport = :18081").StandardOutput;
        Assert.Contains("passt", listeners, StringComparison.Ordinal);
        // The app has a namespace of its own: the host's 8080 and its 8080 are not one socket.
        Assert.NotEqual(
            ProcessRunner.Run("readlink", ["/proc/self/ns/net"]).StandardOutput,
            ProcessRunner.Run("readlink", [$"/proc/{ContainerPid(a.Name)}/ns/net"]).StandardOutput);

        StopRootless(bundleA, a.Name, runA);
        StopRootless(bundleB, b.Name, runB);
        Assert.Equal(NothingLeft, RootlessLeftovers());
        Assert.Equal("", _host.Run("ss", "-Hltn", "sport = :18081").StandardOutput.Trim());
    }

    [Fact]
    public void TheRootlessPrivateNetworkReachesNeitherTheHostsLoopbackNorItsAbstractSocketsButGoesOutAndResolves()
    {
        // The host's resolver is a loopback stub (systemd-resolved's address): pasta asks it from the host's side.
        StartHostServices("127.0.0.53");
        var options = RootlessPrivate();
        var bundle = RootlessBundle(options);
        var run = _host.Start(AsUser(Shim(bundle), "run"));
        Get(8080, run);
        ProcessResult Exec(params string[] command) => _host.Run(AsUser([Shim(bundle), "exec", .. command]));
        var inContainer = new[] { "nsenter", "-t", ContainerPid(options.Name), "-n", Python, "-c" };

        Assert.Equal("outside", _host.Run("wget", "-q", "-T", "3", "-O", "-", "http://127.0.0.1:9999/hello").EnsureSuccess("host wget").StandardOutput.Trim());
        Assert.Equal(0, _host.Run(Python, "-c", AbstractConnect).ExitCode);

        var loopback = Exec("wget", "-q", "-O", "-", "http://127.0.0.1:9999/hello");
        Assert.Equal(1, loopback.ExitCode);
        Assert.Contains("Connection refused", loopback.StandardError, StringComparison.Ordinal);
        // Nor through the gateway, which pasta would map to the host's loopback without --no-map-gw.
        var gateway = _host.Run([.. inContainer, $"import socket\nsocket.create_connection(('{NetworkTestHost.UplinkGateway}', 9999), 5)"]);
        Assert.NotEqual(0, gateway.ExitCode);
        Assert.Equal("outside", Exec("wget", "-q", "-O", "-", $"http://{NetworkTestHost.ServiceAddress}:9998/hello").EnsureSuccess("wget out").StandardOutput.Trim());
        Assert.NotEqual(0, _host.Run([.. inContainer, AbstractConnect]).ExitCode);

        var resolv = Exec("cat", "/etc/resolv.conf").EnsureSuccess("cat resolv.conf").StandardOutput;
        Assert.DoesNotContain("127.0.0.53", resolv, StringComparison.Ordinal);
        Assert.Contains("nameserver 169.254.1.1", resolv, StringComparison.Ordinal);
        Assert.Contains("search example.test", resolv, StringComparison.Ordinal);
        Assert.Contains("10.250.0.7", Exec("nslookup", "app.example.test").EnsureSuccess("nslookup").StandardOutput, StringComparison.Ordinal);
        StopRootless(bundle, options.Name, run);
        Assert.Equal(NothingLeft, RootlessLeftovers());
    }

    [Fact]
    public void ARootlessKilledRuncAndACrashedAppLeaveNoPastaOnceCleanedUpAndTheNextStartWorks()
    {
        var options = RootlessPrivate();
        var bundle = RootlessBundle(options);

        var run = _host.Start(AsUser(Shim(bundle), "run"));
        Get(8080, run);
        // kill -9 of runc: the container and its pasta stay until the next cleanup (the service's ExecStopPost/ExecStartPre).
        run.Process.Kill();
        run.WaitForExit(TimeSpan.FromSeconds(10));
        Assert.Single(PastaProcesses());
        _host.Run(AsUser(Shim(bundle), "cleanup")).EnsureSuccess("cleanup");
        Assert.Equal(NothingLeft, RootlessLeftovers());

        // A run that finds the leftovers of a killed one (no cleanup in between) starts clean.
        run = _host.Start(AsUser(Shim(bundle), "run"));
        Get(8080, run);
        run.Process.Kill();
        run.WaitForExit(TimeSpan.FromSeconds(10));
        run = _host.Start(AsUser(Shim(bundle), "run"));
        Assert.Equal("1.0.0", Get(8080, run));
        Assert.Single(PastaProcesses());

        // The app crashes: runc run ends, cleanup stops pasta.
        _host.Run(AsUser("runc", "--root", UserRuncRoot, "kill", options.Name, "KILL")).EnsureSuccess("runc kill");
        Assert.NotEqual(0, run.WaitForExit(TimeSpan.FromSeconds(30)));
        _host.Run(AsUser(Shim(bundle), "cleanup")).EnsureSuccess("cleanup");
        Assert.Equal(NothingLeft, RootlessLeftovers());
    }

    [Fact]
    public void RootlessPortsFileRemapsAndPrivilegedTakenAndBadPortsAreCodedErrors()
    {
        var options = RootlessPrivate();
        var bundle = RootlessBundle(options);
        var settings = Path.Combine(_userHome.Path, ".config", "runcible", options.Name);
        _host.Run(AsUser("mkdir", "-p", "-m", "0700", settings)).EnsureSuccess("mkdir");
        void Ports(string text) => _host.Run(AsUser("sh", "-c", "printf '%s' \"$1\" > \"$2\"", "sh", text, Path.Combine(settings, "ports"))).EnsureSuccess("ports");

        // Below net.ipv4.ip_unprivileged_port_start (1024 here) the user cannot bind: said before anything starts.
        var first = File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim();
        Ports($"{int.Parse(first, System.Globalization.CultureInfo.InvariantCulture) - 1}:8080\n");
        AssertError(_host.Run(AsUser(Shim(bundle), "run")), "RUNCIBLE5074", "ip_unprivileged_port_start");
        Assert.Equal(NothingLeft, RootlessLeftovers());

        Ports("# remapped by the operator\n18082:8080/tcp\n");
        var run = _host.Start(AsUser(Shim(bundle), "run"));
        Assert.Equal("1.0.0", Get(18082, run));
        Assert.NotEqual(0, _host.Run("wget", "-q", "-T", "2", "-O", "-", "http://127.0.0.1:8080/version").ExitCode);

        var other = RootlessPrivate("3.0.0") with { PublishPorts = ["18082:8080"] };
        var otherBundle = RootlessBundle(other);
        AssertError(_host.Run(AsUser(Shim(otherBundle), "run")), "RUNCIBLE5072", "the Runcible container " + options.Name);
        StopRootless(bundle, options.Name, run);

        Ports("18082:8080\n8080\n");
        AssertError(_host.Run(AsUser(Shim(bundle), "run")), "RUNCIBLE5071", "line 2");
        Assert.Equal(NothingLeft, RootlessLeftovers());
    }

    [Fact]
    public void TheHttpHealthCheckOfARootlessPrivateBundleProbesItsNamespace()
    {
        // The probe enters the container's network namespace, which the user namespace of the bundle owns.
        var options = RootlessPrivate() with { Health = HealthCheckParser.Parse("http://127.0.0.1:8080/version", "1", "2", "2", "0") };
        var bundle = RootlessBundle(options);
        var run = _host.Start(AsUser(Shim(bundle), "run"));
        Get(8080, run);
        var health = _host.Run(AsUser(Shim(bundle), "health"));
        Assert.True(health.ExitCode == 0, health.StandardOutput + health.StandardError);
        Assert.Contains("healthy", health.StandardOutput, StringComparison.Ordinal);
        StopRootless(bundle, options.Name, run);
        Assert.Equal(NothingLeft, RootlessLeftovers());
    }

    [Fact]
    public void APastaThatCannotStartFailsTheStartWithItsMessageAndLeavesNothing()
    {
        // pasta copies the uplink's address and routes: a host without a default route has none to give.
        _host.Run("ip", "route", "del", "default").EnsureSuccess("ip route del");
        var options = RootlessPrivate();
        var bundle = RootlessBundle(options);
        var result = _host.Run(AsUser(Shim(bundle), "run"));
        AssertError(result, "RUNCIBLE5073", "routable interface");
        Assert.DoesNotContain("starting on port", result.StandardOutput, StringComparison.Ordinal);
        _host.Run(AsUser(Shim(bundle), "cleanup")).EnsureSuccess("cleanup");
        Assert.Equal(NothingLeft, RootlessLeftovers());
    }

    [Fact]
    public void WithoutPastaOrTunARootlessPrivateBundleIsACodedErrorSayingWhatToInstall()
    {
        var bundle = RootlessBundle(RootlessPrivate());
        // A file that is no program over pasta (the test host's commands have a mount namespace of their own).
        var notAProgram = _dir.Combine("not-pasta");
        File.WriteAllText(notAProgram, "");
        var pasta = ProcessRunner.Run("sh", ["-c", "command -v pasta"]).EnsureSuccess("command -v pasta").StandardOutput.Trim();
        foreach (var command in new[] { "install", "run" })
        {
            var result = _host.Run(["sh", "-c", "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"", "sh", notAProgram, pasta, .. AsUser(Shim(bundle), command)]);
            AssertError(result, "RUNCIBLE5070", "apt-get install passt");
        }

        // A /dev/net/tun only root may open (mode 0600, as on some machines) is said before pasta fails on it.
        var rootsOnly = _dir.Combine("tun");
        File.WriteAllText(rootsOnly, "");
        ProcessRunner.Run("chmod", ["0600", rootsOnly]).EnsureSuccess("chmod");
        var tun = _host.Run(["sh", "-c", "mount --bind \"$1\" /dev/net/tun && shift && exec \"$@\"", "sh", rootsOnly, .. AsUser(Shim(bundle), "run")]);
        AssertError(tun, "RUNCIBLE5070", "chmod 0666 /dev/net/tun");
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
