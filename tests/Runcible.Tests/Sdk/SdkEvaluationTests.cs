using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Sdk;

/// <summary>The packed Runcible.Sdk used from real projects through the dotnet CLI.</summary>
[Collection(SdkPackageCollection.Name)]
public class SdkEvaluationTests(SdkPackageFixture sdk)
{
    private static string PackageReferenceProject(string extra = "") => $"""
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <OutputType>Exe</OutputType>
            <TargetFramework>net10.0</TargetFramework>
            <AssemblyName>Hello.App</AssemblyName>
            <Version>2.1.0</Version>
            {extra}
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="Runcible.Sdk" Version="{SdkPackageFixture.Version}" PrivateAssets="all" />
            <FrameworkReference Include="Microsoft.AspNetCore.App" />
          </ItemGroup>
        </Project>
        """;

    private static Dictionary<string, string> Properties(ProcessResult result) =>
        SdkPackageFixture.OutputJson(result).GetProperty("Properties").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "");

    [Fact]
    public void ThePackageShipsSdkBuildAndTasksButNoMSBuildAssemblies()
    {
        var entries = sdk.PackageEntries();
        Assert.Contains("Sdk/Sdk.props", entries);
        Assert.Contains("Sdk/Sdk.targets", entries);
        Assert.Contains("build/Runcible.Sdk.props", entries);
        Assert.Contains("build/Runcible.Sdk.targets", entries);
        Assert.Contains("tasks/net8.0/Runcible.Tasks.dll", entries);
        Assert.Contains("tasks/net8.0/Runcible.Core.dll", entries);
        Assert.Contains("tasks/net8.0/NuGet.Versioning.dll", entries);
        Assert.Contains("tasks/net8.0/ZstdSharp.dll", entries);
        Assert.Contains("tasks/net10.0/Runcible.Tasks.dll", entries);
        Assert.Contains("tasks/net10.0/Runcible.Core.dll", entries);
        Assert.Contains("tasks/net10.0/NuGet.Versioning.dll", entries);
        Assert.Contains("tasks/net10.0/ZstdSharp.dll", entries);
        Assert.DoesNotContain(entries, e => e.Contains("Microsoft.Build", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(entries, e => e.StartsWith("lib/", StringComparison.Ordinal));
    }

    /// <summary>Whether a PE file carries ReadyToRun (ahead-of-time) code: its CLI header points at a native header.</summary>
    private static bool IsReadyToRun(string path)
    {
        using var pe = new System.Reflection.PortableExecutable.PEReader(File.OpenRead(path));
        return pe.PEHeaders.CorHeader!.ManagedNativeHeaderDirectory.Size > 0;
    }

    /// <summary>Runcible.Core methods the JIT compiled at Tier0 while ComputeRuncBundleSettings ran from <paramref name="tasksAssembly"/>.</summary>
    private int CoreMethodsJitted(string project, string tasksAssembly)
    {
        var log = Path.Combine(sdk.Root, "jit-" + Guid.NewGuid().ToString("N")[..8] + ".txt");
        var environment = sdk.Environment;
        environment["DOTNET_JitDisasmSummary"] = "1";
        environment["DOTNET_JitStdOutFile"] = log;
        ProcessRunner.Run("dotnet", ["msbuild", project, "-nodeReuse:false", "-nologo", "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64",
            "-p:RuncibleTasksAssembly=" + tasksAssembly], Path.GetDirectoryName(project), environment, timeout: TimeSpan.FromMinutes(5)).EnsureSuccess("msbuild");
        return File.ReadLines(log).Count(l => l.Contains("JIT compiled Runcible.Core.", StringComparison.Ordinal) && l.Contains("Tier0", StringComparison.Ordinal));
    }

    [Fact]
    public void DotnetTenLoadsTheTasksAheadOfTimeCompiledForIt()
    {
        var project = sdk.CreateProject("Hello.App", PackageReferenceProject());
        var props = Properties(sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64", "-getProperty:RuncibleTasksAssembly", "-getProperty:RuncibleSdkVersion"));
        var tasks = Path.Combine(sdk.Root, "packages", "runcible.sdk", SdkPackageFixture.Version, "tasks");
        Assert.Equal(Path.Combine(tasks, "net10.0", "Runcible.Tasks.dll"), Path.GetFullPath(props["RuncibleTasksAssembly"]));

        Assert.True(IsReadyToRun(Path.Combine(tasks, "net10.0", "Runcible.Core.dll")));
        Assert.True(IsReadyToRun(Path.Combine(tasks, "net10.0", "Runcible.Tasks.dll")));
        Assert.False(IsReadyToRun(Path.Combine(tasks, "net8.0", "Runcible.Core.dll")));

        // And the runtime uses that code: the same settings computed by the IL build JIT-compile dozens of Core methods.
        var aheadOfTime = CoreMethodsJitted(project, Path.Combine(tasks, "net10.0", "Runcible.Tasks.dll"));
        var jitted = CoreMethodsJitted(project, Path.Combine(tasks, "net8.0", "Runcible.Tasks.dll"));
        Assert.True(jitted >= 20, $"the IL build JIT-compiled only {jitted} Core methods: the measure does not tell");
        Assert.True(aheadOfTime * 4 < jitted, $"ReadyToRun build: {aheadOfTime} Core methods JIT-compiled, IL build: {jitted}");
    }

    [Fact]
    public void PackageReferenceResolvesSettingsAndInfersTheBaseImage()
    {
        var project = sdk.CreateProject("Hello.App", PackageReferenceProject());
        var props = Properties(sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64",
            "-getProperty:RuncBundleName", "-getProperty:RuncBundleVersion", "-getProperty:RuncBaseImage", "-getProperty:RuncBundlePath",
            "-getProperty:RuncBundleCompression", "-getProperty:RuncBundleCompressionLevel", "-getProperty:RuncNotify", "-getProperty:RuncibleSdkVersion", "-getProperty:RuncibleTasksAssembly"));
        Assert.Equal("hello-app", props["RuncBundleName"]);
        Assert.Equal("2.1.0", props["RuncBundleVersion"]);
        Assert.Equal("mcr.microsoft.com/dotnet/aspnet:10.0", props["RuncBaseImage"]);
        Assert.EndsWith("hello-app-2.1.0.tar.gz", props["RuncBundlePath"]);
        Assert.Equal("gzip", props["RuncBundleCompression"]);
        Assert.Equal("2", props["RuncBundleCompressionLevel"]);
        Assert.Equal("false", props["RuncNotify"]);
        Assert.Equal(SdkPackageFixture.Version, props["RuncibleSdkVersion"]);
        Assert.StartsWith(Path.Combine(sdk.Root, "packages", "runcible.sdk"), Path.GetFullPath(props["RuncibleTasksAssembly"]));

        // Self-contained zstd with a family: runtime-deps, the family tag (-extra: a chiseled family for an app that is
        // not invariant-globalized, as the SDK chooses) and the .tar.zst name.
        var props2 = Properties(sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-arm64",
            "-p:SelfContained=true", "-p:ContainerFamily=noble-chiseled", "-p:RuncBundleCompression=zstd", "-p:RuncBundleName=api",
            "-getProperty:RuncBaseImage", "-getProperty:RuncBundlePath", "-getProperty:RuncBundleCompressionLevel"));
        Assert.Equal("mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled-extra", props2["RuncBaseImage"]);
        Assert.EndsWith("api-2.1.0.tar.zst", props2["RuncBundlePath"]);
        Assert.Equal("3", props2["RuncBundleCompressionLevel"]);

        // An explicit level is passed through; none has no level.
        var props3 = Properties(sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64",
            "-p:RuncBundleCompressionLevel=9", "-getProperty:RuncBundleCompressionLevel", "-getProperty:RuncBundleCompression"));
        Assert.Equal("9", props3["RuncBundleCompressionLevel"]);
        var props4 = Properties(sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64",
            "-p:RuncBundleCompression=none", "-getProperty:RuncBundleCompressionLevel", "-getProperty:RuncBundlePath"));
        Assert.Equal("", props4["RuncBundleCompressionLevel"]);
        Assert.EndsWith("hello-app-2.1.0.tar", props4["RuncBundlePath"]);
    }

    [Fact]
    public void TheSettingsStampIsRewrittenOnlyWhenASettingChanges()
    {
        var project = sdk.CreateProject("Hello.App", PackageReferenceProject());
        var stamp = Path.Combine(Path.GetDirectoryName(project)!, "obj", "Debug", "net10.0", "runc-bundle.settings.json");
        sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64").EnsureSuccess("first");
        var first = File.GetLastWriteTimeUtc(stamp);
        var firstContent = File.ReadAllText(stamp);
        Thread.Sleep(1100);
        sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64").EnsureSuccess("same");
        Assert.Equal(first, File.GetLastWriteTimeUtc(stamp));
        sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64", "-p:ContainerUser=app").EnsureSuccess("changed");
        var userContent = File.ReadAllText(stamp);
        Assert.NotEqual(firstContent, userContent);

        // A file removed from the publish output changes no remaining timestamp; the stamp catches it.
        var publish = Path.Combine(Path.GetDirectoryName(project)!, "bin", "Debug", "net10.0", "publish");
        Directory.CreateDirectory(publish);
        File.WriteAllText(Path.Combine(publish, "extra.json"), "{}");
        sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64", "-p:ContainerUser=app").EnsureSuccess("with file");
        var withFile = File.ReadAllText(stamp);
        Assert.NotEqual(userContent, withFile);
        File.Delete(Path.Combine(publish, "extra.json"));
        sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64", "-p:ContainerUser=app").EnsureSuccess("file removed");
        Assert.Equal(userContent, File.ReadAllText(stamp));

        // The compression level is a setting: the default written out changes nothing, another level does.
        sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64", "-p:ContainerUser=app", "-p:RuncBundleCompressionLevel=2").EnsureSuccess("default level");
        Assert.Equal(userContent, File.ReadAllText(stamp));
        sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64", "-p:ContainerUser=app", "-p:RuncBundleCompressionLevel=1").EnsureSuccess("level 1");
        Assert.NotEqual(userContent, File.ReadAllText(stamp));
    }

    [Theory]
    [InlineData("RUNCIBLE4001", "-p:ContainerRuntimeIdentifier=win-x64")]
    [InlineData("RUNCIBLE4004", "-p:RuncBundleName=Bad_Name")]
    [InlineData("RUNCIBLE4005", "-p:RuncBundleVersion=latest")]
    [InlineData("RUNCIBLE4006", "-p:RuncBundleCompression=xz")]
    [InlineData("RUNCIBLE4017", "-p:RuncBundleCompressionLevel=10")]
    [InlineData("RUNCIBLE4017", "-p:RuncBundleCompression=none -p:RuncBundleCompressionLevel=1")]
    [InlineData("RUNCIBLE4060", "-p:RuncNetwork=bridge")]
    public void MistakesAreCodedErrorsWithoutStackTraces(string code, string properties)
    {
        var project = sdk.CreateProject("Hello.App", PackageReferenceProject());
        var result = sdk.MSBuild(project, ["-t:PublishRuncBundle", "-p:ContainerRuntimeIdentifier=linux-x64", .. properties.Split(' ')]);
        Assert.NotEqual(0, result.ExitCode);
        var output = result.StandardOutput + result.StandardError;
        Assert.Contains($"error {code}:", output);
        Assert.DoesNotContain("   at ", output);
        Assert.DoesNotContain("RUNCIBLE9001", output);
    }

    [Fact]
    public void RuncNotifyIsInferredFromTheSystemdHostingPackage()
    {
        var project = sdk.CreateProject("Worker", $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Runcible.Sdk" Version="{SdkPackageFixture.Version}" PrivateAssets="all" />
                <PackageReference Include="Microsoft.Extensions.Hosting.Systemd" Version="10.0.14" />
              </ItemGroup>
            </Project>
            """);
        var props = Properties(sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64", "-getProperty:RuncNotify", "-getProperty:RuncBundleName"));
        Assert.Equal("true", props["RuncNotify"]);
        var explicitFalse = Properties(sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerRuntimeIdentifier=linux-x64", "-p:RuncNotify=false", "-getProperty:RuncNotify", "-getProperty:RuncBundleName"));
        Assert.Equal("false", explicitFalse["RuncNotify"]);
    }

    [Fact]
    public void MsbuildSdkFormImportsTheSameTargets()
    {
        var project = sdk.CreateProject("Worker", $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <Sdk Name="Runcible.Sdk" Version="{SdkPackageFixture.Version}" />
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ContainerRuntimeIdentifier>linux-x64</ContainerRuntimeIdentifier>
              </PropertyGroup>
            </Project>
            """);
        var props = Properties(sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-getProperty:RuncBundleName", "-getProperty:RuncBaseImage", "-getProperty:RuncibleSdkImported"));
        Assert.Equal("worker", props["RuncBundleName"]);
        Assert.Equal("mcr.microsoft.com/dotnet/runtime:10.0", props["RuncBaseImage"]);
        Assert.Equal("true", props["RuncibleSdkImported"]);
    }
}
