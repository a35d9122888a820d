using System.Security;
using System.Text;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Sdk;

/// <summary>
/// For each row of project properties, the base image the installed .NET SDK's own targets infer
/// (<c>ComputeContainerBaseImage</c>, its ComputeDotnetBaseImageAndTag task) is the one Runcible's targets choose
/// for the same project (<c>ComputeRuncBundleSettings</c>). Both run in one MSBuild process, each row in its own
/// project instances, as a publish (<c>_IsPublishing</c>) does.
/// </summary>
[Collection(SdkPackageCollection.Name)]
public class SdkBaseImageInferenceTests(SdkPackageFixture sdk)
{
    private const string Preview = "NETCoreSdkVersion=11.0.100-preview.3.25201.16";

    /// <summary>Rows: the properties (';'-separated; lists inside a value with '%3B'), and what both must say.</summary>
    private static readonly (string Properties, string Image)[] Rows =
    [
        ("RuntimeIdentifier=linux-x64", "runtime:10.0"),
        ("RuntimeIdentifier=linux-x64;TestWeb=true", "aspnet:10.0"),
        ("RuntimeIdentifier=linux-musl-x64;TestWeb=true", "aspnet:10.0-alpine"),
        ("RuntimeIdentifier=linux-musl-arm64", "runtime:10.0-alpine"),
        ("RuntimeIdentifier=linux-x64;SelfContained=true", "runtime-deps:10.0"),
        ("RuntimeIdentifier=linux-x64;PublishSelfContained=true;TestWeb=true", "runtime-deps:10.0"),
        ("RuntimeIdentifier=linux-x64;PublishAot=true", "runtime-deps:10.0-noble-chiseled-extra"),
        ("RuntimeIdentifier=linux-x64;PublishAot=true;InvariantGlobalization=true", "runtime-deps:10.0-noble-chiseled"),
        ("RuntimeIdentifier=linux-musl-x64;PublishAot=true", "runtime-deps:10.0-alpine-extra"),
        ("RuntimeIdentifier=linux-musl-x64;PublishAot=true;InvariantGlobalization=true", "runtime-deps:10.0-alpine"),
        ("RuntimeIdentifier=linux-arm64;PublishTrimmed=true", "runtime-deps:10.0-noble-chiseled-extra"),
        ("RuntimeIdentifier=linux-x64;PublishTrimmed=true;InvariantGlobalization=true;TestWeb=true", "runtime-deps:10.0-noble-chiseled"),
        ("RuntimeIdentifier=linux-x64;TestWeb=true;ContainerFamily=noble-chiseled", "aspnet:10.0-noble-chiseled-extra"),
        ("RuntimeIdentifier=linux-x64;TestWeb=true;ContainerFamily=noble-chiseled;InvariantGlobalization=true", "aspnet:10.0-noble-chiseled"),
        ("RuntimeIdentifier=linux-musl-x64;TestWeb=true;ContainerFamily=alpine", "aspnet:10.0-alpine"),
        ("RuntimeIdentifier=linux-x64;ContainerFamily=noble", "runtime:10.0-noble"),
        ("RuntimeIdentifier=linux-x64;TargetFramework=net8.0", "runtime:8.0"),
        ("RuntimeIdentifier=linux-musl-x64;TargetFramework=net8.0;PublishAot=true", "runtime-deps:8.0-alpine-extra"),
        ("RuntimeIdentifier=linux-x64;TargetFramework=net9.0;ContainerFamily=jammy-chiseled", "runtime:9.0-jammy-chiseled-extra"),
        // Before .NET 8 a runtime identifier implies self-contained.
        ("RuntimeIdentifier=linux-musl-x64;TargetFramework=net6.0", "runtime-deps:6.0-alpine"),
        ("RuntimeIdentifier=linux-x64;TargetFramework=net7.0;ContainerFamily=jammy-chiseled", "runtime-deps:7.0-jammy-chiseled"),
        ("RuntimeIdentifier=linux-x64;TargetFramework=net8.0;PublishAot=true;NETCoreSdkVersion=8.0.204", "runtime-deps:8.0-jammy-chiseled-extra"),
        ("", "runtime:10.0"),
        ("TestWeb=true;RuntimeIdentifiers=linux-musl-x64%3Blinux-musl-arm64", "aspnet:10.0-alpine"),
        ("ContainerRuntimeIdentifiers=linux-musl-arm64", "runtime:10.0-alpine"),
        ("ContainerRuntimeIdentifier=linux-musl-x64;RuntimeIdentifier=linux-x64", "runtime:10.0-alpine"),
        ("RuntimeIdentifier=linux-x64;TestWeb=true;TargetFramework=net11.0;" + Preview, "aspnet:11.0.0-preview.3"),
        ("RuntimeIdentifier=linux-x64;TestWeb=true;TargetFramework=net11.0;ContainerFamily=noble-chiseled;" + Preview, "aspnet:11.0.0-preview.3-noble-chiseled"),
        ("RuntimeIdentifier=linux-x64;TargetFramework=net10.0;" + Preview, "runtime:10.0"),
        ("RuntimeIdentifier=linux-x64;NETCoreSdkVersion=10.0.100-rc.2.25502.107", "runtime:10.0.0-rc.2"),
        ("RuntimeIdentifier=linux-x64;TargetFramework=net11.0;NETCoreSdkVersion=11.0.100-alpha.1.25100.1", "runtime:11.0-preview"),
        ("RuntimeIdentifier=linux-x64;TargetFramework=net11.0;NETCoreSdkVersion=11.0.200-preview.1.25300.1", "runtime:11.0"),
    ];

    [Fact]
    public void RuncibleInfersTheBaseImageTheSdksOwnTargetsInfer()
    {
        var project = sdk.CreateProject("Inferred", $$"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Runcible.Sdk" Version="{{SdkPackageFixture.Version}}" PrivateAssets="all" />
                <FrameworkReference Include="Microsoft.AspNetCore.App" Condition="'$(TestWeb)' == 'true'" />
              </ItemGroup>
              <Target Name="RuncBaseImageForTest" DependsOnTargets="ComputeRuncBundleSettings" Returns="$(RuncBaseImage)" />
            </Project>
            """);
        sdk.MSBuild(project, "-t:Restore").EnsureSuccess("restore");

        var rows = Rows;
        var driver = new StringBuilder("<Project>\n  <Target Name=\"Compare\">\n");
        for (var i = 0; i < rows.Length; i++)
        {
            var properties = SecurityElement.Escape(("_IsPublishing=true;" + rows[i].Properties).TrimEnd(';'));
            driver.Append($"""
                    <MSBuild Projects="{project}" Targets="ComputeContainerBaseImage" Properties="{properties};TestSide=sdk">
                      <Output TaskParameter="TargetOutputs" PropertyName="Sdk{i}" />
                    </MSBuild>
                    <MSBuild Projects="{project}" Targets="RuncBaseImageForTest" Properties="{properties};TestSide=runcible">
                      <Output TaskParameter="TargetOutputs" PropertyName="Runcible{i}" />
                    </MSBuild>
                    <Message Importance="high" Text="ROW {i} $(Sdk{i}) $(Runcible{i})" />

                """);
        }

        driver.Append("  </Target>\n</Project>\n");
        var driverPath = Path.Combine(Path.GetDirectoryName(project)!, "compare.proj");
        File.WriteAllText(driverPath, driver.ToString());
        var output = ProcessRunner.Run("dotnet", ["msbuild", driverPath, "-nodeReuse:false", "-nologo", "-v:m"], Path.GetDirectoryName(project), sdk.Environment, timeout: TimeSpan.FromMinutes(10))
            .EnsureSuccess("msbuild compare.proj").StandardOutput;

        var results = output.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("ROW ", StringComparison.Ordinal))
            .Select(l => l.Split(' ')).ToDictionary(p => int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture), p => (Sdk: p[2], Runcible: p[3]));
        Assert.Equal(rows.Length, results.Count);
        var mismatches = new List<string>();
        for (var i = 0; i < rows.Length; i++)
        {
            var expected = "mcr.microsoft.com/dotnet/" + rows[i].Image;
            if (results[i].Sdk != expected || results[i].Runcible != expected)
            {
                mismatches.Add($"[{rows[i].Properties}] expected {expected}, the SDK's targets say {results[i].Sdk}, Runcible's {results[i].Runcible}");
            }
        }

        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }
}
