using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;

namespace Runcible.Tests.Bundle;

public class BundleSettingsValidatorTests
{
    internal static readonly RawBundleSettings Good = new()
    {
        AssemblyName = "Hello.Web_App",
        BundleVersion = "1.2.3",
        RuntimeIdentifier = "linux-x64",
        TargetFramework = "net10.0",
    };

    [Fact]
    public void DefaultsAreFilledIn()
    {
        var settings = new BundleSettingsValidator().Validate(Good);
        Assert.Equal("hello-web-app", settings.Name);
        Assert.Equal("1.2.3", settings.Version);
        Assert.Equal(BundleCompression.Gzip, settings.Compression);
        Assert.Equal(2, settings.CompressionLevel);
        Assert.Equal("/app", settings.WorkingDirectory);
        Assert.Equal(30, settings.StopTimeoutSeconds);
        Assert.Equal(BundleSettingsValidator.DefaultEpoch, settings.Created);
        Assert.Equal("hello-web-app-1.2.3.tar.gz", settings.FileName);
        Assert.Equal("opt/containers/hello-web-app-1.2.3/", settings.TreePrefix);
        Assert.False(settings.Rootless);
    }

    [Fact]
    public void ExplicitValuesAreKept()
    {
        var settings = new BundleSettingsValidator().Validate(Good with
        {
            BundleName = "api",
            BundleVersion = "2.0.0-beta.1",
            Compression = "ZSTD",
            StopTimeout = "90",
            WorkingDirectory = "/srv/api",
            Rootless = "true",
            SourceDateEpoch = "1700000000",
            TargetFramework = "",
            TargetFrameworks = "net10.0",
            Volumes = [new BundleVolume("state", "/var/lib/api"), new BundleVolume("cache", "/var/cache/api")],
        });
        Assert.Equal("api-2.0.0-beta.1.tar.zst", settings.FileName);
        Assert.Equal(3, settings.CompressionLevel);
        Assert.Equal(90, settings.StopTimeoutSeconds);
        Assert.Equal("/srv/api", settings.WorkingDirectory);
        Assert.True(settings.Rootless);
        Assert.Equal("net10.0", settings.TargetFramework);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), settings.Created);
        Assert.Equal(["cache", "state"], settings.Volumes.Select(v => v.Name));
    }

    /// <summary>The .NET SDK's own default is <c>/app/</c>: accepted, and the bundle uses the directory without the slash.</summary>
    [Theory]
    [InlineData("/app/", "/app")]
    [InlineData("/srv/api//", "/srv/api")]
    [InlineData("/app", "/app")]
    public void AWorkingDirectoryWithATrailingSlashIsNormalized(string written, string used) =>
        Assert.Equal(used, new BundleSettingsValidator().Validate(Good with { WorkingDirectory = written }).WorkingDirectory);

    /// <summary>As the SDK's containers: with no RuntimeIdentifier, the first Linux ContainerRuntimeIdentifiers one, else linux-&lt;the SDK's architecture&gt;.</summary>
    [Theory]
    [InlineData(null, "linux-x64", "linux-x64")]
    [InlineData(null, "linux-arm64", "linux-arm64")]
    [InlineData(null, "linux-musl-arm64", "linux-arm64")]
    [InlineData("win-x64;linux-musl-arm64;linux-x64", "linux-x64", "linux-musl-arm64")]
    [InlineData("win-x64;osx-arm64", "linux-x64", "linux-x64")]
    public void WithoutARuntimeIdentifierTheSdksDefaultIsUsed(string? containerRuntimeIdentifiers, string sdkRuntimeIdentifier, string expected) =>
        Assert.Equal(expected, new BundleSettingsValidator().Validate(Good with
        {
            RuntimeIdentifier = "",
            ContainerRuntimeIdentifiers = containerRuntimeIdentifiers,
            SdkRuntimeIdentifier = sdkRuntimeIdentifier,
        }).RuntimeIdentifier);

    [Theory]
    [InlineData("myorg/Team/My.Api", null, "my-api")]
    [InlineData("my-api", null, "my-api")]
    [InlineData("myorg/my-api", "chosen", "chosen")]
    [InlineData("", null, "hello-web-app")]
    public void ContainerRepositorysLastSegmentNamesTheBundleUnlessRuncBundleNameIsSet(string repository, string? bundleName, string expected) =>
        Assert.Equal(expected, new BundleSettingsValidator().Validate(Good with { ContainerRepository = repository, BundleName = bundleName }).Name);

    private static readonly Dictionary<string, RawBundleSettings> MistakeCases = new()
    {
        ["RUNCIBLE4001#0"] = Good with { RuntimeIdentifier = "win-x64" },
        ["RUNCIBLE4001#1"] = Good with { RuntimeIdentifier = "osx-arm64" },
        ["RUNCIBLE4002#2"] = Good with { RuntimeIdentifier = "" },
        ["RUNCIBLE4003#3"] = Good with { TargetFramework = "", TargetFrameworks = "net8.0;net10.0" },
        ["RUNCIBLE4004#4"] = Good with { BundleName = "Hello" },
        ["RUNCIBLE4004#5"] = Good with { BundleName = "1app" },
        ["RUNCIBLE4004#6"] = Good with { BundleName = "app-" },
        ["RUNCIBLE4004#7"] = Good with { BundleName = "a/b" },
        ["RUNCIBLE4004#8"] = Good with { BundleName = new string('a', 64) },
        ["RUNCIBLE4004#9"] = Good with { BundleName = null, AssemblyName = "9Lives" },
        ["RUNCIBLE4005#10"] = Good with { BundleVersion = "1.2" },
        ["RUNCIBLE4005#11"] = Good with { BundleVersion = "1.2.3+abc" },
        ["RUNCIBLE4005#12"] = Good with { BundleVersion = "latest" },
        ["RUNCIBLE4006#13"] = Good with { Compression = "bzip2" },
        ["RUNCIBLE4007#14"] = Good with { StopTimeout = "0" },
        ["RUNCIBLE4007#15"] = Good with { StopTimeout = "ten" },
        ["RUNCIBLE4008#16"] = Good with { WorkingDirectory = "app" },
        ["RUNCIBLE4008#17"] = Good with { WorkingDirectory = "/app/../etc" },
        ["RUNCIBLE4008#18"] = Good with { WorkingDirectory = "/proc/self/fd/8" },
        ["RUNCIBLE4008#18b"] = Good with { WorkingDirectory = "/" },
        ["RUNCIBLE4008#18c"] = Good with { WorkingDirectory = "/proc/" },
        ["RUNCIBLE4009#19"] = Good with { Volumes = [new BundleVolume("../x", "/data")] },
        ["RUNCIBLE4009#20"] = Good with { Volumes = [new BundleVolume("a", "/data"), new BundleVolume("a", "/other")] },
        ["RUNCIBLE4009#21"] = Good with { Volumes = [new BundleVolume("a", "relative")] },
        ["RUNCIBLE4013#22"] = Good with { Rootless = "yes" },
        ["RUNCIBLE4014#23"] = Good with { RuntimeIdentifier = "linux-mips" },
        ["RUNCIBLE4015#24"] = Good with { SourceDateEpoch = "-5" },
        ["RUNCIBLE4017#25"] = Good with { CompressionLevel = "0" },
        ["RUNCIBLE4017#26"] = Good with { CompressionLevel = "10" },
        ["RUNCIBLE4017#27"] = Good with { CompressionLevel = "fast" },
        ["RUNCIBLE4017#28"] = Good with { CompressionLevel = "2.5" },
        ["RUNCIBLE4017#29"] = Good with { CompressionLevel = "-1" },
        ["RUNCIBLE4017#30"] = Good with { Compression = "zstd", CompressionLevel = "0" },
        ["RUNCIBLE4017#31"] = Good with { Compression = "zstd", CompressionLevel = "20" },
        ["RUNCIBLE4017#32"] = Good with { Compression = "none", CompressionLevel = "1" },
        ["RUNCIBLE4060#33"] = Good with { Network = "bridge" },
        ["RUNCIBLE4061#34"] = Good with { Network = "private", PublishPorts = ["8080"] },
        ["RUNCIBLE4061#35"] = Good with { Network = "private", PublishPorts = ["0:8080"] },
        ["RUNCIBLE4061#36"] = Good with { Network = "private", PublishPorts = ["65536:8080"] },
        ["RUNCIBLE4061#37"] = Good with { Network = "private", PublishPorts = ["8081:8080/sctp"] },
        ["RUNCIBLE4061#38"] = Good with { Network = "private", PublishPorts = ["localhost:8081:8080"] },
        ["RUNCIBLE4061#39"] = Good with { Network = "private", PublishPorts = ["::1:8081:8080"] },
        ["RUNCIBLE4061#40"] = Good with { Network = "private", PublishPorts = ["8081:8080", "127.0.0.1:8081:9090"] },
        ["RUNCIBLE4061#41"] = Good with { Network = "private", PublishPorts = ["08081:8080"] },
        ["RUNCIBLE4062#42"] = Good with { PublishPorts = ["8081:8080"] },
        ["RUNCIBLE4062#43"] = Good with { Network = "none", PublishPorts = ["8081:8080"] },
    };

    public static TheoryData<string> Mistakes => new(MistakeCases.Keys);

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void MistakesAreCodedErrors(string mistake)
    {
        var error = Assert.Throws<RuncibleException>(() => new BundleSettingsValidator().Validate(MistakeCases[mistake]));
        Assert.Equal(mistake.Split('#')[0], error.Code);
        Assert.DoesNotContain("   at ", error.Message);
    }

    [Theory]
    [InlineData("gzip", null, 2)]
    [InlineData("gzip", "", 2)]
    [InlineData("gzip", "1", 1)]
    [InlineData("gzip", " 9 ", 9)]
    [InlineData("zstd", null, 3)]
    [InlineData("zstd", "1", 1)]
    [InlineData("zstd", "19", 19)]
    [InlineData("none", null, 0)]
    [InlineData("none", " ", 0)]
    public void CompressionLevelsDefaultByCompressionAndExplicitOnesAreKept(string compression, string? level, int expected) =>
        Assert.Equal(expected, new BundleSettingsValidator().Validate(Good with { Compression = compression, CompressionLevel = level }).CompressionLevel);

    [Theory]
    [InlineData("gzip", "10", "from 1 (fastest) to 9 (smallest)")]
    [InlineData("zstd", "20", "from 1 (fastest) to 19 (smallest)")]
    [InlineData("none", "6", "remove RuncBundleCompressionLevel")]
    public void ABadCompressionLevelSaysWhatToDo(string compression, string level, string advice)
    {
        var error = Assert.Throws<RuncibleException>(() => new BundleSettingsValidator().Validate(Good with { Compression = compression, CompressionLevel = level }));
        Assert.Equal("RUNCIBLE4017", error.Code);
        Assert.Contains($"RuncBundleCompressionLevel '{level}'", error.Message);
        Assert.Contains(advice, error.Message);
    }

    [Theory]
    [InlineData("linux-x64", "amd64")]
    [InlineData("linux-arm64", "arm64")]
    [InlineData("linux-musl-x64", "amd64")]
    [InlineData("linux-arm", "arm")]
    public void RidsMapToOciArchitectures(string rid, string arch) =>
        Assert.Equal(arch, BundleSettingsValidator.OciArchitecture(rid));

    [Fact]
    public void NetworkIsHostUnlessSetAndPublishedPortsAreCanonical()
    {
        Assert.Equal(BundleNetwork.Host, new BundleSettingsValidator().Validate(Good).Network);
        Assert.Equal(BundleNetwork.None, new BundleSettingsValidator().Validate(Good with { Network = " None ", Rootless = "true" }).Network);
        var settings = new BundleSettingsValidator().Validate(Good with
        {
            Network = "private",
            PublishPorts = ["8081:8080", "127.0.0.1:8443:443/TCP", "[::1]:5353:53/udp", "5354:53/udp"],
        });
        Assert.Equal(BundleNetwork.Private, settings.Network);
        Assert.Equal(new[] { "8081:8080/tcp", "127.0.0.1:8443:443/tcp", "[::1]:5353:53/udp", "5354:53/udp" }, settings.PublishPorts.Select(p => p.ToString()).ToList());
        // Rootless too (pasta, docs/networking.md), with the same port list.
        var rootless = new BundleSettingsValidator().Validate(Good with { Network = "private", Rootless = "true", PublishPorts = ["8081:8080"] });
        Assert.Equal(BundleNetwork.Private, rootless.Network);
        Assert.True(rootless.Rootless);
        Assert.Equal(["8081:8080/tcp"], rootless.PublishPorts.Select(p => p.ToString()));
    }

    [Fact]
    public void ContainerPortsArePublishedAtTheirNumberUnlessAPublishPortForwardsToThem()
    {
        var explicitPorts = new[] { PublishedPort.TryParse("8081:8080", out _)! };
        var effective = PublishedPort.Effective(explicitPorts, ["8080", "9090/udp", "7070/tcp"]);
        Assert.Equal(["8081:8080/tcp", "9090:9090/udp", "7070:7070/tcp"], effective.Select(p => p.ToString()));
        Assert.Equal("RUNCIBLE4063", Assert.Throws<RuncibleException>(() => PublishedPort.Effective([], ["http"])).Code);
        // A ContainerPort at the host port an item already took is a conflict the build reports.
        Assert.Equal("RUNCIBLE4061", Assert.Throws<RuncibleException>(() => PublishedPort.Effective([PublishedPort.TryParse("9090:8080", out _)!], ["9090"])).Code);
    }
}
