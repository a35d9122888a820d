using Runcible.Core.Host;
using Runcible.Core.Contracts;

namespace Runcible.Tests.Host;

/// <summary>
/// The service files and the container's cgroup: the systemd unit delegates its cgroup subtree to the shim (which puts
/// the container in <c>&lt;unit&gt;/container</c>), rootful and rootless.
/// </summary>
public sealed class ServiceRendererTests
{
    private static HostServiceModel Model(bool rootless = false) => HostServiceModel.From(new BundleRuntimeInfo
    {
        Name = "helloweb",
        Version = "1.2.3",
        StopTimeoutSeconds = 20,
        Rootless = rootless,
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TheSystemdUnitDelegatesItsCgroupSubtreeOnce(bool rootless)
    {
        var unit = new SystemdUnitRenderer().Render(Model(rootless));
        var service = unit[unit.IndexOf("[Service]\n", StringComparison.Ordinal)..unit.IndexOf("[Install]\n", StringComparison.Ordinal)];
        Assert.Single(service.Split('\n'), line => line == "Delegate=yes");
        Assert.DoesNotContain("Delegate=", unit.Replace("Delegate=yes\n", "", StringComparison.Ordinal), StringComparison.Ordinal);
        // The unit's own processes are killed with the container at the end of a stop (the container is in its subtree).
        Assert.Contains("KillMode=mixed\n", service, StringComparison.Ordinal);
    }
}
