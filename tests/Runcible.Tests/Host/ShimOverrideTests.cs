using System.Globalization;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// <c>runcible run</c> with the real runc on this machine: the <c>RUNCIBLE_RUNC_ROOT</c> and
/// <c>RUNCIBLE_CONTAINER_ID</c> overrides, and the <c>RLIMIT_NOFILE</c> clamp (this machine lacks
/// CAP_SYS_RESOURCE and its hard limit is below the server default 65536).
/// </summary>
public sealed class ShimOverrideTests : IDisposable
{
    private readonly TempDirectory _dir = new("runcible-shim-override");
    private readonly TempDirectory _state = new("runcible-state");
    private readonly string _name = "over" + Guid.NewGuid().ToString("N")[..8];

    public void Dispose()
    {
        // A container a failed test left, under either runc root.
        foreach (var root in new[] { "/run/runc", _state.Path })
        {
            foreach (var id in new[] { _name, _name + "-alt" })
            {
                ProcessRunner.Run("runc", ["--root", root, "delete", "--force", id]);
            }
        }

        TestBundle.DeleteRuntimeBundles(_name);

        _state.Dispose();
        _dir.Dispose();
    }

    private string Bundle(string app, ulong openFiles = 4096)
    {
        var bundle = TestBundle.Write(_dir.Combine("opt", "containers"), new TestBundle.Options(_name, "1.0.0", TestBundle.FreePort()) { App = app });
        if (openFiles != 4096)
        {
            // TestBundle writes 4096 (below this machine's hard limit); put the wanted value in its place.
            var path = Path.Combine(bundle, "config.json");
            var config = File.ReadAllText(path);
            Assert.Contains("\"hard\": 4096,", config, StringComparison.Ordinal);
            var value = openFiles.ToString(CultureInfo.InvariantCulture);
            File.WriteAllText(path, config.Replace("\"hard\": 4096,", $"\"hard\": {value},", StringComparison.Ordinal).Replace("\"soft\": 4096", $"\"soft\": {value}", StringComparison.Ordinal));
        }

        return bundle;
    }

    private static ProcessResult Run(string bundle, Dictionary<string, string?>? environment = null) =>
        ProcessRunner.Run(Path.Combine(bundle, "runcible"), ["run"], environment: environment, timeout: TimeSpan.FromMinutes(1));

    private static ulong HardOpenFilesLimit() =>
        ulong.Parse(
            File.ReadAllLines("/proc/self/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal))
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[4],
            CultureInfo.InvariantCulture);

    [Fact]
    public async Task RunUsesTheRuncRootAndContainerIdFromTheEnvironment()
    {
        // The app waits until the test has seen its container under the overridden root and id.
        var bundle = Bundle("#!/bin/sh\necho waiting\ni=0\nwhile [ ! -e /data/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\necho overridden\n");
        var id = _name + "-alt";
        var environment = new Dictionary<string, string?> { ["RUNCIBLE_RUNC_ROOT"] = _state.Path, ["RUNCIBLE_CONTAINER_ID"] = id };
        var run = Task.Run(() => Run(bundle, environment), TestContext.Current.CancellationToken);
        try
        {
            var seen = false;
            for (var i = 0; i < 200 && !seen; i++)
            {
                seen = ProcessRunner.Run("runc", ["--root", _state.Path, "state", id]).StandardOutput.Contains("\"running\"", StringComparison.Ordinal);
                if (!seen)
                {
                    await Task.Delay(100, TestContext.Current.CancellationToken);
                }
            }

            Assert.True(seen, "the container did not appear under the overridden runc root and id");
            // Not under the default root, not under the bundle name.
            Assert.NotEqual(0, ProcessRunner.Run("runc", ["state", id]).ExitCode);
            Assert.NotEqual(0, ProcessRunner.Run("runc", ["--root", _state.Path, "state", _name]).ExitCode);
        }
        finally
        {
            File.WriteAllText(Path.Combine(bundle, "data", "state", "go"), "");
        }

        var result = await run;
        Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
        Assert.Contains("overridden", result.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("-flag")]
    [InlineData("a b")]
    public void AnInvalidContainerIdOverrideIsRefused(string id)
    {
        var bundle = Bundle("#!/bin/sh\necho should not run\n");
        var result = Run(bundle, new Dictionary<string, string?> { ["RUNCIBLE_CONTAINER_ID"] = id });
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("runcible: error RUNCIBLE5022: ", result.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("should not run", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public void OpenFilesLimitAboveTheHardLimitIsLoweredWithAWarning()
    {
        var hard = HardOpenFilesLimit();
        Assert.True(hard < 65536, $"this test needs a hard open-files limit below 65536; the machine has {hard}");
        var bundle = Bundle("#!/bin/sh\ngrep 'open files' /proc/self/limits\n", openFiles: 65536);
        var before = File.ReadAllBytes(Path.Combine(bundle, "config.json"));

        var result = Run(bundle);
        Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
        Assert.Contains($"runcible: warning: RLIMIT_NOFILE 65536 in config.json exceeds this host's hard limit {hard}", result.StandardError, StringComparison.Ordinal);
        Assert.Matches($@"Max open files\s+{hard}\s+{hard}\s", result.StandardOutput);
        // The lowered limit is in the effective config runc ran from; the bundle's own config.json is never rewritten.
        var effective = File.ReadAllText(Path.Combine(TestBundle.RuntimeBundleDirectory(bundle, _name), "config.json"));
        Assert.Contains($"\"hard\": {hard},", effective, StringComparison.Ordinal);
        Assert.Contains($"\"soft\": {hard}", effective, StringComparison.Ordinal);
        Assert.DoesNotContain(": 65536", effective, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(bundle, "config.json")));

        // Every start renders it again from the bundle's config.json, so the warning is there each time.
        var again = Run(bundle);
        Assert.True(again.ExitCode == 0, again.StandardError);
        Assert.Contains("RLIMIT_NOFILE 65536", again.StandardError, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(bundle, "config.json")));
    }

    [Fact]
    public void OpenFilesLimitWithinTheHardLimitIsLeftAlone()
    {
        var bundle = Bundle("#!/bin/sh\ngrep 'open files' /proc/self/limits\n", openFiles: 2048);
        var before = File.ReadAllBytes(Path.Combine(bundle, "config.json"));
        var result = Run(bundle);
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Matches(@"Max open files\s+2048\s+2048\s", result.StandardOutput);
        Assert.DoesNotContain("RLIMIT_NOFILE", result.StandardError, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(bundle, "config.json")));
    }
}
