using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// The operator's settings directory (<c>/etc/runcible/&lt;name&gt;/</c>: env, secrets, files/, limits) and the
/// build-time resource limits, through <c>runcible run</c> in the foreground with the real runc on this
/// machine (hybrid cgroups: the v1 memory, cpu and pids controllers are what runc sets here).
/// </summary>
public sealed class OperatorSettingsTests : IDisposable
{
    private readonly TempDirectory _dir = new("runcible-ops");
    private readonly string _name = "ops" + Guid.NewGuid().ToString("N")[..8];

    private string SettingsDirectory => $"/etc/runcible/{_name}";

    public void Dispose()
    {
        ProcessRunner.Run("runc", ["delete", "--force", _name]);
        foreach (var mount in File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.Contains($"/runcible/.bundles/{_name}-", StringComparison.Ordinal)).Reverse())
        {
            ProcessRunner.Run("umount", [mount]);
        }

        TestBundle.DeleteRuntimeBundles(_name);
        if (Directory.Exists(SettingsDirectory))
        {
            Directory.Delete(SettingsDirectory, recursive: true);
        }

        _dir.Dispose();
    }

    private string Bundle(string app, Func<TestBundle.Options, TestBundle.Options>? configure = null, string version = "1.0.0")
    {
        var options = new TestBundle.Options(_name, version, TestBundle.FreePort()) { App = app };
        return TestBundle.Write(_dir.Combine("opt", "containers"), configure is null ? options : configure(options));
    }

    private static ProcessResult Shim(string bundle, string[] args, string? input = null) =>
        ProcessRunner.Run(Path.Combine(bundle, "runcible"), args, standardInput: input, timeout: TimeSpan.FromMinutes(2));

    private static ProcessResult Shim(string bundle, params string[] args) => Shim(bundle, args, null);

    private static void AssertSuccess(ProcessResult result) =>
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.StandardOutput}{result.StandardError}");

    private static void AssertError(ProcessResult result, string code)
    {
        Assert.True(result.ExitCode != 0, $"expected {code}, got exit 0:\n{result.StandardOutput}{result.StandardError}");
        Assert.Contains($"runcible: error {code}: ", result.StandardError, StringComparison.Ordinal);
    }

    private static string Mode(string path) => ProcessRunner.Run("stat", ["-c", "%u:%g %a", path]).EnsureSuccess("stat").StandardOutput.Trim();

    [Fact]
    public void ConfigSetMergesOverTheBuildTimeEnvironmentLiterallyAtTheNextStart()
    {
        var bundle = Bundle("#!/bin/sh\necho \"version=[$APP_VERSION] greeting=[$GREETING] port=[$PORT]\"\n");
        var before = Shim(bundle, "run");
        AssertSuccess(before);
        Assert.Contains("version=[1.0.0] greeting=[]", before.StandardOutput, StringComparison.Ordinal);

        var set = Shim(bundle, "config", "set", "GREETING=hello \"world\" $HOME \\n 'q'");
        AssertSuccess(set);
        Assert.Contains("applies at the next start", set.StandardError, StringComparison.Ordinal);
        AssertSuccess(Shim(bundle, "config", "set", "APP_VERSION=operator"));
        AssertSuccess(Shim(bundle, "config", "set", "APP_VERSION=operator2"));
        Assert.Equal("0:0 700", Mode(SettingsDirectory));
        Assert.Equal("0:0 600", Mode(Path.Combine(SettingsDirectory, "env")));

        var after = Shim(bundle, "run");
        AssertSuccess(after);
        // Taken literally: quotes kept, nothing expanded; the operator's APP_VERSION replaces the build-time one.
        Assert.Contains("version=[operator2] greeting=[hello \"world\" $HOME \\n 'q']", after.StandardOutput, StringComparison.Ordinal);
        Assert.Contains($"port=[", after.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("port=[]", after.StandardOutput, StringComparison.Ordinal);
        var show = Shim(bundle, "config", "show");
        AssertSuccess(show);
        Assert.Contains("APP_VERSION=operator2\n", show.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("APP_VERSION=operator\n", show.StandardOutput, StringComparison.Ordinal);

        AssertSuccess(Shim(bundle, "config", "unset", "APP_VERSION"));
        AssertSuccess(Shim(bundle, "config", "unset", "GREETING"));
        File.AppendAllText(Path.Combine(SettingsDirectory, "env"), "# only a comment\n");
        var onlyComments = Shim(bundle, "run");
        AssertSuccess(onlyComments);
        Assert.Contains("version=[1.0.0] greeting=[]", onlyComments.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"(?m)^\s*"""",?$", File.ReadAllText(Path.Combine(TestBundle.RuntimeBundleDirectory(bundle, _name), "config.json")));
        AssertSuccess(Shim(bundle, "config", "set", "GREETING=hello \"world\" $HOME \\n 'q'"));
        var unset = Shim(bundle, "run");
        AssertSuccess(unset);
        Assert.Contains("version=[1.0.0] greeting=[hello", unset.StandardOutput, StringComparison.Ordinal);
        // The bundle's own config.json never carries the operator's values.
        Assert.DoesNotContain("GREETING", File.ReadAllText(Path.Combine(bundle, "config.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void ABadEnvLineIsACodedErrorNamingFileAndLineAndNothingStarts()
    {
        var bundle = Bundle("#!/bin/sh\necho started\n");
        AssertSuccess(Shim(bundle, "config", "set", "GOOD=1"));
        File.AppendAllText(Path.Combine(SettingsDirectory, "env"), "# a comment\n\nexport BAD VALUE\n");
        var result = Shim(bundle, "run");
        AssertError(result, "RUNCIBLE5031");
        Assert.Contains($"{SettingsDirectory}/env line 4: is not KEY=VALUE", result.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("started", result.StandardOutput, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(SettingsDirectory, "env"), "1ABC=x\n");
        AssertError(Shim(bundle, "run"), "RUNCIBLE5031");
        File.WriteAllText(Path.Combine(SettingsDirectory, "env"), "ABC=x\r\n");
        Assert.Contains("CRLF", Shim(bundle, "run").StandardError, StringComparison.Ordinal);
        AssertError(Shim(bundle, "config", "set", "NOVALUE"), "RUNCIBLE5033");
        AssertError(Shim(bundle, "config", "set", "A-B=1"), "RUNCIBLE5033");
        AssertError(Shim(bundle, "config", "frobnicate"), "RUNCIBLE5033");
    }

    [Fact]
    public void ASettingsDirectoryOthersCanReachIsRefused()
    {
        var bundle = Bundle("#!/bin/sh\necho started\n");
        AssertSuccess(Shim(bundle, "config", "set", "A=1"));
        ProcessRunner.Run("chmod", ["0755", SettingsDirectory]).EnsureSuccess("chmod");
        var result = Shim(bundle, "run");
        AssertError(result, "RUNCIBLE5030");
        Assert.Contains("mode 755", result.StandardError, StringComparison.Ordinal);
        ProcessRunner.Run("chmod", ["0700", SettingsDirectory]).EnsureSuccess("chmod");
        ProcessRunner.Run("chown", ["1000", SettingsDirectory]).EnsureSuccess("chown");
        AssertError(Shim(bundle, "run"), "RUNCIBLE5030");
        AssertError(Shim(bundle, "secret", "ls"), "RUNCIBLE5030");
    }

    [Fact]
    public async Task ASecretIsReadableAtRunSecretsByTheAppsUidOnlyAndNowhereElse()
    {
        const string value = "s3cr3t-Value-7f1c";
        // The app checks the secret by its hash (the bundle must not hold the value), then waits so another uid can try.
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(value)));
        var bundle = Bundle("#!/bin/sh\nid -u\nls -ln /run/secrets\n[ \"$(sha256sum < /run/secrets/db)\" = '" + hash + "  -' ] && echo db-ok\n[ \"$(cat /run/secrets/cert)\" = 'from-file' ] && echo cert-ok\ntouch /tmp/ready\nsleep 30\n");
        AssertSuccess(Shim(bundle, ["secret", "set", "db"], value));
        File.WriteAllText(_dir.Combine("cert.pem"), "from-file");
        AssertSuccess(Shim(bundle, "secret", "set", "cert", "--file", _dir.Combine("cert.pem")));
        AssertError(Shim(bundle, ["secret", "set", "../x"], "v"), "RUNCIBLE5034");
        AssertError(Shim(bundle, "secret", "rm", "absent"), "RUNCIBLE5034");
        var list = Shim(bundle, "secret", "ls");
        AssertSuccess(list);
        Assert.Equal("cert\ndb\n", list.StandardOutput);
        Assert.Equal("0:0 600", Mode(Path.Combine(SettingsDirectory, "secrets", "db")));

        var run = Task.Run(() => Shim(bundle, "run"));
        var runtimeBundle = TestBundle.RuntimeBundleDirectory(bundle, _name);
        var rootfsReady = Path.Combine(runtimeBundle, "config.json");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (ProcessRunner.Run("runc", ["exec", _name, "test", "-e", "/tmp/ready"]).ExitCode != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the app did not get ready");
            Assert.False(run.IsCompleted, "the app ended before it was ready");
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }

        // Another uid in the container cannot read it (0400 of uid 1654 in a 0500 directory); root's tmpfs on the host.
        var other = ProcessRunner.Run("runc", ["exec", "--user", "1000:1000", _name, "cat", "/run/secrets/db"]);
        Assert.NotEqual(0, other.ExitCode);
        Assert.DoesNotContain(value, other.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("tmpfs", ProcessRunner.Run("findmnt", ["-n", "-o", "FSTYPE", Path.Combine(runtimeBundle, "secrets")]).StandardOutput, StringComparison.Ordinal);
        var effective = File.ReadAllText(rootfsReady);
        Assert.DoesNotContain(value, effective, StringComparison.Ordinal);
        Assert.Contains("\"destination\": \"/run/secrets\"", effective, StringComparison.Ordinal);

        ProcessRunner.Run("runc", ["kill", _name, "KILL"]);
        var result = await run;
        Assert.Contains("1654\n", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("db-ok", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("cert-ok", result.StandardOutput, StringComparison.Ordinal);
        Assert.Matches(@"-r-------- +1 1654 +1654 .* db", result.StandardOutput);
        // Never in the bundle, its config.json, or the output (what the service's log holds).
        Assert.Equal(1, ProcessRunner.Run("grep", ["-r", "-q", "-F", value, bundle]).ExitCode);
        Assert.DoesNotContain(value, result.StandardOutput + result.StandardError, StringComparison.Ordinal);

        // cleanup (every stop) removes the tmpfs with the runtime bundle.
        AssertSuccess(Shim(bundle, "cleanup"));
        Assert.False(Directory.Exists(runtimeBundle));
        AssertSuccess(Shim(bundle, "secret", "rm", "db"));
        Assert.Equal("cert\n", Shim(bundle, "secret", "ls").StandardOutput);
    }

    [Fact]
    public void SystemdCredentialsAreExposedLikeSecrets()
    {
        var bundle = Bundle("#!/bin/sh\ncat /run/secrets/token\necho\n");
        var credentials = _dir.Combine("credentials");
        Directory.CreateDirectory(credentials);
        File.WriteAllText(Path.Combine(credentials, "token"), "credential-value");
        var result = ProcessRunner.Run(Path.Combine(bundle, "runcible"), ["run"],
            environment: new Dictionary<string, string?> { ["CREDENTIALS_DIRECTORY"] = credentials }, timeout: TimeSpan.FromMinutes(1));
        AssertSuccess(result);
        Assert.Contains("credential-value", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public void AFileOfTheFilesOverlayLiesOverTheBundlesConfigFileReadOnly()
    {
        var bundle = Bundle("#!/bin/sh\ncat /etc/" + _name + "/app.conf\necho changed > /etc/" + _name + "/app.conf || echo read-only\n");
        File.WriteAllText(Path.Combine(bundle, "config", "app.conf"), "built\n");
        AssertSuccess(Shim(bundle, "config", "set", "A=1"));
        Directory.CreateDirectory(Path.Combine(SettingsDirectory, "files"));
        File.WriteAllText(Path.Combine(SettingsDirectory, "files", "app.conf"), "operator\n");
        File.WriteAllText(Path.Combine(SettingsDirectory, "files", "extra.conf"), "nothing to override\n");
        ProcessRunner.Run("chmod", ["0644", Path.Combine(SettingsDirectory, "files", "app.conf")]).EnsureSuccess("chmod");
        var result = Shim(bundle, "run");
        AssertSuccess(result);
        Assert.Contains("operator\n", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("read-only", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("files/extra.conf overrides nothing", result.StandardError, StringComparison.Ordinal);
        Assert.Equal("built\n", File.ReadAllText(Path.Combine(bundle, "config", "app.conf")));
        Assert.False(File.Exists(Path.Combine(bundle, "config", "extra.conf")));
    }

    private const string LimitsApp = """
        #!/bin/sh
        echo "memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
        echo "quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
        echo "pids=$(cat /sys/fs/cgroup/pids/pids.max)"
        """;

    [Fact]
    public void BuildTimeLimitsBindAndTheLimitsFileOverridesThem()
    {
        var bundle = Bundle(LimitsApp, o => o with { MemoryLimit = "64M", CpuLimit = "1.5", PidsLimit = "2048" });
        var built = Shim(bundle, "run");
        AssertSuccess(built);
        Assert.Contains($"memory={64 * 1024 * 1024}\n", built.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("quota=150000 period=100000\n", built.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("pids=2048\n", built.StandardOutput, StringComparison.Ordinal);

        AssertSuccess(Shim(bundle, "config", "set", "A=1"));
        File.WriteAllText(Path.Combine(SettingsDirectory, "limits"), "# operator\nmemory=48.5M\ncpu=0.25\npids=none\n");
        var overridden = Shim(bundle, "run");
        AssertSuccess(overridden);
        Assert.Contains($"memory={(long)(48.5 * 1024 * 1024)}\n", overridden.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("quota=25000 period=100000\n", overridden.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("pids=max\n", overridden.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(1, ProcessRunner.Run("grep", ["-q", "25000", Path.Combine(bundle, "config.json")]).ExitCode);

        foreach (var (line, reason) in new[] { ("memory=5M", "below 6M"), ("memory=12Q", "not a size"), ("cpu=0.001", "0.01 to 4096"), ("pids=-1", "whole number"), ("swap=1G", "unknown limit"), ("swap=none", "unknown limit") })
        {
            File.WriteAllText(Path.Combine(SettingsDirectory, "limits"), "cpu=1\n" + line + "\n");
            var bad = Shim(bundle, "run");
            AssertError(bad, "RUNCIBLE5032");
            Assert.Contains($"{SettingsDirectory}/limits line 2: ", bad.StandardError, StringComparison.Ordinal);
            Assert.Contains(reason, bad.StandardError, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void WithoutLimitsTheContainerHasNone()
    {
        var bundle = Bundle(LimitsApp);
        Assert.DoesNotContain("\"resources\"", File.ReadAllText(Path.Combine(bundle, "config.json")), StringComparison.Ordinal);
        var result = Shim(bundle, "run");
        AssertSuccess(result);
        Assert.Contains("quota=-1 ", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("pids=max\n", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public void AMemoryHogIsOomKilledAtTheLimit()
    {
        // dd's 96 MiB block is touched as /dev/zero is read into it: past a 32 MiB limit (no swap above it).
        var bundle = Bundle("#!/bin/sh\necho hog starting\ndd if=/dev/zero of=/dev/null bs=96M count=1\necho \"dd exit $?\"\n", o => o with { MemoryLimit = "32M" });
        var result = Shim(bundle, "run");
        Assert.Contains("hog starting", result.StandardOutput, StringComparison.Ordinal);
        // dd is killed by the kernel's OOM killer (SIGKILL: 128 + 9); the container's shell carries on.
        Assert.Contains("dd exit 137", result.StandardOutput, StringComparison.Ordinal);

        var roomy = Bundle("#!/bin/sh\ndd if=/dev/zero of=/dev/null bs=16M count=1 2>/dev/null\necho \"dd exit $?\"\n", o => o with { MemoryLimit = "64M" }, "1.0.1");
        Assert.Contains("dd exit 0", Shim(roomy, "run").StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public void AForkBombStopsAtThePidsLimit()
    {
        // Each fork that worked is counted on the volume; the shell gives up ("can't fork") at the limit.
        var bundle = Bundle("""
            #!/bin/sh
            n=0
            while [ "$n" -lt 500 ]; do
              sleep 30 &
              n=$((n + 1))
              echo "$n" > /data/forks
            done
            echo "no limit reached"
            """, o => o with { PidsLimit = "40" });
        var result = Shim(bundle, "run");
        Assert.DoesNotContain("no limit reached", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("fork", result.StandardError, StringComparison.OrdinalIgnoreCase);
        var forks = int.Parse(File.ReadAllText(Path.Combine(bundle, "data", "state", "forks")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(forks, 10, 40);
    }

    [Fact]
    public void ACpuBurnerStaysNearItsQuota()
    {
        // Two burners for 3 s under a 0.2-core quota: at most ~0.6 s of CPU (1.2 s allowed for scheduling slack).
        var bundle = Bundle("""
            #!/bin/sh
            start=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage)
            (while :; do :; done) & a=$!
            (while :; do :; done) & b=$!
            sleep 3
            kill $a $b
            end=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage)
            echo "used_ms=$(( (end - start) / 1000000 ))"
            """, o => o with { CpuLimit = "0.2" });
        var result = Shim(bundle, "run");
        AssertSuccess(result);
        var used = int.Parse(System.Text.RegularExpressions.Regex.Match(result.StandardOutput, @"used_ms=(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(used, 100, 1200);
    }

    [Fact]
    public void ARootlessBundleReadsTheUsersSettingsAndWarnsThatItsLimitsAreNotApplied()
    {
        const string user = SystemUsers.Rootless;
        SystemUsers.Ensure(user);
        var bundle = Bundle("#!/bin/sh\necho \"greeting=[$GREETING] secret=[$(cat /run/secrets/token)]\"\n", o => o with { Rootless = true, MemoryLimit = "64M", CpuLimit = "1" });
        using var runtimeDir = new TempDirectory("runcible-xdg");
        using var configHome = new TempDirectory("runcible-xdg-config");
        ProcessRunner.Run("chmod", ["0755", _dir.Path]).EnsureSuccess("chmod");
        ProcessRunner.Run("chown", ["-R", $"{user}:{user}", _dir.Path, runtimeDir.Path, configHome.Path]).EnsureSuccess("chown");
        string[] asUser = ["--reuid", user, "--regid", user, "--clear-groups", "--reset-env", "env", "XDG_RUNTIME_DIR=" + runtimeDir.Path, "XDG_CONFIG_HOME=" + configHome.Path, "HOME=" + configHome.Path, Path.Combine(bundle, "runcible")];
        ProcessResult AsUser(string? input, params string[] args) => ProcessRunner.Run("setpriv", [.. asUser, .. args], standardInput: input, timeout: TimeSpan.FromMinutes(1));

        AssertSuccess(AsUser(null, "config", "set", "GREETING=rootless hello"));
        AssertSuccess(AsUser("user-secret", "secret", "set", "token"));
        var uid = ProcessRunner.Run("id", ["-u", user]).StandardOutput.Trim();
        var gid = ProcessRunner.Run("id", ["-g", user]).StandardOutput.Trim();
        Assert.Equal($"{uid}:{gid} 700", Mode(Path.Combine(configHome.Path, "runcible", _name)));

        var result = AsUser(null, "run");
        AssertSuccess(result);
        Assert.Contains("greeting=[rootless hello] secret=[user-secret]", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("is rootless: its memory, cpu and pids limits are not applied", result.StandardError, StringComparison.Ordinal);
        var effective = File.ReadAllText(Path.Combine(TestBundle.RuntimeBundleDirectory(bundle, _name, runtimeDir.Path), "config.json"));
        Assert.DoesNotContain("\"resources\"", effective, StringComparison.Ordinal);
        Assert.Contains("\"resources\"", File.ReadAllText(Path.Combine(bundle, "config.json")), StringComparison.Ordinal);
    }
}
