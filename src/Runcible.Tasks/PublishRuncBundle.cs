using Microsoft.Build.Framework;
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
/// The PublishRuncBundle task: reads the settings document ComputeRuncBundleSettings wrote, takes over the early base
/// part (<see cref="EarlyBasePart"/>), runs <see cref="BundleBuilder"/> and returns the tarball. It is the composition
/// root: <see cref="CreateStages"/> puts the real stages together (registry and local image sources over the content
/// cache, the layer flattener, the runtime config generator and the host runtime files).
/// </summary>
public sealed class PublishRuncBundle : RuncibleTask
{
    private RegistryClient? _registry;

    /// <summary>The settings document (<c>runc-bundle.settings.json</c>) ComputeRuncBundleSettings wrote.</summary>
    public string? SettingsFile { get; set; }

    [Required] public string CacheDirectory { get; set; } = "";
    [Required] public string ToolVersion { get; set; } = "";

    /// <summary>
    /// Only start preparing the base part (pull, rootfs reads, compressed base part) in the background and return:
    /// run early in a publish, so that the PublishRuncBundle call after the publish finds it done. Never fails the
    /// build: whatever goes wrong is found again, and reported, by that call.
    /// </summary>
    public bool PrepareBaseOnly { get; set; }

    /// <summary>
    /// With <see cref="PrepareBaseOnly"/>: files whose change means the bundle will be rebuilt (the compiled assembly,
    /// the sources, the project); see <see cref="EarlyBasePart.IsWorthPreparing"/>.
    /// </summary>
    public ITaskItem[] AppInputs { get; set; } = [];

    /// <summary>With <see cref="PrepareBaseOnly"/>: the targets' raw settings as they are that early (ComputeRuncBundleSettings' <c>Properties</c>).</summary>
    public ITaskItem[] SettingProperties { get; set; } = [];

    /// <summary>With <see cref="PrepareBaseOnly"/>: the targets' raw items as they are that early (ComputeRuncBundleSettings' <c>Items</c>).</summary>
    public ITaskItem[] SettingItems { get; set; } = [];

    [Output] public ITaskItem? Bundle { get; private set; }

    protected override void ExecuteCore()
    {
        if (PrepareBaseOnly)
        {
            StartBasePreparation();
            return;
        }

        if (string.IsNullOrEmpty(SettingsFile))
        {
            throw new InvalidOperationException("PublishRuncBundle needs SettingsFile (or PrepareBaseOnly).");
        }

        var normalized = BundleSettingsNormalizer.Deserialize(File.ReadAllBytes(SettingsFile));
        var settings = normalized.Bundle;
        var log = BuildLog;
        var prepared = Early().Complete(normalized.BasePart(CacheDirectory, ToolVersion), ref log, CancellationToken);

        BundleWriteResult result;
        try
        {
            Core.IO.CacheDirectory.Prepare(CacheDirectory);
            var stages = CreateStages(normalized, log);
            if (prepared is not null)
            {
                stages = stages with { Images = new PulledInThisBuild(stages.Images, normalized.BaseImage, settings.RuntimeIdentifier, prepared.Image) };
            }

            var builder = new BundleBuilder(stages, new BundleWriter(Path.GetFullPath(CacheDirectory), ToolVersion, log), log);
            var request = new BundleRequest(normalized.BaseImage, normalized.PublishDirectory, settings, normalized.Container, normalized.OutputDirectory);
            result = builder.BuildAsync(request, CancellationToken).GetAwaiter().GetResult();
            if (prepared is { WroteBasePart: true })
            {
                // Compressed by this build after all, only earlier.
                result = result with { ReusedBaseChunk = false };
            }
        }
        finally
        {
            ReleaseStages();
        }

        var item = new Microsoft.Build.Utilities.TaskItem(result.Path);
        item.SetMetadata("BundleName", settings.Name);
        item.SetMetadata("BundleVersion", settings.Version);
        item.SetMetadata("RuntimeIdentifier", settings.RuntimeIdentifier);
        item.SetMetadata("AppLayerDigest", result.AppLayerDigest);
        item.SetMetadata("ReusedBaseChunk", result.ReusedBaseChunk ? "true" : "false");
        Bundle = item;
    }

    /// <summary>The early base part of this project instance (file and global properties): one per instance.</summary>
    private EarlyBasePart Early()
    {
        var globals = BuildEngine6?.GetGlobalProperties() is { } properties
            ? string.Join("\n", properties.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase).Select(p => p.Key + "=" + p.Value))
            : "";
        return new EarlyBasePart(new TaskObjectRegistry(BuildEngine4), "Runcible.BasePreparation/2\n" + BuildEngine.ProjectFileOfTaskNode + "\n" + globals);
    }

    private void StartBasePreparation()
    {
        NormalizedBundleSettings normalized;
        try
        {
            // The same normalizer as the settings task, on the values as they are this early.
            normalized = BundleSettingsNormalizer.Normalize(RawSettingsItems.ToRawSettings(SettingProperties, SettingItems));
        }
        catch (RuncibleException e)
        {
            // ComputeRuncBundleSettings reports it, with its code, when the bundle is built.
            Log.LogMessage(MessageImportance.Low, $"Runcible: the base part is not prepared ahead: {e.Message}");
            return;
        }

        if (!EarlyBasePart.IsWorthPreparing(normalized.TarballPath, AppInputs.Select(i => i.GetMetadata("FullPath")), out var reason))
        {
            // The bundle may well be up to date (its target then does nothing): no registry request for it.
            Log.LogMessage(MessageImportance.Low, $"Runcible: {reason}; the base part is not prepared ahead.");
            return;
        }

        Log.LogMessage(MessageImportance.Low, $"Runcible: {reason}.");

        // Everything that reads the process's working directory or environment is done here, on the task's thread:
        // MSBuild changes both when it moves to another project, while the work runs on.
        bool started;
        try
        {
            started = Early().TryStart(normalized.BasePart(CacheDirectory, ToolVersion), log =>
            {
                Core.IO.CacheDirectory.Prepare(CacheDirectory);
                var builder = new BundleBuilder(CreateStages(normalized, log), new BundleWriter(Path.GetFullPath(CacheDirectory), ToolVersion, log), log);
                return async cancellationToken =>
                {
                    try
                    {
                        return await builder.PrepareBasePartAsync(normalized.BaseImage, normalized.Bundle, normalized.Container, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        ReleaseStages();
                    }
                };
            });
        }
        catch (RuncibleException e)
        {
            ReleaseStages();
            Log.LogMessage(MessageImportance.Low, $"Runcible: the base part is not prepared ahead: {e.Message}");
            return;
        }

        if (started)
        {
            Log.LogMessage(MessageImportance.Low, $"Runcible: preparing the base part of {normalized.TarballPath} from {normalized.BaseImage} while the app is built and published.");
        }
    }

    /// <summary>
    /// The stage implementations. <see cref="NormalizedBundleSettings.InsecureRegistries"/>,
    /// <see cref="NormalizedBundleSettings.ContainerRegistry"/> and <see cref="BundleSettings.Offline"/> are for the fetch stage.
    /// </summary>
    private BundleStages CreateStages(NormalizedBundleSettings settings, IBuildLog log)
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

    /// <summary>Releases what <see cref="CreateStages"/> opened (connections); MSBuild does not dispose tasks.</summary>
    private void ReleaseStages()
    {
        _registry?.Dispose();
        _registry = null;
    }
}
