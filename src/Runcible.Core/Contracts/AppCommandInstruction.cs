namespace Runcible.Core.Contracts;

/// <summary>How the app command becomes the image's ENTRYPOINT/CMD, as the .NET SDK's <c>ContainerAppCommandInstruction</c>.</summary>
internal enum AppCommandInstruction
{
    /// <summary>Not set: Entrypoint, as the .NET SDK defaults.</summary>
    Default,

    /// <summary>The app command is the entrypoint; <c>ContainerDefaultArgs</c> follow it.</summary>
    Entrypoint,

    /// <summary>The base image's entrypoint stays; the app command and default args become the command.</summary>
    DefaultArgs,

    /// <summary>No app command: the base image's entrypoint and the default args (or the image's Cmd) run.</summary>
    None,
}
