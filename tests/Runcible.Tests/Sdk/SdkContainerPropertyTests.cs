using System.Text.RegularExpressions;

namespace Runcible.Tests.Sdk;

/// <summary>The .NET SDK container properties a bundle cannot honour: warned about when the project sets them, never for the SDK's own defaults.</summary>
[Collection(SdkPackageCollection.Name)]
public class SdkContainerPropertyTests(SdkPackageFixture sdk)
{
    private string Project(string properties = "", string items = "") => sdk.CreateProject("Props.App", $"""
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <OutputType>Exe</OutputType>
            <TargetFramework>net10.0</TargetFramework>
            <RuntimeIdentifier>linux-x64</RuntimeIdentifier>
            {properties}
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="Runcible.Sdk" Version="{SdkPackageFixture.Version}" PrivateAssets="all" />
            {items}
          </ItemGroup>
        </Project>
        """);

    private static string[] Warnings(string output) =>
        Regex.Matches(output, @"warning RUNCIBLE4041: ([^\[\r\n]*)").Select(m => m.Groups[1].Value.Trim()).Distinct().ToArray();

    [Fact]
    public void PropertiesABundleCannotHonourAreWarnedAboutOnce()
    {
        var project = Project(
            "<ContainerImageTags>1.0.0;latest</ContainerImageTags><ContainerImageTag>1.0.0</ContainerImageTag><ContainerImageFormat>OCI</ContainerImageFormat><ContainerArchiveOutputPath>images/</ContainerArchiveOutputPath>",
            "<ContainerEntrypoint Include=\"/app/Props.App\" /><ContainerEntrypointArgs Include=\"--serve\" />");
        var result = sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-v:m", "-clp:NoSummary").EnsureSuccess("msbuild");
        var warnings = Warnings(result.StandardOutput);
        Assert.Equal(6, warnings.Length);
        Assert.Contains(warnings, w => w.Contains("property ContainerImageTags,", StringComparison.Ordinal) && w.Contains("RuncBundleVersion", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("property ContainerImageTag,", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("property ContainerEntrypoint,", StringComparison.Ordinal) && w.Contains("ContainerAppCommand", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("property ContainerEntrypointArgs,", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("property ContainerImageFormat,", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("property ContainerArchiveOutputPath,", StringComparison.Ordinal) && w.Contains("RuncBundleOutputPath", StringComparison.Ordinal));
        // Once per build (without MSBuild's summary, which repeats every warning).
        foreach (var property in new[] { "ContainerImageTags", "ContainerImageTag", "ContainerEntrypoint", "ContainerEntrypointArgs", "ContainerImageFormat", "ContainerArchiveOutputPath" })
        {
            Assert.Single(Regex.Matches(result.StandardOutput, $@"warning RUNCIBLE4041: The project sets the \.NET SDK container property {property},"));
        }
    }

    /// <summary>The SDK's container targets default ContainerImageTag to latest (and fill in others) when they run: not the user's doing.</summary>
    [Fact]
    public void TheSdksOwnDefaultsAreNotWarnedAbout()
    {
        var project = Project();
        var result = sdk.MSBuild(project, "-t:ComputeContainerConfig;ComputeRuncBundleSettings", "-v:m").EnsureSuccess("msbuild");
        Assert.Empty(Warnings(result.StandardOutput));
        Assert.DoesNotContain("RUNCIBLE4041", result.StandardOutput);
    }

    /// <summary>Without a runtime identifier, one Linux RID among ContainerRuntimeIdentifiers is the bundle's, with nothing to warn about.</summary>
    [Fact]
    public void OneLinuxContainerRuntimeIdentifierIsTheBundles()
    {
        var project = Project("<RuntimeIdentifier></RuntimeIdentifier><ContainerRuntimeIdentifiers>win-x64;linux-arm64</ContainerRuntimeIdentifiers>");
        var result = sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-v:m").EnsureSuccess("msbuild");
        Assert.Empty(Warnings(result.StandardOutput));
        var json = SdkPackageFixture.OutputJson(sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-getProperty:ContainerRuntimeIdentifier", "-getProperty:RuncBundlePath"));
        Assert.Equal("linux-arm64", json.GetProperty("Properties").GetProperty("ContainerRuntimeIdentifier").GetString());
        Assert.EndsWith("props-app-1.0.0.tar.gz", json.GetProperty("Properties").GetProperty("RuncBundlePath").GetString());
    }

    /// <summary>ContainerGenerateLabels (default true): the SDK's labels from the same properties; its switches turn each off (the base image's name stays).</summary>
    [Fact]
    public void TheSdksGeneratedLabelsComeFromTheSameProperties()
    {
        var project = Project("<Description>Props app</Description><Authors>Jo</Authors><PackageLicenseExpression>MIT</PackageLicenseExpression><ContainerVendor>Acme</ContainerVendor><Version>1.2.3</Version>");
        var labels = Labels(project, sdk.MSBuild(project, "-t:ComputeRuncBundleSettings"));
        Assert.Equal("Props app", labels["org.opencontainers.image.description"]);
        Assert.Equal("Props app", labels["org.opencontainers.artifact.description"]);
        Assert.Equal("Jo", labels["org.opencontainers.image.authors"]);
        Assert.Equal("MIT", labels["org.opencontainers.image.licenses"]);
        Assert.Equal("Acme", labels["org.opencontainers.image.vendor"]);
        Assert.Equal("1.2.3", labels["org.opencontainers.image.version"]);
        Assert.Equal("10.0", labels["net.dot.runtime.majorminor"]);
        Assert.False(labels.ContainsKey("org.opencontainers.image.created"));
        Assert.False(labels.ContainsKey("org.opencontainers.image.source"));

        var fewer = Labels(project, sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerGenerateLabelsImageAuthors=false"));
        Assert.False(fewer.ContainsKey("org.opencontainers.image.authors"));
        Assert.True(fewer.ContainsKey("org.opencontainers.image.licenses"));
        Assert.Empty(Labels(project, sdk.MSBuild(project, "-t:ComputeRuncBundleSettings", "-p:ContainerGenerateLabels=false")));
    }

    /// <summary>Settings only the config stage used: now refused before the base image is pulled (its registry is unreachable here).</summary>
    [Theory]
    [InlineData("RUNCIBLE3009", "-p:ContainerAppCommandInstruction=Bogus")]
    [InlineData("RUNCIBLE3011", "-p:RuncOpenFilesLimit=5")]
    [InlineData("RUNCIBLE3002", "-p:ContainerUser=app:web:x")]
    [InlineData("RUNCIBLE4030", "-p:RuncCpuLimit=lots")]
    public void RuntimeSettingMistakesFailBeforeThePull(string code, string property)
    {
        var project = Project();
        var publish = Path.Combine(Path.GetDirectoryName(project)!, "bin", "Debug", "net10.0", "linux-x64", "publish");
        Directory.CreateDirectory(publish);
        File.WriteAllText(Path.Combine(publish, "Props.App.dll"), "not really");
        var result = sdk.MSBuild(project, "-t:PublishRuncBundle", "-p:ContainerBaseImage=127.0.0.1:9/unreachable:latest",
            "-p:RuncCacheDirectory=" + Path.Combine(Path.GetDirectoryName(project)!, "cache"), property);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains($"error {code}:", result.StandardOutput);
        Assert.DoesNotMatch(@"RUNCIBLE1\d{3}", result.StandardOutput);
    }

    /// <summary>The bundle's labels, as the settings document the build wrote carries them.</summary>
    private static Dictionary<string, string> Labels(string project, Infrastructure.ProcessResult result)
    {
        result.EnsureSuccess("msbuild");
        var document = Assert.Single(Directory.GetFiles(Path.Combine(Path.GetDirectoryName(project)!, "obj"), "runc-bundle.settings.json", SearchOption.AllDirectories));
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(document));
        return json.RootElement.GetProperty("container").GetProperty("labels").EnumerateArray()
            .ToDictionary(l => l.GetProperty("key").GetString()!, l => l.GetProperty("value").GetString()!);
    }
}
