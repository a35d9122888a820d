using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;

namespace Runcible.Tests.Sdk;

/// <summary>
/// The PublishRuncBundle target through a real <c>dotnet publish</c> with the real tasks, the base image pulled from
/// the loopback test registry through a <see cref="FaultProxy"/> that counts the registry requests of the build:
/// runs after Publish, writes the tarball once, prints its path once, returns it, and does no work when nothing changed.
/// </summary>
[Collection(SdkPackageCollection.Name)]
public class PublishTargetTests(SdkPackageFixture sdk, SharedRegistries registries)
{
    /// <summary>The base image every test publishes from: the small busybox fixture, through the proxy.</summary>
    private static string BaseImage(FaultProxy proxy) => proxy.Host + "/" + FixtureImages.Busybox + ":" + FixtureImages.Tag;

    /// <summary>Pulls of the base image the proxy saw.</summary>
    private static int Pulls(FaultProxy proxy) => proxy.PullsOf(FixtureImages.Busybox, FixtureImages.Tag);

    private async Task<FaultProxy> RegistryProxyAsync() => FaultProxy.Start(await registries.AnonymousAsync());

    [Fact]
    public async Task PublishWritesTheTarballOnceAndAnUnchangedProjectDoesNoWork()
    {
        await using var proxy = await RegistryProxyAsync();
        var project = ExeProject("Hello.App", """
            <AssemblyName>Hello.App</AssemblyName><Version>2.1.0</Version><ContainerUser>1654:1654</ContainerUser>
            </PropertyGroup>
            <ItemGroup>
              <RuncVolume Include="/var/lib/state" Name="state" />
            </ItemGroup>
            <PropertyGroup>
            """);
        var projectDir = Path.GetDirectoryName(project)!;

        string[] publish =
        [
            "publish", project, "-c", "Release", "-nodeReuse:false", "-v:n",
            "-p:PublishRuncBundle=true", "-p:ContainerRuntimeIdentifier=linux-x64", "-p:ContainerBaseImage=" + BaseImage(proxy),
            "-p:RuncCacheDirectory=" + Path.Combine(sdk.Root, "cache-" + Guid.NewGuid().ToString("N")[..8]),
        ];
        var first = ProcessRunner.Run("dotnet", publish, projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        first.EnsureSuccess("first publish");
        var tarball = Path.Combine(projectDir, "bin", "Release", "net10.0", "hello-app-2.1.0.tar.gz");
        Assert.True(File.Exists(tarball), first.StandardOutput);
        Assert.Single(first.StandardOutput.Split('\n'), l => l.Contains("Hello.App -> " + tarball, StringComparison.Ordinal));
        Assert.Equal(1, Pulls(proxy));

        var listing = ProcessRunner.Run("tar", ["--numeric-owner", "-tvf", tarball]).EnsureSuccess("tar").StandardOutput;
        Assert.Contains("opt/containers/hello-app-2.1.0/rootfs/app/Hello.App.dll", listing);
        Assert.Contains("opt/containers/hello-app-2.1.0/rootfs/bin/busybox", listing);
        Assert.StartsWith("-rwxr-xr-x 0/0", listing.Split('\n').Single(l => l.EndsWith("rootfs/app/Hello.App", StringComparison.Ordinal)));
        Assert.StartsWith("drwxr-xr-x 1654/1654", listing.Split('\n').Single(l => l.EndsWith("hello-app-2.1.0/data/state/", StringComparison.Ordinal)));
        Assert.Contains("opt/containers/hello-app-2.1.0/bundle.json", listing);

        // Unchanged: the target is skipped, the tarball untouched, nothing printed, nothing asked of the registry, the item still returned.
        var written = File.GetLastWriteTimeUtc(tarball);
        proxy.ResetRequests();
        var second = ProcessRunner.Run("dotnet", [.. publish, "-getItem:RuncBundle", "-getItem:FileWrites", "-t:Publish"], projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        second.EnsureSuccess("second publish");
        Assert.Equal(written, File.GetLastWriteTimeUtc(tarball));
        Assert.Equal(0, proxy.RequestCount);
        Assert.Contains("\"RuncBundle\"", second.StandardOutput);
        Assert.Contains(tarball, second.StandardOutput[second.StandardOutput.IndexOf("\"RuncBundle\"", StringComparison.Ordinal)..]);
        Assert.Contains(tarball, second.StandardOutput[second.StandardOutput.IndexOf("\"FileWrites\"", StringComparison.Ordinal)..]);

        // A setting changed on the command line rebuilds it.
        var third = ProcessRunner.Run("dotnet", [.. publish, "-p:ContainerUser=1000:1000"], projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        third.EnsureSuccess("third publish");
        Assert.Single(third.StandardOutput.Split('\n'), l => l.Contains("Hello.App -> " + tarball, StringComparison.Ordinal));
        var atDefaultLevel = File.ReadAllBytes(tarball);

        // Another compression level rebuilds it, and the level reaches the compressor: other bytes, the same archive.
        var fourth = ProcessRunner.Run("dotnet", [.. publish, "-p:ContainerUser=1000:1000", "-p:RuncBundleCompressionLevel=9"], projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        fourth.EnsureSuccess("fourth publish");
        Assert.Single(fourth.StandardOutput.Split('\n'), l => l.Contains("Hello.App -> " + tarball, StringComparison.Ordinal));
        var atLevel9 = File.ReadAllBytes(tarball);
        Assert.NotEqual(atDefaultLevel, atLevel9);
        Assert.Equal(Gunzip(atDefaultLevel), Gunzip(atLevel9));
    }

    [Fact]
    public async Task ACleanPublishPreparesTheBasePartBeforeTheAppAndPullsOnce()
    {
        await using var proxy = await RegistryProxyAsync();
        var project = ExeProject("Early.App", "<Version>1.0.0</Version>");
        var projectDir = Path.GetDirectoryName(project)!;
        var tarball = Path.Combine(projectDir, "bin", "Release", "net10.0", "early-app-1.0.0.tar.gz");
        var settingsFile = Path.Combine(projectDir, "obj", "Release", "net10.0", "runc-bundle.settings.json");
        ProcessResult Publish(params string[] extra)
        {
            proxy.ResetRequests();
            return ProcessRunner.Run("dotnet",
                [
                    "publish", project, "-c", "Release", "-nodeReuse:false", "-v:d", "-p:PublishRuncBundle=true", "-p:ContainerRuntimeIdentifier=linux-x64",
                    "-p:ContainerBaseImage=" + BaseImage(proxy), "-p:RuncCacheDirectory=" + Path.Combine(projectDir, "cache"), .. extra,
                ],
                projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        }

        // No tarball yet: the base part is prepared while the app builds, and the bundle is written from that one pull.
        // The task gets the project's ContainerRegistry (the SDK's push credentials are for pulls from it only).
        var first = Publish("-p:ContainerRegistry=registry.example.com");
        first.EnsureSuccess("first publish");
        Assert.Contains("Runcible: base part prepared ahead of the app", first.StandardOutput);
        Assert.Equal(1, Pulls(proxy));
        Assert.Contains("registry.example.com", File.ReadAllText(settingsFile));
        Assert.True(File.Exists(tarball));
        var early = File.ReadAllBytes(tarball);

        // Nothing changed (ContainerRegistry is a setting like any other): nothing prepared, no registry request at all.
        var second = Publish("-p:ContainerRegistry=registry.example.com");
        second.EnsureSuccess("second publish");
        Assert.DoesNotContain("base part prepared ahead", second.StandardOutput);
        Assert.Equal(0, proxy.RequestCount);

        // The app changed since the tarball was written: prepared ahead again, still one pull in all.
        File.WriteAllText(Path.Combine(projectDir, "Program.cs"), "System.Console.WriteLine(\"hello again\");\n");
        var changed = Publish();
        changed.EnsureSuccess("publish of a changed app");
        Assert.Contains("Runcible: base part prepared ahead of the app", changed.StandardOutput);
        Assert.Contains("Runcible: base part copied ahead, renamed into place", changed.StandardOutput);
        Assert.Equal(1, Pulls(proxy));
        Assert.NotEqual(early, File.ReadAllBytes(tarball));
        early = File.ReadAllBytes(tarball);

        // Without the early start (and with an empty cache), the very same tarball.
        File.Delete(tarball);
        Directory.Delete(Path.Combine(projectDir, "cache"), recursive: true);
        var late = Publish("-p:RuncPrepareBaseEarly=false");
        late.EnsureSuccess("publish without early preparation");
        Assert.DoesNotContain("base part prepared ahead", late.StandardOutput);
        Assert.Contains("Runcible: base part copied in", late.StandardOutput);
        Assert.Equal(1, Pulls(proxy));
        Assert.Equal(early, File.ReadAllBytes(tarball));

        // A base that cannot be pulled: the early pull's coded error is the build's, once, with no second pull.
        File.Delete(tarball);
        var missing = proxy.Host + "/missing:1";
        var failed = Publish("-p:ContainerBaseImage=" + missing);
        Assert.NotEqual(0, failed.ExitCode);
        // One error (the console repeats it in the summary, after the node prefix at -v:d), the early pull's: not reported again by the bundle task.
        var error = Assert.Single(failed.StandardOutput.Split('\n').Where(l => l.Contains(": error ", StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf(": error ", StringComparison.Ordinal) + 2)..].Trim()).Distinct());
        Assert.Matches("error RUNCIBLE1001: " + System.Text.RegularExpressions.Regex.Escape(proxy.Host) + "/missing[^ ]*: the registry has no manifest", error);
        Assert.Equal(1, proxy.PullsOf("missing", "1"));
        Assert.False(File.Exists(tarball));

        // A version set by a target during the build (as MinVer does): the bundle gets it, as without the early start,
        // and the early work (done with the version of the evaluation) is dropped, not used.
        File.WriteAllText(project, File.ReadAllText(project).Replace("</Project>", """
              <Target Name="SetVersionLate" BeforeTargets="CoreCompile">
                <PropertyGroup><Version>3.4.5</Version></PropertyGroup>
              </Target>
            </Project>
            """, StringComparison.Ordinal));
        var versioned = Publish();
        versioned.EnsureSuccess("publish with a version set by a target");
        Assert.Contains("the base part prepared ahead was for other settings", versioned.StandardOutput);
        Assert.True(File.Exists(Path.Combine(projectDir, "bin", "Release", "net10.0", "early-app-3.4.5.tar.gz")), versioned.StandardOutput);
    }

    [Fact]
    public async Task ACacheDirectoryOthersCanWriteFailsThePublishWithTheCode()
    {
        await using var proxy = await RegistryProxyAsync();
        var project = ExeProject("Shared.Cache", "<Version>1.0.0</Version>");
        var projectDir = Path.GetDirectoryName(project)!;
        var cache = Path.Combine(projectDir, "cache");
        Directory.CreateDirectory(cache);
        ProcessRunner.Run("chmod", "0777", cache).EnsureSuccess("chmod");

        var publish = ProcessRunner.Run("dotnet",
            [
                "publish", project, "-c", "Release", "-nodeReuse:false", "-v:n", "-p:PublishRuncBundle=true", "-p:ContainerRuntimeIdentifier=linux-x64",
                "-p:ContainerBaseImage=" + BaseImage(proxy), "-p:RuncCacheDirectory=" + cache,
            ],
            projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        Assert.NotEqual(0, publish.ExitCode);
        Assert.Contains($"error RUNCIBLE1112: The cache directory '{cache}' is writable by its group and other users", publish.StandardOutput);
        Assert.False(File.Exists(Path.Combine(projectDir, "bin", "Release", "net10.0", "shared-cache-1.0.0.tar.gz")));
        Assert.False(Directory.Exists(Path.Combine(cache, "bundle-base")));
        Assert.Equal(0, Pulls(proxy));
    }

    [Fact]
    public async Task TheSeccompProfileFileIsAnInputOfTheBundle()
    {
        await using var proxy = await RegistryProxyAsync();
        var project = ExeProject("Secure.App", "<Version>1.0.0</Version><RuncSeccompProfile>policy/seccomp.json</RuncSeccompProfile>");
        var projectDir = Path.GetDirectoryName(project)!;
        var profile = Path.Combine(projectDir, "policy", "seccomp.json");
        Directory.CreateDirectory(Path.GetDirectoryName(profile)!);
        var tarball = Path.Combine(projectDir, "bin", "Release", "net10.0", "secure-app-1.0.0.tar.gz");
        ProcessResult Publish() => ProcessRunner.Run("dotnet",
            [
                "publish", project, "-c", "Release", "-nodeReuse:false", "-v:n", "-p:PublishRuncBundle=true", "-p:ContainerRuntimeIdentifier=linux-x64",
                "-p:ContainerBaseImage=" + BaseImage(proxy), "-p:RuncCacheDirectory=" + Path.Combine(projectDir, "cache"),
            ],
            projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        string Config() => ProcessRunner.Run("tar", ["-xOzf", tarball, "opt/containers/secure-app-1.0.0/config.json"]).EnsureSuccess("tar").StandardOutput;

        // The path is the project's, relative to it.
        File.WriteAllText(profile, """{ "defaultAction": "SCMP_ACT_LOG" }""");
        Publish().EnsureSuccess("first publish");
        Assert.Contains("SCMP_ACT_LOG", Config());

        var written = File.GetLastWriteTimeUtc(tarball);
        Publish().EnsureSuccess("unchanged publish");
        Assert.Equal(written, File.GetLastWriteTimeUtc(tarball));

        // Only the profile's content changed: the bundle is written again with it.
        File.WriteAllText(profile, """{ "defaultAction": "SCMP_ACT_ERRNO" }""");
        File.SetLastWriteTimeUtc(profile, DateTime.UtcNow.AddSeconds(5));
        var changed = Publish();
        changed.EnsureSuccess("publish after the profile changed");
        Assert.Contains("SCMP_ACT_ERRNO", Config());
        Assert.DoesNotContain("SCMP_ACT_LOG", Config());

        // A bad profile: its code, and the tarball of the last good build stays as it was.
        var before = File.ReadAllBytes(tarball);
        File.WriteAllText(profile, """{ "defaultAction": "SCMP_ACT_ERRNO", "archMap": [] }""");
        File.SetLastWriteTimeUtc(profile, DateTime.UtcNow.AddSeconds(10));
        var bad = Publish();
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("error RUNCIBLE3012: The seccomp profile '" + profile + "'", bad.StandardOutput);
        Assert.Equal(before, File.ReadAllBytes(tarball));
    }

    /// <summary>
    /// The real tasks, a base image on a registry nothing listens at, and a typo in a setting only the config stage used
    /// to parse: the settings task fails with the setting's code, before anything asks the registry (no RUNCIBLE1xxx).
    /// </summary>
    [Theory]
    [InlineData("RuncOpenFilesLimit=lots", "RUNCIBLE3011")]
    [InlineData("ContainerAppCommandInstruction=Cmd", "RUNCIBLE3009")]
    [InlineData("RuncMemoryLimit=512MB", "RUNCIBLE4030")]
    public void ATypoFailsThePublishWithItsCodeBeforeAnyRegistryRequest(string setting, string code)
    {
        var project = ExeProject("Typo.App", "<Version>1.0.0</Version>");
        var projectDir = Path.GetDirectoryName(project)!;
        var publish = ProcessRunner.Run("dotnet",
            [
                "publish", project, "-c", "Release", "-nodeReuse:false", "-v:n", "-p:PublishRuncBundle=true", "-p:ContainerRuntimeIdentifier=linux-x64",
                "-p:ContainerBaseImage=127.0.0.1:9/unreachable/base:1", "-p:RuncInsecureRegistries=127.0.0.1:9", "-p:" + setting,
                "-p:RuncCacheDirectory=" + Path.Combine(projectDir, "cache"),
            ],
            projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        Assert.NotEqual(0, publish.ExitCode);
        Assert.Contains($"error {code}:", publish.StandardOutput);
        Assert.DoesNotContain("RUNCIBLE1", publish.StandardOutput);
        Assert.False(Directory.Exists(Path.Combine(projectDir, "cache", "content")), "nothing was fetched into the cache");
    }

    /// <summary>A restored net10.0 Exe project referencing the package.</summary>
    private string ExeProject(string name, string properties)
    {
        var project = sdk.CreateProject(name, $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                {properties}
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Runcible.Sdk" Version="{SdkPackageFixture.Version}" PrivateAssets="all" />
              </ItemGroup>
            </Project>
            """);
        sdk.MSBuild(project, "-t:Restore").EnsureSuccess("restore");
        return project;
    }

    private static byte[] Gunzip(byte[] compressed)
    {
        using var gzip = new System.IO.Compression.GZipStream(new MemoryStream(compressed), System.IO.Compression.CompressionMode.Decompress);
        var output = new MemoryStream();
        gzip.CopyTo(output);
        return output.ToArray();
    }
}
