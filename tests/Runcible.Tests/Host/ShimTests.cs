using System.Net;
using System.Net.Sockets;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// The shim on this machine (no init system here): <c>runcible run</c> in the foreground with the real
/// runc, the checks and their codes, stale container cleanup, the writable root, rootless as an unprivileged user.
/// </summary>
public sealed class ShimTests : IDisposable
{
    private const string RootlessUser = SystemUsers.Rootless;
    private readonly TempDirectory _dir = new("runcible-shim");
    private readonly string _name = "shim" + Guid.NewGuid().ToString("N")[..8];

    public ShimTests()
    {
        // The unprivileged user (created here on a fresh machine) must reach the bundle (temp directories are 0700).
        SystemUsers.Ensure(RootlessUser);
        ProcessRunner.Run("chmod", ["0755", _dir.Path]).EnsureSuccess("chmod");
    }

    public void Dispose()
    {
        // Whatever a test left: the container (rootful state) and the writable-root mounts.
        ProcessRunner.Run("runc", ["delete", "--force", _name]);
        foreach (var mount in File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(_dir.Path, StringComparison.Ordinal) || m == $"/run/runcible/{_name}").Reverse())
        {
            ProcessRunner.Run("umount", [mount]);
        }

        TestBundle.DeleteRuntimeBundles(_name);
        _dir.Dispose();
    }

    private string Bundle(TestBundle.Options options) => TestBundle.Write(_dir.Combine("opt", "containers"), options);

    private TestBundle.Options Options(string app) => new(_name, "1.0.0", TestBundle.FreePort()) { App = app };

    private static ProcessResult Shim(string bundle, params string[] args) =>
        ProcessRunner.Run(Path.Combine(bundle, "runcible"), args, timeout: TimeSpan.FromMinutes(1));

    private static void AssertError(ProcessResult result, string code)
    {
        Assert.True(result.ExitCode != 0, $"expected {code}, got exit 0:\n{result.StandardOutput}{result.StandardError}");
        Assert.Contains($"runcible: error {code}: ", result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public void RunIsTheForegroundContainerAndExitsWithTheAppsCode()
    {
        var bundle = Bundle(Options("#!/bin/sh\necho \"hello from $APP_VERSION as $(id -u):$(id -g)\"\nls -ld /data\nexit 7"));
        var result = Shim(bundle, "run");
        Assert.Equal(7, result.ExitCode);
        Assert.Contains("hello from 1.0.0 as 1654:1654", result.StandardOutput, StringComparison.Ordinal);
        // run created data/<volume> for the container user.
        Assert.Equal("1654:1654\n", ProcessRunner.Run("stat", ["-c", "%u:%g", Path.Combine(bundle, "data", "state")]).StandardOutput);
    }

    [Fact]
    public void RunRemovesAStaleContainerOfTheSameName()
    {
        var bundle = Bundle(Options("#!/bin/sh\necho fresh run\n"));
        // A container left behind (created, never started), as a killed runc leaves one.
        Directory.CreateDirectory(Path.Combine(bundle, "data", "state"));
        ProcessRunner.Run("sh", ["-c", $"runc create --bundle '{bundle}' '{_name}' >/dev/null 2>&1 </dev/null"]).EnsureSuccess("runc create");
        Assert.Contains("created", ProcessRunner.Run("runc", ["state", _name]).StandardOutput, StringComparison.Ordinal);

        var result = Shim(bundle, "run");
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("fresh run", result.StandardOutput, StringComparison.Ordinal);
        Assert.NotEqual(0, ProcessRunner.Run("runc", ["state", _name]).ExitCode);
    }

    [Fact]
    public void ChecksFailWithTheirCodes()
    {
        var options = Options(TestBundle.WebApp);
        var bundle = Bundle(options);

        AssertError(Shim(bundle, "frobnicate"), "RUNCIBLE5022");
        AssertError(Shim(bundle, "exec", "true"), "RUNCIBLE5023");
        // No systemd or OpenRC on this machine.
        AssertError(Shim(bundle, "install"), "RUNCIBLE5014");
        // A PATH with every tool of /usr/bin but runc.
        var tools = _dir.Combine("tools");
        Directory.CreateDirectory(tools);
        foreach (var tool in Directory.EnumerateFileSystemEntries("/usr/bin").Where(t => Path.GetFileName(t) != "runc"))
        {
            File.CreateSymbolicLink(Path.Combine(tools, Path.GetFileName(tool)), tool);
        }

        AssertError(ProcessRunner.Run(Path.Combine(bundle, "runcible"), ["run"], environment: new Dictionary<string, string?> { ["PATH"] = tools }), "RUNCIBLE5011");
        AssertError(ProcessRunner.Run("setpriv", ["--reuid", RootlessUser, "--regid", RootlessUser, "--clear-groups", Path.Combine(bundle, "runcible"), "run"]), "RUNCIBLE5010");

        using (var listener = new TcpListener(IPAddress.Any, options.Port))
        {
            listener.Start();
            AssertError(Shim(bundle, "run"), "RUNCIBLE5013");
        }

        File.Delete(Path.Combine(bundle, "config.json"));
        AssertError(Shim(bundle, "run"), "RUNCIBLE5012");
    }

    [Fact]
    public void AnEmptyRootfsIsADamagedBundle()
    {
        var bundle = Bundle(Options(TestBundle.WebApp));
        Directory.Delete(Path.Combine(bundle, "rootfs"), recursive: true);
        Directory.CreateDirectory(Path.Combine(bundle, "rootfs"));
        AssertError(Shim(bundle, "run"), "RUNCIBLE5012");
    }

    [Fact]
    public void WritableRootIsAnOverlayOnRunAndCleanupDiscardsIt()
    {
        var bundle = Bundle(Options("#!/bin/sh\necho changed > /app/changed && cat /app/changed && echo root=rw\n") with { WritableRootfs = true });
        var result = Shim(bundle, "run");
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("changed\nroot=rw", result.StandardOutput, StringComparison.Ordinal);

        // The overlay stays until cleanup (the services call it after every stop); neither it nor its tmpfs
        // lets a file the container wrote be setuid or a device on the host.
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')).ToList();
        Assert.Contains("nosuid", mounts.Single(m => m[4] == $"{bundle}/rootfs")[5].Split(','));
        Assert.Contains("nodev", mounts.Single(m => m[4] == $"{bundle}/rootfs")[5].Split(','));
        Assert.Contains("nosuid", mounts.Single(m => m[4] == $"/run/runcible/{_name}")[5].Split(','));
        Assert.Contains("nodev", mounts.Single(m => m[4] == $"/run/runcible/{_name}")[5].Split(','));
        Shim(bundle, "cleanup").EnsureSuccess("runcible cleanup");
        Assert.DoesNotContain($" {bundle}/rootfs ", File.ReadAllText("/proc/self/mountinfo"), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(bundle, "rootfs", "app", "changed")));
        Assert.False(Directory.Exists($"/run/runcible/{_name}"));
    }

    [Fact]
    public void RootlessBundleRunsAsTheUnprivilegedUserWithItsIdsMapped()
    {
        var bundle = Bundle(Options("#!/bin/sh\necho \"inside $(id -u):$(id -g)\"\necho kept > /data/file\n") with { Rootless = true });
        using var runtimeDir = new TempDirectory("runcible-xdg");
        ProcessRunner.Run("chown", ["-R", $"{RootlessUser}:{RootlessUser}", _dir.Path, runtimeDir.Path]).EnsureSuccess("chown");
        var asUser = new[] { "--reuid", RootlessUser, "--regid", RootlessUser, "--clear-groups", "--reset-env", "env", "XDG_RUNTIME_DIR=" + runtimeDir.Path, Path.Combine(bundle, "runcible") };

        // Root may not run it: the container root is meant to be the owning user.
        AssertError(Shim(bundle, "run"), "RUNCIBLE5021");

        var result = ProcessRunner.Run("setpriv", [.. asUser, "run"], timeout: TimeSpan.FromMinutes(1));
        Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
        Assert.Contains("inside 0:0", result.StandardOutput, StringComparison.Ordinal);
        // The effective config runc ran from maps container root to the invoking user's ids; the bundle's own stays as published.
        var config = File.ReadAllText(Path.Combine(TestBundle.RuntimeBundleDirectory(bundle, _name, runtimeDir.Path), "config.json"));
        var uid = ProcessRunner.Run("id", ["-u", RootlessUser]).StandardOutput.Trim();
        var gid = ProcessRunner.Run("id", ["-g", RootlessUser]).StandardOutput.Trim();
        Assert.Contains($"\"hostID\": {uid},", config, StringComparison.Ordinal);
        Assert.Contains($"\"hostID\": {gid},", config, StringComparison.Ordinal);
        Assert.DoesNotContain("\"hostID\": 1000", config, StringComparison.Ordinal);
        Assert.Contains("\"hostID\": 1000", File.ReadAllText(Path.Combine(bundle, "config.json")), StringComparison.Ordinal);
        // On the host the data belongs to that user.
        Assert.Equal($"{uid}:{gid}\n", ProcessRunner.Run("stat", ["-c", "%u:%g", Path.Combine(bundle, "data", "state", "file")]).StandardOutput);
    }

    [Fact]
    public void RunRendersTheEffectiveConfigIntoTheRuntimeBundleAndNeverRewritesTheBundles()
    {
        var bundle = Bundle(Options("#!/bin/sh\necho data > /data/file && cat /data/file\n"));
        var before = File.ReadAllBytes(Path.Combine(bundle, "config.json"));
        var result = Shim(bundle, "run");
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("data\n", result.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(bundle, "config.json")));

        // One file, 0600 in a 0700 directory, with root.path and the relative bind sources absolute to the bundle.
        var runtimeBundle = TestBundle.RuntimeBundleDirectory(bundle, _name);
        var effective = Path.Combine(runtimeBundle, "config.json");
        Assert.Equal("600 700\n", ProcessRunner.Run("stat", ["-c", "%a", effective, runtimeBundle]).StandardOutput.Replace("\n", " ", StringComparison.Ordinal).TrimEnd() + "\n");
        var text = File.ReadAllText(effective);
        Assert.Contains($"\"path\": \"{bundle}/rootfs\"", text, StringComparison.Ordinal);
        Assert.Contains($"\"source\": \"{bundle}/data/state\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\"source\": \"data/", text, StringComparison.Ordinal);
        Assert.Equal("data\n", File.ReadAllText(Path.Combine(bundle, "data", "state", "file")));

        // cleanup removes it with the container.
        Shim(bundle, "cleanup").EnsureSuccess("runcible cleanup");
        Assert.False(Directory.Exists(runtimeBundle));
    }

    [Fact]
    public void AContainerOfTheSameIdFromAnotherBundleIsLeftAlone()
    {
        // Version 1.0.0's container exists (created, as a running service's would be); 1.1.0 is another bundle of the name.
        var installed = Bundle(Options("#!/bin/sh\nsleep 60\n"));
        var other = Bundle(Options("#!/bin/sh\necho should not run\n") with { Version = "1.1.0" });
        Directory.CreateDirectory(Path.Combine(installed, "data", "state"));
        ProcessRunner.Run("sh", ["-c", $"runc create --bundle '{installed}' '{_name}' >/dev/null 2>&1 </dev/null"]).EnsureSuccess("runc create");

        var run = Shim(other, "run");
        AssertError(run, "RUNCIBLE5026");
        Assert.Contains(installed, run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("should not run", run.StandardOutput, StringComparison.Ordinal);
        var cleanup = Shim(other, "cleanup");
        Assert.True(cleanup.ExitCode == 0, cleanup.StandardError);
        Assert.Contains("left alone", cleanup.StandardError, StringComparison.Ordinal);
        Assert.Contains("\"status\": \"created\"", ProcessRunner.Run("runc", ["state", _name]).StandardOutput, StringComparison.Ordinal);

        // Its own shim removes it.
        Shim(installed, "cleanup").EnsureSuccess("runcible cleanup");
        Assert.NotEqual(0, ProcessRunner.Run("runc", ["state", _name]).ExitCode);
    }

    [Fact]
    public void InstallRefusesABundleAnotherUserOwnsOrMayWrite()
    {
        var bundle = Bundle(Options(TestBundle.WebApp));
        var config = Path.Combine(bundle, "config.json");
        // Every file and directory as root wants it: the ownership check passes and install goes on to find no init system here.
        AssertError(Shim(bundle, "install"), "RUNCIBLE5014");

        // Each change alone is refused (naming the culprit), and undone before the next.
        void RefusedWhile(string tool, string value, string path, string restore, string? culprit = null)
        {
            ProcessRunner.Run(tool, [value, path]).EnsureSuccess(tool);
            var refused = Shim(bundle, "install");
            AssertError(refused, "RUNCIBLE5028");
            Assert.Contains($"{path} belongs to uid {culprit ?? "0"}", refused.StandardError, StringComparison.Ordinal);
            ProcessRunner.Run(tool, [restore, path]).EnsureSuccess(tool);
        }

        RefusedWhile("chown", "1000", config, "0", culprit: "1000");
        RefusedWhile("chmod", "0664", config, "0644");
        RefusedWhile("chmod", "0775", Path.Combine(bundle, "runcible"), "0755");
        // A parent another user owns could swap the bundle for theirs.
        RefusedWhile("chown", "1000", Path.GetDirectoryName(bundle)!, "0", culprit: "1000");
        RefusedWhile("chmod", "0777", bundle, "0755");
        AssertError(Shim(bundle, "install"), "RUNCIBLE5014");
    }
}
