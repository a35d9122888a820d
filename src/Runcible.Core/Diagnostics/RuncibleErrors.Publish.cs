namespace Runcible.Core.Diagnostics;

/// <summary>Publish stage (4xxx): MSBuild properties, the app layer, the bundle tarball.</summary>
internal static partial class RuncibleErrors
{
    public static readonly ErrorDescriptor NonLinuxRuntimeIdentifier = new(
        "RUNCIBLE4001",
        "The runtime identifier '{0}' is not a Linux one; runc bundles run Linux apps. Publish with -r linux-x64 or linux-arm64 (or set ContainerRuntimeIdentifier).");

    public static readonly ErrorDescriptor MissingRuntimeIdentifier = new(
        "RUNCIBLE4002",
        "No runtime identifier is set. Publish with -r linux-x64 (or linux-arm64), or set RuntimeIdentifier or ContainerRuntimeIdentifier in the project.");

    public static readonly ErrorDescriptor SeveralTargetFrameworks = new(
        "RUNCIBLE4003",
        "The project targets several frameworks ({0}); choose one for the bundle with -f <framework>.");

    public static readonly ErrorDescriptor InvalidBundleName = new(
        "RUNCIBLE4004",
        "The bundle name '{0}' is not valid: use 1 to 63 lower-case letters, digits and '-', starting with a letter and not ending with '-'. Set RuncBundleName.");

    public static readonly ErrorDescriptor InvalidBundleVersion = new(
        "RUNCIBLE4005",
        "The bundle version '{0}' is not a semantic version (for example 1.2.3 or 1.2.3-beta.1; no build metadata '+'). Set RuncBundleVersion or Version.");

    public static readonly ErrorDescriptor UnknownCompression = new(
        "RUNCIBLE4006",
        "RuncBundleCompression '{0}' is not known; use gzip, zstd or none.");

    public static readonly ErrorDescriptor InvalidStopTimeout = new(
        "RUNCIBLE4007",
        "RuncStopTimeout '{0}' is not a whole number of seconds between 1 and 3600.");

    public static readonly ErrorDescriptor InvalidWorkingDirectory = new(
        "RUNCIBLE4008",
        "ContainerWorkingDirectory '{0}' must be an absolute, normalised path (no '.', '..' or empty segments) outside /proc, /sys and /dev.");

    public static readonly ErrorDescriptor InvalidVolumeName = new(
        "RUNCIBLE4009",
        "RuncVolume '{0}' needs a Name metadata of lower-case letters, digits, '-', '_' or '.' (not starting with '.') and an absolute container path as the item; each name once.");

    public static readonly ErrorDescriptor PublishDirectoryMissing = new(
        "RUNCIBLE4010",
        "The publish output '{0}' does not exist; run Publish first (or use dotnet publish -p:PublishRuncBundle=true).");

    public static readonly ErrorDescriptor BundleOutputNotWritable = new(
        "RUNCIBLE4011",
        "Cannot write the bundle '{0}': {1}. Check RuncBundleOutputPath and free disk space.");

    public static readonly ErrorDescriptor InvalidTargetFramework = new(
        "RUNCIBLE4012",
        "Cannot infer a base image from the target framework '{0}'; set ContainerBaseImage.");

    public static readonly ErrorDescriptor InvalidBooleanProperty = new(
        "RUNCIBLE4013",
        "The property {0} is '{1}'; use true or false.");

    public static readonly ErrorDescriptor UnsupportedArchitecture = new(
        "RUNCIBLE4014",
        "The runtime identifier '{0}' has an architecture Runcible cannot map to an OCI platform; use linux-x64, linux-arm64, linux-arm, linux-x86, linux-s390x, linux-ppc64le, linux-riscv64 or linux-loongarch64 (or the musl variants).");

    public static readonly ErrorDescriptor InvalidSourceDateEpoch = new(
        "RUNCIBLE4015",
        "SOURCE_DATE_EPOCH '{0}' is not a whole number of seconds since 1970 (0 to 8589934591).");

    public static readonly ErrorDescriptor PublishOutputUnreadable = new(
        "RUNCIBLE4016",
        "Cannot read the publish output '{0}': {1}. Publish again (the output may have changed during the build) and check its permissions.");

    public static readonly ErrorDescriptor InvalidCompressionLevel = new(
        "RUNCIBLE4017",
        "RuncBundleCompressionLevel '{0}' is not valid with RuncBundleCompression {1}: {2}.");

    public static readonly ErrorDescriptor WorkingDirectoryNotADirectoryInImage = new(
        "RUNCIBLE4018",
        "ContainerWorkingDirectory '{0}' cannot hold the app: in the base image {1}, '{2}' is {3}. The app would be written through it (a symlink like /app -> /etc puts it elsewhere for tools that follow links). Set ContainerWorkingDirectory to a path that is a directory, or absent, in the base image.");

    public static readonly ErrorDescriptor BaseImageNotInferable = new(
        "RUNCIBLE4040",
        "Cannot infer a base image as the .NET SDK would: {0}. Set ContainerBaseImage (or fix the runtime identifiers).");

    public static readonly ErrorDescriptor UnhonouredContainerProperty = new(
        "RUNCIBLE4041",
        "The project sets the .NET SDK container property {0}, which a runc bundle cannot honour: {1}.");

    public static readonly ErrorDescriptor BadResourceLimit = new(
        "RUNCIBLE4030",
        "{0} '{1}' is not valid; use {2}.");

    public static readonly ErrorDescriptor PidsLimitRootless = new(
        "RUNCIBLE4031",
        "RuncPidsLimit '{0}' cannot apply to a rootless bundle: runc 1.1 cannot set a pids limit without a delegated cgroup. Remove RuncPidsLimit or build a rootful bundle.");

    public static readonly ErrorDescriptor InvalidNetworkMode = new(
        "RUNCIBLE4060",
        "RuncNetwork '{0}' is not known; use host (the host's network, the default), private (a namespace of its own on the runcible0 bridge, with published ports) or none (loopback only).");

    public static readonly ErrorDescriptor InvalidPublishPort = new(
        "RUNCIBLE4061",
        "RuncPublishPort '{0}' is not valid: {1}. Write [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] with ports from 1 to 65535, such as 8081:8080 or 127.0.0.1:8443:443/tcp, each host port once.");

    public static readonly ErrorDescriptor PublishPortNeedsPrivateNetwork = new(
        "RUNCIBLE4062",
        "RuncPublishPort is set but RuncNetwork is {0}: ports are published only from a private network. Set RuncNetwork=private, or remove the RuncPublishPort items.");

    public static readonly ErrorDescriptor InvalidContainerPort = new(
        "RUNCIBLE4063",
        "ContainerPort '{0}' is not a port a private network can publish; write a number from 1 to 65535 with an optional Type of tcp or udp.");

    public static readonly ErrorDescriptor InvalidHealthCheck = new(
        "RUNCIBLE4050",
        "RuncHealthCheck '{0}' is not a health check: {1}. Use an HTTP URL such as http://127.0.0.1:8080/healthz, or a command run in the container such as /app/healthcheck --quick (exec'd directly: chiseled and distroless images have no shell, so write sh -c \"...\" only when the image has one).");

    public static readonly ErrorDescriptor InvalidHealthTiming = new(
        "RUNCIBLE4051",
        "{0} '{1}' is not valid: {2}.");
}
