using System.Text.RegularExpressions;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// The shim's cgroup placement on a cgroup v2 host, as far as this hybrid machine can show it: <c>runcible run</c> in a
/// mount namespace whose <c>/sys/fs/cgroup</c> is the unified hierarchy alone (what runc and the shim see on a v2 host),
/// started in a stand-in for the unit's cgroup (<c>/runcible-test-…/&lt;name&gt;.service</c>) with the service's
/// environment. The unified hierarchy carries no controllers here (they are bound to v1), so enabling the memory, cpu
/// and pids controllers and limits in the v2 layout are not shown; the placement and the cleanup are.
/// </summary>
public sealed class ServiceCgroupShimTests : IDisposable
{
    private const string Unified = "/sys/fs/cgroup/unified";
    private readonly TempDirectory _dir = new("runcible-cgroup");
    private readonly string _name = "cg" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _parent;
    private string? _bundle;

    public ServiceCgroupShimTests()
    {
        _parent = "/runcible-test-" + _name;
        Directory.CreateDirectory(Unified + _parent + $"/{_name}.service");
    }

    private string UnitCgroup => $"{_parent}/{_name}.service";

    public void Dispose()
    {
        if (_bundle is not null)
        {
            AsService(_bundle, "cleanup");
        }

        TestBundle.DeleteRuntimeBundles(_name);
        foreach (var dir in Directory.EnumerateDirectories(Unified + _parent, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).Append(Unified + _parent))
        {
            Directory.Delete(dir);
        }

        _dir.Dispose();
    }

    // The shim as its service runs it on a v2 host: /sys/fs/cgroup is cgroup2, the main process (run) starts in the
    // unit's cgroup and a control process (ExecStartPre/ExecStopPost: cleanup) in <unit>/.control, as systemd places
    // them in a delegated unit (its cgroup has controllers enabled for its children and holds no process itself).
    private ProcessResult AsService(string bundle, string command, bool service = true)
    {
        var cgroup = command == "run" ? UnitCgroup : UnitCgroup + "/.control";
        Directory.CreateDirectory(Unified + cgroup);
        return ProcessRunner.Run("unshare", ["--mount", "--propagation", "private", "sh", "-c",
            "mount -t cgroup2 cgroup2 /sys/fs/cgroup && echo $$ > \"/sys/fs/cgroup$1/cgroup.procs\" && exec env $2 \"$3\" \"$4\"",
            "sh", cgroup, service ? "RUNCIBLE_SERVICE=" + _name : "RUNCIBLE_OTHER=1", Path.Combine(bundle, "runcible"), command], timeout: TimeSpan.FromMinutes(1));
    }

    private static void AssertSuccess(ProcessResult result) =>
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.StandardOutput}{result.StandardError}");

    [Fact]
    public async Task OnCgroupV2TheServicesRunPutsItselfInSupervisorAndTheContainerInContainerAndCleanupRemovesBoth()
    {
        // A run its service did not start (no RUNCIBLE_SERVICE of this name: a foreground run) leaves cgroups alone.
        var foreground = TestBundle.Write(_dir.Combine("opt", "containers"), new TestBundle.Options(_name, "0.9.0", TestBundle.FreePort()) { App = "#!/bin/sh\necho ran\n" });
        var result = AsService(foreground, "run", service: false);
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("ran", result.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("cgroupsPath", File.ReadAllText(Path.Combine(TestBundle.RuntimeBundleDirectory(foreground, _name), "config.json")), StringComparison.Ordinal);
        Assert.Equal([], Directory.GetDirectories(Unified + UnitCgroup));
        AssertSuccess(AsService(foreground, "cleanup", service: false));

        // runc of this (hybrid) machine cannot act on a container of the v2 runc: the app signals through its volume.
        var bundle = TestBundle.Write(_dir.Combine("opt", "containers"), new TestBundle.Options(_name, "1.0.0", TestBundle.FreePort()) { App = "#!/bin/sh\ntouch /data/ready\nexec sleep 60\n" });
        _bundle = bundle;
        var run = Task.Run(() => AsService(bundle, "run"));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(Path.Combine(bundle, "data", "state", "ready")))
        {
            Assert.True(DateTime.UtcNow < deadline, "the app did not get ready");
            if (run.IsCompleted)
            {
                Assert.Fail("the run ended: " + (await run).StandardError);
            }

            await Task.Delay(200, TestContext.Current.CancellationToken);
        }

        var app = File.ReadAllText($"{Unified}{UnitCgroup}/container/cgroup.procs").Split('\n')[0];
        Assert.Contains($"\n0::{UnitCgroup}/container\n", "\n" + File.ReadAllText($"/proc/{app}/cgroup"), StringComparison.Ordinal);
        var effective = File.ReadAllText(Path.Combine(TestBundle.RuntimeBundleDirectory(bundle, _name), "config.json"));
        Assert.Contains($"\"cgroupsPath\": \"{UnitCgroup}/container\",", effective, StringComparison.Ordinal);
        // runc run (the shim exec'd into it) is in the supervisor leaf; the unit's own cgroup holds no process.
        Assert.Equal("", File.ReadAllText($"{Unified}{UnitCgroup}/cgroup.procs"));
        Assert.NotEqual("", File.ReadAllText($"{Unified}{UnitCgroup}/supervisor/cgroup.procs"));

        ProcessRunner.Run("kill", ["-KILL", app]).EnsureSuccess("kill");
        await run;
        AssertSuccess(AsService(bundle, "cleanup"));
        Assert.Equal([Unified + UnitCgroup + "/.control"], Directory.GetDirectories(Unified + UnitCgroup));
    }
}
