using Runcible.Core.Oci;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.RuntimeSpec;

public sealed class RuntimeSpecGoldenTests : IDisposable
{
    private readonly TempDirectory _rootfs = new("runcible-rootfs");
    private readonly DirectoryRootfsReader _reader;

    public RuntimeSpecGoldenTests()
    {
        RuntimeSpecFixtures.WriteRootfs(_rootfs.Path);
        _reader = new DirectoryRootfsReader(_rootfs.Path);
    }

    public void Dispose() => _rootfs.Dispose();

    private void Check(string name, ImageConfiguration image, RuntimeSpecSettings settings)
    {
        var result = new RuntimeSpecGenerator().Generate(image, _reader, settings);
        RuntimeSpecAssertions.ValidatesAgainstSchema(result.Config);
        RuntimeSpecAssertions.MatchesGolden(name + ".config.json", RuntimeSpecGenerator.Serialize(result.Config));
        RuntimeSpecAssertions.MatchesGolden(name + ".runcible.json", RuntimeSpecGenerator.Serialize(result.Info));
    }

    [Fact]
    public void FrameworkDependentConsoleAppOnRuntime() =>
        Check("console-runtime", RuntimeSpecFixtures.Runtime(), RuntimeSpecFixtures.Settings());

    [Fact]
    public void AspNetAppOnAspNetWithPortsLabelsEnvAndVolume() =>
        Check("web-aspnet", RuntimeSpecFixtures.AspNet(), new RuntimeSpecSettings
        {
            BundleName = "helloweb",
            BundleVersion = "1.2.3",
            AssemblyName = "HelloWeb",
            Ports = ["8080", "9090/udp"],
            Labels = [new("com.example.tier", "web"), new("org.opencontainers.image.title", "HelloWeb")],
            EnvironmentVariables = [new("ASPNETCORE_HTTP_PORTS", "9000"), new("Logging__Console__FormatterName", "json")],
            Volumes = [new("/var/lib/helloweb", "state")],
            StopTimeoutSeconds = 20,
            Notify = true,
        });

    [Fact]
    public void SelfContainedAppOnRuntimeDeps() =>
        Check("selfcontained-runtime-deps", RuntimeSpecFixtures.RuntimeDeps(), new RuntimeSpecSettings
        {
            BundleName = "selfie",
            BundleVersion = "2.0.0",
            AssemblyName = "Selfie",
            SelfContained = true,
            DefaultArgs = ["--urls", "http://+:8080"],
            WorkingDirectory = "/srv/selfie",
        });

    [Fact]
    public void ImageVolumesRuncVolumesAndLabels()
    {
        var image = RuntimeSpecFixtures.RuntimeDeps();
        image.Config!.Volumes = new Dictionary<string, object?> { ["/var/cache/app data/"] = new Dictionary<string, object?>(), ["/data"] = new Dictionary<string, object?>() };
        image.Config.Labels = new Dictionary<string, string> { ["a"] = "image", ["b"] = "image" };
        image.Config.StopSignal = "SIGINT";
        Check("volumes-labels", image, new RuntimeSpecSettings
        {
            BundleName = "vols",
            BundleVersion = "1.0.0",
            AssemblyName = "Vols",
            SelfContained = true,
            User = "web",
            Volumes = [new("/data", "main"), new("/srv/uploads")],
            Labels = [new("b", "project"), new("c", "project")],
            Capabilities = ["net_bind_service"],
        });
    }

    [Fact]
    public void RootlessWritableRootfs() =>
        Check("rootless-writable", RuntimeSpecFixtures.RuntimeDeps(), new RuntimeSpecSettings
        {
            BundleName = "rootless",
            BundleVersion = "1.0.0",
            AssemblyName = "Rootless",
            SelfContained = true,
            User = "app",
            Rootless = true,
            WritableRootfs = true,
            Volumes = [new("/var/lib/rootless")],
        });
}
