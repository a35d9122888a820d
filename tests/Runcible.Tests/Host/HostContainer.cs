using System.Diagnostics;
using System.Text.Json;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>The init system a <see cref="HostContainer"/> boots.</summary>
public enum HostInit
{
    Systemd,
    OpenRc,
}

/// <summary>
/// A Debian "host" booted under runc with systemd or OpenRC as PID 1 (the rootfs built by
/// eng/host-images.sh, mounted through an overlay so the cache is never written). By default it shares the
/// machine's network (no network namespace), so its services answer on 127.0.0.1; with <see cref="HostNetwork.Own"/>
/// it boots into a <see cref="HostNetworkNamespace"/> made fresh at each boot and its services answer on
/// <see cref="Address"/>. Tests write bundles
/// into <see cref="Root"/> and drive the host with <see cref="Exec"/>; dispose kills it and unmounts.
/// The overlay's upper directory is the host's disk: <see cref="PowerCycle"/> cuts the power and boots on it again,
/// <see cref="SaveDisk"/> keeps it for other hosts to boot from.
/// </summary>
public sealed class HostContainer : IDisposable
{
    // Every capability this machine grants except CAP_SYS_RESOURCE, which it lacks.
    private static readonly string[] Capabilities =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
        "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    ];

    private readonly TempDirectory _dir;
    private readonly string _runcRoot;
    private readonly HostNetworkNamespace? _network;
    private bool _running;

    /// <param name="init">The init system to boot.</param>
    /// <param name="disk">An upper directory saved by <see cref="SaveDisk"/> to boot from (copied: it stays unchanged), instead of a fresh disk.</param>
    /// <param name="network">The machine's network namespace (the default) or one of the host's own.</param>
    public HostContainer(HostInit init, string? disk = null, HostNetwork network = HostNetwork.Machine)
    {
        Init = init;
        var image = Path.Combine(RepoPaths.FixtureImages, "hosts", init == HostInit.Systemd ? "systemd" : "openrc");
        if (!File.Exists(Path.Combine(image, "usr", "sbin", "runc")))
        {
            throw new InvalidOperationException($"The host image {image} is missing: run eng/host-images.sh (eng/test.sh does).");
        }

        _dir = new TempDirectory("runcible-host");
        _runcRoot = _dir.Combine("runc");
        Id = "runcible-host-" + Guid.NewGuid().ToString("N")[..10];
        try
        {
            _network = network == HostNetwork.Own ? new HostNetworkNamespace() : null;
            foreach (var d in new[] { "upper", "work", "rootfs", "runc" })
            {
                Directory.CreateDirectory(_dir.Combine(d));
            }

            if (disk is not null)
            {
                Run("cp", "-a", "--reflink=auto", "-T", disk, _dir.Combine("upper"));
            }

            Run("mount", "-t", "overlay", "overlay", "-o", $"lowerdir={image},upperdir={_dir.Combine("upper")},workdir={_dir.Combine("work")}", Root);
            WriteConfig(init == HostInit.Systemd ? "/sbin/init" : "/sbin/openrc-init");
            Boot();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public HostInit Init { get; }

    public string Id { get; }

    /// <summary>The host's root directory as this machine sees it (bundles are written under <c>opt/containers</c>).</summary>
    public string Root => _dir.Combine("rootfs");

    public string ContainersDirectory => Path.Combine(Root, "opt", "containers");

    public string ConsoleLog => _dir.Combine("console.log");

    /// <summary>The host's network namespace of its own; null when it shares the machine's.</summary>
    public HostNetworkNamespace? Network => _network;

    /// <summary>The address this machine reaches the host's services on: 127.0.0.1, or the host's own address.</summary>
    public string Address => _network?.HostAddress ?? "127.0.0.1";

    /// <summary>Runs a shell script inside the host as root.</summary>
    public ProcessResult Exec(string script, TimeSpan? timeout = null) =>
        ProcessRunner.Run("runc", ["--root", _runcRoot, "exec", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", Id, "sh", "-c", script],
            timeout: timeout ?? TimeSpan.FromMinutes(2));

    public string ExecOk(string script, TimeSpan? timeout = null) => Exec(script, timeout).EnsureSuccess($"in the host: {script}").StandardOutput;

    /// <summary>Shuts the host down through its init system and boots it again (same disk).</summary>
    public void Reboot()
    {
        if (Init == HostInit.Systemd)
        {
            Exec("systemctl poweroff");
        }
        else
        {
            Exec("openrc-shutdown -p now");
        }

        var deadline = Stopwatch.StartNew();
        while (State() is "running" && deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            Thread.Sleep(250);
        }

        Stop();
        Boot();
    }

    /// <summary>
    /// Cuts the host's power and boots it again on the same disk: every process of the host (its init, services,
    /// nested containers, a shim held by a fault injector) is frozen at one instant and killed with SIGKILL, with
    /// no shutdown of any kind; then the host boots again on the same overlay upper directory. What was written to
    /// files survives (the page cache is this machine's and survives too: only kill-atomicity is shown, not
    /// fsync ordering); processes, <c>/run</c> and <c>/tmp</c> (tmpfs inside the host, and with <c>/run</c> nested
    /// runc's state under <c>/run/runc</c>) and the mounts of the host's own mount namespace are gone.
    /// </summary>
    public void PowerCycle()
    {
        CutPower();
        Boot();
    }

    /// <summary>
    /// Copies the host's disk (the overlay upper directory) to <paramref name="destination"/>, for later hosts to boot
    /// from (<see cref="HostContainer(HostInit, string?)"/>). The host must be off (<see cref="CutPower"/>).
    /// </summary>
    public void SaveDisk(string destination)
    {
        if (_running)
        {
            throw new InvalidOperationException($"The host {Id} is running; cut its power before saving its disk.");
        }

        Run("cp", "-a", "--reflink=auto", "-T", _dir.Combine("upper"), destination);
    }

    /// <summary>The power cut of <see cref="PowerCycle"/> without booting again (<see cref="Boot"/> then does).</summary>
    public void CutPower()
    {
        if (!_running)
        {
            return;
        }

        // The freezer stops every process of the host (nested containers are in its cgroup's subtree) at one
        // instant, as a power cut does; SIGKILL to the frozen init then kills its whole PID namespace.
        ProcessRunner.Run("runc", ["--root", _runcRoot, "pause", Id]);
        Stop();
        if (MachineLeftovers() is { Count: > 0 } left)
        {
            throw new InvalidOperationException($"The power cut of {Id} left this on the machine: {string.Join(", ", left)}");
        }
    }

    /// <summary>
    /// What a host leaves on this machine while it runs, and must not leave once off: its cgroups (the host's own,
    /// and those systemd and nested runc created under it) and mounts under its directory other than the overlay
    /// root. <see cref="CutPower"/> fails when anything is left.
    /// </summary>
    public IReadOnlyList<string> MachineLeftovers() =>
        [.. LeftoverCgroups(), .. MountsUnder(_dir.Path).Where(m => m != Root), .. _network?.Leftovers() ?? []];

    private IEnumerable<string> LeftoverCgroups() =>
        CgroupHierarchies().Select(h => Path.Combine(h, "runcible-hosts", Id)).Where(Directory.Exists);

    private static IEnumerable<string> CgroupHierarchies() =>
        File.ReadLines("/proc/self/mountinfo")
            .Select(line => line.Split(" - ", 2))
            .Where(parts => parts.Length == 2 && (parts[1].StartsWith("cgroup ", StringComparison.Ordinal) || parts[1].StartsWith("cgroup2 ", StringComparison.Ordinal)))
            .Select(parts => Unescape(parts[0].Split(' ')[4]))
            .Distinct();

    private static IEnumerable<string> MountsUnder(string directory) =>
        File.ReadLines("/proc/self/mountinfo")
            .Select(line => Unescape(line.Split(' ')[4]))
            .Where(target => target == directory || target.StartsWith(directory + "/", StringComparison.Ordinal))
            .Distinct();

    // mountinfo escapes space, tab, newline and backslash as octal.
    private static string Unescape(string field) =>
        System.Text.RegularExpressions.Regex.Replace(field, @"\\([0-7]{3})", m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString());

    private string? State()
    {
        var result = ProcessRunner.Run("runc", ["--root", _runcRoot, "state", Id]);
        if (result.ExitCode != 0)
        {
            return null;
        }

        using var json = JsonDocument.Parse(result.StandardOutput);
        return json.RootElement.GetProperty("status").GetString();
    }

    /// <summary>Boots the host (done by the constructor; after <see cref="CutPower"/>, on the same disk) and waits until its init system is up.</summary>
    public void Boot()
    {
        if (_running)
        {
            throw new InvalidOperationException($"The host {Id} is running; cut its power first.");
        }

        // A machine boots with a network of its own: no bridge, rule or address of the last boot.
        _network?.Create();
        // runc run -d keeps the container's stdio: give it a file, not this process's pipes.
        var result = ProcessRunner.Run("sh", ["-c", $"exec runc --root '{_runcRoot}' run -d --bundle '{_dir.Path}' '{Id}' >>'{ConsoleLog}' 2>&1 </dev/null"],
            timeout: TimeSpan.FromMinutes(1));
        _running = true;
        result.EnsureSuccess("runc run -d (host container)");
        var wait = Init == HostInit.Systemd
            ? "systemctl is-system-running --wait >/dev/null 2>&1; s=$(systemctl is-system-running); [ \"$s\" = running ] || [ \"$s\" = degraded ] || { echo $s; systemctl --failed --no-pager; exit 1; }"
            : "i=0; until [ -e /run/openrc/softlevel ] && rc-status default >/dev/null 2>&1 && [ \"$(cat /run/openrc/softlevel)\" = default ]; do i=$((i+1)); [ $i -lt 240 ] || exit 1; sleep 0.25; done";
        var deadline = Stopwatch.StartNew();
        ProcessResult? last = null;
        while (deadline.Elapsed < TimeSpan.FromSeconds(90))
        {
            last = Exec(wait, TimeSpan.FromSeconds(90));
            if (last.ExitCode == 0)
            {
                return;
            }

            Thread.Sleep(500);
        }

        throw new InvalidOperationException($"The {Init} host did not finish booting: {last?.StandardOutput}{last?.StandardError}\n{File.ReadAllText(ConsoleLog)}");
    }

    private void Stop()
    {
        if (!_running)
        {
            return;
        }

        ProcessRunner.Run("runc", ["--root", _runcRoot, "kill", Id, "KILL"]);
        var deadline = Stopwatch.StartNew();
        while (State() is "running" && deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(100);
        }

        // delete --force thaws a paused host after its SIGKILL and removes its cgroups, sub-cgroups first.
        ProcessRunner.Run("runc", ["--root", _runcRoot, "delete", "--force", Id]);
        _running = false;
        RemoveLeftovers();
        // Its processes gone, the namespace goes with everything the host set up in it.
        _network?.Delete();
    }

    // Nothing of a stopped host may stay on this machine: a sub-cgroup runc could not remove (a process still
    // exiting) is removed once empty, and a mount under the host's directory other than its root is detached.
    private void RemoveLeftovers()
    {
        var deadline = Stopwatch.StartNew();
        while (LeftoverCgroups().Any() && deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            foreach (var cgroup in LeftoverCgroups())
            {
                foreach (var dir in Directory.EnumerateDirectories(cgroup, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).Append(cgroup))
                {
                    try
                    {
                        Directory.Delete(dir);
                    }
                    catch (IOException)
                    {
                        // Still has processes (exiting) or children: the next round.
                    }
                }
            }

            Thread.Sleep(100);
        }

        foreach (var mount in MountsUnder(_dir.Path).Where(m => m != Root).OrderByDescending(m => m.Length))
        {
            ProcessRunner.Run("umount", ["-l", mount]);
        }
    }

    public void Dispose()
    {
        try
        {
            Stop();
        }
        finally
        {
            // Everything the host mounted lives in its own mount namespace and died with it; only the overlay is ours.
            if (Directory.Exists(Root))
            {
                ProcessRunner.Run("umount", [Root]);
            }

            _dir.Dispose();
            _network?.Dispose();
        }
    }

    private static void Run(string file, params string[] args) => ProcessRunner.Run(file, args).EnsureSuccess(file);

    private void WriteConfig(string init)
    {
        var caps = Capabilities;
        var config = new
        {
            ociVersion = "1.0.2",
            process = new
            {
                terminal = false,
                user = new { uid = 0, gid = 0 },
                // systemd makes the root mount rshared on a real host but not in a container ("the container manager
                // knows what it is doing"). Without it, mounts systemd sets up for a service in a child mount namespace
                // never reach the service: its credentials directory ($CREDENTIALS_DIRECTORY, LoadCredential=) stays
                // empty. The host's mounts are private copies, so sharing them here propagates nothing to this machine.
                args = init == "/sbin/init" ? new[] { "/bin/sh", "-c", "mount --make-rshared / && exec /sbin/init" } : new[] { init },
                env = new[] { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=oci" },
                cwd = "/",
                capabilities = new { bounding = caps, effective = caps, permitted = caps },
                noNewPrivileges = false,
            },
            root = new { path = "rootfs", @readonly = false },
            hostname = Init == HostInit.Systemd ? "systemd-host" : "openrc-host",
            mounts = new object[]
            {
                new { destination = "/proc", type = "proc", source = "proc" },
                new { destination = "/dev", type = "tmpfs", source = "tmpfs", options = new[] { "nosuid", "strictatime", "mode=755", "size=65536k" } },
                new { destination = "/dev/pts", type = "devpts", source = "devpts", options = new[] { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620" } },
                new { destination = "/dev/shm", type = "tmpfs", source = "shm", options = new[] { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" } },
                new { destination = "/dev/mqueue", type = "mqueue", source = "mqueue", options = new[] { "nosuid", "noexec", "nodev" } },
                new { destination = "/sys", type = "sysfs", source = "sysfs", options = new[] { "nosuid", "noexec", "nodev", "rw" } },
                new { destination = "/sys/fs/cgroup", type = "cgroup", source = "cgroup", options = new[] { "nosuid", "noexec", "nodev", "relatime", "rw" } },
                new { destination = "/run", type = "tmpfs", source = "tmpfs", options = new[] { "nosuid", "nodev", "mode=755" } },
                new { destination = "/tmp", type = "tmpfs", source = "tmpfs", options = new[] { "nosuid", "nodev", "mode=1777" } },
                new { destination = "/etc/resolv.conf", type = "bind", source = "/etc/resolv.conf", options = new[] { "rbind", "ro" } },
            },
            linux = new
            {
                namespaces = _network is null
                    ? new object[] { new { type = "pid" }, new { type = "ipc" }, new { type = "uts" }, new { type = "mount" }, new { type = "cgroup" } }
                    : [new { type = "pid" }, new { type = "ipc" }, new { type = "uts" }, new { type = "mount" }, new { type = "cgroup" }, new { type = "network", path = _network.NamespacePath }],
                // Nested runc creates device nodes for its own containers.
                resources = new { devices = new[] { new { allow = true, access = "rwm" } } },
                // pasta (rootless private networks) opens /dev/net/tun as the user, as on a real host (0666).
                devices = new[] { new { path = "/dev/net/tun", type = "c", major = 10, minor = 200, fileMode = 438, uid = 0, gid = 0 } },
                cgroupsPath = "/runcible-hosts/" + Id,
            },
        };
        File.WriteAllText(_dir.Combine("config.json"), JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true }));
    }
}
