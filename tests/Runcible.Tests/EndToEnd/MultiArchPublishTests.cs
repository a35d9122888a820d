using System.Text.Json;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using Runcible.Tests.Layers;
using Runcible.Tests.Sdk;

namespace Runcible.Tests.EndToEnd;

/// <summary>
/// <c>ContainerRuntimeIdentifiers</c> (through RuntimeIdentifiers, as the SDK defaults it): one publish gives a bundle
/// per Linux RID, each from the matching manifest of the base image's index; a Windows RID is skipped with a message.
/// </summary>
[Collection(SdkPackageCollection.Name)]
public sealed class MultiArchPublishTests(SdkPackageFixture sdk, SharedRegistries registries)
{
    [Fact]
    public async Task OnePublishGivesABundlePerLinuxRuntimeIdentifierFromItsManifest()
    {
        var registry = await registries.AnonymousAsync();
        using var work = new TempDirectory("runcible-e2e-multiarch");
        // No apphost: the arm64 one would be another package to restore; `dotnet Multi.App.dll` runs on both.
        var project = sdk.CreateProject("Multi.App", $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Version>1.0.0</Version>
                <UseAppHost>false</UseAppHost>
                <InvariantGlobalization>true</InvariantGlobalization>
                <RuntimeIdentifiers>linux-x64;linux-arm64;win-x64</RuntimeIdentifiers>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Runcible.Sdk" Version="{SdkPackageFixture.Version}" PrivateAssets="all" />
              </ItemGroup>
            </Project>
            """);
        var publish = SampleProjects.PublishFor(project, null, registry.Host + "/multiarch:latest", work.Combine("cache"), sdk.Environment)
            .EnsureSuccess("publish for two architectures");
        Assert.Contains("no bundle for win-x64", publish.StandardOutput);

        foreach (var (rid, arch) in new[] { ("linux-x64", "amd64"), ("linux-arm64", "arm64") })
        {
            var tarball = Path.Combine(Path.GetDirectoryName(project)!, "bin", "Release", "net10.0", rid, $"multi-app-1.0.0-{rid}.tar.gz");
            Assert.True(File.Exists(tarball), tarball + "\n" + publish.StandardOutput);
            Assert.Contains("-> " + tarball, publish.StandardOutput);

            var root = work.Combine("root-" + rid);
            Directory.CreateDirectory(root);
            PublishedSamples.Extract(tarball, root);
            var bundle = Path.Combine(root, "opt", "containers", "multi-app-1.0.0");
            using (var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(bundle, "bundle.json"))))
            {
                Assert.Equal(rid, manifest.RootElement.GetProperty("runtimeIdentifier").GetString());
                Assert.Equal(arch, manifest.RootElement.GetProperty("platform").GetProperty("architecture").GetString());
            }

            var rootfs = Path.Combine(bundle, "rootfs");
            Assert.True(File.Exists(Path.Combine(rootfs, "app", "Multi.App.dll")), rid);
            Directory.Delete(Path.Combine(rootfs, "app"), recursive: true);

            // The rootfs is what umoci unpacks from that architecture's manifest of the index.
            var layout = work.Combine("layout-" + arch);
            ProcessRunner.Run("skopeo", ["copy", "--quiet", "--insecure-policy", "--override-arch", arch, "--override-os", "linux", FixtureImages.SkopeoReference(FixtureImages.MultiArch), "oci:" + layout + ":" + arch])
                .EnsureSuccess("skopeo copy " + arch);
            var umoci = FlattenAssertions.UmociUnpack(layout, arch, work.Combine("umoci-" + arch));
            FlattenAssertions.AssertSameTree(umoci, rootfs, rid);
        }
    }
}
