namespace Runcible.Core.Diagnostics;

internal static partial class RuncibleErrors
{
    public static readonly ErrorDescriptor UnknownUser = new(
        "RUNCIBLE3001",
        "The container user '{0}' names a {1} '{2}' that the base image's /etc/{3} does not define. Use a numeric id or a name the image defines (ContainerUser).");

    public static readonly ErrorDescriptor BadUserId = new(
        "RUNCIBLE3002",
        "The container user '{0}' is not a valid user: ids must be numbers from 0 to 4294967294 and names must not be empty. Fix ContainerUser or the image's User.");

    public static readonly ErrorDescriptor BadWorkingDirectory = new(
        "RUNCIBLE3003",
        "The working directory '{0}' is not allowed: {1}. Set ContainerWorkingDirectory to an absolute, normalised path outside /proc, such as /app.");

    public static readonly ErrorDescriptor BadVolumePath = new(
        "RUNCIBLE3004",
        "The volume path '{0}' is not allowed: {1}. Use an absolute, normalised path outside /, /proc, /sys and /dev (RuncVolume or the image's Volumes).");

    public static readonly ErrorDescriptor BadVolumeName = new(
        "RUNCIBLE3005",
        "The volume name '{0}' (for '{1}') is not allowed: use letters, digits, '.', '_' and '-', starting with a letter or digit (the Name metadata of RuncVolume).");

    public static readonly ErrorDescriptor ConflictingMounts = new(
        "RUNCIBLE3006",
        "Two mounts target '{0}' ({1} and {2}). Give each volume, the config directory and the logs directory its own path.");

    public static readonly ErrorDescriptor VolumeNameCollision = new(
        "RUNCIBLE3007",
        "The volumes '{0}' and '{1}' would both be stored in data/{2}. Give one of them another name with the Name metadata of RuncVolume.");

    public static readonly ErrorDescriptor BadCapability = new(
        "RUNCIBLE3008",
        "'{0}' is not a Linux capability runc knows. Use a name such as NET_BIND_SERVICE or CAP_NET_BIND_SERVICE in RuncCapability.");

    public static readonly ErrorDescriptor BadAppCommand = new(
        "RUNCIBLE3009",
        "The app command is not usable: {0}. Check ContainerAppCommand, ContainerAppCommandArgs, ContainerDefaultArgs and ContainerAppCommandInstruction.");

    public static readonly ErrorDescriptor BadEnvironmentVariable = new(
        "RUNCIBLE3010",
        "The environment variable name '{0}' is not allowed: it must be non-empty and contain no '=' or NUL (ContainerEnvironmentVariable).");

    public static readonly ErrorDescriptor BadRuntimeSetting = new(
        "RUNCIBLE3011",
        "The setting {0} has the value '{1}', which is not allowed: {2}.");

    public static readonly ErrorDescriptor BadSeccompProfile = new(
        "RUNCIBLE3012",
        "The seccomp profile '{0}' (RuncSeccompProfile) is not usable: {1}. Give an OCI seccomp profile (the linux.seccomp object of a config.json), 'unconfined', or leave RuncSeccompProfile empty for the default profile.");
}
