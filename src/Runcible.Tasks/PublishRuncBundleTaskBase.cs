using Microsoft.Build.Framework;
using Runcible.Core.Bundle;

namespace Runcible.Tasks;

/// <summary>
/// Everything the PublishRuncBundle task does except choosing the stage implementations: maps the
/// MSBuild properties and items to <see cref="BundleRequest"/>, runs <see cref="BundleBuilder"/>,
/// and returns the tarball. The concrete task (the composition root) supplies
/// <see cref="CreateStages"/> with the fetch, unpack, runtime-config and host-runtime stages.
/// </summary>
public abstract class PublishRuncBundleTaskBase : RuncibleTask
{
    [Required] public string AssemblyName { get; set; } = "";
    [Required] public string PublishDirectory { get; set; } = "";
    [Required] public string OutputDirectory { get; set; } = "";
    [Required] public string CacheDirectory { get; set; } = "";
    [Required] public string BaseImage { get; set; } = "";
    [Required] public string ToolVersion { get; set; } = "";

    public string? BundleName { get; set; }
    public string? BundleVersion { get; set; }
    public string? RuntimeIdentifier { get; set; }
    public string? TargetFramework { get; set; }
    public string? Compression { get; set; }
    public string? CompressionLevel { get; set; }
    public string? StopTimeout { get; set; }
    public string? WorkingDirectory { get; set; }
    public string? Rootless { get; set; }
    public string? WritableRootfs { get; set; }
    public string? Notify { get; set; }
    public string? Offline { get; set; }
    public string? SourceDateEpoch { get; set; }
    public string? InsecureRegistries { get; set; }
    public bool SelfContained { get; set; }
    public string? AppHostName { get; set; }
    public string? ContainerUser { get; set; }
    public string? AppCommandInstruction { get; set; }
    public string? OpenFilesLimit { get; set; }
    public ITaskItem[] Volumes { get; set; } = [];
    public ITaskItem[] Capabilities { get; set; } = [];
    public ITaskItem[] Ports { get; set; } = [];
    public ITaskItem[] EnvironmentVariables { get; set; } = [];
    public ITaskItem[] Labels { get; set; } = [];
    public ITaskItem[] AppCommand { get; set; } = [];
    public ITaskItem[] AppCommandArgs { get; set; } = [];
    public ITaskItem[] DefaultArgs { get; set; } = [];

    [Output] public ITaskItem? Bundle { get; private set; }

    protected override void ExecuteCore()
    {
        var settings = new BundleSettingsValidator().Validate(new RawBundleSettings
        {
            AssemblyName = AssemblyName,
            BundleName = BundleName,
            BundleVersion = BundleVersion,
            RuntimeIdentifier = RuntimeIdentifier,
            TargetFramework = TargetFramework,
            Compression = Compression,
            CompressionLevel = CompressionLevel,
            StopTimeout = StopTimeout,
            WorkingDirectory = WorkingDirectory,
            Rootless = Rootless,
            WritableRootfs = WritableRootfs,
            Notify = Notify,
            Offline = Offline,
            SourceDateEpoch = SourceDateEpoch,
            Volumes = Volumes.Select(v => new BundleVolume(v.GetMetadata("Name"), v.ItemSpec)).ToList(),
        });

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
        };

        var log = BuildLog;
        BundleWriteResult result;
        try
        {
            var builder = new BundleBuilder(CreateStages(settings, log), new BundleWriter(Path.GetFullPath(CacheDirectory), ToolVersion, log), log);
            result = builder.BuildAsync(new BundleRequest(BaseImage, Path.GetFullPath(PublishDirectory), settings, container, OutputDirectory), CancellationToken)
                .GetAwaiter().GetResult();
        }
        finally
        {
            ReleaseStages();
        }

        var item = new Microsoft.Build.Utilities.TaskItem(result.Path);
        item.SetMetadata("BundleName", settings.Name);
        item.SetMetadata("BundleVersion", settings.Version);
        item.SetMetadata("AppLayerDigest", result.AppLayerDigest);
        item.SetMetadata("ReusedBaseChunk", result.ReusedBaseChunk ? "true" : "false");
        Bundle = item;
    }

    /// <summary>
    /// The stage implementations (composition root). <see cref="InsecureRegistries"/> and
    /// <see cref="BundleSettings.Offline"/> are for the fetch stage.
    /// </summary>
    protected abstract BundleStages CreateStages(BundleSettings settings, Core.Diagnostics.IBuildLog log);

    /// <summary>Releases what <see cref="CreateStages"/> opened (connections); MSBuild does not dispose tasks.</summary>
    protected virtual void ReleaseStages()
    {
    }
}
