using System.IO.Compression;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Sdk;

/// <summary>
/// Packs Runcible.Sdk with the real dotnet CLI into a local feed in a temp directory, with an isolated
/// NuGet package folder and a NuGet.config pointing at that feed and nuget.org.
/// </summary>
public sealed class SdkPackageFixture : IDisposable
{
    public const string Version = "0.1.0-test";

    /// <summary>The project URL the test pack gives the package (a reserved .invalid name: the project has no public address yet).</summary>
    public const string ProjectUrl = "https://runcible.invalid/";

    private readonly TempDirectory _temp = new("runcible-sdk");

    public SdkPackageFixture()
    {
        Directory.CreateDirectory(Feed);
        ProcessRunner.Run(
                "dotnet",
                ["pack", Path.Combine(RepoPaths.Root, "sdk", "Runcible.Sdk.csproj"), "-c", "Release", "-o", Feed, "-p:PackageVersion=" + Version, "-p:RuncibleProjectUrl=" + ProjectUrl, "-nodeReuse:false"],
                environment: Environment,
                timeout: TimeSpan.FromMinutes(5))
            .EnsureSuccess("dotnet pack Runcible.Sdk");
        File.WriteAllText(Path.Combine(_temp.Path, "NuGet.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{Feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
            </configuration>
            """);
    }

    public string Root => _temp.Path;

    public string Feed => _temp.Combine("feed");

    public string PackagePath => Path.Combine(Feed, $"Runcible.Sdk.{Version}.nupkg");

    /// <summary>Isolated NuGet caches and no shared build servers, so nothing outlives a test.</summary>
    public IDictionary<string, string?> Environment => new Dictionary<string, string?>
    {
        ["NUGET_PACKAGES"] = _temp.Combine("packages"),
        ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        ["DOTNET_NOLOGO"] = "1",
        ["MSBUILDDISABLENODEREUSE"] = "1",
        ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0",
        ["SOURCE_DATE_EPOCH"] = null,
    };

    public IReadOnlyList<string> PackageEntries()
    {
        using var zip = ZipFile.OpenRead(PackagePath);
        return zip.Entries.Select(e => e.FullName).ToList();
    }

    /// <summary>A new project directory (under the directory holding NuGet.config) with the given project file.</summary>
    public string CreateProject(string name, string projectXml)
    {
        var dir = Path.Combine(Root, "projects", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, name + ".csproj"), projectXml);
        File.WriteAllText(Path.Combine(dir, "Program.cs"), "System.Console.WriteLine(\"hello\");\n");
        return Path.Combine(dir, name + ".csproj");
    }

    public ProcessResult MSBuild(string project, params string[] arguments) =>
        ProcessRunner.Run("dotnet", ["msbuild", project, "-restore", "-nodeReuse:false", "-nologo", .. arguments], Path.GetDirectoryName(project), Environment, timeout: TimeSpan.FromMinutes(5));

    /// <summary>The JSON document <c>dotnet msbuild -getProperty:/-getItem:</c> prints, after whatever was logged before it.</summary>
    public static System.Text.Json.JsonElement OutputJson(ProcessResult result)
    {
        result.EnsureSuccess("dotnet msbuild");
        using var doc = System.Text.Json.JsonDocument.Parse(result.StandardOutput[result.StandardOutput.IndexOf('{')..]);
        return doc.RootElement.Clone();
    }

    public void Dispose() => _temp.Dispose();
}

/// <summary>
/// One pack for all SDK tests, and no two of them packing or building in the repository at once; the samples
/// published with it (<see cref="EndToEnd.PublishedSamples"/>) are shared the same way.
/// </summary>
[CollectionDefinition(Name)]
public sealed class SdkPackageCollection : ICollectionFixture<SdkPackageFixture>, ICollectionFixture<EndToEnd.PublishedSamples>
{
    public const string Name = "Runcible.Sdk package";
}
