using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.Oci;

namespace Runcible.Core.RuntimeSpec;

/// <summary>
/// process.args from the image's Entrypoint/Cmd and the .NET SDK's app command settings, following
/// the SDK's rules: the default instruction is Entrypoint; a base ENTRYPOINT of just <c>dotnet</c> is
/// dropped; the default app command is the apphost when self-contained, else <c>dotnet &lt;app&gt;.dll</c>.
/// </summary>
internal static class AppCommandBuilder
{
    public static List<string> Build(RuntimeSpecSettings settings, ContainerConfig image, string workingDirectory)
    {
        IReadOnlyList<string> baseEntrypoint = image.Entrypoint ?? [];
        if (baseEntrypoint.Count == 1 && baseEntrypoint[0] is "dotnet" or "/usr/bin/dotnet")
        {
            baseEntrypoint = [];
        }

        IReadOnlyList<string> appCommand = settings.AppCommand.Count > 0 ? settings.AppCommand : DefaultAppCommand(settings, workingDirectory);
        IReadOnlyList<string> defaultArgs = settings.DefaultArgs;
        List<string> args;
        switch (settings.AppCommandInstruction)
        {
            case AppCommandInstruction.Default:
            case AppCommandInstruction.Entrypoint:
                args = [.. appCommand, .. settings.AppCommandArgs, .. defaultArgs];
                break;
            case AppCommandInstruction.DefaultArgs:
                args = [.. baseEntrypoint, .. appCommand, .. settings.AppCommandArgs, .. defaultArgs];
                break;
            case AppCommandInstruction.None:
                if (settings.AppCommand.Count > 0 || settings.AppCommandArgs.Count > 0)
                {
                    throw new RuncibleException(RuncibleErrors.BadAppCommand, "ContainerAppCommandInstruction is None, so ContainerAppCommand and ContainerAppCommandArgs must be empty");
                }

                args = [.. baseEntrypoint, .. (defaultArgs.Count > 0 ? defaultArgs : image.Cmd ?? [])];
                break;
            default:
                throw new RuncibleException(RuncibleErrors.BadAppCommand, "unknown ContainerAppCommandInstruction " + settings.AppCommandInstruction);
        }

        if (args.Count == 0 || string.IsNullOrEmpty(args[0]))
        {
            throw new RuncibleException(RuncibleErrors.BadAppCommand, "no command is left to run");
        }

        return args;
    }

    private static List<string> DefaultAppCommand(RuntimeSpecSettings settings, string workingDirectory)
    {
        var prefix = workingDirectory == "/" ? "/" : workingDirectory + "/";
        return settings.SelfContained
            ? [prefix + settings.AssemblyName]
            : ["dotnet", prefix + settings.AssemblyName + ".dll"];
    }
}
