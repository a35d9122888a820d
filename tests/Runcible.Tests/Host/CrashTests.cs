namespace Runcible.Tests.Host;

/// <summary>
/// Power cuts before every rename of upgrade, rollback and uninstall, at random times, and kill -9 of an upgrade
/// (<see cref="CrashScenarios"/>), on the host of <see cref="CrashDisks.Init"/>.
/// </summary>
public abstract class CrashTests(CrashDisks disks, ITestOutputHelper output)
{
    [Fact]
    public Task UpgradeInterruptedBeforeEveryRenameComesBackOnOneVersionWithAllData() =>
        CrashScenarios.EveryRenameAsync(disks, CrashedCommand.Upgrade, output);

    [Fact]
    public Task RollbackInterruptedBeforeEveryRenameComesBackOnOneVersionWithAllData() =>
        CrashScenarios.EveryRenameAsync(disks, CrashedCommand.Rollback, output);

    [Fact]
    public Task UninstallInterruptedBeforeEveryRenameFinishesAndKeepsAllData() =>
        CrashScenarios.EveryRenameAsync(disks, CrashedCommand.Uninstall, output);

    [Fact]
    public Task UpgradeCutAtRandomTimesComesBackOnOneVersionWithAllData() =>
        CrashScenarios.RandomTimesAsync(disks, CrashedCommand.Upgrade, 3, output);

    [Fact]
    public Task UpgradeKilledAtRandomTimesIsFinishedByTheNextUpgrade() =>
        CrashScenarios.RandomKillsAsync(disks, CrashedCommand.Upgrade, 3, output);
}

/// <summary>Shim commands at once (<see cref="ConcurrencyScenarios"/>) on the host of <see cref="CrashDisks.Init"/>.</summary>
public abstract class ConcurrencyTests(CrashDisks disks, ITestOutputHelper output)
{
    [Fact]
    public Task TwoUpgradesAtOnceOneWaitsOrRefusesAndNoDataIsLost() => ConcurrencyScenarios.TwoUpgradesAsync(disks, output);

    [Fact]
    public Task RestartDuringUpgradeWaitsOrIsRefusedAndNoDataIsLost() => ConcurrencyScenarios.UpgradeDuringRestartAsync(disks, output);

    [Fact]
    public Task UninstallDuringUpgradeWaitsOrIsRefusedAndNoDataIsLost() => ConcurrencyScenarios.UninstallDuringUpgradeAsync(disks, output);
}

public sealed class SystemdCrashTests(SystemdCrashDisks fixture, ITestOutputHelper output)
    : CrashTests(fixture.Disks, output), IClassFixture<SystemdCrashDisks>;

public sealed class OpenRcCrashTests(OpenRcCrashDisks fixture, ITestOutputHelper output)
    : CrashTests(fixture.Disks, output), IClassFixture<OpenRcCrashDisks>;

public sealed class SystemdConcurrencyTests(SystemdCrashDisks fixture, ITestOutputHelper output)
    : ConcurrencyTests(fixture.Disks, output), IClassFixture<SystemdCrashDisks>;

public sealed class OpenRcConcurrencyTests(OpenRcCrashDisks fixture, ITestOutputHelper output)
    : ConcurrencyTests(fixture.Disks, output), IClassFixture<OpenRcCrashDisks>;
