using Runcible.Core.Contracts;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Sdk;

/// <summary>
/// The PublishRuncBundle target through a real <c>dotnet publish</c>, with the stages replaced by a
/// purpose-built task assembly (compiled here against the packed Runcible.Tasks) so that the
/// target's contract is tested on its own: runs after Publish, writes the tarball once, prints its
/// path once, returns it, and does no work when nothing changed.
/// </summary>
[Collection(SdkPackageCollection.Name)]
public class PublishTargetTests(SdkPackageFixture sdk)
{
    private const string TestStagesSource = """
        using System.Formats.Tar;
        using Runcible.Core.Bundle;
        using Runcible.Core.Contracts;
        using Runcible.Core.Oci;

        namespace Runcible.Tasks;

        public sealed class PublishRuncBundle : PublishRuncBundleTaskBase
        {
            private protected override BundleStages CreateStages(NormalizedBundleSettings settings, Runcible.Core.Diagnostics.IBuildLog log) =>
                new(new Images(settings.ContainerRegistry), new Flattener(), new Config(), null);

            private sealed class Images(string? containerRegistry) : IBaseImageProvider
            {
                public Task<PulledImage> PullAsync(string reference, Platform platform, CancellationToken cancellationToken)
                {
                    // Every pull is recorded, so tests can count the requests a registry would get.
                    if (Environment.GetEnvironmentVariable("RUNCIBLE_TEST_PULL_LOG") is { Length: > 0 } pullLog)
                    {
                        File.AppendAllText(pullLog, "pull " + reference + " (ContainerRegistry=" + containerRegistry + ")\n");
                    }

                    if (reference.Contains("missing", StringComparison.Ordinal))
                    {
                        throw new Runcible.Core.Diagnostics.RuncibleException(Runcible.Core.Diagnostics.RuncibleErrors.RegistryManifestNotFound, reference, "test");
                    }

                    var digest = Digest.ComputeSha256(System.Text.Encoding.UTF8.GetBytes(reference));
                    return Task.FromResult(new PulledImage(reference, digest, null, new ImageManifest { SchemaVersion = 2, Layers = new() }, digest,
                        Array.Empty<byte>(), new ImageConfiguration { OS = "linux", Architecture = platform.Architecture }, Array.Empty<LocalLayer>()));
                }
            }

            private sealed class Flattener : IRootfsFlattener
            {
                public IFlattenedRootfs Flatten(PulledImage image) => new Rootfs(image.ManifestDigest.ToString());
            }

            private sealed class Rootfs(string key) : IFlattenedRootfs, IRootfsReader
            {
                public string CacheKey => key;
                public IRootfsReader Reader => this;
                public byte[]? ReadFile(string path, int maxBytes) => null;
                public (string Path, RootfsNodeKind Kind)? FindNonDirectoryComponent(string path) => null;
                public void WriteEntries(TarWriter writer, string prefix) =>
                    writer.WriteEntry(new GnuTarEntry(TarEntryType.Directory, prefix + "etc/") { Mode = (UnixFileMode)493, ModificationTime = DateTimeOffset.FromUnixTimeSeconds(0) });
                public void Dispose() { }
            }

            private sealed class Config : IRuntimeConfigProvider
            {
                public RuntimeConfigOutput Create(PulledImage image, IRootfsReader rootfs, BundleSettings settings, ContainerSettings container)
                {
                    // RuncSeccompProfile as the real config stage gets it: read and validated by the settings task.
                    var seccomp = container.SeccompProfile;
                    var json = seccomp is null ? "{\"ociVersion\":\"1.0.2\"}" : "{\"ociVersion\":\"1.0.2\",\"seccomp\":\"" + seccomp.DefaultAction + "\"}";
                    return new(System.Text.Encoding.UTF8.GetBytes(json), 1654, 1654, new[] { "state" });
                }
            }
        }
        """;

    [Fact]
    public void PublishWritesTheTarballOnceAndAnUnchangedProjectDoesNoWork()
    {
        var (project, stagesOut) = ExeProjectWithTestStages("Hello.App", "<AssemblyName>Hello.App</AssemblyName><Version>2.1.0</Version>");
        var projectDir = Path.GetDirectoryName(project)!;

        string[] publish =
        [
            "publish", project, "-c", "Release", "-nodeReuse:false", "-v:n",
            "-p:PublishRuncBundle=true", "-p:ContainerRuntimeIdentifier=linux-x64",
            "-p:RunciblePublishTaskAssembly=" + Path.Combine(stagesOut, "Runcible.TestStages.dll"),
            "-p:RuncCacheDirectory=" + Path.Combine(sdk.Root, "cache-" + Guid.NewGuid().ToString("N")[..8]),
        ];
        var first = ProcessRunner.Run("dotnet", publish, projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        first.EnsureSuccess("first publish");
        var tarball = Path.Combine(projectDir, "bin", "Release", "net10.0", "hello-app-2.1.0.tar.gz");
        Assert.True(File.Exists(tarball), first.StandardOutput);
        Assert.Single(first.StandardOutput.Split('\n'), l => l.Contains("Hello.App -> " + tarball, StringComparison.Ordinal));

        var listing = ProcessRunner.Run("tar", ["--numeric-owner", "-tvf", tarball]).EnsureSuccess("tar").StandardOutput;
        Assert.Contains("opt/containers/hello-app-2.1.0/rootfs/app/Hello.App.dll", listing);
        Assert.StartsWith("-rwxr-xr-x 0/0", listing.Split('\n').Single(l => l.EndsWith("rootfs/app/Hello.App", StringComparison.Ordinal)));
        Assert.StartsWith("drwxr-xr-x 1654/1654", listing.Split('\n').Single(l => l.EndsWith("hello-app-2.1.0/data/state/", StringComparison.Ordinal)));
        Assert.Contains("opt/containers/hello-app-2.1.0/bundle.json", listing);

        // Unchanged: the target is skipped, the tarball untouched, nothing printed, the item still returned.
        var written = File.GetLastWriteTimeUtc(tarball);
        var second = ProcessRunner.Run("dotnet", [.. publish, "-getItem:RuncBundle", "-getItem:FileWrites", "-t:Publish"], projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        second.EnsureSuccess("second publish");
        Assert.Equal(written, File.GetLastWriteTimeUtc(tarball));
        Assert.Contains("\"RuncBundle\"", second.StandardOutput);
        Assert.Contains(tarball, second.StandardOutput[second.StandardOutput.IndexOf("\"RuncBundle\"", StringComparison.Ordinal)..]);
        Assert.Contains(tarball, second.StandardOutput[second.StandardOutput.IndexOf("\"FileWrites\"", StringComparison.Ordinal)..]);

        // A setting changed on the command line rebuilds it.
        var third = ProcessRunner.Run("dotnet", [.. publish, "-p:ContainerUser=app"], projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        third.EnsureSuccess("third publish");
        Assert.Single(third.StandardOutput.Split('\n'), l => l.Contains("Hello.App -> " + tarball, StringComparison.Ordinal));
        var atDefaultLevel = File.ReadAllBytes(tarball);

        // Another compression level rebuilds it, and the level reaches the compressor: other bytes, the same archive.
        var fourth = ProcessRunner.Run("dotnet", [.. publish, "-p:ContainerUser=app", "-p:RuncBundleCompressionLevel=9"], projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        fourth.EnsureSuccess("fourth publish");
        Assert.Single(fourth.StandardOutput.Split('\n'), l => l.Contains("Hello.App -> " + tarball, StringComparison.Ordinal));
        var atLevel9 = File.ReadAllBytes(tarball);
        Assert.NotEqual(atDefaultLevel, atLevel9);
        Assert.Equal(Gunzip(atDefaultLevel), Gunzip(atLevel9));
    }

    [Fact]
    public void ACleanPublishPreparesTheBasePartBeforeTheAppAndPullsOnce()
    {
        var (project, stagesOut) = ExeProjectWithTestStages("Early.App", "<Version>1.0.0</Version>");
        var projectDir = Path.GetDirectoryName(project)!;
        var pullLog = Path.Combine(projectDir, "pulls.log");
        var environment = sdk.Environment;
        environment["RUNCIBLE_TEST_PULL_LOG"] = pullLog;
        var tarball = Path.Combine(projectDir, "bin", "Release", "net10.0", "early-app-1.0.0.tar.gz");
        ProcessResult Publish(params string[] extra) => ProcessRunner.Run("dotnet",
            [
                "publish", project, "-c", "Release", "-nodeReuse:false", "-v:d", "-p:PublishRuncBundle=true", "-p:ContainerRuntimeIdentifier=linux-x64",
                "-p:RunciblePublishTaskAssembly=" + Path.Combine(stagesOut, "Runcible.TestStages.dll"), "-p:RuncCacheDirectory=" + Path.Combine(projectDir, "cache"), .. extra,
            ],
            projectDir, environment, timeout: TimeSpan.FromMinutes(5));
        string[] Pulls() => File.Exists(pullLog) ? File.ReadAllLines(pullLog) : [];

        // No tarball yet: the base part is prepared while the app builds, and the bundle is written from that one pull.
        // The task gets the project's ContainerRegistry (the SDK's push credentials are for pulls from it only).
        var first = Publish("-p:ContainerRegistry=registry.example.com");
        first.EnsureSuccess("first publish");
        Assert.Contains("Runcible: base part prepared ahead of the app", first.StandardOutput);
        Assert.EndsWith("(ContainerRegistry=registry.example.com)", Assert.Single(Pulls()));
        Assert.True(File.Exists(tarball));
        var early = File.ReadAllBytes(tarball);

        // Nothing changed (ContainerRegistry is a setting like any other): nothing prepared, no pull at all.
        File.Delete(pullLog);
        var second = Publish("-p:ContainerRegistry=registry.example.com");
        second.EnsureSuccess("second publish");
        Assert.DoesNotContain("base part prepared ahead", second.StandardOutput);
        Assert.Empty(Pulls());

        // The app changed since the tarball was written: prepared ahead again, still one pull in all.
        File.WriteAllText(Path.Combine(projectDir, "Program.cs"), "System.Console.WriteLine(\"hello again\");\n");
        var changed = Publish();
        changed.EnsureSuccess("publish of a changed app");
        Assert.Contains("Runcible: base part prepared ahead of the app", changed.StandardOutput);
        Assert.Contains("Runcible: base part copied ahead, renamed into place", changed.StandardOutput);
        Assert.Single(Pulls());
        Assert.NotEqual(early, File.ReadAllBytes(tarball));
        early = File.ReadAllBytes(tarball);

        // Without the early start (and with an empty cache), the very same tarball.
        File.Delete(tarball);
        Directory.Delete(Path.Combine(projectDir, "cache"), recursive: true);
        File.Delete(pullLog);
        var late = Publish("-p:RuncPrepareBaseEarly=false");
        late.EnsureSuccess("publish without early preparation");
        Assert.DoesNotContain("base part prepared ahead", late.StandardOutput);
        Assert.Contains("Runcible: base part copied in", late.StandardOutput);
        Assert.Single(Pulls());
        Assert.Equal(early, File.ReadAllBytes(tarball));

        // A base that cannot be pulled: the early pull's coded error is the build's, with no second pull.
        File.Delete(tarball);
        File.Delete(pullLog);
        var failed = Publish("-p:ContainerBaseImage=localhost:5000/missing:1");
        Assert.NotEqual(0, failed.ExitCode);
        Assert.Contains("error RUNCIBLE1001: localhost:5000/missing:1", failed.StandardOutput);
        Assert.Single(Pulls());
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
    public void ACacheDirectoryOthersCanWriteFailsThePublishWithTheCode()
    {
        var (project, stagesOut) = ExeProjectWithTestStages("Shared.Cache", "<Version>1.0.0</Version>");
        var projectDir = Path.GetDirectoryName(project)!;
        var cache = Path.Combine(projectDir, "cache");
        Directory.CreateDirectory(cache);
        ProcessRunner.Run("chmod", "0777", cache).EnsureSuccess("chmod");

        var publish = ProcessRunner.Run("dotnet",
            [
                "publish", project, "-c", "Release", "-nodeReuse:false", "-v:n", "-p:PublishRuncBundle=true", "-p:ContainerRuntimeIdentifier=linux-x64",
                "-p:RunciblePublishTaskAssembly=" + Path.Combine(stagesOut, "Runcible.TestStages.dll"), "-p:RuncCacheDirectory=" + cache,
            ],
            projectDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5));
        Assert.NotEqual(0, publish.ExitCode);
        Assert.Contains($"error RUNCIBLE1112: The cache directory '{cache}' is writable by its group and other users", publish.StandardOutput);
        Assert.False(File.Exists(Path.Combine(projectDir, "bin", "Release", "net10.0", "shared-cache-1.0.0.tar.gz")));
        Assert.False(Directory.Exists(Path.Combine(cache, "bundle-base")));
    }

    [Fact]
    public void TheSeccompProfileFileIsAnInputOfTheBundle()
    {
        var (project, stagesOut) = ExeProjectWithTestStages("Secure.App", "<Version>1.0.0</Version><RuncSeccompProfile>policy/seccomp.json</RuncSeccompProfile>");
        var projectDir = Path.GetDirectoryName(project)!;
        var profile = Path.Combine(projectDir, "policy", "seccomp.json");
        Directory.CreateDirectory(Path.GetDirectoryName(profile)!);
        var tarball = Path.Combine(projectDir, "bin", "Release", "net10.0", "secure-app-1.0.0.tar.gz");
        ProcessResult Publish() => ProcessRunner.Run("dotnet",
            [
                "publish", project, "-c", "Release", "-nodeReuse:false", "-v:n", "-p:PublishRuncBundle=true", "-p:ContainerRuntimeIdentifier=linux-x64",
                "-p:RunciblePublishTaskAssembly=" + Path.Combine(stagesOut, "Runcible.TestStages.dll"), "-p:RuncCacheDirectory=" + Path.Combine(projectDir, "cache"),
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

    /// <summary>A restored net10.0 Exe project referencing the package, and the purpose-built stages compiled against its task assembly.</summary>
    private (string Project, string StagesOut) ExeProjectWithTestStages(string name, string properties)
    {
        var project = ExeProject(name, properties);
        var tasksDir = Path.Combine(sdk.Root, "packages", "runcible.sdk", SdkPackageFixture.Version, "tasks", "net10.0");
        Assert.True(File.Exists(Path.Combine(tasksDir, "Runcible.Tasks.dll")), tasksDir);
        return (project, BuildTestStages(tasksDir));
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

    /// <summary>The purpose-built stages, compiled against the packed task assembly; returns their output directory.</summary>
    private string BuildTestStages(string tasksDir)
    {
        var stagesDir = Path.Combine(sdk.Root, "stages-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(stagesDir);
        File.WriteAllText(Path.Combine(stagesDir, "TestStages.cs"), TestStagesSource);
        File.WriteAllText(Path.Combine(stagesDir, "TestStages.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <!-- Core and Tasks let this name see their internals (the stage contracts, CreateStages). -->
                <AssemblyName>Runcible.TestStages</AssemblyName>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <Reference Include="Runcible.Tasks" HintPath="{tasksDir}/Runcible.Tasks.dll" />
                <Reference Include="Runcible.Core" HintPath="{tasksDir}/Runcible.Core.dll" />
                <Reference Include="Microsoft.Build.Framework" HintPath="$(MSBuildToolsPath)/Microsoft.Build.Framework.dll" Private="false" />
                <Reference Include="Microsoft.Build.Utilities.Core" HintPath="$(MSBuildToolsPath)/Microsoft.Build.Utilities.Core.dll" Private="false" />
              </ItemGroup>
            </Project>
            """);
        var stagesOut = Path.Combine(stagesDir, "out");
        ProcessRunner.Run("dotnet", ["build", Path.Combine(stagesDir, "TestStages.csproj"), "-c", "Release", "-o", stagesOut, "-nodeReuse:false"], stagesDir, sdk.Environment, timeout: TimeSpan.FromMinutes(5))
            .EnsureSuccess("build test stages");

        return stagesOut;
    }

    private static byte[] Gunzip(byte[] compressed)
    {
        using var gzip = new System.IO.Compression.GZipStream(new MemoryStream(compressed), System.IO.Compression.CompressionMode.Decompress);
        var output = new MemoryStream();
        gzip.CopyTo(output);
        return output.ToArray();
    }
}
