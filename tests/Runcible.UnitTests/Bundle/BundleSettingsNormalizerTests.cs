using System.Xml.Linq;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Bundle;

/// <summary>The settings contract: raw MSBuild values in, one normalized, validated document out.</summary>
public sealed class BundleSettingsNormalizerTests : IDisposable
{
    private readonly TempDirectory _project = new("runcible-project");

    public void Dispose() => _project.Dispose();

    /// <summary>The raw values a typical SDK project hands over (as the targets' list expands them).</summary>
    private Dictionary<string, string> Properties() => SettingTaskItems.TypicalProject(_project.Path);

    private static RawSettings Raw(Dictionary<string, string> properties, params RawSettingItem[] items) => new(properties, items);

    private static RawSettingItem Item(string setting, string identity, params (string Name, string Value)[] metadata) =>
        new(setting, identity, metadata.ToDictionary(m => m.Name, m => m.Value, StringComparer.OrdinalIgnoreCase));

    [Fact]
    public void FillsInEveryDefaultOnce()
    {
        var normalized = BundleSettingsNormalizer.Normalize(Raw(Properties()));

        Assert.Equal("hello-app", normalized.Bundle.Name);
        Assert.Equal("2.1.0", normalized.Bundle.Version); // RuncBundleVersion empty: Version
        Assert.Equal("/app", normalized.Bundle.WorkingDirectory);
        Assert.False(normalized.Bundle.Notify);
        Assert.Equal(Path.Combine(_project.Path, "bin", "Release", "net10.0", "linux-x64"), normalized.OutputDirectory.TrimEnd('/'));
        Assert.Equal(Path.Combine(_project.Path, "bin", "Release", "net10.0", "linux-x64", "hello-app-2.1.0.tar.gz"), normalized.TarballPath);
        Assert.Equal(Path.Combine(_project.Path, "bin", "Release", "net10.0", "linux-x64", "publish"), normalized.PublishDirectory.TrimEnd('/'));
        Assert.Equal("mcr.microsoft.com/dotnet/runtime:10.0", normalized.BaseImage);
        Assert.Equal("Hello.App", normalized.Container.AppHostName);
        Assert.False(normalized.Container.SelfContained);
        Assert.Equal(ContainerSettings.DefaultOpenFilesLimit, normalized.Container.OpenFilesLimit);
        Assert.Equal(ResourceLimits.DefaultPidsLimit, normalized.Container.PidsLimit);
        Assert.Equal(AppCommandInstruction.Default, normalized.Container.AppCommandInstruction);
        // The SDK's generated labels, and the base image's name.
        Assert.Contains(new KeyValuePair<string, string>("net.dot.sdk.version", "10.0.100"), normalized.Container.Labels);
        Assert.Contains(new KeyValuePair<string, string>("net.dot.runtime.majorminor", "10.0"), normalized.Container.Labels);
        Assert.Contains(new KeyValuePair<string, string>(GeneratedLabels.BaseName, "mcr.microsoft.com/dotnet/runtime:10.0"), normalized.Container.Labels);
    }

    [Fact]
    public void DerivesTheDefaultsThatDependOnOtherPropertiesAndItems()
    {
        var properties = Properties();
        properties["RuntimeIdentifier"] = "";
        properties["RuntimeIdentifiers"] = "win-x64;linux-arm64";
        properties["PublishSelfContained"] = "True";
        properties["UseAppHost"] = "false";
        properties["RuncBundleVersion"] = "3.0.0";
        properties["RuncBundleOutputPath"] = "/srv/out";
        properties["ContainerGenerateLabelsImageBaseName"] = "false";
        var normalized = BundleSettingsNormalizer.Normalize(Raw(
            properties,
            Item("FrameworkReference", "Microsoft.AspNetCore.App"),
            Item("PackageReference", "Microsoft.Extensions.Hosting.Systemd", ("Version", "10.0.0")),
            Item("ContainerPort", "8080", ("Type", "udp")),
            Item("ContainerLabel", "net.dot.sdk.version", ("Value", "mine")),
            Item("RuncCapability", "net_admin")));

        Assert.Equal("linux-arm64", normalized.Bundle.RuntimeIdentifier);
        Assert.Equal("3.0.0", normalized.Bundle.Version);
        Assert.True(normalized.Bundle.Notify);
        Assert.True(normalized.Container.SelfContained);
        Assert.Null(normalized.Container.AppHostName);
        Assert.Equal("/srv/out/hello-app-3.0.0.tar.gz", normalized.TarballPath);
        Assert.Equal("mcr.microsoft.com/dotnet/runtime-deps:10.0", normalized.BaseImage);
        Assert.Equal(["8080/udp"], normalized.Container.Ports);
        Assert.Equal(["CAP_NET_ADMIN"], normalized.Container.Capabilities);
        Assert.Equal("mine", Assert.Single(normalized.Container.Labels, l => l.Key == "net.dot.sdk.version").Value);
        Assert.DoesNotContain(normalized.Container.Labels, l => l.Key == GeneratedLabels.BaseName);
    }

    [Fact]
    public void ASeccompProfileIsReadRelativeToTheProjectAndCarriedInTheDocument()
    {
        Directory.CreateDirectory(_project.Combine("policy"));
        File.WriteAllText(_project.Combine("policy", "seccomp.json"), """{ "defaultAction": "SCMP_ACT_LOG" }""");
        var properties = Properties();
        properties["RuncSeccompProfile"] = @"policy\seccomp.json";
        var normalized = BundleSettingsNormalizer.Normalize(Raw(properties));
        Assert.Equal("SCMP_ACT_LOG", normalized.Container.SeccompProfile!.DefaultAction);

        var read = BundleSettingsNormalizer.Deserialize(BundleSettingsNormalizer.Serialize(normalized));
        Assert.Equal("SCMP_ACT_LOG", read.Container.SeccompProfile!.DefaultAction);
    }

    [Fact]
    public void TheDocumentIsDeterministicAndReadsBackToTheSameSettings()
    {
        var properties = Properties();
        properties["RuncHealthCheck"] = "http://localhost:8080/health";
        properties["RuncNetwork"] = "private";
        properties["RuncMemoryLimit"] = "512M";
        properties["SOURCE_DATE_EPOCH"] = "1700000000";
        properties["RuncInsecureRegistries"] = "b.test:5000, a.test";
        RawSettingItem[] items =
        [
            Item("RuncPublishPort", "8081:8080"),
            Item("RuncVolume", "/var/lib/app", ("Name", "state")),
            Item("ContainerEnvironmentVariable", "A", ("Value", "1")),
            Item("_RuncPublishedFile", @"bin\Release\net10.0\linux-x64\publish\Hello.App.dll"),
        ];
        var first = BundleSettingsNormalizer.Serialize(BundleSettingsNormalizer.Normalize(Raw(properties, items)));
        var second = BundleSettingsNormalizer.Serialize(BundleSettingsNormalizer.Normalize(Raw(new Dictionary<string, string>(properties), items)));
        Assert.Equal(first, second);

        var read = BundleSettingsNormalizer.Deserialize(first);
        Assert.Equal(first, BundleSettingsNormalizer.Serialize(read));
        Assert.Equal(BundleNetwork.Private, read.Bundle.Network);
        Assert.Equal("8081:8080/tcp", Assert.Single(read.Bundle.PublishPorts).ToString());
        Assert.Equal("http://localhost:8080/health", read.Bundle.Health!.HttpUrl);
        Assert.Equal(536870912L, read.Container.MemoryLimitBytes);
        Assert.Equal(["a.test", "b.test:5000"], read.InsecureRegistries);
        Assert.Equal(["Hello.App.dll"], read.PublishedFiles);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), read.Bundle.Created);
    }

    [Fact]
    public void TheEarlyAndTheFinalSettingsShareABasePartUnlessItsInputsChanged()
    {
        BasePartKey Key(Action<Dictionary<string, string>> change, params RawSettingItem[] items)
        {
            var properties = Properties();
            change(properties);
            return BundleSettingsNormalizer.Deserialize(BundleSettingsNormalizer.Serialize(BundleSettingsNormalizer.Normalize(Raw(properties, items))))
                .BasePart("/cache", "1.0.0");
        }

        var early = BundleSettingsNormalizer.Normalize(Raw(Properties())).BasePart("/cache", "1.0.0");
        // Read back from the document (as the bundle task does): the same key.
        Assert.Equal(early, Key(_ => { }));
        // What only the app layer or config.json depends on changes nothing of the base part.
        Assert.Equal(early, Key(p => p["ContainerUser"] = "app", Item("ContainerEnvironmentVariable", "A", ("Value", "1")), Item("_RuncPublishedFile", "x.dll")));
        // A version set by a target during the build (MinVer) names another tarball and tree: not the early work's.
        Assert.NotEqual(early, Key(p => p["Version"] = "3.4.5"));
        Assert.NotEqual(early, Key(p => p["RuncBundleCompressionLevel"] = "9"));
        Assert.NotEqual(early, Key(p => p["ContainerRegistry"] = "registry.example.com"));
        Assert.NotEqual(early, Key(_ => { }, Item("FrameworkReference", "Microsoft.AspNetCore.App")));
        Assert.NotEqual(early, BundleSettingsNormalizer.Normalize(Raw(Properties())).BasePart("/other-cache", "1.0.0"));
    }

    /// <summary>Every check that needs no image fails here, with its existing code, before any registry is asked.</summary>
    [Theory]
    [InlineData("RuncOpenFilesLimit", "lots", "RUNCIBLE3011")]
    [InlineData("ContainerAppCommandInstruction", "Cmd", "RUNCIBLE3009")]
    [InlineData("ContainerUser", "app:", "RUNCIBLE3002")]
    [InlineData("ContainerUser", "99999999999", "RUNCIBLE3002")]
    [InlineData("RuncMemoryLimit", "512MB", "RUNCIBLE4030")]
    [InlineData("RuncCpuLimit", "0", "RUNCIBLE4030")]
    [InlineData("RuncPidsLimit", "many", "RUNCIBLE4030")]
    [InlineData("RuncSeccompProfile", "absent.json", "RUNCIBLE3012")]
    [InlineData("RuncHealthRetries", "3", "RUNCIBLE4051")]
    [InlineData("RuncNetwork", "bridge", "RUNCIBLE4060")]
    [InlineData("RuncNotify", "yes", "RUNCIBLE4013")]
    [InlineData("RuncBundleVersion", "1.0.0+meta", "RUNCIBLE4005")]
    public void ATypoIsItsCodedError(string property, string value, string code)
    {
        var properties = Properties();
        properties[property] = value;
        var e = Assert.Throws<RuncibleException>(() => BundleSettingsNormalizer.Normalize(Raw(properties)));
        Assert.Equal(code, e.Code);
    }

    [Fact]
    public void AnUnknownCapabilityIsItsCodedError()
    {
        var e = Assert.Throws<RuncibleException>(() => BundleSettingsNormalizer.Normalize(Raw(Properties(), Item("RuncCapability", "NET_FLY"))));
        Assert.Equal("RUNCIBLE3008", e.Code);
    }

    /// <summary>
    /// The targets' list of raw properties and item types is exactly what the normalizer reads: a property added to one
    /// and not the other fails here, so nothing can be forgotten (docs/architecture.md, "The settings contract").
    /// </summary>
    [Fact]
    public void TheTargetsListExactlyThePropertiesAndItemsTheNormalizerReads()
    {
        var targets = XDocument.Load(Path.Combine(RepoPaths.Root, "sdk", "build", "Runcible.Sdk.targets"));
        XNamespace ns = targets.Root!.Name.Namespace;
        string[] Listed(string itemType) => targets.Descendants(ns + itemType).Select(e => (string)e.Attribute("Include")!).Order(StringComparer.Ordinal).ToArray();

        var raw = Raw(Properties());
        _ = BundleSettingsNormalizer.Normalize(raw);

        Assert.Empty(raw.ReadNames.Except(Listed("_RuncSettingProperty"))); // read but not in the targets' list: always empty in a build
        Assert.Empty(Listed("_RuncSettingProperty").Except(raw.ReadNames)); // listed but never read
        Assert.Equal(Listed("_RuncSettingProperty").Length, Listed("_RuncSettingProperty").Distinct(StringComparer.Ordinal).Count());
        Assert.Empty(raw.ReadItemSettings.Except(Listed("_RuncSettingItemType")));
        Assert.Empty(Listed("_RuncSettingItemType").Except(raw.ReadItemSettings));
    }
}
