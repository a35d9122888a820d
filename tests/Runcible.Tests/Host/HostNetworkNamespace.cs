using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>The network a <see cref="HostContainer"/> boots into.</summary>
public enum HostNetwork
{
    /// <summary>The machine's network namespace: the host's services answer on this machine's 127.0.0.1.</summary>
    Machine,

    /// <summary>A network namespace of the host's own (<see cref="HostNetworkNamespace"/>), made fresh at each boot.</summary>
    Own,
}

/// <summary>
/// A network namespace of a <see cref="HostContainer"/>'s own: <c>rhn&lt;hex&gt;</c> with <c>lo</c> and an <c>eth0</c>
/// whose veth peer <c>rhv&lt;hex&gt;</c> is on this machine, <see cref="MachineAddress"/> on the machine's end and
/// <see cref="HostAddress"/> on the host's, in a /24 of 10.251.0.0/16 no other host of any test process holds
/// (a lock file per /24 under /run/runcible-test/host-networks, held for the host's life) and no route of this
/// machine touches. The host has no default route: it reaches only its own addresses and the machine's end of the
/// veth. <see cref="Create"/> makes it at each boot and <see cref="Delete"/> removes it at each power-off, as a real
/// machine's kernel starts and ends with a network of its own: a bridge, rule or address the host set up never
/// survives into its next boot. Deleting the namespace (its last process gone) destroys the veth pair, both ends.
/// </summary>
public sealed class HostNetworkNamespace : IDisposable
{
    private const string LockDirectory = "/run/runcible-test/host-networks";
    private readonly FileStream _claim;
    private readonly int _third;

    public HostNetworkNamespace()
    {
        var hex = Guid.NewGuid().ToString("N")[..8];
        Name = "rhn" + hex;
        MachineLink = "rhv" + hex;
        Directory.CreateDirectory(LockDirectory);
        var machine = ProcessRunner.Run("ip", ["-4", "-o", "route", "show", "table", "all"]).EnsureSuccess("ip route").StandardOutput
            + ProcessRunner.Run("ip", ["-4", "-o", "addr", "show"]).EnsureSuccess("ip addr").StandardOutput;
        for (var third = 0; third < 256; third++)
        {
            if (machine.Contains($"10.251.{third}.", StringComparison.Ordinal))
            {
                continue;
            }

            try
            {
                // FileShare.None is an exclusive flock on Linux: another test process's host holds it until disposed.
                _claim = new FileStream(Path.Combine(LockDirectory, $"10.251.{third}.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                _third = third;
                return;
            }
            catch (IOException)
            {
                // Held by another host.
            }
        }

        throw new InvalidOperationException("Every /24 of 10.251.0.0/16 is taken by a host or a route of this machine.");
    }

    /// <summary>The namespace's name (<c>/run/netns/&lt;name&gt;</c> on this machine).</summary>
    public string Name { get; }

    public string NamespacePath => "/run/netns/" + Name;

    /// <summary>The machine's end of the veth pair (the host's end is its <c>eth0</c>).</summary>
    public string MachineLink { get; }

    /// <summary>The host's network: the /24 on its <c>eth0</c>.</summary>
    public string Subnet => $"10.251.{_third}.0/24";

    public string MachineAddress => $"10.251.{_third}.1";

    public string HostAddress => $"10.251.{_third}.2";

    /// <summary>Makes the namespace with its veth pair and addresses (before the host boots into it).</summary>
    public void Create()
    {
        Run("ip", "netns", "add", Name);
        Run("ip", "link", "add", MachineLink, "type", "veth", "peer", "name", "eth0", "netns", Name);
        Run("ip", "addr", "add", MachineAddress + "/24", "dev", MachineLink);
        Run("ip", "link", "set", MachineLink, "up");
        Run("ip", "-n", Name, "link", "set", "lo", "up");
        Run("ip", "-n", Name, "addr", "add", HostAddress + "/24", "dev", "eth0");
        Run("ip", "-n", Name, "link", "set", "eth0", "up");
    }

    /// <summary>
    /// Removes the namespace (after the host's processes are gone) and waits until the kernel has destroyed it with
    /// its veth pair; fails when the machine's end is still there after 10 s (something still holds the namespace).
    /// </summary>
    public void Delete()
    {
        if (File.Exists(NamespacePath))
        {
            Run("ip", "netns", "del", Name);
        }

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (LinkExists() && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }

        if (LinkExists())
        {
            // Taken down by hand so that nothing of the host stays on the machine; the caller reports it.
            ProcessRunner.Run("ip", ["link", "del", MachineLink]);
            throw new InvalidOperationException($"The veth {MachineLink} of the deleted namespace {Name} outlived it: something still held the namespace.");
        }
    }

    /// <summary>What of this namespace is on the machine (empty once <see cref="Delete"/> is done).</summary>
    public IEnumerable<string> Leftovers()
    {
        if (File.Exists(NamespacePath))
        {
            yield return NamespacePath;
        }

        if (LinkExists())
        {
            yield return "link " + MachineLink;
        }
    }

    private bool LinkExists() => ProcessRunner.Run("ip", ["link", "show", MachineLink]).ExitCode == 0;

    private static void Run(string file, params string[] args) => ProcessRunner.Run(file, args).EnsureSuccess(string.Join(' ', [file, .. args]));

    public void Dispose()
    {
        try
        {
            Delete();
        }
        finally
        {
            _claim.Dispose();
        }
    }
}
