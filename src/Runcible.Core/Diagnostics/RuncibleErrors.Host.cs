using Runcible.Core.Contracts;

namespace Runcible.Core.Diagnostics;

// Host runtime (5xxx): 5001–5009 while rendering the service files at publish time; 5010–5099 are
// printed by the shim (src/Runcible.Core/Host/runcible.sh) on the host, with the same code.
internal static partial class RuncibleErrors
{
    public static readonly ErrorDescriptor HostRuntimeInfoMissing = new(
        "RUNCIBLE5001",
        "The runtime config stage gave no host runtime contract (runcible.json) for bundle '{0}'; the shim and service files cannot be rendered. Use the runtime config stage that fills RuntimeConfigOutput.RuntimeInfo.");

    public static readonly ErrorDescriptor HostStopSignalUnknown = new(
        "RUNCIBLE5002",
        "The stop signal '{0}' of bundle '{1}' is not a Linux signal the service files can name. Use a signal such as SIGTERM, SIGINT or SIGQUIT (the image's StopSignal).");

    public static readonly ErrorDescriptor HostRuntimeInfoMismatch = new(
        "RUNCIBLE5003",
        "The host runtime contract is for '{0}' but the bundle is '{1}'; the service files would run another bundle. Generate runcible.json with the bundle's own name and version.");

    public static readonly ErrorDescriptor HostNotRoot = new(
        "RUNCIBLE5010",
        "'{0}' is a rootful bundle: run the shim command as root (sudo).");

    public static readonly ErrorDescriptor HostRuncMissing = new(
        "RUNCIBLE5011",
        "runc is not installed or not on PATH; install it with the host's package manager.");

    public static readonly ErrorDescriptor HostBundleDamaged = new(
        "RUNCIBLE5012",
        "The bundle '{0}' is damaged ({1}); extract the bundle tarball again.");

    public static readonly ErrorDescriptor HostPortInUse = new(
        "RUNCIBLE5013",
        "Port {0}/tcp, which '{1}' listens on, is already in use on this host; stop what uses it and start the service again.");

    public static readonly ErrorDescriptor HostNoInitSystem = new(
        "RUNCIBLE5014",
        "No supported init system was found (systemd, OpenRC, or a systemd user manager for a rootless bundle); run the container in the foreground with 'runcible run' or enable lingering for the user.");

    public static readonly ErrorDescriptor HostOtherBundleInstalled = new(
        "RUNCIBLE5015",
        "Another bundle of '{0}' is installed ({1}); use 'runcible upgrade' to replace it.");

    public static readonly ErrorDescriptor HostUpgradeImpossible = new(
        "RUNCIBLE5016",
        "'{0}' cannot be upgraded: {1}.");

    public static readonly ErrorDescriptor HostUpgradeRolledBack = new(
        "RUNCIBLE5017",
        "'{0}' {1} failed to start and was rolled back to {2} with its data; read the service logs ('runcible logs').");

    public static readonly ErrorDescriptor HostNoPreviousVersion = new(
        "RUNCIBLE5018",
        "No previous version of '{0}' is recorded or it is gone; rollback returns to the version an upgrade replaced.");

    public static readonly ErrorDescriptor HostNotInstalled = new(
        "RUNCIBLE5019",
        "'{0}' is not installed; run 'runcible install' first.");

    public static readonly ErrorDescriptor HostBundlePathUnsafe = new(
        "RUNCIBLE5020",
        "The bundle directory '{0}' has characters a service file cannot carry; move it to a path of letters, digits and . _ - + @ (such as /opt/containers/<name>-<version>).");

    public static readonly ErrorDescriptor HostRootlessAsRoot = new(
        "RUNCIBLE5021",
        "'{0}' is a rootless bundle: install and run it as the unprivileged user who owns it, not as root.");

    public static readonly ErrorDescriptor HostUsage = new(
        "RUNCIBLE5022",
        "Unknown shim command or option, or an environment value the shim cannot use ('{0}'); run 'runcible help' or fix the variable.");

    public static readonly ErrorDescriptor HostNotRunning = new(
        "RUNCIBLE5023",
        "'{0}' is not running; start it with 'runcible start' before 'runcible exec'.");

    public static readonly ErrorDescriptor HostLockTimeout = new(
        "RUNCIBLE5024",
        "Another runcible command is changing '{0}' ({1}) and did not finish in time; wait for it (or stop it if it hangs), then run the command again.");

    public static readonly ErrorDescriptor HostVolumeMissing = new(
        "RUNCIBLE5025",
        "The volume '{0}' of '{1}' held data but its directory is missing or empty; the shim refuses to start it empty. Recover the data (the next upgrade, rollback or service start finishes an interrupted one), or remove the volume from the state record if the data is really gone.");

    public static readonly ErrorDescriptor HostForeignContainer = new(
        "RUNCIBLE5026",
        "The container '{0}' belongs to another bundle ({1}) and is left alone; stop that version first or run this one under another RUNCIBLE_CONTAINER_ID.");

    public static readonly ErrorDescriptor HostTransactionInProgress = new(
        "RUNCIBLE5027",
        "'{0}' is being changed by another runcible command ({1}); the service is started with the right version when it finishes.");

    public static readonly ErrorDescriptor HostBundleNotTrusted = new(
        "RUNCIBLE5028",
        "'{0}' belongs to uid {1} with mode {2}; a bundle's own files and directory must belong to root (rootless: the user) and be writable by no one else, and its parents must not be changeable by other users.");

    public static readonly ErrorDescriptor HostJournalUnknown = new(
        "RUNCIBLE5029",
        "The journal '{0}' names an operation this shim does not know ('{1}'); check where the data is, then move the journal away.");

    public static readonly ErrorDescriptor HostSettingsNotPrivate = new(
        "RUNCIBLE5030",
        "The settings directory '{0}' belongs to uid {1} with mode {2}; it holds secrets, so it must be a directory owned by root (rootless: the user) with mode 0700.");

    public static readonly ErrorDescriptor HostBadEnvFile = new(
        "RUNCIBLE5031",
        "'{0}' line {1}: {2}; each line is KEY=VALUE (or blank, or a # comment), values taken literally.");

    public static readonly ErrorDescriptor HostBadLimitsFile = new(
        "RUNCIBLE5032",
        "'{0}' line {1}: {2}; the limits file holds memory=, cpu= and pids= lines (or none).");

    public static readonly ErrorDescriptor HostBadConfigCommand = new(
        "RUNCIBLE5033",
        "'runcible config' {0}; use 'config set KEY=VALUE', 'config unset KEY' or 'config show'.");

    public static readonly ErrorDescriptor HostBadSecretCommand = new(
        "RUNCIBLE5034",
        "'runcible secret' {0}; use 'secret set NAME [--file PATH]', 'secret rm NAME' or 'secret ls' with a NAME of letters, digits and . _ -.");

    public static readonly ErrorDescriptor HostNetworkPluginsMissing = new(
        "RUNCIBLE5070",
        "'{0}' uses a private network, which needs {1}; install {2}.");

    public static readonly ErrorDescriptor HostPublishedPortInvalid = new(
        "RUNCIBLE5071",
        "'{0}' is not a published port ({1}); write [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] with ports from 1 to 65535, IPv6 in brackets, one a line, each host port once.");

    public static readonly ErrorDescriptor HostPublishedPortTaken = new(
        "RUNCIBLE5072",
        "Host port {0}, which '{1}' publishes, is in use by {2}; stop it or publish '{1}' on another port (RuncPublishPort, or the ports file in its settings directory).");

    public static readonly ErrorDescriptor HostNetworkSetupFailed = new(
        "RUNCIBLE5073",
        "The private network of '{0}' could not be set up: {1}. Nothing of it is left; see docs/networking.md, 'Debugging'.");

    public static readonly ErrorDescriptor HostPublishedPortPrivileged = new(
        "RUNCIBLE5074",
        "Host port {0}, which the rootless bundle '{1}' publishes, is below {2} (net.ipv4.ip_unprivileged_port_start), which an unprivileged user cannot bind; publish it on a port from {2} up (RuncPublishPort, or the ports file in its settings directory), or have root lower the limit (sysctl).");

    public static readonly ErrorDescriptor HostNetworkSettingInvalid = new(
        "RUNCIBLE5075",
        "Line {0} of {1} ('{2}') is not a usable network setting ({3}); write subnet=A.B.C.D/PREFIX (/8 to /30) or subnet6=IPV6/PREFIX (/16 to /120), networks with no host bits set, one a line.");

    public static readonly ErrorDescriptor HostNetworkSubnetOverlapsRoute = new(
        "RUNCIBLE5076",
        "The private-network subnet {0} overlaps the host's route '{1}'; set a network no route of this host covers with {2}= in /etc/runcible/.network.");

    public static readonly ErrorDescriptor HostNoHttpClient = new(
        "RUNCIBLE5050",
        "'{0}' has an HTTP health check but this host has no client to probe it with (bash with /dev/tcp, wget, busybox or curl); install one of them (apt-get install bash, apk add busybox).");

    public static readonly ErrorDescriptor HostHealthNotConfigured = new(
        "RUNCIBLE5051",
        "'{0}' has no health check (RuncHealthCheck was not set when it was built); 'runcible health' and 'health-loop' need one.");
}
