namespace Runcible.Tests.Host;

/// <summary>
/// The shim's host operations (<see cref="HostOperationScenarios"/>), run on each init system by the derived test class
/// with its booted host.
/// </summary>
public abstract class HostOperationTests(HostContainer host)
{
    [Fact]
    public Task OperatorCommandsTakeTheLockAndTheServiceStartNeverWaitsForIt() =>
        HostOperationScenarios.LockAsync(host);

    [Fact]
    public Task CommandsOfANonInstalledVersionLeaveTheInstalledContainerAlone() =>
        HostOperationScenarios.OwnContainerAsync(host);

    [Fact]
    public Task AHostWithoutEtcHostsAndResolvConfStillRunsTheBundle() =>
        HostOperationScenarios.MissingHostFilesAsync(host);

    [Fact]
    public Task AVolumeThatHeldDataIsNeverRecreatedEmptyAndInstallTightensModes() =>
        HostOperationScenarios.VolumeRecordAsync(host);

    [Fact]
    public Task AHostInstalledByAnOlderShimIsAdoptedAndUpgraded() =>
        HostOperationScenarios.AdoptAsync(host);

    [Fact]
    public Task AnInterruptedUpgradeIsUndoneOrFinishedByTheNextCommandOrTheStartAfterAReboot() =>
        HostOperationScenarios.InterruptedUpgradeAsync(host);

    [Fact]
    public Task AStartDuringAnUpgradeIsRefusedBeforeItsCommitAndBringsUpTheNewVersionAfter() =>
        HostOperationScenarios.StartDuringUpgradeAsync(host);

    [Fact]
    public Task AnInterruptedUninstallIsUndoneByTheStartAfterARebootOrFinishedByTheNextCommand() =>
        HostOperationScenarios.InterruptedUninstallAsync(host);

    [Fact]
    public Task AnEnvOverrideAndASecretReachTheAppAfterARestartAndSurviveAnUpgrade() =>
        OperatorSettingsScenarios.EnvAndSecretSurviveUpgradeAsync(host);

    [Fact]
    public Task AMemoryHogIsOomKilledAtItsLimitAndRestartedByTheService() =>
        OperatorSettingsScenarios.MemoryHogIsRestartedAsync(host);

    [Fact]
    public Task AStartOfAVersionThatIsNotTheInstalledOneRunsTheInstalledOneOnItsData() =>
        HostOperationScenarios.NotInstalledVersionAsync(host);

    [Fact]
    public Task AnInterruptedUpgradeOfAHostInstalledByAShimFromBeforeTheJournalIsUndoneAtBoot() =>
        HostOperationScenarios.PreJournalShimAsync(host);

    [Fact]
    public Task AServiceWhoseHealthCheckFailsIsRestartedAndStatusShowsIt() =>
        HealthScenarios.RestartWhenUnhealthyAsync(host);

    [Fact]
    public Task AnUpgradeToAVersionThatNeverBecomesHealthyIsRolledBackWithItsData() =>
        HealthScenarios.UpgradeToUnhealthyVersionRollsBackAsync(host);
}
