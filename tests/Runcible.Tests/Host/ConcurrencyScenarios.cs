using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Runcible.Tests.Host;

/// <summary>
/// Two shim commands on the same name at once, made to overlap deterministically: the first is an upgrade held
/// (<see cref="ShimFaults.HoldAtRename"/>) just before it moves the data, mid-transaction with the service stopped;
/// the second starts then and gets a few seconds on its own before the first is let go. The second must wait for
/// the first or refuse: finished while the first is held, it must have failed with a coded error. Each must end
/// cleanly — success, or a coded refusal (RUNCIBLEnnnn) — and afterwards the service runs on one version with all
/// its data (or, uninstalled, the data is on disk).
/// </summary>
internal static partial class ConcurrencyScenarios
{
    private const string V3 = "1.2.0";

    // The upgrade's rename of the data into the new bundle (data/ or one volume under it).
    private const string DataRename = "containers/keep-[^/]*/data";

    public static Task TwoUpgradesAsync(CrashDisks disks, ITestOutputHelper output) => OverlapAsync(disks, output, second: CrashDisks.Shim(V3) + " upgrade", (first, other, version) =>
    {
        Assert.True(first.ExitCode == 0 || other.ExitCode == 0, "neither upgrade succeeded");
        // Both succeeded: they ran one after the other, in either order; else the one that succeeded.
        var expected = first.ExitCode == 0 && other.ExitCode == 0 ? [CrashDisks.V2, V3] : first.ExitCode == 0 ? new[] { CrashDisks.V2 } : [V3];
        Assert.Contains(version, expected);
    });

    public static Task UpgradeDuringRestartAsync(CrashDisks disks, ITestOutputHelper output) => OverlapAsync(disks, output, second: CrashDisks.Shim(CrashDisks.V1) + " restart", (upgrade, restart, version) =>
    {
        if (upgrade.ExitCode == 0)
        {
            Assert.True(version == CrashDisks.V2, $"the upgrade reported success but {version} runs");
        }
    });

    public static Task UninstallDuringUpgradeAsync(CrashDisks disks, ITestOutputHelper output) => OverlapAsync(disks, output, second: CrashDisks.Shim(CrashDisks.V1) + " uninstall", (upgrade, uninstall, version) =>
    {
        if (version is not null && uninstall.ExitCode == 0)
        {
            // The uninstall ran first and the upgrade then had nothing to upgrade, or it ran after and removed a version no longer installed.
            Assert.True(upgrade.ExitCode == 0 && version == CrashDisks.V2, $"uninstall succeeded, the upgrade exited {upgrade.ExitCode}, and {version} runs");
        }
    });

    /// <param name="check">Given the upgrade's and the second command's results and the version that answers (null: none), what must hold.</param>
    private static async Task OverlapAsync(CrashDisks disks, ITestOutputHelper output, string second, Action<(int ExitCode, string Output), (int ExitCode, string Output), string?> check)
    {
        using var host = new HostContainer(disks.Init, disks.Installed);
        await HostScenarios.WithDiagnosticsAsync(host, CrashDisks.Name, async () =>
        {
            Assert.Equal(CrashDisks.V1 + "\n", await HostScenarios.GetAsync(disks.Port, "/version", seconds: 60));
            TestBundle.Write(host.ContainersDirectory, new TestBundle.Options(CrashDisks.Name, V3, disks.Port) { StopTimeoutSeconds = 5 });
            var upgrade = $"{CrashScenarios.Settle} {CrashDisks.Shim(CrashDisks.V2)} upgrade";
            var held = ShimFaults.HoldAtRename(host, upgrade, 1, match: DataRename);
            Assert.True(held.Held, $"the upgrade never renamed data inside a bundle ({DataRename}); it completed with {held.ExitCode}:\n{held.Output}");

            ShimFaults.Start(host, "second", second);
            await Task.Delay(TimeSpan.FromSeconds(5));
            var early = ShimFaults.Finished(host, "second");
            var upgraded = await ShimFaults.ReleaseAsync(host, held);
            var other = await ShimFaults.WaitAsync(host, "second");
            output.WriteLine($"held: {held.Call}\n'{second}' while held, {(early is { } e ? $"finished then: {e.ExitCode}" : "still running at the release")}");
            output.WriteLine($"'{upgrade}': {upgraded.ExitCode}\n{upgraded.Output}\n'{second}': {other.ExitCode}\n{other.Output}");
            AssertClean(upgrade, upgraded);
            AssertClean(second, other);
            // Done while the upgrade held its transaction open: it did not wait, so it must have refused.
            Assert.True(early is not { ExitCode: 0 }, $"'{second}' succeeded while an upgrade was in the middle of its transaction (it neither waited nor refused):\n{early?.Output}");

            string? version = null;
            if (await CrashScenarios.AnswersWithinAsync(disks.Port, 20))
            {
                version = (await HostScenarios.GetAsync(disks.Port, "/version")).Trim();
                await CrashScenarios.AssertOneVersionAsync(host, disks, version, "1.0.0\n", $"'{upgrade}' and '{second}' at once");
            }
            else
            {
                AssertDataOnDisk(host, disks);
            }

            check(upgraded, other, version);
        });
    }

    // Success, or a refusal that says what to do (a coded error), never a tool's own failure.
    private static void AssertClean(string command, (int ExitCode, string Output) result) =>
        Assert.True(result.ExitCode == 0 || CodedError().IsMatch(result.Output), $"'{command}' failed without a coded error ({result.ExitCode}):\n{result.Output}");

    private static void AssertDataOnDisk(HostContainer host, CrashDisks disks)
    {
        foreach (var (file, bytes) in disks.Files)
        {
            var copies = Directory.EnumerateDirectories(host.ContainersDirectory, CrashDisks.Name + "-*")
                .Select(bundle => Path.Combine(bundle, "data", "state", file))
                .Where(path => File.Exists(path) && SHA256.HashData(File.ReadAllBytes(path)).AsSpan().SequenceEqual(SHA256.HashData(bytes)))
                .ToList();
            Assert.True(copies.Count == 1, $"nothing answers and {file} is in {copies.Count} bundles' data with every byte, not one");
        }
    }

    [GeneratedRegex(@"RUNCIBLE\d{4}", RegexOptions.CultureInvariant)]
    private static partial Regex CodedError();
}
