using System.Diagnostics;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Host;

/// <summary>
/// The health loop of <c>runcible run</c> on this machine (no init system: never restarted, so the unhealthy state
/// stays visible): the HTTP probe with each host client, inside a private network namespace, a command check, and
/// a host without any HTTP client (RUNCIBLE5050). docs/health-checks.md.
/// </summary>
public sealed class HealthCheckShimTests : IDisposable
{
    private readonly TempDirectory _dir = new("runcible-health");
    private readonly string _name = "health" + Guid.NewGuid().ToString("N")[..8];
    private readonly List<Process> _runs = [];

    public HealthCheckShimTests() => ProcessRunner.Run("chmod", ["0755", _dir.Path]).EnsureSuccess("chmod");

    public void Dispose()
    {
        ProcessRunner.Run("runc", ["kill", _name, "KILL"]);
        foreach (var run in _runs)
        {
            if (!run.WaitForExit(TimeSpan.FromSeconds(15)))
            {
                run.Kill(entireProcessTree: true);
            }

            run.Dispose();
        }

        ProcessRunner.Run("runc", ["delete", "--force", _name]);
        TestBundle.DeleteRuntimeBundles(_name);
        _dir.Dispose();
    }

    private string Bundle(int port, string check, string startPeriod = "0") => TestBundle.Write(_dir.Combine("opt", "containers"),
        new TestBundle.Options(_name, "1.0.0", port) { Health = HealthCheckParser.Parse(check, "1", "2", "2", startPeriod) });

    /// <summary>runcible run in the background (the service's foreground process), its output in run.log.</summary>
    private void StartRun(string bundle, IDictionary<string, string?>? environment = null)
    {
        var start = new ProcessStartInfo(Path.Combine(bundle, "runcible"), "run")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[key] = value;
        }

        var run = Process.Start(start)!;
        run.StandardInput.Close();
        run.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (_runs) { File.AppendAllText(_dir.Combine("run.log"), e.Data + "\n"); } } };
        run.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_runs) { File.AppendAllText(_dir.Combine("run.log"), e.Data + "\n"); } } };
        run.BeginOutputReadLine();
        run.BeginErrorReadLine();
        _runs.Add(run);
    }

    private string RunLog() { lock (_runs) { return File.Exists(_dir.Combine("run.log")) ? File.ReadAllText(_dir.Combine("run.log")) : ""; } }

    private async Task<string> StatusShowsAsync(string bundle, string expected, int seconds = 40)
    {
        var deadline = Stopwatch.StartNew();
        var last = "";
        while (deadline.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            var status = ProcessRunner.Run(Path.Combine(bundle, "runcible"), "status");
            last = status.StandardOutput + status.StandardError;
            if (last.Contains(expected, StringComparison.Ordinal))
            {
                return last;
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"status did not show '{expected}' in {seconds}s; last:\n{last}\n--- run log ---\n{RunLog()}");
    }

    [Theory]
    [InlineData("bash", "HTTP/1.1 404 Not Found")]
    [InlineData("wget", "404")]
    [InlineData("curl", "404")]
    public async Task StatusShowsStartingHealthyAndUnhealthyWithTheLastOutput(string client, string notFound)
    {
        var port = TestBundle.FreePort();
        // A long start period: failures do not count until the first success.
        var bundle = Bundle(port, $"http://127.0.0.1:{port}/healthy", startPeriod: "10m");
        StartRun(bundle, new Dictionary<string, string?> { ["RUNCIBLE_HEALTH_HTTP_CLIENT"] = client });

        var starting = await StatusShowsAsync(bundle, "health: starting (0 failures");
        await StatusShowsAsync(bundle, notFound);
        Assert.Contains("container " + _name + ": running", starting, StringComparison.Ordinal);

        // busybox httpd serves /data (the volume): the file makes /healthy answer 200.
        File.WriteAllText(Path.Combine(bundle, "data", "state", "healthy"), "ok\n");
        var healthy = await StatusShowsAsync(bundle, "health: healthy");
        Assert.Contains($"check: http://127.0.0.1:{port}/healthy", healthy, StringComparison.Ordinal);
        var once = ProcessRunner.Run(Path.Combine(bundle, "runcible"), ["health"], environment: new Dictionary<string, string?> { ["RUNCIBLE_HEALTH_HTTP_CLIENT"] = client });
        Assert.True(once.ExitCode == 0, once.StandardOutput + once.StandardError);
        Assert.EndsWith("healthy\n", once.StandardOutput, StringComparison.Ordinal);

        // After the start period (ended by the success), 2 failures in a row: unhealthy. Run in the foreground, not by
        // a service: nothing restarts it, it keeps running and says so.
        File.Delete(Path.Combine(bundle, "data", "state", "healthy"));
        var unhealthy = await StatusShowsAsync(bundle, "health: unhealthy (2 failures in a row");
        Assert.Contains(notFound, unhealthy, StringComparison.Ordinal);
        for (var i = 0; i < 40 && !RunLog().Contains("not run by its service, so it is not restarted", StringComparison.Ordinal); i++)
        {
            await Task.Delay(250, TestContext.Current.CancellationToken);
        }

        Assert.Contains("not run by its service, so it is not restarted", RunLog(), StringComparison.Ordinal);
        Assert.Equal(1, ProcessRunner.Run(Path.Combine(bundle, "runcible"), "health").ExitCode);
        Assert.Contains("\"status\": \"running\"", ProcessRunner.Run("runc", ["state", _name]).StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheHttpProbeEntersAPrivateNetworkNamespace()
    {
        var port = TestBundle.FreePort();
        var bundle = Bundle(port, $"http://localhost:{port}/version");
        // The container gets a network namespace of its own: its httpd listens on ITS loopback, out of the host's reach.
        var config = Path.Combine(bundle, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"namespaces\": [", "\"namespaces\": [\n      {\n        \"type\": \"network\"\n      },", StringComparison.Ordinal));
        StartRun(bundle);

        var healthy = await StatusShowsAsync(bundle, "health: healthy");
        Assert.Contains("HTTP/1.1 200 OK", healthy, StringComparison.Ordinal);
        Assert.Contains("1.0.0", healthy, StringComparison.Ordinal);
        var pid = ProcessRunner.Run("sh", ["-c", $"runc state {_name} | sed -n 's/^  \"pid\": \\([0-9]*\\),$/\\1/p'"]).StandardOutput.Trim();
        Assert.NotEqual(File.ResolveLinkTarget("/proc/self/ns/net", false)!.ToString(), File.ResolveLinkTarget($"/proc/{pid}/ns/net", false)!.ToString());
        Assert.False(await HostScenarios.AnswersAsync(port));
    }

    [Fact]
    public async Task ACommandCheckIsExecdInTheContainerWithoutAShell()
    {
        var port = TestBundle.FreePort();
        // Exec'd directly (no sh -c): the quotes group the path, the words reach test as they are.
        var bundle = Bundle(port, "test -f '/data/ok file'");
        StartRun(bundle);
        var status = await StatusShowsAsync(bundle, "exit status 1");
        Assert.Contains("health: starting", status, StringComparison.Ordinal);
        Assert.Contains("check: test -f /data/ok file", status, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(bundle, "data", "state", "ok file"), "");
        await StatusShowsAsync(bundle, "health: healthy");
    }

    [Fact]
    public void AHostWithoutAnyHttpClientRefusesToStartTheService()
    {
        var port = TestBundle.FreePort();
        var bundle = Bundle(port, $"http://127.0.0.1:{port}/version");
        // Every tool of this machine but the HTTP clients.
        var bin = _dir.Combine("bin");
        Directory.CreateDirectory(bin);
        foreach (var tool in new[] { "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin" }.Where(Directory.Exists).SelectMany(Directory.EnumerateFileSystemEntries))
        {
            var link = Path.Combine(bin, Path.GetFileName(tool));
            if (Path.GetFileName(tool) is not ("bash" or "wget" or "curl" or "busybox") && !Path.Exists(link))
            {
                File.CreateSymbolicLink(link, tool);
            }
        }

        var run = ProcessRunner.Run(Path.Combine(bundle, "runcible"), ["run"], environment: new Dictionary<string, string?> { ["PATH"] = bin }, timeout: TimeSpan.FromMinutes(1));
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("runcible: error RUNCIBLE5050: ", run.StandardError, StringComparison.Ordinal);
        Assert.Contains("bash", run.StandardError, StringComparison.Ordinal);
        Assert.NotEqual(0, ProcessRunner.Run("runc", ["state", _name]).ExitCode);
    }
}
