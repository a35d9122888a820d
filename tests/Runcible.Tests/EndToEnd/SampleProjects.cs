using System.Security.Cryptography;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Sdk;

namespace Runcible.Tests.EndToEnd;

/// <summary>
/// Copies of the repository's samples in the packed-SDK fixture's directory (so its NuGet.config and
/// isolated package folder apply), published with the real <c>dotnet</c> CLI and the real stages.
/// </summary>
internal static class SampleProjects
{
    public static string Copy(SdkPackageFixture sdk, string sample, string? directoryName = null)
    {
        var source = Path.Combine(RepoPaths.Root, "samples", sample);
        var target = Path.Combine(sdk.Root, "e2e", directoryName ?? sample + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(target);
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(source, file);
            if (relative.StartsWith("bin/", StringComparison.Ordinal) || relative.StartsWith("obj/", StringComparison.Ordinal))
            {
                continue;
            }

            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(target, relative))!);
            File.Copy(file, Path.Combine(target, relative));
        }

        // The samples' central versions, with the Runcible.Sdk version the fixture packed.
        File.WriteAllText(Path.Combine(target, "Directory.Packages.props"), $"""
            <Project>
              <PropertyGroup>
                <ManagePackageVersionsCentrally>true</ManagePackageVersionsCentrally>
              </PropertyGroup>
              <ItemGroup>
                <PackageVersion Include="Runcible.Sdk" Version="{SdkPackageFixture.Version}" />
                <PackageVersion Include="Microsoft.Extensions.Hosting" Version="10.0.14" />
                <PackageVersion Include="Microsoft.Extensions.Hosting.Systemd" Version="10.0.14" />
              </ItemGroup>
            </Project>
            """);
        // The compiler embeds the project's directory (pdb paths) unless told otherwise; Runcible cannot make an
        // app reproducible that is not built reproducibly. (Under source control, ContinuousIntegrationBuild does this.)
        File.WriteAllText(Path.Combine(target, "Directory.Build.props"), """
            <Project>
              <PropertyGroup>
                <PathMap>$(MSBuildProjectDirectory)=/src</PathMap>
              </PropertyGroup>
            </Project>
            """);
        return Path.Combine(target, sample + ".csproj");
    }

    /// <summary>
    /// <c>dotnet publish -c Release -r linux-x64 -p:PublishRuncBundle=true</c> with the base image on the
    /// fixture registry; returns the process result. <paramref name="extra"/> adds properties.
    /// </summary>
    public static ProcessResult Publish(SdkPackageFixture sdk, string project, string baseImage, string cacheDirectory, params string[] extra) =>
        PublishFor(project, "linux-x64", baseImage, cacheDirectory, sdk.Environment, extra);

    /// <summary>As <see cref="Publish"/>, for <paramref name="runtimeIdentifier"/> (null: no <c>-r</c>, as a project using the SDK's defaults), in <paramref name="environment"/>.</summary>
    public static ProcessResult PublishFor(string project, string? runtimeIdentifier, string baseImage, string cacheDirectory, IDictionary<string, string?> environment, params string[] extra) =>
        ProcessRunner.Run(
            "dotnet",
            [
                "publish", project, "-c", "Release", "-nodeReuse:false", "-v:m",
                .. runtimeIdentifier is null ? Array.Empty<string>() : ["-r", runtimeIdentifier],
                "-p:PublishRuncBundle=true",
                "-p:ContainerBaseImage=" + baseImage,
                "-p:RuncCacheDirectory=" + cacheDirectory,
                // This sandbox's hard RLIMIT_NOFILE is 20000 and root here lacks CAP_SYS_RESOURCE to raise it.
                "-p:RuncOpenFilesLimit=4096",
                .. extra,
            ],
            Path.GetDirectoryName(project),
            environment,
            timeout: TimeSpan.FromMinutes(8));

    public static string Tarball(string project, string fileName) =>
        Path.Combine(Path.GetDirectoryName(project)!, "bin", "Release", "net10.0", "linux-x64", fileName);

    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }
}
