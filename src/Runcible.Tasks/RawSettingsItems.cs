using System.Collections;
using Microsoft.Build.Framework;
using Runcible.Core.Bundle;

namespace Runcible.Tasks;

/// <summary>The targets' two raw lists (<c>_RuncSettingValue</c>, <c>_RuncSettingItem</c>) as Core's <see cref="RawSettings"/>.</summary>
internal static class RawSettingsItems
{
    /// <param name="properties">One item per property: the property's name, its value in <c>Value</c> metadata.</param>
    /// <param name="items">The item-typed inputs, each with <c>Setting</c> metadata naming what it is for.</param>
    public static RawSettings ToRawSettings(ITaskItem[] properties, ITaskItem[] items)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in properties)
        {
            values[property.ItemSpec] = property.GetMetadata("Value");
        }

        return new RawSettings(values, items.Select(ToRawItem).ToList());
    }

    private static RawSettingItem ToRawItem(ITaskItem item)
    {
        var metadata = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry entry in item.CloneCustomMetadata())
        {
            metadata[(string)entry.Key] = (string?)entry.Value ?? "";
        }

        metadata.Remove("Setting", out var setting);
        return new RawSettingItem(setting ?? "", item.ItemSpec, metadata);
    }
}

/// <summary>MSBuild's task object registry (build lifetime) as Core's <see cref="IBuildObjectRegistry"/>.</summary>
internal sealed class TaskObjectRegistry(IBuildEngine4 engine) : IBuildObjectRegistry
{
    public object? Get(string key) => engine.GetRegisteredTaskObject(key, RegisteredTaskObjectLifetime.Build);

    public void Register(string key, IDisposable value) =>
        engine.RegisterTaskObject(key, value, RegisteredTaskObjectLifetime.Build, allowEarlyCollection: false);

    public object? Unregister(string key) => engine.UnregisterTaskObject(key, RegisteredTaskObjectLifetime.Build);
}
