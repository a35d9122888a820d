using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.EndToEnd;

namespace Runcible.Tests.Host;

/// <summary>
/// The published samples (real .NET apps on the fixture base images) extracted into a booted
/// <see cref="HostContainer"/> as a user would: <c>tar -xpf</c> into <c>/</c>, <c>runcible install</c>, then the init system.
/// </summary>
internal static class SampleScenarios
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>HelloWeb: HTTP GET and POST /notes on its port, graceful stop in time, the notes survive a restart.</summary>
    public static async Task HelloWebAsync(HostContainer host, string tarball)
    {
        const string name = "helloweb";
        const string shim = "/opt/containers/helloweb-1.0.0/runcible";
        PublishedSamples.Extract(tarball, host.Root);
        var bundle = Path.Combine(host.ContainersDirectory, "helloweb-1.0.0");
        var port = TestBundle.FreePort();
        PublishedSamples.Configure(bundle, port, "HELLOWEB_PORT=" + port.ToString(CultureInfo.InvariantCulture));
        var stopTimeout = int.Parse(JsonValue(bundle, "stopTimeoutSeconds"), CultureInfo.InvariantCulture);

        await HostScenarios.WithDiagnosticsAsync(host, name, async () =>
        {
            Assert.Contains("installed helloweb 1.0.0", host.ExecOk(shim + " install 2>&1"), StringComparison.Ordinal);
            host.ExecOk(HostScenarios.StartCommand(host, name));
            Assert.StartsWith("Hello from helloweb, pid ", await HostScenarios.GetAsync(port, "/", seconds: 60), StringComparison.Ordinal);
            Assert.Equal("", await HostScenarios.GetAsync(port, "/notes"));
            Assert.Equal("written before the restart\n", await PostAsync(port, "/notes", "written before the restart"));
            Assert.Equal("written before the restart\n", await HostScenarios.GetAsync(port, "/notes"));
            // The sample's RuncHealthCheck: ASP.NET's MapHealthChecks answers "Healthy" on /healthz, probed by the shim's loop.
            Assert.Equal("Healthy", await HostScenarios.GetAsync(port, "/healthz"));
            Assert.Contains("Healthy", (await HealthScenarios.StatusShowsAsync(host, shim, "health: healthy", seconds: 90)), StringComparison.Ordinal);

            // SIGTERM reaches the app through runc; ASP.NET shuts down gracefully well before the stop timeout.
            var stopwatch = Stopwatch.StartNew();
            host.ExecOk(HostScenarios.StopCommand(host, name));
            var took = stopwatch.Elapsed;
            Assert.True(took < TimeSpan.FromSeconds(stopTimeout), $"stop took {took}, the stop timeout is {stopTimeout}s");
            Assert.Contains("SIGTERM received: shutting down gracefully", HostScenarios.ServiceLog(host, name), StringComparison.Ordinal);
            Assert.False(await HostScenarios.AnswersAsync(port));
            if (host.Init == HostInit.Systemd)
            {
                // Stopped by request: inactive and successful, not failed (runc's 143 is a SuccessExitStatus).
                Assert.Equal("inactive success", Show(host, name, "ActiveState") + " " + Show(host, name, "Result"));
            }

            // The volume is the bundle's data/state on the host, owned by the app user (APP_UID 1654 of the .NET images).
            Assert.Equal("1654:1654 written before the restart\n",
                host.ExecOk("stat -c %u:%g /opt/containers/helloweb-1.0.0/data/state/notes.txt | tr '\\n' ' '; cat /opt/containers/helloweb-1.0.0/data/state/notes.txt"));

            host.ExecOk(HostScenarios.StartCommand(host, name));
            await HostScenarios.GetAsync(port, "/", seconds: 60);
            Assert.Equal("written before the restart\nand after it\n", await PostAsync(port, "/notes", "and after it"));

            // RuncMemoryLimit=384M (published with it) binds: the GC's heap limit is 75% of it. The operator's
            // environment and limits file replace what the artifact carries at the next restart.
            Assert.Contains("\"limit\": 402653184,", File.ReadAllText(Path.Combine(bundle, "config.json")), StringComparison.Ordinal);
            Assert.Equal("301989888\n", await HostScenarios.GetAsync(port, "/memory"));
            Assert.Equal("\n", await HostScenarios.GetAsync(port, "/greeting"));
            host.ExecOk($"{shim} config set 'HELLOWEB_GREETING=Hello from the operator' && printf 'memory=256M\\n' > /etc/runcible/{name}/limits && {shim} restart");
            Assert.Equal("Hello from the operator\n", await HostScenarios.GetAsync(port, "/greeting", body => body != "\n", seconds: 60));
            Assert.Equal("201326592\n", await HostScenarios.GetAsync(port, "/memory"));
            host.ExecOk(HostScenarios.StopCommand(host, name));
            host.ExecOk(shim + " uninstall --purge");
            Assert.False(await HostScenarios.AnswersAsync(port));
        });
    }

    /// <summary>
    /// HelloWeb published with <c>RuncBundleRootless=true</c>, extracted by an unprivileged lingering user into their
    /// home and run as their <c>systemctl --user</c> service: HTTP answers, the notes are the user's files and
    /// survive a restart, the stop is graceful and in time, <c>uninstall --purge</c> as the user leaves nothing.
    /// </summary>
    public static async Task HelloWebRootlessAsync(HostContainer host, string tarball)
    {
        const string name = "helloweb";
        using var alice = await LingeringUser.CreateAsync(host);
        var bundle = alice.Home + "/opt/containers/helloweb-1.0.0";
        var shim = bundle + "/runcible";
        var hostBundle = host.Root + bundle;
        File.Copy(tarball, host.Root + alice.Home + "/helloweb.tar.gz");
        // The user extracts it: every file of the bundle is theirs.
        host.ExecOk(alice.Command($"tar -xpf {alice.Home}/helloweb.tar.gz -C {alice.Home} && rm {alice.Home}/helloweb.tar.gz"));
        Assert.Equal("true", JsonValue(hostBundle, "rootless"));
        Assert.Contains("WantedBy=default.target\n", File.ReadAllText(Path.Combine(hostBundle, "helloweb.service")), StringComparison.Ordinal);
        var port = TestBundle.FreePort();
        PublishedSamples.Configure(hostBundle, port, "HELLOWEB_PORT=" + port.ToString(CultureInfo.InvariantCulture));
        host.ExecOk($"chown {alice.Uid}:{alice.Uid} {bundle}/config.json");
        var stopTimeout = int.Parse(JsonValue(hostBundle, "stopTimeoutSeconds"), CultureInfo.InvariantCulture);

        try
        {
            Assert.Contains($"installed helloweb 1.0.0 (systemd service {alice.Home}/.config/systemd/user/helloweb.service)",
                host.ExecOk(alice.Command(shim + " install 2>&1")), StringComparison.Ordinal);
            host.ExecOk(alice.Command($"systemctl --user start {name}"));
            Assert.StartsWith("Hello from helloweb, pid ", await HostScenarios.GetAsync(port, "/", seconds: 60), StringComparison.Ordinal);
            Assert.Equal("written before the restart\n", await PostAsync(port, "/notes", "written before the restart"));
            // Container root is the user: the app's process and the notes it wrote are theirs on the host.
            var pid = HostScenarios.ContainerPid(host, name, alice.RuntimeDirectory + "/runc");
            Assert.Equal($"{alice.Uid}\n", host.ExecOk($"stat -c %u /proc/{pid}"));
            Assert.Equal($"{alice.Uid}:{alice.Uid}\n", host.ExecOk($"stat -c %u:%g {bundle}/data/state/notes.txt"));

            var stopwatch = Stopwatch.StartNew();
            host.ExecOk(alice.Command($"systemctl --user stop {name}"));
            var took = stopwatch.Elapsed;
            Assert.True(took < TimeSpan.FromSeconds(stopTimeout), $"stop took {took}, the stop timeout is {stopTimeout}s");
            Assert.Contains("SIGTERM received: shutting down gracefully", host.ExecOk(alice.Command(shim + " logs -o cat")), StringComparison.Ordinal);
            Assert.False(await HostScenarios.AnswersAsync(port));

            host.ExecOk(alice.Command($"systemctl --user start {name}"));
            await HostScenarios.GetAsync(port, "/", seconds: 60);
            Assert.Equal("written before the restart\nand after it\n", await PostAsync(port, "/notes", "and after it"));
            host.ExecOk(alice.Command($"systemctl --user stop {name}"));
            host.ExecOk(alice.Command(shim + " uninstall --purge"));
            Assert.False(Directory.Exists(hostBundle));
            Assert.False(await HostScenarios.AnswersAsync(port));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var diagnostics = host.Exec(alice.Command($"systemctl --user status --no-pager {name}; journalctl --user-unit {name} --no-pager | tail -n 60"), TimeSpan.FromSeconds(30));
            throw new InvalidOperationException($"{e.Message}\n--- user service diagnostics ---\n{diagnostics.StandardOutput}{diagnostics.StandardError}", e);
        }
    }

    /// <summary>
    /// HelloWorker (<c>UseSystemd()</c>, so <c>Type=notify</c>) warming up before it reports ready: the unit is
    /// <c>activating</c> while the app runs and warms up, and <c>active</c> only once the app's READY=1 came through runc.
    /// </summary>
    public static async Task HelloWorkerReadinessAsync(HostContainer host, string tarball)
    {
        const string name = "helloworker";
        const string shim = "/opt/containers/helloworker-1.0.0/runcible";
        const int warmup = 6;
        PublishedSamples.Extract(tarball, host.Root);
        var bundle = Path.Combine(host.ContainersDirectory, "helloworker-1.0.0");
        // RuncNotify was inferred from the Microsoft.Extensions.Hosting.Systemd reference.
        Assert.Equal("true", JsonValue(bundle, "notify"));
        Assert.Contains("Type=notify\n", File.ReadAllText(Path.Combine(bundle, "helloworker.service")), StringComparison.Ordinal);
        PublishedSamples.Configure(bundle, null, "HELLOWORKER_WARMUP_SECONDS=" + warmup.ToString(CultureInfo.InvariantCulture));
        // Readiness comes through the default seccomp profile (sd_notify is a datagram on an AF_UNIX socket).
        Assert.Equal("SCMP_ACT_ERRNO", JsonSerializer.Deserialize<RuntimeConfig>(File.ReadAllBytes(Path.Combine(bundle, "config.json")))!.Linux.Seccomp?.DefaultAction);

        await HostScenarios.WithDiagnosticsAsync(host, name, async () =>
        {
            host.ExecOk(shim + " install");
            host.ExecOk($"systemctl start --no-block {name}");
            await WaitForAsync(() => Journal(host, name).Contains("warming up for 6 s before reporting ready", StringComparison.Ordinal), "the worker to start warming up");
            // The app runs, its container too, but it has not reported ready: systemd still waits.
            Assert.Equal("activating\n", host.Exec($"systemctl is-active {name}").StandardOutput);
            Assert.Equal("running", HostScenarios.ContainerStatus(host, name));

            // A second start waits for the same job: it returns once the unit is active.
            host.ExecOk($"systemctl start {name}", TimeSpan.FromSeconds(90));
            Assert.Equal("active\n", host.ExecOk($"systemctl is-active {name}"));
            var journal = Journal(host, name);
            Assert.Contains("warmed up", journal, StringComparison.Ordinal);
            Assert.Contains("tick 1", journal, StringComparison.Ordinal);
            var activating = TimeSpan.FromMicroseconds(
                long.Parse(Show(host, name, "ActiveEnterTimestampMonotonic"), CultureInfo.InvariantCulture) -
                long.Parse(Show(host, name, "ExecMainStartTimestampMonotonic"), CultureInfo.InvariantCulture));
            Assert.True(activating >= TimeSpan.FromSeconds(warmup), $"active {activating} after the start; the app warmed up for {warmup}s");

            var stopwatch = Stopwatch.StartNew();
            host.ExecOk($"systemctl stop {name}");
            Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10), $"stop took {stopwatch.Elapsed}");
            Assert.Contains("stopping after", Journal(host, name), StringComparison.Ordinal);
            Assert.Equal("inactive success", Show(host, name, "ActiveState") + " " + Show(host, name, "Result"));
            host.ExecOk(shim + " uninstall --purge");
        });
    }

    private static string Show(HostContainer host, string name, string property) =>
        host.ExecOk($"systemctl show -p {property} --value {name}").Trim();

    private static string Journal(HostContainer host, string name) => host.ExecOk($"journalctl -u {name} --no-pager -o cat");

    internal static async Task WaitForAsync(Func<bool> condition, string what, int seconds = 60)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(seconds))
            {
                throw new TimeoutException($"waited {seconds}s for {what}");
            }

            await Task.Delay(200);
        }
    }

    private static async Task<string> PostAsync(int port, string path, string body)
    {
        using var response = await Http.PostAsync(new Uri($"http://127.0.0.1:{port}{path}"), new StringContent(body, Encoding.UTF8));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"POST {path}: {(int)response.StatusCode} {text}");
        return text;
    }

    /// <summary>A top-level scalar of the bundle's runcible.json.</summary>
    private static string JsonValue(string bundle, string key)
    {
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(bundle, "runcible.json")));
        var value = json.RootElement.GetProperty(key);
        return value.ValueKind == System.Text.Json.JsonValueKind.String ? value.GetString()! : value.GetRawText();
    }
}
