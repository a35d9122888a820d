using System.Text.Json;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>The runtime config stage as the bundle pipeline calls it: project settings in, config.json and the host contract out.</summary>
public class RuntimeConfigStageTests
{
    private static BundleSettings Settings(bool rootless = false, IReadOnlyList<BundleVolume>? volumes = null) => new(
        "helloweb", "1.2.0", "linux-x64", "net10.0", BundleCompression.Gzip, BundleCompressionLevels.DefaultGzip, 45, "/srv/app", rootless, WritableRootfs: false, Notify: true,
        Offline: false, DateTimeOffset.UnixEpoch, volumes ?? [new BundleVolume("state", "/var/lib/helloweb")]);

    private static PulledImage Image(ImageConfiguration config)
    {
        var digest = Digest.ComputeSha256("x"u8.ToArray());
        return new PulledImage("example/aspnet:10.0", digest, null, new ImageManifest { SchemaVersion = 2, Layers = [] }, digest, [], config, []);
    }

    [Fact]
    public void MapsTheProjectSettingsIntoConfigJsonAndTheHostContract()
    {
        using var temp = new TempDirectory("stage");
        var rootfs = new DirectoryRootfsReader(RuntimeSpecFixtures.WriteRootfs(temp.Path));
        var output = new RuntimeConfigStage().Create(Image(RuntimeSpecFixtures.Runtime()), rootfs, Settings(), new ContainerSettings
        {
            AssemblyName = "HelloWeb",
            AppHostName = "HelloWeb",
            EnvironmentVariables = [new("HELLOWEB_DATA", "/var/lib/helloweb")],
            Labels = [new("team", "web")],
            Ports = ["8080/tcp"],
            OpenFilesLimit = 4096,
        });

        using var config = JsonDocument.Parse(output.ConfigJson);
        var process = config.RootElement.GetProperty("process");
        Assert.Equal(["dotnet", "/srv/app/HelloWeb.dll"], process.GetProperty("args").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal("/srv/app", process.GetProperty("cwd").GetString());
        Assert.Equal(1654u, process.GetProperty("user").GetProperty("uid").GetUInt32());
        Assert.Contains("HELLOWEB_DATA=/var/lib/helloweb", process.GetProperty("env").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(4096ul, process.GetProperty("rlimits")[0].GetProperty("hard").GetUInt64());
        Assert.Equal("web", config.RootElement.GetProperty("annotations").GetProperty("team").GetString());
        Assert.Equal("helloweb", config.RootElement.GetProperty("hostname").GetString());

        Assert.Equal((1654u, 1654u), (output.ContainerUid, output.ContainerGid));
        Assert.Equal(["state"], output.DataDirectories);
        var info = Assert.IsType<BundleRuntimeInfo>(output.RuntimeInfo);
        Assert.Equal(("helloweb", "1.2.0", 45, true), (info.Name, info.Version, info.StopTimeoutSeconds, info.Notify));
        Assert.Equal("/var/lib/helloweb", Assert.Single(info.Volumes).ContainerPath);
    }

    [Fact]
    public void SelfContainedRunsTheApphostOnlyWhenThereIsOne()
    {
        using var temp = new TempDirectory("stage");
        var rootfs = new DirectoryRootfsReader(RuntimeSpecFixtures.WriteRootfs(temp.Path));
        var withApphost = new RuntimeConfigStage().Create(Image(RuntimeSpecFixtures.RuntimeDeps()), rootfs, Settings(), new ContainerSettings
        {
            AssemblyName = "Tool", SelfContained = true, AppHostName = "Tool",
        });
        using var config = JsonDocument.Parse(withApphost.ConfigJson);
        Assert.Equal(["/srv/app/Tool"], config.RootElement.GetProperty("process").GetProperty("args").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(65536ul, config.RootElement.GetProperty("process").GetProperty("rlimits")[0].GetProperty("soft").GetUInt64());
    }

    [Theory]
    [InlineData("entrypoint", nameof(AppCommandInstruction.Entrypoint))]
    [InlineData("DefaultArgs", nameof(AppCommandInstruction.DefaultArgs))]
    [InlineData("None", nameof(AppCommandInstruction.None))]
    [InlineData("", nameof(AppCommandInstruction.Default))]
    [InlineData(null, nameof(AppCommandInstruction.Default))]
    public void ParsesTheAppCommandInstructionAsTheDotNetSdkSpellsIt(string? value, string expectedName) =>
        Assert.Equal(Enum.Parse<AppCommandInstruction>(expectedName), ContainerSettingsValidator.ParseInstruction(value));

    [Fact]
    public void RejectsAnUnknownInstructionAndABadFileLimitWithCodes()
    {
        Assert.Equal("RUNCIBLE3009", Assert.Throws<RuncibleException>(() => ContainerSettingsValidator.ParseInstruction("Cmd")).Code);
        foreach (var bad in new[] { "10", "lots", "-1", "2000000" })
        {
            var e = Assert.Throws<RuncibleException>(() => ContainerSettingsValidator.ParseOpenFilesLimit(bad));
            Assert.Equal("RUNCIBLE3011", e.Code);
            Assert.Contains("RuncOpenFilesLimit", e.Message);
        }
    }
}
