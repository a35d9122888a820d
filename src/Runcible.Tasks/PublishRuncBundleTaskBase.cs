using Microsoft.Build.Framework;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;

namespace Runcible.Tasks;

/// <summary>
/// Everything the PublishRuncBundle task does except choosing the stage implementations: maps the
/// MSBuild properties and items to <see cref="BundleRequest"/>, runs <see cref="BundleBuilder"/>,
/// and returns the tarball. The concrete task (the composition root) supplies
/// <see cref="CreateStages"/> with the fetch, unpack, runtime-config and host-runtime stages.
/// </summary>
public abstract class PublishRuncBundleTaskBase : RuncibleTask, IBundleTaskInputs
{
    [Required] public string AssemblyName { get; set; } = "";
    [Required] public string PublishDirectory { get; set; } = "";
    [Required] public string OutputDirectory { get; set; } = "";
    [Required] public string CacheDirectory { get; set; } = "";
    [Required] public string ToolVersion { get; set; } = "";

    /// <summary>The base image reference (ComputeRuncBundleSettings' BaseImage); when empty, inferred from the inputs below as it does.</summary>
    public string? BaseImage { get; set; }
    public string? ContainerBaseImage { get; set; }
    public string? ContainerFamily { get; set; }
    public bool PublishAot { get; set; }
    public bool PublishTrimmed { get; set; }
    public bool InvariantGlobalization { get; set; }
    public bool UsesAspNetCore { get; set; }
    public string? SdkVersion { get; set; }

    /// <summary>
    /// Only start preparing the base part (pull, rootfs reads, compressed base part) in the background and return:
    /// run early in a publish, so that the PublishRuncBundle call after the publish finds it done. Never fails the
    /// build: whatever goes wrong is found again, and reported, by that call.
    /// </summary>
    public bool PrepareBaseOnly { get; set; }

    /// <summary>
    /// With <see cref="PrepareBaseOnly"/>: files whose change means the bundle will be rebuilt (the compiled assembly,
    /// the sources, the project). When a tarball exists and none of them is newer, nothing is prepared: the bundle
    /// is probably up to date, and a publish that turns out to have nothing to do must not ask a registry anything.
    /// </summary>
    public ITaskItem[] AppInputs { get; set; } = [];

    public string? BundleName { get; set; }
    public string? BundleVersion { get; set; }
    public string? RuntimeIdentifier { get; set; }
    public string? ContainerRuntimeIdentifiers { get; set; }
    public string? SdkRuntimeIdentifier { get; set; }
    public string? ContainerRepository { get; set; }
    public string? RuntimeIdentifierInFileName { get; set; }
    public string? TargetFramework { get; set; }
    public string? Compression { get; set; }
    public string? CompressionLevel { get; set; }
    public string? StopTimeout { get; set; }
    public string? WorkingDirectory { get; set; }
    public string? Rootless { get; set; }
    public string? WritableRootfs { get; set; }

    /// <summary><c>RuncNetwork</c>: host, private or none.</summary>
    public string? Network { get; set; }

    /// <summary><c>RuncPublishPort</c> items: <c>[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]</c>.</summary>
    public ITaskItem[] PublishPorts { get; set; } = [];
    public string? Notify { get; set; }
    public string? Offline { get; set; }
    public string? SourceDateEpoch { get; set; }
    public string? HealthCheck { get; set; }
    public string? HealthInterval { get; set; }
    public string? HealthTimeout { get; set; }
    public string? HealthRetries { get; set; }
    public string? HealthStartPeriod { get; set; }
    public string? InsecureRegistries { get; set; }

    /// <summary>The registry the project's image is pushed to (<c>ContainerRegistry</c>): the .NET SDK's push credentials are used to pull only from it.</summary>
    public string? ContainerRegistry { get; set; }
    public bool SelfContained { get; set; }
    public string? AppHostName { get; set; }
    public string? ContainerUser { get; set; }
    public string? AppCommandInstruction { get; set; }
    public string? OpenFilesLimit { get; set; }

    /// <summary><c>RuncSeccompProfile</c>: empty, <c>unconfined</c>, or the profile file's full path.</summary>
    public string? SeccompProfile { get; set; }
    public string? MemoryLimit { get; set; }
    public string? CpuLimit { get; set; }
    public string? PidsLimit { get; set; }
    public ITaskItem[] Volumes { get; set; } = [];
    public ITaskItem[] Capabilities { get; set; } = [];
    public ITaskItem[] Ports { get; set; } = [];
    public ITaskItem[] EnvironmentVariables { get; set; } = [];
    public ITaskItem[] Labels { get; set; } = [];

    /// <summary>Labels the .NET SDK generates from project properties (ContainerGenerateLabels); the project's Labels win over them.</summary>
    public ITaskItem[] GeneratedLabels { get; set; } = [];

    /// <summary>Add <c>org.opencontainers.image.base.name</c> (ContainerGenerateLabels and ContainerGenerateLabelsImageBaseName).</summary>
    public bool GenerateBaseNameLabel { get; set; }

    /// <summary>Add the creation time labels, from SOURCE_DATE_EPOCH only (ContainerGenerateLabels and ContainerGenerateLabelsImageCreated).</summary>
    public bool GenerateCreatedLabel { get; set; }
    public ITaskItem[] AppCommand { get; set; } = [];
    public ITaskItem[] AppCommandArgs { get; set; } = [];
    public ITaskItem[] DefaultArgs { get; set; } = [];

    [Output] public ITaskItem? Bundle { get; private set; }

    protected override void ExecuteCore()
    {
        if (PrepareBaseOnly)
        {
            StartBasePreparation();
            return;
        }

        var (settings, container) = MapSettings();
        var baseImage = ResolveBaseImage(settings);
        container = container with
        {
            Labels = Core.Bundle.GeneratedLabels.Merge(
                GeneratedLabels.Select(l => new KeyValuePair<string, string>(l.ItemSpec, l.GetMetadata("Value"))),
                GenerateBaseNameLabel ? baseImage : null,
                GenerateCreatedLabel && !string.IsNullOrWhiteSpace(SourceDateEpoch) ? settings.Created : null,
                container.Labels),
        };
        var log = BuildLog;
        var prepared = CompleteBasePreparation(settings, baseImage, ref log);

        BundleWriteResult result;
        try
        {
            Core.IO.CacheDirectory.Prepare(CacheDirectory);
            var stages = CreateStages(settings, log);
            if (prepared is not null)
            {
                stages = stages with { Images = new PulledInThisBuild(stages.Images, baseImage, settings.RuntimeIdentifier, prepared.Image) };
            }

            var builder = new BundleBuilder(stages, new BundleWriter(Path.GetFullPath(CacheDirectory), ToolVersion, log), log);
            result = builder.BuildAsync(new BundleRequest(baseImage, Path.GetFullPath(PublishDirectory), settings, container, OutputDirectory), CancellationToken)
                .GetAwaiter().GetResult();
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

    private (BundleSettings Settings, ContainerSettings Container) MapSettings()
    {
        var settings = new BundleSettingsValidator().Validate(this.ToRawSettings());

        var container = new ContainerSettings
        {
            AssemblyName = AssemblyName,
            SelfContained = SelfContained,
            AppHostName = string.IsNullOrEmpty(AppHostName) ? null : AppHostName,
            User = string.IsNullOrWhiteSpace(ContainerUser) ? null : ContainerUser,
            AppCommandInstruction = string.IsNullOrWhiteSpace(AppCommandInstruction) ? null : AppCommandInstruction,
            Ports = Ports.Select(p => string.IsNullOrEmpty(p.GetMetadata("Type")) ? p.ItemSpec : $"{p.ItemSpec}/{p.GetMetadata("Type")}").ToList(),
            EnvironmentVariables = EnvironmentVariables.Select(e => new KeyValuePair<string, string>(e.ItemSpec, e.GetMetadata("Value"))).ToList(),
            Labels = Labels.Select(e => new KeyValuePair<string, string>(e.ItemSpec, e.GetMetadata("Value"))).ToList(),
            AppCommand = AppCommand.Select(i => i.ItemSpec).ToList(),
            AppCommandArgs = AppCommandArgs.Select(i => i.ItemSpec).ToList(),
            DefaultArgs = DefaultArgs.Select(i => i.ItemSpec).ToList(),
            Capabilities = Capabilities.Select(i => i.ItemSpec).ToList(),
            OpenFilesLimit = string.IsNullOrWhiteSpace(OpenFilesLimit) ? null : OpenFilesLimit,
            SeccompProfile = string.IsNullOrWhiteSpace(SeccompProfile) ? null : SeccompProfile,
            MemoryLimit = string.IsNullOrWhiteSpace(MemoryLimit) ? null : MemoryLimit,
            CpuLimit = string.IsNullOrWhiteSpace(CpuLimit) ? null : CpuLimit,
            PidsLimit = string.IsNullOrWhiteSpace(PidsLimit) ? null : PidsLimit,
        };

        // Checked again by the config stage; here so that a typo fails the build before the base image is pulled.
        _ = Core.RuntimeSpec.RuntimeConfigStage.ParseInstruction(container.AppCommandInstruction);
        _ = Core.RuntimeSpec.RuntimeConfigStage.ParseOpenFilesLimit(container.OpenFilesLimit);
        return (settings, container);
    }

    // The effective reference from ComputeRuncBundleSettings; the early call, which runs before it, resolves it the same way.
    private string ResolveBaseImage(BundleSettings settings) => !string.IsNullOrWhiteSpace(BaseImage)
        ? BaseImage!.Trim()
        : this.ContainerOrInferredBaseImage(settings);

    /// <summary>Where the early call leaves its work for the call after the publish: one per project instance (file and global properties).</summary>
    private string PreparationKey()
    {
        var globals = BuildEngine6?.GetGlobalProperties() is { } properties
            ? string.Join("\n", properties.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase).Select(p => p.Key + "=" + p.Value))
            : "";
        return "Runcible.BasePreparation/1\n" + BuildEngine.ProjectFileOfTaskNode + "\n" + globals;
    }

    /// <summary>
    /// Everything the early work's result depends on: when the call after the publish sees other values (a target
    /// between the two changed the version, say), that work is not its own and is dropped.
    /// </summary>
    private string PreparationIdentity(BundleSettings settings, string baseImage) => string.Join(
        "\n",
        settings.TarballPath(OutputDirectory),
        baseImage,
        settings.RuntimeIdentifier,
        settings.TreePrefix,
        settings.Created.ToUnixTimeSeconds(),
        settings.Compression,
        settings.CompressionLevel,
        settings.Offline,
        InsecureRegistries,
        ContainerRegistry,
        Path.GetFullPath(CacheDirectory),
        ToolVersion);

    private void StartBasePreparation()
    {
        BundleSettings settings;
        ContainerSettings container;
        string baseImage;
        try
        {
            (settings, container) = MapSettings();
            baseImage = ResolveBaseImage(settings);
        }
        catch (RuncibleException e)
        {
            // ComputeRuncBundleSettings reports it, with its code, when the bundle is built.
            Log.LogMessage(MessageImportance.Low, $"Runcible: the base part is not prepared ahead: {e.Message}");
            return;
        }

        var bundlePath = settings.TarballPath(OutputDirectory);
        if (File.Exists(bundlePath))
        {
            var written = File.GetLastWriteTimeUtc(bundlePath);
            if (AppInputs.FirstOrDefault(i => File.GetLastWriteTimeUtc(i.GetMetadata("FullPath")) > written) is not { } changed)
            {
                // The bundle may well be up to date (its target then does nothing): no registry request for it.
                Log.LogMessage(MessageImportance.Low, $"Runcible: {bundlePath} is newer than the app; the base part is not prepared ahead.");
                return;
            }

            Log.LogMessage(MessageImportance.Low, $"Runcible: {changed.ItemSpec} changed since {bundlePath} was written.");
        }

        var key = PreparationKey();
        if (BuildEngine4.GetRegisteredTaskObject(key, RegisteredTaskObjectLifetime.Build) is not null)
        {
            return;
        }

        // Everything that reads the process's working directory or environment is done here, on the task's thread:
        // MSBuild changes both when it moves to another project, while the work below runs on.
        var preparation = new BasePreparation(PreparationIdentity(settings, baseImage));
        BundleBuilder builder;
        try
        {
            Core.IO.CacheDirectory.Prepare(CacheDirectory);
            builder = new BundleBuilder(CreateStages(settings, preparation.Log), new BundleWriter(Path.GetFullPath(CacheDirectory), ToolVersion, preparation.Log), preparation.Log);
        }
        catch (RuncibleException e)
        {
            ReleaseStages();
            Log.LogMessage(MessageImportance.Low, $"Runcible: the base part is not prepared ahead: {e.Message}");
            return;
        }

        BuildEngine4.RegisterTaskObject(key, preparation, RegisteredTaskObjectLifetime.Build, allowEarlyCollection: false);
        preparation.Start(async cancellationToken =>
        {
            try
            {
                return await builder.PrepareBasePartAsync(baseImage, settings, container, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                ReleaseStages();
            }
        });
        Log.LogMessage(MessageImportance.Low, $"Runcible: preparing the base part of {bundlePath} from {baseImage} while the app is built and published.");
    }

    /// <summary>
    /// Waits for the preparation an early call started, if any and if it is for this bundle; its log is replayed
    /// (and <paramref name="log"/> becomes one that does not repeat its warnings), its coded failure is this build's.
    /// Returns what it prepared, or null when there was nothing (or nothing usable).
    /// </summary>
    private PreparedBasePart? CompleteBasePreparation(BundleSettings settings, string baseImage, ref IBuildLog log)
    {
        if (BuildEngine4.UnregisterTaskObject(PreparationKey(), RegisteredTaskObjectLifetime.Build) is not BasePreparation preparation)
        {
            return null;
        }

        using (preparation)
        {
            if (preparation.Identity != PreparationIdentity(settings, baseImage))
            {
                // Prepared for other settings than the ones the publish ended with: stopped (by the dispose) and not used.
                log.LogMessage("Runcible: the base part prepared ahead was for other settings; it is built now.");
                return null;
            }

            log = new DeduplicatingBuildLog(log);
            // What the work logged before this task ran is shown now; what it logs while this task waits, as it happens.
            preparation.Log.ForwardTo(log);
            try
            {
                return preparation.Completion.WaitAsync(CancellationToken).GetAwaiter().GetResult();
            }
            catch (RuncibleException)
            {
                // The same image and settings: building it again would fail the same way (after the same timeouts).
                throw;
            }
            catch (Exception e) when (!CancellationToken.IsCancellationRequested)
            {
                log.LogMessage($"Runcible: preparing the base part ahead failed ({e.GetType().Name}: {e.Message}); it is built now.");
                return null;
            }
            finally
            {
                preparation.Log.StopForwarding();
            }
        }
    }

    /// <summary>
    /// The stage implementations (composition root). <see cref="InsecureRegistries"/>, <see cref="ContainerRegistry"/> and
    /// <see cref="BundleSettings.Offline"/> are for the fetch stage.
    /// </summary>
    private protected abstract BundleStages CreateStages(BundleSettings settings, Core.Diagnostics.IBuildLog log);

    /// <summary>Releases what <see cref="CreateStages"/> opened (connections); MSBuild does not dispose tasks.</summary>
    protected virtual void ReleaseStages()
    {
    }
}

/// <summary>
/// Base-part work an early PublishRuncBundle call left running, registered with MSBuild for the rest of the build:
/// the call after the publish takes it over; if none does (the build failed before), MSBuild disposes it at the
/// end of the build, which cancels it and waits for it to stop.
/// </summary>
internal sealed class BasePreparation(string identity) : IDisposable
{
    private readonly CancellationTokenSource _cancellation = new();
    private int _disposed;

    /// <summary>What the work was started for (see PreparationIdentity).</summary>
    public string Identity { get; } = identity;

    public BufferedBuildLog Log { get; } = new();

    public Task<PreparedBasePart> Completion { get; private set; } = Task.FromCanceled<PreparedBasePart>(new CancellationToken(canceled: true));

    public void Start(Func<CancellationToken, Task<PreparedBasePart>> work) =>
        Completion = Task.Run(() => work(_cancellation.Token));

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _cancellation.Cancel();
        try
        {
            Completion.GetAwaiter().GetResult();
        }
        catch (Exception)
        {
            // Cancelled, or failed: either way nothing is left running and nobody is waiting for the result.
        }

        _cancellation.Dispose();
    }
}
