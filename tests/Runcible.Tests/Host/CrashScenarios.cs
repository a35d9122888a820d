using System.Diagnostics;
using System.Security.Cryptography;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// Disks of a host with the bundle <c>keep</c> (the TestBundle web app, versions 1.0.0 and 1.1.0 extracted side by
/// side) for the crash tests to boot from, each a state an operator command starts in: <see cref="Installed"/>
/// (1.0.0 installed, enabled, started, data written by the app) and <see cref="Upgraded"/> (then upgraded to 1.1.0,
/// so rollback has somewhere to go). Built once per init system, by the shim.
/// </summary>
public sealed class CrashDisks : IDisposable
{
    public const string Name = "keep";
    public const string V1 = "1.0.0";
    public const string V2 = "1.1.0";

    private readonly TempDirectory _dir = new("runcible-crash-disks");

    public CrashDisks(HostInit init)
    {
        Init = init;
        Port = TestBundle.FreePort();
        Files = new Dictionary<string, byte[]>
        {
            ["blob.bin"] = RandomNumberGenerator.GetBytes(256 * 1024),
            ["small.bin"] = RandomNumberGenerator.GetBytes(1000),
        };
        try
        {
            Build();
        }
        catch
        {
            _dir.Dispose();
            throw;
        }
    }

    private void Build()
    {
        using var host = new HostContainer(Init);
        HostScenarios.WithDiagnosticsAsync(host, Name, async () =>
        {
            TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(Name, V1, Port) { StopTimeoutSeconds = 5 });
            TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(Name, V2, Port) { StopTimeoutSeconds = 5 });
            host.ExecOk($"{Shim(V1)} install && {HostScenarios.StartCommand(host, Name)}");
            Assert.Equal(V1 + "\n", await HostScenarios.GetAsync(Port, "/version"));
            // The app writes its files into its volume (runc exec runs as the app's user).
            foreach (var (file, bytes) in Files)
            {
                File.WriteAllBytes(Path.Combine(host.Root, "var", "tmp", file), bytes);
                host.ExecOk($"{Shim(V1)} exec sh -c 'cat >/data/{file}' </var/tmp/{file} && rm /var/tmp/{file}");
            }

            await AssertDataAsync(Port, Files, V1 + "\n");
            host.CutPower();
            host.SaveDisk(Installed);
            host.Boot();
            Assert.Equal(V1 + "\n", await HostScenarios.GetAsync(Port, "/version", seconds: 60));
            host.ExecOk($"RUNCIBLE_SETTLE_SECONDS=2 {Shim(V2)} upgrade");
            Assert.Equal(V2 + "\n", await HostScenarios.GetAsync(Port, "/version"));
            await AssertDataAsync(Port, Files, V1 + "\n" + V1 + "\n" + V2 + "\n");
            host.CutPower();
            host.SaveDisk(Upgraded);
        }).GetAwaiter().GetResult();
    }

    public HostInit Init { get; }

    public int Port { get; }

    /// <summary>The files the app wrote into its volume <c>/data</c>, by name.</summary>
    public IReadOnlyDictionary<string, byte[]> Files { get; }

    public string Installed => _dir.Combine("installed");

    public string Upgraded => _dir.Combine("upgraded");

    public static string Shim(string version) => $"/opt/containers/{Name}-{version}/runcible";

    /// <summary>Every file the app wrote is there, byte for byte (served by the app itself from its volume), and its start log begins with <paramref name="startsBefore"/>.</summary>
    public static async Task AssertDataAsync(int port, IReadOnlyDictionary<string, byte[]> files, string startsBefore)
    {
        foreach (var (file, bytes) in files)
        {
            var served = await HostScenarios.GetBytesAsync(port, "/" + file);
            Assert.True(SHA256.HashData(served).AsSpan().SequenceEqual(SHA256.HashData(bytes)),
                $"/data/{file} lost bytes: {served.Length} bytes served, {bytes.Length} written, checksums differ (an empty or other volume?)");
        }

        Assert.StartsWith(startsBefore, await HostScenarios.GetAsync(port, "/starts"), StringComparison.Ordinal);
    }

    public void Dispose() => _dir.Dispose();
}

public sealed class SystemdCrashDisks : IDisposable
{
    public CrashDisks Disks { get; } = new(HostInit.Systemd);

    public void Dispose() => Disks.Dispose();
}

public sealed class OpenRcCrashDisks : IDisposable
{
    public CrashDisks Disks { get; } = new(HostInit.OpenRc);

    public void Dispose() => Disks.Dispose();
}

/// <summary>An operator command the crash tests interrupt, and what must hold afterwards.</summary>
internal enum CrashedCommand
{
    /// <summary><c>keep-1.1.0/runcible upgrade</c> from 1.0.0 installed.</summary>
    Upgrade,

    /// <summary><c>keep-1.1.0/runcible rollback</c> from 1.1.0 installed after an upgrade.</summary>
    Rollback,

    /// <summary><c>keep-1.0.0/runcible uninstall</c> (no purge) from 1.0.0 installed.</summary>
    Uninstall,
}

/// <summary>
/// Crash tests through the real shim: for every rename N of a command (its commit points are renames), the
/// command's process tree is stopped just before it (<see cref="ShimFaults"/>), the host's power is cut and it
/// boots again; then the service must run on exactly one version with every byte the app wrote, and the command
/// run again must finish the job. N goes from 1 until the command completes without reaching it.
/// </summary>
internal static class CrashScenarios
{
    // On OpenRC the service the shim starts is traced too (it is forked from the shim), which slows its start; the
    // settling time is spent only by the runs that get as far as the start.
    internal const string Settle = "RUNCIBLE_SETTLE_SECONDS=10";

    public static string Command(CrashedCommand command) => command switch
    {
        CrashedCommand.Upgrade => $"{Settle} {CrashDisks.Shim(CrashDisks.V2)} upgrade",
        CrashedCommand.Rollback => $"{CrashDisks.Shim(CrashDisks.V2)} rollback",
        _ => $"{CrashDisks.Shim(CrashDisks.V1)} uninstall",
    };

    private static (string Disk, string Version, string Starts) StartState(CrashDisks disks, CrashedCommand command) => command == CrashedCommand.Rollback
        ? (disks.Upgraded, CrashDisks.V2, "1.0.0\n1.0.0\n1.1.0\n")
        : (disks.Installed, CrashDisks.V1, "1.0.0\n");

    /// <summary>Interrupts <paramref name="command"/> before each of its renames in turn; returns how many renames it makes.</summary>
    public static async Task<int> EveryRenameAsync(CrashDisks disks, CrashedCommand command, ITestOutputHelper output)
    {
        // RUNCIBLE_CRASH_FROM=N starts at rename N, to reproduce one failure without the runs before it.
        var from = int.TryParse(Environment.GetEnvironmentVariable("RUNCIBLE_CRASH_FROM"), out var first) && first > 0 ? first : 1;
        for (var n = from; ; n++)
        {
            var (disk, version, starts) = StartState(disks, command);
            using var host = new HostContainer(disks.Init, disk);
            var stopwatch = Stopwatch.StartNew();
            var completed = false;
            await HostScenarios.WithDiagnosticsAsync(host, CrashDisks.Name, async () =>
            {
                // The enabled service starts at boot, as on the disk's last boot.
                Assert.Equal(version + "\n", await HostScenarios.GetAsync(disks.Port, "/version", seconds: 60));
                var fault = ShimFaults.HoldAtRename(host, Command(command), n);
                if (!fault.Held)
                {
                    // Done, or (a traced OpenRC service slow to start on a loaded machine) rolled back; the check
                    // below runs the command again untraced. Either way every rename of the successful path was
                    // a hold point already: the paths part only after the start.
                    completed = true;
                    Assert.True(fault.ExitCode == 0 || (command == CrashedCommand.Upgrade && fault.Output.Contains("RUNCIBLE5017", StringComparison.Ordinal)),
                        $"{Command(command)} failed without a fault:\n{fault.Output}");
                    Assert.True(fault.Renames < n, $"the injector counted {fault.Renames} renames but did not hold the {n}th");
                }

                output.WriteLine($"{disks.Init} {command} rename {n}: {(fault.Held ? "held " + fault.Call : $"completed after {fault.Renames} renames")}");
                host.PowerCycle();
                await AssertRecoveredAsync(host, disks, command, starts, $"power cut before rename {n} ({fault.Call})", output);
            });
            output.WriteLine($"  {stopwatch.Elapsed.TotalSeconds:F1} s");
            if (completed)
            {
                return n - 1;
            }
        }
    }

    /// <summary>The same with the power cut at random times while the command runs (seeded; the seed is in the output).</summary>
    public static Task RandomTimesAsync(CrashDisks disks, CrashedCommand command, int times, ITestOutputHelper output) =>
        AtRandomTimesAsync(disks, command, times, "power cut", output, async (host, starts, when) =>
        {
            host.PowerCycle();
            await AssertRecoveredAsync(host, disks, command, starts, when, output);
        });

    /// <summary>
    /// <c>kill -9</c> of the command's whole process tree (the shim, its <c>mv</c>s, <c>systemctl</c>…) at random times,
    /// no power cut: the command run again must end on its target version with all data.
    /// </summary>
    public static Task RandomKillsAsync(CrashDisks disks, CrashedCommand command, int times, ITestOutputHelper output) =>
        AtRandomTimesAsync(disks, command, times, "kill -9", output, async (host, starts, when) =>
        {
            var target = command == CrashedCommand.Upgrade ? CrashDisks.V2 : CrashDisks.V1;
            var again = host.Exec(Command(command), TimeSpan.FromMinutes(2));
            Assert.True(again.ExitCode == 0, $"after a {when}, {command} run again failed:\n{again.StandardOutput}{again.StandardError}");
            Assert.Equal(target + "\n", await HostScenarios.GetAsync(disks.Port, "/version", body => body == target + "\n"));
            await AssertOneVersionAsync(host, disks, target, starts, when);
        });

    // Starts the command in a fresh host, waits a random 0-3 s, interrupts it ("power cut" or "kill -9" of its
    // session; the cut itself is the check's), then runs the check with the start log from before and a description.
    private static async Task AtRandomTimesAsync(CrashDisks disks, CrashedCommand command, int times, string interruption, ITestOutputHelper output,
        Func<HostContainer, string, string, Task> check)
    {
        var seed = Environment.TickCount;
        var random = new Random(seed);
        output.WriteLine($"{disks.Init} {command}: {interruption} at random times, seed {seed}");
        for (var i = 0; i < times; i++)
        {
            var (disk, version, starts) = StartState(disks, command);
            using var host = new HostContainer(disks.Init, disk);
            var after = TimeSpan.FromMilliseconds(random.Next(0, 3000));
            await HostScenarios.WithDiagnosticsAsync(host, CrashDisks.Name, async () =>
            {
                Assert.Equal(version + "\n", await HostScenarios.GetAsync(disks.Port, "/version", seconds: 60));
                ShimFaults.Start(host, "interrupted", Command(command));
                await Task.Delay(after);
                if (interruption == "kill -9")
                {
                    ShimFaults.Kill(host, "interrupted");
                }

                var finished = ShimFaults.Finished(host, "interrupted");
                output.WriteLine($"  {interruption} {after.TotalMilliseconds} ms into the command{(finished is { } f ? $" (it had finished: {f.ExitCode})" : "")}");
                await check(host, starts, $"{interruption} {after.TotalMilliseconds} ms into the command (seed {seed})");
            });
        }
    }

    /// <summary>
    /// After the power cut and boot: upgrade and rollback — the service answers (by itself at boot, or after the
    /// command is run again) on one version from one container, with all data; the command run again then ends
    /// on its target version with all data. Uninstall — run again, it completes and the data stays on disk.
    /// </summary>
    private static async Task AssertRecoveredAsync(HostContainer host, CrashDisks disks, CrashedCommand command, string startsBefore, string when, ITestOutputHelper output)
    {
        var port = disks.Port;
        if (command == CrashedCommand.Uninstall)
        {
            // Booted means the enabled service was started: if still installed, it answers within seconds.
            if (await AnswersWithinAsync(port, 8))
            {
                await AssertOneVersionAsync(host, disks, CrashDisks.V1, startsBefore, when);
            }

            // Run again unless it got as far as removing the bundle's own files (the shim among them).
            if (host.Exec($"test -x {CrashDisks.Shim(CrashDisks.V1)}").ExitCode == 0)
            {
                var again = host.Exec(Command(command));
                Assert.True(again.ExitCode == 0, $"after a {when}, uninstall run again failed:\n{again.StandardOutput}{again.StandardError}");
            }

            Assert.False(await HostScenarios.AnswersAsync(port), $"after a {when} and uninstall run again, the app still answers");
            Assert.Equal("", host.Exec("runc list -q").StandardOutput.Trim());
            foreach (var (file, bytes) in disks.Files)
            {
                var kept = Path.Combine(host.ContainersDirectory, $"{CrashDisks.Name}-{CrashDisks.V1}", "data", "state", file);
                Assert.True(File.Exists(kept) && SHA256.HashData(File.ReadAllBytes(kept)).AsSpan().SequenceEqual(SHA256.HashData(bytes)),
                    $"after a {when} and uninstall run again, the app's {file} is not in its data directory with every byte");
            }

            return;
        }

        var target = command == CrashedCommand.Upgrade ? CrashDisks.V2 : CrashDisks.V1;
        if (!await AnswersWithinAsync(port, 45))
        {
            output.WriteLine("  not back after boot; running the command again");
            var retried = host.Exec(Command(command), TimeSpan.FromMinutes(2));
            output.WriteLine($"  again: {retried.ExitCode} {retried.StandardError.Trim()}");
        }

        var version = (await HostScenarios.GetAsync(port, "/version")).Trim();
        Assert.True(version is CrashDisks.V1 or CrashDisks.V2, $"after a {when}: unexpected version '{version}'");
        await AssertOneVersionAsync(host, disks, version, startsBefore, when);
        if (version != target)
        {
            var finish = host.Exec(Command(command), TimeSpan.FromMinutes(2));
            Assert.True(finish.ExitCode == 0, $"after a {when} (back on {version}), {command} run again failed:\n{finish.StandardOutput}{finish.StandardError}");
            Assert.Equal(target + "\n", await HostScenarios.GetAsync(port, "/version", body => body == target + "\n"));
            await AssertOneVersionAsync(host, disks, target, startsBefore, when + $", then {command} run again");
        }
    }

    internal static async Task AssertOneVersionAsync(HostContainer host, CrashDisks disks, string version, string startsBefore, string when)
    {
        var containers = host.ExecOk("runc list -q").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(containers.Length == 1, $"after a {when}: {containers.Length} containers ({string.Join(", ", containers)}) instead of one");
        Assert.Equal("running", HostScenarios.ContainerStatus(host, containers[0]));
        // The container's root is the rootfs of the bundle of the version that answers.
        var rootfs = host.ExecOk($"runc state {containers[0]} | sed -n 's/^  \"rootfs\": \"\\(.*\\)\",$/\\1/p'").Trim();
        Assert.True(rootfs == $"/opt/containers/{CrashDisks.Name}-{version}/rootfs", $"after a {when}: the container runs {rootfs}, the app answers {version}");
        try
        {
            await CrashDisks.AssertDataAsync(disks.Port, disks.Files, startsBefore);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"after a {when}, {version} runs without all its data: {e.Message}", e);
        }
    }

    internal static async Task<bool> AnswersWithinAsync(int port, int seconds)
    {
        try
        {
            await HostScenarios.GetAsync(port, "/version", seconds: seconds);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}
