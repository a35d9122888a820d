using Runcible.Core.Bundle;
using Runcible.Tasks;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.Tasks;

/// <summary>The settings task in-process, with the task items the targets pass and a build-engine double.</summary>
public sealed class ComputeRuncBundleSettingsTests : IDisposable
{
    private readonly TempDirectory _project = new("runcible-settings-task");
    private readonly MockEngine _engine = new();

    public void Dispose()
    {
        _engine.Dispose();
        _project.Dispose();
    }

    private string SettingsFile => _project.Combine("obj", "runc-bundle.settings.json");

    private Dictionary<string, string> Properties() => SettingTaskItems.TypicalProject(_project.Path);

    private ComputeRuncBundleSettings Task(Dictionary<string, string> properties, params Microsoft.Build.Framework.ITaskItem[] items) => new()
    {
        BuildEngine = _engine,
        Properties = SettingTaskItems.Properties(properties),
        Items = items,
        SettingsFile = SettingsFile,
    };

    [Fact]
    public void WritesTheDocumentAndOutputsTheNormalizedSettings()
    {
        // The name derived from AssemblyName "Hello.App", the version from Version.
        var task = Task(Properties(), SettingTaskItems.Item("RuncCapability", "net_admin"));

        Assert.True(task.Execute(), _engine.Log);

        Assert.Empty(_engine.Errors);
        Assert.Empty(_engine.Warnings);
        Assert.Equal("hello-app", task.NormalizedBundleName);
        Assert.Equal("2.1.0", task.NormalizedBundleVersion);
        Assert.Equal(Path.Combine(_project.Path, "bin", "Release", "net10.0", "linux-x64", "hello-app-2.1.0.tar.gz"), task.BundlePath);
        Assert.Equal("mcr.microsoft.com/dotnet/runtime:10.0", task.BaseImage);
        Assert.Equal("linux-x64", task.EffectiveRuntimeIdentifier);
        Assert.Equal("gzip", task.EffectiveCompression);
        Assert.Equal("false", task.EffectiveNotify);
        // The document is what PublishRuncBundle reads: the same settings, the item included.
        var written = BundleSettingsNormalizer.Deserialize(File.ReadAllBytes(SettingsFile));
        Assert.Equal("hello-app", written.Bundle.Name);
        Assert.Equal(task.BundlePath, written.TarballPath);
        Assert.Contains("CAP_NET_ADMIN", written.Container.Capabilities);
    }

    [Fact]
    public void AnUnchangedDocumentIsNotWrittenAgainAndAChangedOneIs()
    {
        Assert.True(Task(Properties()).Execute(), _engine.Log);
        var old = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(SettingsFile, old);
        var bytes = File.ReadAllBytes(SettingsFile);

        // Same inputs: the stamp keeps its time, so the bundle target stays up to date.
        Assert.True(Task(Properties()).Execute(), _engine.Log);
        Assert.Equal(old, File.GetLastWriteTimeUtc(SettingsFile));
        Assert.Equal(bytes, File.ReadAllBytes(SettingsFile));

        var properties = Properties();
        properties["Version"] = "2.2.0";
        var changed = Task(properties);
        Assert.True(changed.Execute(), _engine.Log);
        Assert.Equal("2.2.0", changed.NormalizedBundleVersion);
        Assert.NotEqual(old, File.GetLastWriteTimeUtc(SettingsFile));
        Assert.Equal("2.2.0", BundleSettingsNormalizer.Deserialize(File.ReadAllBytes(SettingsFile)).Bundle.Version);
        Assert.Equal([Path.GetFileName(SettingsFile)], Directory.GetFiles(Path.GetDirectoryName(SettingsFile)!).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("RuncNotify", "yes", "RUNCIBLE4013")]
    [InlineData("RuncMemoryLimit", "512MB", "RUNCIBLE4030")]
    [InlineData("RuncBundleVersion", "1.0.0+meta", "RUNCIBLE4005")]
    public void ABadSettingIsOneCodedErrorAndNoDocument(string property, string value, string code)
    {
        var properties = Properties();
        properties[property] = value;

        Assert.False(Task(properties).Execute());

        var error = Assert.Single(_engine.Errors);
        Assert.Equal(code, error.Code);
        Assert.Contains(value, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_engine.Messages, m => m.Message?.Contains("   at ", StringComparison.Ordinal) == true);
        Assert.False(Directory.Exists(Path.GetDirectoryName(SettingsFile)), "a rejected setting leaves no document");
    }

    [Fact]
    public void ABadItemIsItsCodedErrorAndKeepsThePreviousDocument()
    {
        Assert.True(Task(Properties()).Execute(), _engine.Log);
        var before = File.ReadAllBytes(SettingsFile);

        Assert.False(Task(Properties(), SettingTaskItems.Item("RuncCapability", "NET_FLY")).Execute());

        Assert.Equal("RUNCIBLE3008", Assert.Single(_engine.Errors).Code);
        Assert.Equal(before, File.ReadAllBytes(SettingsFile));
    }

    [Fact]
    public void AnUnhonouredSdkPropertyWarnsOnceWithItsCode()
    {
        var task = Task(
            Properties(),
            SettingTaskItems.Item("_RuncUnhonouredProperty", "ContainerImageTag"),
            SettingTaskItems.Item("_RuncUnhonouredProperty", "ContainerImageTag"),
            SettingTaskItems.Item("_RuncUnhonouredProperty", "ContainerArchiveOutputPath"));

        Assert.True(task.Execute(), _engine.Log);

        Assert.Empty(_engine.Errors);
        Assert.Equal(2, _engine.Warnings.Count);
        Assert.All(_engine.Warnings, w => Assert.Equal("RUNCIBLE4041", w.Code));
        Assert.Single(_engine.Warnings, w => w.Message!.Contains("ContainerImageTag", StringComparison.Ordinal));
        Assert.Single(_engine.Warnings, w => w.Message!.Contains("ContainerArchiveOutputPath", StringComparison.Ordinal));
        Assert.True(File.Exists(SettingsFile));
    }
}
