using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Runcible.Tests.Infrastructure;

/// <summary>The task items the targets hand the settings task (<c>_RuncSettingValue</c>, <c>_RuncSettingItem</c>).</summary>
internal static class SettingTaskItems
{
    /// <summary>
    /// The raw properties a typical SDK project hands over (as the targets' list expands them; MSBuild's own
    /// OutputPath and PublishDir use backslashes).
    /// </summary>
    public static Dictionary<string, string> TypicalProject(string projectDirectory, string assemblyName = "Hello.App", string version = "2.1.0") => new(StringComparer.Ordinal)
    {
        ["AssemblyName"] = assemblyName,
        ["MSBuildProjectDirectory"] = projectDirectory,
        ["OutputPath"] = @"bin\Release\net10.0\linux-x64\",
        ["PublishDir"] = @"bin\Release\net10.0\linux-x64\publish\",
        ["TargetFramework"] = "net10.0",
        ["RuntimeIdentifier"] = "linux-x64",
        ["Version"] = version,
        ["NETCoreSdkVersion"] = "10.0.100",
        ["TargetFrameworkIdentifier"] = ".NETCoreApp",
        ["_TargetFrameworkVersionWithoutV"] = "10.0",
    };

    /// <summary>One item per property, its value in <c>Value</c> metadata, as the targets expand <c>_RuncSettingProperty</c>.</summary>
    public static ITaskItem[] Properties(IReadOnlyDictionary<string, string> values) =>
        values.Select(p => (ITaskItem)new TaskItem(p.Key, new Dictionary<string, string> { ["Value"] = p.Value })).ToArray();

    /// <summary>An item-typed input: <paramref name="setting"/> is its item type, in <c>Setting</c> metadata.</summary>
    public static ITaskItem Item(string setting, string identity, params (string Name, string Value)[] metadata)
    {
        var item = new TaskItem(identity);
        item.SetMetadata("Setting", setting);
        foreach (var (name, value) in metadata)
        {
            item.SetMetadata(name, value);
        }

        return item;
    }
}
