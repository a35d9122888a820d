using Runcible.Core.Bundle;
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
}
