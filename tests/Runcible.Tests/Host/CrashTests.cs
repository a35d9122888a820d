
namespace Runcible.Tests.Host;

/// <summary>Power cuts before every rename of upgrade, rollback and uninstall on a systemd host (<see cref="CrashScenarios"/>).</summary>
public sealed class SystemdCrashTests(SystemdCrashDisks fixture, ITestOutputHelper output) : IClassFixture<SystemdCrashDisks>
{
    [Fact]
    public Task UpgradeInterruptedBeforeEveryRenameComesBackOnOneVersionWithAllData() =>
        CrashScenarios.EveryRenameAsync(fixture.Disks, CrashedCommand.Upgrade, output);

    [Fact]
    public Task RollbackInterruptedBeforeEveryRenameComesBackOnOneVersionWithAllData() =>
        CrashScenarios.EveryRenameAsync(fixture.Disks, CrashedCommand.Rollback, output);

    [Fact]
    public Task UninstallInterruptedBeforeEveryRenameFinishesAndKeepsAllData() =>
        CrashScenarios.EveryRenameAsync(fixture.Disks, CrashedCommand.Uninstall, output);

    [Fact]
    public Task UpgradeCutAtRandomTimesComesBackOnOneVersionWithAllData() =>
        CrashScenarios.RandomTimesAsync(fixture.Disks, CrashedCommand.Upgrade, 3, output);

    [Fact]
    public Task UpgradeKilledAtRandomTimesIsFinishedByTheNextUpgrade() =>
        CrashScenarios.RandomKillsAsync(fixture.Disks, CrashedCommand.Upgrade, 3, output);
}

/// <summary>Power cuts before every rename of upgrade, rollback and uninstall on an OpenRC host (<see cref="CrashScenarios"/>).</summary>
public sealed class OpenRcCrashTests(OpenRcCrashDisks fixture, ITestOutputHelper output) : IClassFixture<OpenRcCrashDisks>
{
    [Fact]
    public Task UpgradeInterruptedBeforeEveryRenameComesBackOnOneVersionWithAllData() =>
        CrashScenarios.EveryRenameAsync(fixture.Disks, CrashedCommand.Upgrade, output);

    [Fact]
    public Task RollbackInterruptedBeforeEveryRenameComesBackOnOneVersionWithAllData() =>
        CrashScenarios.EveryRenameAsync(fixture.Disks, CrashedCommand.Rollback, output);

    [Fact]
    public Task UninstallInterruptedBeforeEveryRenameFinishesAndKeepsAllData() =>
        CrashScenarios.EveryRenameAsync(fixture.Disks, CrashedCommand.Uninstall, output);

    [Fact]
    public Task UpgradeCutAtRandomTimesComesBackOnOneVersionWithAllData() =>
        CrashScenarios.RandomTimesAsync(fixture.Disks, CrashedCommand.Upgrade, 3, output);

    [Fact]
    public Task UpgradeKilledAtRandomTimesIsFinishedByTheNextUpgrade() =>
        CrashScenarios.RandomKillsAsync(fixture.Disks, CrashedCommand.Upgrade, 3, output);
}

/// <summary>Shim commands at once on a systemd host (<see cref="ConcurrencyScenarios"/>).</summary>
public sealed class SystemdConcurrencyTests(SystemdCrashDisks fixture, ITestOutputHelper output) : IClassFixture<SystemdCrashDisks>
{
    [Fact]
    public Task TwoUpgradesAtOnceOneWaitsOrRefusesAndNoDataIsLost() => ConcurrencyScenarios.TwoUpgradesAsync(fixture.Disks, output);

    [Fact]
    public Task RestartDuringUpgradeWaitsOrIsRefusedAndNoDataIsLost() => ConcurrencyScenarios.UpgradeDuringRestartAsync(fixture.Disks, output);

    [Fact]
    public Task UninstallDuringUpgradeWaitsOrIsRefusedAndNoDataIsLost() => ConcurrencyScenarios.UninstallDuringUpgradeAsync(fixture.Disks, output);
}

/// <summary>Shim commands at once on an OpenRC host (<see cref="ConcurrencyScenarios"/>).</summary>
public sealed class OpenRcConcurrencyTests(OpenRcCrashDisks fixture, ITestOutputHelper output) : IClassFixture<OpenRcCrashDisks>
{
    [Fact]
    public Task TwoUpgradesAtOnceOneWaitsOrRefusesAndNoDataIsLost() => ConcurrencyScenarios.TwoUpgradesAsync(fixture.Disks, output);

    [Fact]
    public Task RestartDuringUpgradeWaitsOrIsRefusedAndNoDataIsLost() => ConcurrencyScenarios.UpgradeDuringRestartAsync(fixture.Disks, output);

    [Fact]
    public Task UninstallDuringUpgradeWaitsOrIsRefusedAndNoDataIsLost() => ConcurrencyScenarios.UninstallDuringUpgradeAsync(fixture.Disks, output);
}
