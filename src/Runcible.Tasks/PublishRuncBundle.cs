using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Host;
using Runcible.Core.Images;
using Runcible.Core.IO;
using Runcible.Core.Layers;
using Runcible.Core.Registry;
using Runcible.Core.RuntimeSpec;

namespace Runcible.Tasks;

/// <summary>
/// The PublishRuncBundle task: the composition root that puts the real stages together (registry and
/// local image sources over the content cache, the layer flattener, the runtime config generator and
/// the host runtime files) behind <see cref="PublishRuncBundleTaskBase"/>.
/// </summary>
public sealed class PublishRuncBundle : PublishRuncBundleTaskBase
{
    private RegistryClient? _registry;

    private protected override BundleStages CreateStages(NormalizedBundleSettings settings, IBuildLog log)
    {
        var environment = RegistryClientOptions.SnapshotProcessEnvironment();
        _registry = new RegistryClient(new RegistryClientOptions
        {
            InsecureRegistries = settings.InsecureRegistries,
            Environment = environment,
            ContainerRegistry = settings.ContainerRegistry,
            Log = log,
        });
        var cacheDirectory = Path.GetFullPath(CacheDirectory);
        var cache = new ContentCache(CacheLayout.ContentDirectory(cacheDirectory));
        return new BundleStages(
            new ImagePuller(cache, _registry.Open, new ImagePullerOptions { Offline = settings.Bundle.Offline }, log),
            new DeferredRootfsFlattener(new RootfsFlattener(new FlattenOptions(), log), CacheLayout.RootfsFilesDirectory(cacheDirectory)),
            new RuntimeConfigStage(),
            new HostRuntimeFiles());
    }

    protected override void ReleaseStages()
    {
        _registry?.Dispose();
        _registry = null;
    }
}
