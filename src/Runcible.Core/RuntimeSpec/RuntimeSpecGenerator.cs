using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Layers;
using Runcible.Core.Oci;

namespace Runcible.Core.RuntimeSpec;

/// <summary>The result of <see cref="RuntimeSpecGenerator.Generate"/>: config.json and runcible.json models.</summary>
internal sealed record RuntimeSpecResult(RuntimeConfig Config, BundleRuntimeInfo Info);

/// <summary>
/// Builds the OCI runtime config for a bundle from the base image's configuration, its rootfs (for
/// /etc/passwd and /etc/group) and the project's settings, with service defaults (docs/runtime-config.md).
/// </summary>
internal sealed partial class RuntimeSpecGenerator
{
    public const string ConfigFileName = "config.json";
    public const string InfoFileName = "runcible.json";

    /// <summary>config.json's network namespace path for a private network: the shim renders the real one at each start.</summary>
    public const string NetworkNamespacePlaceholder = "{netns}";
    private const int MaxAccountFileBytes = 4 * 1024 * 1024;

    private static readonly string[] RootCapabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

    // Generated at compile time (no Regex parsing or interpreter set-up in each build).
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex VolumeNamePattern();

    [GeneratedRegex("^[^=\0]+$", RegexOptions.CultureInvariant)]
    private static partial Regex EnvNamePattern();

    // The serializers are generated at compile time and bound to these options, so they write straight to the
    // output with no converter set-up at run time (the reflection-based serializer cost each build ~40 ms).
    private static readonly RuntimeSpecJsonContext WriteContext = new(new JsonSerializerOptions
    {
        WriteIndented = true,
        // Keep '+', '<' and non-ASCII readable; config.json is not embedded in HTML.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public RuntimeSpecResult Generate(ImageConfiguration image, IRootfsReader rootfs, RuntimeSpecSettings settings)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(rootfs);
        ArgumentNullException.ThrowIfNull(settings);
        ValidateSettings(settings);
        var container = image.Config ?? new ContainerConfig();

        var cwd = settings.WorkingDirectory ?? "/app";
        if (PathProblem(cwd, forVolume: false) is { } cwdProblem)
        {
            throw new RuncibleException(RuncibleErrors.BadWorkingDirectory, cwd, cwdProblem);
        }

        var resolved = UserResolver.Resolve(ChooseUser(settings, container), rootfs, MaxAccountFileBytes);
        var env = BuildEnvironment(container.Env, settings.EnvironmentVariables, resolved);
        // runc 1.1 rootless (no newuidmap) needs container root mapped and can map only one id: the app runs
        // as container root, which is the unprivileged invoking user on the host (docs/runtime-config.md).
        var user = settings.Rootless ? new ResolvedUser(0, 0, [], resolved.Home) : resolved;
        var args = AppCommandBuilder.Build(settings, container, cwd);
        var isRoot = user.Uid == 0;

        var capabilities = new SortedSet<string>(StringComparer.Ordinal);
        if (isRoot)
        {
            capabilities.UnionWith(RootCapabilities);
        }

        foreach (var capability in settings.Capabilities)
        {
            capabilities.Add(ContainerSettingsValidator.NormalizeCapability(capability));
        }

        var capabilityList = capabilities.ToList();
        var config = new RuntimeConfig
        {
            Process = new RuntimeProcess
            {
                Terminal = false,
                User = new RuntimeUser
                {
                    Uid = user.Uid,
                    Gid = user.Gid,
                    AdditionalGids = user.AdditionalGids.Count == 0 ? null : user.AdditionalGids.ToList(),
                },
                Args = args,
                Env = env,
                Cwd = cwd,
                Capabilities = new RuntimeCapabilities
                {
                    Bounding = capabilityList,
                    Effective = capabilityList,
                    // Ambient (which the kernel only allows for inheritable capabilities) lets a non-root app
                    // actually hold what it asked for after exec. Root needs neither (CVE-2022-29162: no inheritable by default).
                    Inheritable = isRoot ? [] : capabilityList,
                    Permitted = capabilityList,
                    Ambient = isRoot ? [] : capabilityList,
                },
                Rlimits = [new RuntimeRlimit { Type = "RLIMIT_NOFILE", Hard = settings.OpenFilesLimit, Soft = settings.OpenFilesLimit }],
                NoNewPrivileges = true,
            },
            Root = new RuntimeRoot { Path = "rootfs", Readonly = !settings.WritableRootfs },
            Hostname = settings.BundleName,
            Annotations = BuildAnnotations(image, container, settings),
        };

        var volumes = BuildVolumes(container, settings, user);
        config.Mounts = BuildMounts(settings, volumes);
        config.Linux = BuildLinux(settings, user);
        config.Linux.Seccomp = ChooseSeccomp(settings, image, capabilityList);

        var info = new BundleRuntimeInfo
        {
            Name = settings.BundleName,
            Version = settings.BundleVersion,
            StopSignal = NormaliseSignal(container.StopSignal),
            StopTimeoutSeconds = settings.StopTimeoutSeconds ?? 30,
            Uid = user.Uid,
            Gid = user.Gid,
            Volumes = volumes,
            Rootless = settings.Rootless,
            Notify = settings.Notify,
            Network = settings.Network == BundleNetwork.Host ? null : settings.Network.ToString().ToLowerInvariant(),
            PublishPorts = settings.Network == BundleNetwork.Private
                ? PublishedPort.Effective(settings.PublishPorts, settings.Ports).Select(p => p.ToString()).ToList()
                : null,
            Health = settings.Health is { } health
                ? new BundleHealthCheck
                {
                    Http = health.HttpUrl,
                    Command = health.HttpUrl is null ? [.. health.Command] : null,
                    IntervalSeconds = health.IntervalSeconds,
                    TimeoutSeconds = health.TimeoutSeconds,
                    Retries = health.Retries,
                    StartPeriodSeconds = health.StartPeriodSeconds,
                }
                : null,
            WritableRootfs = settings.WritableRootfs
                ? new WritableRootfsLayout
                {
                    Tmpfs = $"{{runtimeDir}}/runcible/{settings.BundleName}",
                    Upper = $"{{runtimeDir}}/runcible/{settings.BundleName}/upper",
                    Work = $"{{runtimeDir}}/runcible/{settings.BundleName}/work",
                }
                : null,
        };
        return new RuntimeSpecResult(config, info);
    }

    /// <summary>Serialises a model deterministically: indented, declaration order, LF line ends, trailing newline.</summary>
    public static byte[] Serialize<T>(T document)
    {
        var typeInfo = WriteContext.GetTypeInfo(typeof(T)) as System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>
            ?? throw new NotSupportedException($"{typeof(T)} is not one of the documents RuntimeSpecJsonContext writes.");
        var json = JsonSerializer.Serialize(document, typeInfo).Replace("\r\n", "\n", StringComparison.Ordinal);
        return Encoding.UTF8.GetBytes(json + "\n");
    }

    private static void ValidateSettings(RuntimeSpecSettings settings)
    {
        if (!VolumeNamePattern().IsMatch(settings.BundleName))
        {
            throw new RuncibleException(RuncibleErrors.BadRuntimeSetting, "RuncBundleName", settings.BundleName, "use letters, digits, '.', '_' and '-', starting with a letter or digit");
        }

        if (settings.StopTimeoutSeconds is < 1 or > 86400)
        {
            throw new RuncibleException(RuncibleErrors.BadRuntimeSetting, "RuncStopTimeout", settings.StopTimeoutSeconds, "use a number of seconds from 1 to 86400");
        }

        if (settings.OpenFilesLimit < 1024)
        {
            throw new RuncibleException(RuncibleErrors.BadRuntimeSetting, "OpenFilesLimit", settings.OpenFilesLimit, "use at least 1024");
        }
    }

    private static string ChooseUser(RuntimeSpecSettings settings, ContainerConfig container)
    {
        if (!string.IsNullOrEmpty(settings.User))
        {
            return settings.User;
        }

        if (!string.IsNullOrEmpty(container.User))
        {
            return container.User;
        }

        var appUid = container.Env?.Select(SplitEnv).LastOrDefault(e => e.Name == "APP_UID").Value;
        return string.IsNullOrEmpty(appUid) ? "0" : appUid;
    }

    private static (string Name, string Value) SplitEnv(string entry)
    {
        var equals = entry.IndexOf('=', StringComparison.Ordinal);
        return equals < 0 ? (entry, "") : (entry[..equals], entry[(equals + 1)..]);
    }

    private static List<string> BuildEnvironment(List<string>? imageEnv, IReadOnlyList<KeyValuePair<string, string>> projectEnv, ResolvedUser user)
    {
        // Ordered by first appearance; a later value replaces an earlier one in place.
        var order = new List<string>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        void Set(string name, string value)
        {
            if (!values.ContainsKey(name))
            {
                order.Add(name);
            }

            values[name] = value;
        }

        foreach (var entry in imageEnv ?? [])
        {
            var (name, value) = SplitEnv(entry);
            if (name.Length > 0 && !name.Contains('\0', StringComparison.Ordinal))
            {
                Set(name, value);
            }
        }

        foreach (var (name, value) in projectEnv)
        {
            if (!EnvNamePattern().IsMatch(name))
            {
                throw new RuncibleException(RuncibleErrors.BadEnvironmentVariable, name);
            }

            Set(name, value);
        }

        if (!values.ContainsKey("PATH"))
        {
            Set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        }

        if (!values.ContainsKey("HOME"))
        {
            Set("HOME", user.Home);
        }

        return order.Select(n => n + "=" + values[n]).ToList();
    }

    private static SortedDictionary<string, string> BuildAnnotations(ImageConfiguration image, ContainerConfig container, RuntimeSpecSettings settings)
    {
        var annotations = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void SetIfPresent(string key, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                annotations[key] = value;
            }
        }

        SetIfPresent("org.opencontainers.image.os", image.OS);
        SetIfPresent("org.opencontainers.image.architecture", image.Architecture);
        SetIfPresent("org.opencontainers.image.variant", image.Variant);
        SetIfPresent("org.opencontainers.image.author", image.Author);
        SetIfPresent("org.opencontainers.image.created", image.Created);
        SetIfPresent("org.opencontainers.image.stopSignal", container.StopSignal);
        var ports = new SortedSet<string>(StringComparer.Ordinal);
        ports.UnionWith(container.ExposedPorts?.Keys ?? Enumerable.Empty<string>());
        ports.UnionWith(settings.Ports.Select(p => p.Contains('/', StringComparison.Ordinal) ? p : p + "/tcp"));
        if (ports.Count > 0)
        {
            annotations["org.opencontainers.image.exposedPorts"] = string.Join(",", ports);
        }

        foreach (var (key, value) in container.Labels ?? [])
        {
            annotations[key] = value;
        }

        foreach (var (key, value) in settings.Labels)
        {
            annotations[key] = value;
        }

        return annotations;
    }

    private static List<RuntimeVolume> BuildVolumes(ContainerConfig container, RuntimeSpecSettings settings, ResolvedUser user)
    {
        // A RuncVolume naming the same path as an image volume replaces it (that is how one names an image volume).
        var byPath = new SortedDictionary<string, string?>(StringComparer.Ordinal);
        foreach (var path in container.Volumes?.Keys ?? Enumerable.Empty<string>())
        {
            var trimmed = path.Length > 1 ? path.TrimEnd('/') : path;
            byPath[ValidateVolumePath(trimmed)] = null;
        }

        foreach (var volume in settings.Volumes)
        {
            byPath[ValidateVolumePath(volume.ContainerPath)] = volume.Name;
        }

        var result = new List<RuntimeVolume>();
        var byName = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (path, explicitName) in byPath)
        {
            var name = string.IsNullOrEmpty(explicitName) ? DeriveVolumeName(path) : explicitName;
            if (!VolumeNamePattern().IsMatch(name) || name is "." or "..")
            {
                throw new RuncibleException(RuncibleErrors.BadVolumeName, name, path);
            }

            // Case-insensitive: the bundle may be copied through a case-insensitive file system.
            if (byName.TryGetValue(name, out var other))
            {
                throw new RuncibleException(RuncibleErrors.VolumeNameCollision, other, path, name);
            }

            byName[name] = path;
            result.Add(new RuntimeVolume { Name = name, ContainerPath = path, Uid = user.Uid, Gid = user.Gid });
        }

        return result;
    }

    private static string ValidateVolumePath(string path)
    {
        if (PathProblem(path, forVolume: true) is { } problem)
        {
            throw new RuncibleException(RuncibleErrors.BadVolumePath, path, problem);
        }

        return path;
    }

    /// <summary>"/var/lib/app data" → "var-lib-app_data": path segments joined by '-', other characters '_'.</summary>
    internal static string DeriveVolumeName(string path)
    {
        var builder = new StringBuilder();
        foreach (var segment in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (builder.Length > 0)
            {
                builder.Append('-');
            }

            foreach (var c in segment)
            {
                builder.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_');
            }
        }

        var name = builder.ToString().TrimStart('.', '-', '_');
        return name.Length == 0 ? "volume" : name.Length > 128 ? name[..128] : name;
    }

    /// <summary>Null when <paramref name="path"/> is an acceptable container path, else why not.</summary>
    internal static string? PathProblem(string path, bool forVolume)
    {
        if (string.IsNullOrEmpty(path) || path[0] != '/')
        {
            return "it is not absolute";
        }

        if (path.Contains('\0', StringComparison.Ordinal) || path.Contains('\n', StringComparison.Ordinal))
        {
            return "it contains a control character";
        }

        if (path != "/" && (path.EndsWith('/') || path.Contains("//", StringComparison.Ordinal) ||
            path.Split('/').Skip(1).Any(s => s is "." or "..")))
        {
            return "it is not normalised (no '.', '..', '//' or trailing '/')";
        }

        if (IsUnder(path, "/proc"))
        {
            return "it is under /proc";
        }

        if (forVolume)
        {
            if (path == "/")
            {
                return "it is the root directory";
            }

            if (IsUnder(path, "/sys") || IsUnder(path, "/dev"))
            {
                return "it is under /sys or /dev";
            }
        }

        return null;
    }

    private static bool IsUnder(string path, string directory) =>
        path == directory || path.StartsWith(directory + "/", StringComparison.Ordinal);

    private static List<RuntimeMount> BuildMounts(RuntimeSpecSettings settings, List<RuntimeVolume> volumes)
    {
        var mounts = new List<RuntimeMount>
        {
            // As podman mounts it: nothing in /proc is a program or a device.
            new() { Destination = "/proc", Type = "proc", Source = "proc", Options = ["nosuid", "noexec", "nodev"] },
            new() { Destination = "/dev", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            // A rootless namespace maps one gid, so devpts cannot use gid=5 (tty).
            new()
            {
                Destination = "/dev/pts", Type = "devpts", Source = "devpts",
                Options = settings.Rootless
                    ? ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
                    : ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            new() { Destination = "/dev/shm", Type = "tmpfs", Source = "shm", Options = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            new() { Destination = "/dev/mqueue", Type = "mqueue", Source = "mqueue", Options = ["nosuid", "noexec", "nodev"] },
        };
        if (settings.Rootless)
        {
            // A user namespace without a network namespace of its own may not mount sysfs: bind the host's read-only.
            mounts.Add(new() { Destination = "/sys", Type = "none", Source = "/sys", Options = ["rbind", "nosuid", "noexec", "nodev", "ro"] });
        }
        else
        {
            mounts.Add(new() { Destination = "/sys", Type = "sysfs", Source = "sysfs", Options = ["nosuid", "noexec", "nodev", "ro"] });
            mounts.Add(new() { Destination = "/sys/fs/cgroup", Type = "cgroup", Source = "cgroup", Options = ["nosuid", "noexec", "nodev", "relatime", "ro"] });
        }

        // Writable scratch space on a read-only root. /run must be a tmpfs so runc can create /run/notify for the NOTIFY_SOCKET relay.
        mounts.Add(new() { Destination = "/tmp", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "nodev", "mode=1777"] });
        mounts.Add(new() { Destination = "/run", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "nodev", "mode=755"] });
        mounts.Add(new() { Destination = "/var/tmp", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "nodev", "mode=1777"] });
        // The host network is shared, so its resolver and hosts files are too.
        mounts.Add(new() { Destination = "/etc/resolv.conf", Type = "bind", Source = "/etc/resolv.conf", Options = ["rbind", "ro", "nosuid", "nodev", "noexec"] });
        mounts.Add(new() { Destination = "/etc/hosts", Type = "bind", Source = "/etc/hosts", Options = ["rbind", "ro", "nosuid", "nodev", "noexec"] });

        var origins = mounts.ToDictionary(m => m.Destination, m => "the default mount of " + m.Destination, StringComparer.Ordinal);
        void AddChecked(RuntimeMount mount, string origin)
        {
            if (PathProblem(mount.Destination, forVolume: true) is { } problem)
            {
                throw new RuncibleException(RuncibleErrors.BadVolumePath, mount.Destination, problem);
            }

            if (origins.TryGetValue(mount.Destination, out var existing))
            {
                throw new RuncibleException(RuncibleErrors.ConflictingMounts, mount.Destination, existing, origin);
            }

            origins[mount.Destination] = origin;
            mounts.Add(mount);
        }

        var configPath = settings.ConfigPath ?? "/etc/" + settings.BundleName;
        var logsPath = settings.LogsPath ?? "/var/log/" + settings.BundleName;
        var extra = new List<(RuntimeMount Mount, string Origin)>
        {
            (new RuntimeMount { Destination = configPath, Type = "bind", Source = "config", Options = ["rbind", "ro", "nosuid", "nodev"] }, "the config directory"),
            (new RuntimeMount { Destination = logsPath, Type = "bind", Source = "logs", Options = ["rbind", "rw", "nosuid", "nodev"] }, "the logs directory"),
        };
        extra.AddRange(volumes.Select(v => (
            new RuntimeMount { Destination = v.ContainerPath, Type = "bind", Source = "data/" + v.Name, Options = ["rbind", "rw", "nosuid", "nodev"] },
            $"the volume '{v.Name}'")));

        // Parents before children: ordinal order of destinations puts "/a" before "/a/b".
        foreach (var (mount, origin) in extra.OrderBy(e => e.Mount.Destination, StringComparer.Ordinal))
        {
            AddChecked(mount, origin);
        }

        return mounts;
    }

    private static RuntimeLinux BuildLinux(RuntimeSpecSettings settings, ResolvedUser user)
    {
        var linux = new RuntimeLinux
        {
            Namespaces = [new() { Type = "pid" }, new() { Type = "ipc" }, new() { Type = "uts" }, new() { Type = "mount" }],
            // podman's defaults (containers/common pkg/config): runc leaves out a path the host's kernel lacks. Its glob
            // /sys/devices/system/cpu/cpu*/thermal_throttle is expanded on the running host, which a build does not know.
            MaskedPaths =
            [
                "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi",
                "/proc/timer_list", "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware", "/sys/fs/selinux",
                "/proc/interrupts",
            ],
            ReadonlyPaths = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            Resources = ResourceLimits.ToResources(settings),
        };
        // private, rootful: the namespace the shim creates and wires to the bridge before each start; none, and private
        // rootless: runc makes a new one (inside the user namespace) and brings its loopback up, and for private the
        // shim's createRuntime hook connects it to the host with pasta.
        if (settings.Network != BundleNetwork.Host)
        {
            linux.Namespaces.Add(new() { Type = "network", Path = settings.Network == BundleNetwork.Private && !settings.Rootless ? NetworkNamespacePlaceholder : null });
        }

        if (settings.Rootless)
        {
            // runc without newuidmap maps exactly one id, and it must be container root: the invoking user becomes root inside.
            linux.Namespaces.Add(new() { Type = "user" });
            linux.UidMappings = [new() { ContainerId = 0, HostId = settings.RootlessHostUid, Size = 1 }];
            linux.GidMappings = [new() { ContainerId = 0, HostId = settings.RootlessHostGid, Size = 1 }];
        }

        return linux;
    }

    private static RuntimeSeccomp? ChooseSeccomp(RuntimeSpecSettings settings, ImageConfiguration image, List<string> bounding)
    {
        if (settings.Seccomp.IsUnconfined)
        {
            return null;
        }

        if (settings.Seccomp.Profile is { } given)
        {
            return given;
        }

        // Resolved against what this config grants, as moby resolves its profile when it creates a container.
        var architecture = settings.Architecture ?? image.Architecture ?? "";
        return SeccompProfiles.Default(architecture, bounding)
            ?? throw new RuncibleException(
                RuncibleErrors.BadRuntimeSetting, "RuncSeccompProfile", "",
                $"there is no default seccomp profile for the architecture '{architecture}' (there is for {string.Join(", ", SeccompProfiles.DefaultArchitectures.Order(StringComparer.Ordinal))}); give a profile file or 'unconfined'");
    }

    private static string NormaliseSignal(string? signal)
    {
        if (string.IsNullOrWhiteSpace(signal))
        {
            return "SIGTERM";
        }

        var trimmed = signal.Trim().ToUpperInvariant();
        if (uint.TryParse(trimmed, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            return trimmed;
        }

        return trimmed.StartsWith("SIG", StringComparison.Ordinal) ? trimmed : "SIG" + trimmed;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(RuntimeConfig))]
[System.Text.Json.Serialization.JsonSerializable(typeof(BundleRuntimeInfo))]
internal sealed partial class RuntimeSpecJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
