using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using Runcible.Tests.Sdk;

namespace Runcible.Tests.EndToEnd;

/// <summary>
/// The product as a user meets it: the packed Runcible.Sdk, <c>dotnet publish -p:PublishRuncBundle=true</c>
/// of the samples against the fixture registry, the tarball extracted as root into a scratch root and
/// run with the real runc (host network), answering real HTTP requests.
/// </summary>
[Collection(SdkPackageCollection.Name)]
public sealed class PublishAndRunTests(SdkPackageFixture sdk, SharedRegistries registries)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task HelloWebAnswersHttpStopsGracefullyAndKeepsItsDataAcrossRestarts()
    {
        var registry = await registries.AnonymousAsync();
        using var work = new TempDirectory("runcible-e2e");
        var project = SampleProjects.Copy(sdk, "HelloWeb");
        SampleProjects.Publish(sdk, project, registry.Host + "/aspnet:latest", work.Combine("cache")).EnsureSuccess("publish HelloWeb");
        var tarball = SampleProjects.Tarball(project, "helloweb-1.0.0.tar.gz");
        Assert.True(File.Exists(tarball), tarball);

        var root = work.Combine("root");
        Directory.CreateDirectory(root);
        // As README says (file capabilities travel as extended attributes).
        ProcessRunner.Run("tar", ["--xattrs", "--xattrs-include=*", "-xpf", tarball, "-C", root]).EnsureSuccess("extract the bundle");
        var bundle = Path.Combine(root, "opt", "containers", "helloweb-1.0.0");
        Assert.Equal("700 0:0\n", ProcessRunner.Run("stat", ["-c", "%a %u:%g", bundle]).EnsureSuccess("stat").StandardOutput);
        Assert.Equal("600 0:0\n", ProcessRunner.Run("stat", ["-c", "%a %u:%g", Path.Combine(bundle, "config.json")]).EnsureSuccess("stat").StandardOutput);

        // The app runs under the default seccomp profile (an allow-list) and serves HTTP all the same.
        using (var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(bundle, "config.json"))))
        {
            var seccomp = config.RootElement.GetProperty("linux").GetProperty("seccomp");
            Assert.Equal("SCMP_ACT_ERRNO", seccomp.GetProperty("defaultAction").GetString());
            Assert.Equal("SCMP_ARCH_X86_64", seccomp.GetProperty("architectures")[0].GetString());
        }

        foreach (var expected in new[] { "config.json", "bundle.json", "rootfs/app/HelloWeb.dll", "rootfs/usr/share/dotnet/dotnet", "data/state", "config", "logs" })
        {
            Assert.True(Path.Exists(Path.Combine(bundle, expected)), expected);
        }

        using (var bundleJson = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(bundle, "bundle.json"))))
        {
            Assert.Equal(registry.Host + "/aspnet:latest", bundleJson.RootElement.GetProperty("base").GetProperty("reference").GetString());
        }

        var port = FreePort();
        UseEnvironment(bundle, "HELLOWEB_PORT=" + port);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
        var state = work.Combine("runc-state");

        using (var container = RuncContainer.Start(bundle, state))
        {
            await WaitForHttpAsync(http, container);
            Assert.StartsWith("Hello from helloweb", await http.GetStringAsync("/", TestContext.Current.CancellationToken));
            var posted = await http.PostAsync("/notes", new StringContent("written by the first run", Encoding.UTF8), TestContext.Current.CancellationToken);
            posted.EnsureSuccessStatusCode();
            Assert.Equal(0, container.Stop("TERM", TimeSpan.FromSeconds(30)));
            Assert.Contains("shutting down gracefully", container.Output);
        }

        // The data volume is the bundle's data/state on the host, owned by the app user (APP_UID 1654).
        var notes = Path.Combine(bundle, "data", "state", "notes.txt");
        Assert.Equal("written by the first run\n", File.ReadAllText(notes));
        Assert.Equal("1654", ProcessRunner.Run("stat", ["-c", "%u", notes]).EnsureSuccess("stat").StandardOutput.Trim());

        using (var container = RuncContainer.Start(bundle, state))
        {
            await WaitForHttpAsync(http, container);
            var posted = await http.PostAsync("/notes", new StringContent("and by the second", Encoding.UTF8), TestContext.Current.CancellationToken);
            Assert.Equal("written by the first run\nand by the second\n", await posted.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
            Assert.Equal(0, container.Stop("TERM", TimeSpan.FromSeconds(30)));
        }
    }

    [Fact]
    public async Task RepublishingIsIncrementalAndCleanBuildsAreByteIdentical()
    {
        var registry = await registries.AnonymousAsync();
        using var work = new TempDirectory("runcible-e2e");
        var first = SampleProjects.Copy(sdk, "SelfContained", "first");
        var second = SampleProjects.Copy(sdk, "SelfContained", "second");

        // Two clean builds in different directories, each with its own cache: the same bytes.
        SampleProjects.Publish(sdk, first, registry.Host + "/runtime-deps:latest", work.Combine("cache-1")).EnsureSuccess("publish first");
        SampleProjects.Publish(sdk, second, registry.Host + "/runtime-deps:latest", work.Combine("cache-2")).EnsureSuccess("publish second");
        var firstTarball = SampleProjects.Tarball(first, "selfcontained-1.0.0.tar.gz");
        var secondTarball = SampleProjects.Tarball(second, "selfcontained-1.0.0.tar.gz");
        Assert.Equal(SampleProjects.Sha256(firstTarball), SampleProjects.Sha256(secondTarball));

        // Nothing changed: the bundle target does no work.
        var written = File.GetLastWriteTimeUtc(firstTarball);
        var unchanged = SampleProjects.Publish(sdk, first, registry.Host + "/runtime-deps:latest", work.Combine("cache-1")).EnsureSuccess("republish");
        Assert.Equal(written, File.GetLastWriteTimeUtc(firstTarball));
        Assert.DoesNotContain("-> " + firstTarball, unchanged.StandardOutput);

        // The app changed: a new tarball whose base part is the cached one, byte for byte.
        var before = File.ReadAllBytes(firstTarball);
        var program = Path.Combine(Path.GetDirectoryName(first)!, "Program.cs");
        File.WriteAllText(program, File.ReadAllText(program).Replace("Hello from a self-contained", "Hi from a self-contained", StringComparison.Ordinal));
        var changed = SampleProjects.Publish(sdk, first, registry.Host + "/runtime-deps:latest", work.Combine("cache-1")).EnsureSuccess("publish changed");
        Assert.Contains("-> " + firstTarball, changed.StandardOutput);
        var after = File.ReadAllBytes(firstTarball);
        Assert.NotEqual(before, after);
        var baseParts = Directory.GetFiles(work.Combine("cache-1", "bundle-base"));
        var basePart = File.ReadAllBytes(Assert.Single(baseParts));
        Assert.True(basePart.Length > after.Length / 2, $"the base part ({basePart.Length} bytes) should be most of the bundle ({after.Length} bytes)");
        Assert.Equal(basePart, before.AsSpan(0, basePart.Length).ToArray());
        Assert.Equal(basePart, after.AsSpan(0, basePart.Length).ToArray());

        // The self-contained app runs on runtime-deps (no .NET runtime in the image) as its apphost.
        var root = work.Combine("root");
        Directory.CreateDirectory(root);
        ProcessRunner.Run("tar", ["--numeric-owner", "-xpf", firstTarball, "-C", root]).EnsureSuccess("extract");
        var bundle = Path.Combine(root, "opt", "containers", "selfcontained-1.0.0");
        Assert.False(Directory.Exists(Path.Combine(bundle, "rootfs", "usr", "share", "dotnet")));
        using var container = RuncContainer.Start(bundle, work.Combine("runc-state"));
        await WaitForOutputAsync(container, "Hi from a self-contained linux-x64 app");
        Assert.Equal(0, container.Stop("TERM", TimeSpan.FromSeconds(30)));
        Assert.Contains("stopped", container.Output);
    }

    private static void UseEnvironment(string bundle, string variable)
    {
        var path = Path.Combine(bundle, "config.json");
        var config = JsonNode.Parse(File.ReadAllBytes(path))!;
        config["process"]!["env"]!.AsArray().Add(variable);
        File.WriteAllText(path, config.ToJsonString());
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitForHttpAsync(HttpClient http, RuncContainer container)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (container.HasExited)
            {
                throw new InvalidOperationException("the container exited before answering:\n" + container.Output);
            }

            try
            {
                using var response = await http.GetAsync("/");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(250);
        }

        throw new TimeoutException("the app did not answer HTTP within " + StartTimeout + ":\n" + container.Output);
    }

    private static async Task WaitForOutputAsync(RuncContainer container, string text)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (!container.Output.Contains(text, StringComparison.Ordinal))
        {
            if (container.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"expected '{text}' from the app:\n{container.Output}");
            }

            await Task.Delay(200);
        }
    }
}
