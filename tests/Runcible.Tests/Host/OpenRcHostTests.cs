namespace Runcible.Tests.Host;

/// <summary>One OpenRC host boot (Debian bookworm, /sbin/openrc-init as PID 1 under runc) shared by the scenarios of this class.</summary>
public sealed class OpenRcHostFixture : IDisposable
{
    public HostContainer Host { get; } = new(HostInit.OpenRc);

    public void Dispose() => Host.Dispose();
}

/// <summary>The bundle as an OpenRC service (supervise-daemon) on a real OpenRC.</summary>
public sealed class OpenRcHostTests(OpenRcHostFixture fixture) : IClassFixture<OpenRcHostFixture>
{
    [Fact]
    public Task ServiceAnswersRestartsWhenKilledStopsGracefullyAndComesBackAfterReboot() =>
        HostScenarios.ServiceLifecycleAsync(fixture.Host);

    [Fact]
    public Task UpgradeKeepsDataFailedUpgradeRollsBackRollbackAndUninstall() =>
        HostScenarios.UpgradeRollbackUninstallAsync(fixture.Host);

    [Fact]
    public Task WritableRootIsDiscardedOnRestartAndLowerRootfsUntouched() =>
        HostScenarios.WritableRootAsync(fixture.Host);

    [Fact]
    public Task OperatorCommandsTakeTheLockAndTheServiceStartNeverWaitsForIt() =>
        HostOperationScenarios.LockAsync(fixture.Host);

    [Fact]
    public Task CommandsOfANonInstalledVersionLeaveTheInstalledContainerAlone() =>
        HostOperationScenarios.OwnContainerAsync(fixture.Host);

    [Fact]
    public Task AHostWithoutEtcHostsAndResolvConfStillRunsTheBundle() =>
        HostOperationScenarios.MissingHostFilesAsync(fixture.Host);

    [Fact]
    public Task AVolumeThatHeldDataIsNeverRecreatedEmptyAndInstallTightensModes() =>
        HostOperationScenarios.VolumeRecordAsync(fixture.Host);

    [Fact]
    public Task AHostInstalledByAnOlderShimIsAdoptedAndUpgraded() =>
        HostOperationScenarios.AdoptAsync(fixture.Host);

    [Fact]
    public Task AnInterruptedUpgradeIsUndoneOrFinishedByTheNextCommandOrTheStartAfterAReboot() =>
        HostOperationScenarios.InterruptedUpgradeAsync(fixture.Host);

    [Fact]
    public Task AStartDuringAnUpgradeIsRefusedBeforeItsCommitAndBringsUpTheNewVersionAfter() =>
        HostOperationScenarios.StartDuringUpgradeAsync(fixture.Host);

    [Fact]
    public Task LogsAreRotatedWithCopytruncateAndRuncibleLogsReadsTheRotatedFiles() =>
        HostOperationScenarios.OpenRcLogRotationAsync(fixture.Host);
}
