using System.Text;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.RuntimeSpec;

namespace Runcible.Core.Host;

/// <summary>
/// The host runtime stage: the files a bundle carries beside <c>rootfs/</c> so a host with runc can
/// run it as a service: the shim <c>runcible</c>, <c>runcible.json</c>, <c>&lt;name&gt;.service</c>
/// (systemd) and <c>&lt;name&gt;.openrc</c> (OpenRC). See docs/host-runtime.md.
/// </summary>
internal sealed class HostRuntimeFiles : IHostRuntimeFiles
{
    public const string ShimFileName = "runcible";
    private const string ShimResource = "Runcible.Core.Host.runcible.sh";
    private const UnixFileMode ExecutableMode = (UnixFileMode)0b111_101_101;
    private const UnixFileMode ReadableMode = (UnixFileMode)0b110_100_100;

    private readonly SystemdUnitRenderer _systemd = new();
    private readonly OpenRcScriptRenderer _openRc = new();

    public IReadOnlyList<BundleFile> Create(BundleSettings settings, RuntimeConfigOutput config)
    {
        var info = config.RuntimeInfo ?? throw new RuncibleException(RuncibleErrors.HostRuntimeInfoMissing, settings.BundleId);
        if (info.Name != settings.Name || info.Version != settings.Version)
        {
            throw new RuncibleException(RuncibleErrors.HostRuntimeInfoMismatch, $"{info.Name}-{info.Version}", settings.BundleId);
        }

        var model = HostServiceModel.From(info);
        return
        [
            new BundleFile(ShimFileName, ShimScript(), ExecutableMode),
            new BundleFile(RuntimeSpecGenerator.InfoFileName, RuntimeSpecGenerator.Serialize(info), ReadableMode),
            new BundleFile(settings.Name + ".service", Encoding.UTF8.GetBytes(_systemd.Render(model)), ReadableMode),
            new BundleFile(settings.Name + ".openrc", Encoding.UTF8.GetBytes(_openRc.Render(model)), ExecutableMode),
        ];
    }

    /// <summary>The shim script (POSIX sh), as embedded from src/Runcible.Core/Host/runcible.sh.</summary>
    public static byte[] ShimScript()
    {
        using var stream = typeof(HostRuntimeFiles).Assembly.GetManifestResourceStream(ShimResource)
            ?? throw new InvalidOperationException($"The assembly lacks its embedded resource {ShimResource}.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
