using System.Diagnostics;
using System.Text;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// A "host" with a network namespace of its own for the private-network tests: the shim runs in it (through
/// <c>ip netns exec</c>), so the runcible0 bridge, the iptables rules, the IPAM store (<c>RUNCIBLE_NET_RUN_DIR</c>)
/// the runc state (<c>RUNCIBLE_RUNC_ROOT</c>) and the network settings (<c>RUNCIBLE_NET_SETTINGS</c>) are this host's alone and parallel tests do not meet. Its
/// <c>/etc/resolv.conf</c> is <c>/etc/netns/&lt;name&gt;/resolv.conf</c> (bound over it for the commands run there), and a veth
/// interface carries <see cref="ServiceAddress"/>, a non-loopback address of the host's own. Disposing deletes
/// the namespace with all of it, and any container namespace a test left.
/// </summary>
internal sealed class NetworkTestHost : IDisposable
{
    /// <summary>The host's own non-loopback address (a /24 on a veth interface) its test services listen on.</summary>
    public const string ServiceAddress = "10.250.0.1";

    private static readonly HashSet<string> BuiltInChains = ["INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"];

    private readonly List<Process> _processes = [];

    /// <summary>
    /// The address of the host's uplink (<paramref name="uplink"/>): an interface with the default route, which pasta
    /// needs (it copies that interface's address and routes into the container), through a gateway that answers nothing.
    /// </summary>
    public const string UplinkAddress = "10.250.9.1";

    public const string UplinkGateway = "10.250.9.254";

    public NetworkTestHost(string resolvConf = "nameserver 127.0.0.1\n", bool uplink = false)
    {
        Name = "rth" + Guid.NewGuid().ToString("N")[..8];
        RunDirectory = $"/run/runcible-test/{Name}";
        Directory.CreateDirectory(RunDirectory);
        Directory.CreateDirectory($"/etc/netns/{Name}");
        File.WriteAllText($"/etc/netns/{Name}/resolv.conf", resolvConf);
        ProcessRunner.Run("ip", ["netns", "add", Name]).EnsureSuccess("ip netns add");
        try
        {
            Ip("link", "set", "lo", "up");
            // A veth pair with both ends here (no dummy module in every kernel): an up link with the address.
            Ip("link", "add", "svc0", "type", "veth", "peer", "name", "svc1");
            Ip("addr", "add", ServiceAddress + "/24", "dev", "svc0");
            Ip("link", "set", "svc1", "up");
            Ip("link", "set", "svc0", "up");
            if (uplink)
            {
                Ip("link", "add", "up0", "type", "veth", "peer", "name", "up1");
                Ip("addr", "add", UplinkAddress + "/24", "dev", "up0");
                Ip("link", "set", "up1", "up");
                Ip("link", "set", "up0", "up");
                Ip("route", "add", "default", "via", UplinkGateway, "dev", "up0");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Name { get; }

    /// <summary>RUNCIBLE_NET_RUN_DIR: the host's network state (per-container records, the IPAM store).</summary>
    public string NetRunDirectory => RunDirectory + "/net";

    public string RuncRoot => RunDirectory + "/runc";

    /// <summary>RUNCIBLE_NET_SETTINGS: the host's network settings file (/etc/runcible/.network on a real host); absent until a test writes it.</summary>
    public string NetworkSettingsFile => RunDirectory + "/network-settings";

    private string RunDirectory { get; }

    private void Ip(params string[] args) => ProcessRunner.Run("ip", ["-n", Name, .. args]).EnsureSuccess("ip " + string.Join(' ', args));

    // Not "ip netns exec": it mounts a sysfs of the namespace over /sys, which hides the cgroup mounts runc needs.
    // nsenter switches the network namespace alone; the mount namespace of its own only binds the host's
    // resolv.conf (not propagated: the root mount is made private first; /run/netns stays shared, so the
    // namespaces the shim adds are the machine's).
    private string[] InHost(IEnumerable<string> command) =>
        [
            "--mount", "--propagation", "unchanged", "nsenter", $"--net=/run/netns/{Name}",
            "env", $"RUNCIBLE_NET_RUN_DIR={NetRunDirectory}", $"RUNCIBLE_RUNC_ROOT={RuncRoot}", $"RUNCIBLE_NET_SETTINGS={NetworkSettingsFile}",
            "sh", "-c", "mount --make-private / && mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"", $"/etc/netns/{Name}/resolv.conf",
            .. command,
        ];

    /// <summary>Runs a command in the host's namespace, with its shim overrides.</summary>
    public ProcessResult Run(params string[] command) => ProcessRunner.Run("unshare", InHost(command), timeout: TimeSpan.FromMinutes(1));

    /// <summary>Starts a long-running command in the host's namespace (stopped on dispose); its output is collected.</summary>
    public BackgroundProcess Start(params string[] command)
    {
        var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var argument in InHost(command))
        {
            start.ArgumentList.Add(argument);
        }

        var process = new BackgroundProcess(Process.Start(start)!);
        _processes.Add(process.Process);
        return process;
    }

    /// <summary>
    /// What a private network leaves on a host: its links, the container namespaces of <paramref name="ids"/>,
    /// the IPv4 and IPv6 rules (counters dropped), the IPAM leases and the shim's records (per container, and the bridge's subnets).
    /// </summary>
    public string Snapshot(params string[] ids)
    {
        var text = new StringBuilder();
        text.AppendLine("links: " + string.Join(' ', ProcessRunner.Run("ip", ["-n", Name, "-o", "link", "show"]).EnsureSuccess("ip link")
            .StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[1].Trim().Split('@')[0]).Order()));
        text.AppendLine("namespaces: " + string.Join(' ', ids.Select(id => "runcible-" + id).Where(ns => File.Exists("/run/netns/" + ns))));
        foreach (var tool in new[] { "iptables-save", "ip6tables-save" })
        {
            var rules = ProcessRunner.Run("ip", ["netns", "exec", Name, tool]).EnsureSuccess(tool).StandardOutput;
            text.AppendLine(tool + ":");
            // The rules and the chains a tool added; a table with nothing but its built-in chains (which
            // iptables-save lists once anything loaded it) holds no rule.
            foreach (var line in rules.Split('\n').Where(l => l.StartsWith("-A ", StringComparison.Ordinal) ||
                (l.StartsWith(':') && !BuiltInChains.Contains(l[1..].Split(' ')[0]))))
            {
                text.AppendLine(System.Text.RegularExpressions.Regex.Replace(line, @" \[\d+:\d+\]$", ""));
            }
        }

        // host-local keeps its lock and last_reserved_ip.* bookkeeping; a lease is a file named by its address.
        var ipam = Path.Combine(NetRunDirectory, "ipam", "runcible");
        var leases = Directory.Exists(ipam)
            ? Directory.EnumerateFiles(ipam).Select(f => Path.GetFileName(f)).Where(f => f is not "lock" && !f.StartsWith("last_reserved_ip", StringComparison.Ordinal)).Order()
            : Enumerable.Empty<string>();
        text.AppendLine("leases: " + string.Join(' ', leases));
        var records = Directory.Exists(NetRunDirectory)
            ? Directory.EnumerateFileSystemEntries(NetRunDirectory).Select(d => Path.GetFileName(d)).Where(d => d is not "ipam" and not ".lock").Order()
            : Enumerable.Empty<string>();
        text.AppendLine("records: " + string.Join(' ', records));
        return text.ToString();
    }

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(TimeSpan.FromSeconds(10));
            }

            process.Dispose();
        }

        if (Directory.Exists(RuncRoot))
        {
            foreach (var container in Directory.EnumerateDirectories(RuncRoot))
            {
                ProcessRunner.Run("runc", ["--root", RuncRoot, "delete", "--force", Path.GetFileName(container)]);
                var ns = "runcible-" + Path.GetFileName(container);
                if (File.Exists("/run/netns/" + ns))
                {
                    ProcessRunner.Run("ip", ["netns", "del", ns]);
                }
            }
        }

        if (Directory.Exists(NetRunDirectory))
        {
            foreach (var record in Directory.EnumerateDirectories(NetRunDirectory).Select(Path.GetFileName).Where(d => d != "ipam"))
            {
                if (File.Exists("/run/netns/runcible-" + record))
                {
                    ProcessRunner.Run("ip", ["netns", "del", "runcible-" + record]);
                }
            }
        }

        ProcessRunner.Run("ip", ["netns", "del", Name]);
        Directory.Delete($"/etc/netns/{Name}", recursive: true);
        Directory.Delete(RunDirectory, recursive: true);
    }
}
