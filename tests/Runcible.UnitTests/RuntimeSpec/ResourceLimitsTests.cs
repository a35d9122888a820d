using System.Text.Json;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>RuncMemoryLimit, RuncCpuLimit and RuncPidsLimit: parsing, validation and config.json's linux.resources.</summary>
public sealed class ResourceLimitsTests : IDisposable
{
    private readonly TempDirectory _rootfs = new("runcible-rootfs");

    public ResourceLimitsTests() => RuntimeSpecFixtures.WriteRootfs(_rootfs.Path);

    public void Dispose() => _rootfs.Dispose();

    private static BundleSettings Settings(bool rootless = false) => new("hello", "1.0.0", "linux-x64", "net10.0", BundleCompression.Gzip,
        BundleCompressionLevels.DefaultGzip, 30, "/app", rootless, false, false, false, DateTimeOffset.UnixEpoch, []);

    private JsonElement Resources(ContainerSettings container, bool rootless = false)
    {
        var spec = RuntimeConfigStage.ToSpecSettings(Settings(rootless), container);
        var result = new RuntimeSpecGenerator().Generate(RuntimeSpecFixtures.RuntimeDeps(), new DirectoryRootfsReader(_rootfs.Path), spec);
        RuntimeSpecAssertions.ValidatesAgainstSchema(result.Config);
        using var config = JsonDocument.Parse(RuntimeSpecGenerator.Serialize(result.Config));
        return config.RootElement.GetProperty("linux").TryGetProperty("resources", out var resources) ? resources.Clone() : default;
    }

    [Theory]
    [InlineData("512M", 536870912L)]
    [InlineData("1G", 1073741824L)]
    [InlineData("1.5G", 1610612736L)]
    [InlineData("65536K", 67108864L)]
    [InlineData("2T", 2199023255552L)]
    [InlineData("10000000", 10000000L)]
    [InlineData(" 6M ", 6291456L)]
    public void MemoryIsInSystemdBinaryUnits(string value, long bytes) => Assert.Equal(bytes, ResourceLimits.ParseMemory(value));

    [Theory]
    [InlineData("1.5", 150000L)]
    [InlineData("2", 200000L)]
    [InlineData("0.01", 1000L)]
    [InlineData("0.255", 25500L)]
    public void CpuIsAQuotaPerHundredMilliseconds(string value, long quota) => Assert.Equal(quota, ResourceLimits.ParseCpu(value));

    [Theory]
    [InlineData("RuncMemoryLimit", "512MB")]
    [InlineData("RuncMemoryLimit", "512m")]
    [InlineData("RuncMemoryLimit", "-1")]
    [InlineData("RuncMemoryLimit", "5M")]
    [InlineData("RuncMemoryLimit", "infinity")]
    [InlineData("RuncCpuLimit", "0")]
    [InlineData("RuncCpuLimit", "0.001")]
    [InlineData("RuncCpuLimit", "1,5")]
    [InlineData("RuncCpuLimit", "5000")]
    [InlineData("RuncPidsLimit", "0")]
    [InlineData("RuncPidsLimit", "lots")]
    [InlineData("RuncPidsLimit", "4194305")]
    public void BadValuesAreCodedErrorsNamingTheProperty(string property, string value)
    {
        var raw = property switch
        {
            "RuncMemoryLimit" => new RawBundleSettings { AssemblyName = "A", MemoryLimit = value },
            "RuncCpuLimit" => new RawBundleSettings { AssemblyName = "A", CpuLimit = value },
            _ => new RawBundleSettings { AssemblyName = "A", PidsLimit = value },
        };
        // The settings validator parses them, before any image is pulled.
        var e = Assert.Throws<RuncibleException>(() => ContainerSettingsValidator.Validate(raw, Settings()));
        Assert.Equal("RUNCIBLE4030", e.Code);
        Assert.Contains($"{property} '{value}'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigJsonCarriesTheLimitsWithSwapEqualToMemory()
    {
        var resources = Resources(ContainerSettingsValidator.Validate(new RawBundleSettings { AssemblyName = "A", MemoryLimit = "512M", CpuLimit = "1.5", PidsLimit = "300" }, Settings()));
        Assert.Equal(536870912L, resources.GetProperty("memory").GetProperty("limit").GetInt64());
        Assert.Equal(536870912L, resources.GetProperty("memory").GetProperty("swap").GetInt64());
        Assert.Equal(150000L, resources.GetProperty("cpu").GetProperty("quota").GetInt64());
        Assert.Equal(100000UL, resources.GetProperty("cpu").GetProperty("period").GetUInt64());
        Assert.Equal(300L, resources.GetProperty("pids").GetProperty("limit").GetInt64());
    }

    [Fact]
    public void ARootfulBundleHasPodmansPidsLimitByDefaultAndNothingElse()
    {
        var resources = Resources(ContainerSettingsValidator.Validate(new RawBundleSettings { AssemblyName = "A" }, Settings()));
        Assert.Equal(2048L, resources.GetProperty("pids").GetProperty("limit").GetInt64());
        Assert.False(resources.TryGetProperty("memory", out _));
        Assert.False(resources.TryGetProperty("cpu", out _));
    }

    [Fact]
    public void ARootlessBundleHasNoPidsLimitAndRefusesOne()
    {
        Assert.Equal(JsonValueKind.Undefined, Resources(ContainerSettingsValidator.Validate(new RawBundleSettings { AssemblyName = "A" }, Settings(rootless: true)), rootless: true).ValueKind);
        var e = Assert.Throws<RuncibleException>(() => ContainerSettingsValidator.Validate(new RawBundleSettings { AssemblyName = "A", PidsLimit = "100" }, Settings(rootless: true)));
        Assert.Equal("RUNCIBLE4031", e.Code);
    }
}
