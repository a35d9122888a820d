using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Runcible.Tests.Infrastructure;
using Runcible.Tests.Infrastructure.Registry;
using Runcible.Tests.Sdk;

namespace Runcible.Tests.EndToEnd;

/// <summary>
/// A <c>linux-musl-x64</c> publish without <c>ContainerBaseImage</c> pulls the base image the SDK would infer,
/// <c>mcr.microsoft.com/dotnet/runtime:10.0-alpine</c>. mcr.microsoft.com is out of reach here, so the publish runs in
/// its own mount namespace whose private <c>/etc/hosts</c> maps that name to a random 127.x.y.z address, where an
/// anonymous TLS registry (certificate for mcr.microsoft.com from a test CA, trusted through <c>SSL_CERT_FILE</c>)
/// serves a fixture image under that tag. Only the choice of the tag is proven: the fixture image is the glibc
/// <c>runtime</c> one, not a musl image.
/// </summary>
[Collection(SdkPackageCollection.Name)]
public sealed class MuslBaseImagePublishTests(SdkPackageFixture sdk)
{
    private const string InferredReference = "mcr.microsoft.com/dotnet/runtime:10.0-alpine";

    [Fact]
    public async Task AMuslPublishWithoutABaseImagePullsTheAlpineTag()
    {
        // A random loopback address (not 127.0.0.1): port 443 there is free, also beside another run of this test.
        var address = new IPAddress([127, (byte)RandomNumberGenerator.GetInt32(1, 255), (byte)RandomNumberGenerator.GetInt32(0, 256), (byte)RandomNumberGenerator.GetInt32(1, 255)]);
        await using var registry = await RegistryServer.StartPublicStandInAsync(address, 443, "mcr.microsoft.com", TestContext.Current.CancellationToken);
        await registry.PushAsync(FixtureImages.Runtime, "dotnet/runtime:10.0-alpine", cancellationToken: TestContext.Current.CancellationToken);
        var pushedDigest = ProcessRunner.Run("skopeo", ["inspect", .. registry.InspectArguments(), "--format", "{{.Digest}}", $"docker://{registry.Host}/dotnet/runtime:10.0-alpine"])
            .EnsureSuccess("skopeo inspect").StandardOutput.Trim();

        using var work = new TempDirectory("runcible-e2e-musl");
        // The machine's own names stay resolvable (nuget.org for the musl apphost pack); only mcr.microsoft.com moves.
        var hosts = work.Combine("hosts");
        var machineHosts = File.ReadAllText("/etc/hosts");
        File.WriteAllText(hosts, machineHosts + $"\n{address} mcr.microsoft.com\n");
        // .NET on Linux reads its root store from SSL_CERT_FILE (OpenSSL's variable): the system roots plus the test CA.
        var roots = work.Combine("roots.pem");
        File.WriteAllText(roots, File.ReadAllText("/etc/ssl/certs/ca-certificates.crt") + "\n" + registry.CaCertificatePem + "\n");

        var project = sdk.CreateProject("Musl.App", $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Version>1.0.0</Version>
                <InvariantGlobalization>true</InvariantGlobalization>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Runcible.Sdk" Version="{SdkPackageFixture.Version}" PrivateAssets="all" />
              </ItemGroup>
            </Project>
            """);
        var environment = sdk.Environment;
        environment["SSL_CERT_FILE"] = roots;
        // unshare --mount gives the publish a private mount table (private propagation): the bind mount over
        // /etc/hosts is seen by it alone and ends with it.
        var publish = ProcessRunner.Run(
            "unshare",
            [
                "--mount", "--propagation", "private", "--", "/bin/sh", "-c", "mount --bind \"$1\" /etc/hosts && shift && exec \"$@\"", "musl-publish", hosts,
                "dotnet", "publish", project, "-c", "Release", "-nodeReuse:false", "-v:m", "-r", "linux-musl-x64",
                "-p:PublishRuncBundle=true",
                "-p:RuncCacheDirectory=" + work.Combine("cache"),
                // This sandbox's hard RLIMIT_NOFILE is 20000 and root here lacks CAP_SYS_RESOURCE to raise it.
                "-p:RuncOpenFilesLimit=4096",
            ],
            Path.GetDirectoryName(project),
            environment,
            timeout: TimeSpan.FromMinutes(8));
        publish.EnsureSuccess("musl publish\nregistry:\n" + registry.Output);
        Assert.Contains("Runcible: pulled " + InferredReference, publish.StandardOutput);

        var tarball = Path.Combine(Path.GetDirectoryName(project)!, "bin", "Release", "net10.0", "linux-musl-x64", "musl-app-1.0.0.tar.gz");
        Assert.True(File.Exists(tarball), tarball + "\n" + publish.StandardOutput);
        var root = work.Combine("root");
        Directory.CreateDirectory(root);
        PublishedSamples.Extract(tarball, root);
        var bundle = Path.Combine(root, "opt", "containers", "musl-app-1.0.0");
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(bundle, "bundle.json")));
        Assert.Equal("linux-musl-x64", manifest.RootElement.GetProperty("runtimeIdentifier").GetString());
        var baseImage = manifest.RootElement.GetProperty("base");
        Assert.Equal(InferredReference, baseImage.GetProperty("reference").GetString());
        Assert.Equal(pushedDigest, baseImage.GetProperty("digest").GetString());
        Assert.True(File.Exists(Path.Combine(bundle, "rootfs", "app", "Musl.App.dll")));

        // Nothing outside the namespace moved.
        Assert.Equal(machineHosts, File.ReadAllText("/etc/hosts"));
    }
}
