namespace Runcible.Core.Bundle;

/// <summary>One item of the targets' flattened item list: which setting it is for, its spec and its metadata.</summary>
internal sealed record RawSettingItem(string Setting, string Identity, IReadOnlyDictionary<string, string> Metadata)
{
    public string Get(string name) => Metadata.TryGetValue(name, out var value) ? value : "";
}

/// <summary>
/// The raw settings exactly as the targets hand them over: one value per MSBuild property named in the targets'
/// <c>_RuncSettingProperty</c> list, and the item-typed inputs flattened into one list (<c>Setting</c> metadata).
/// Records which properties are read, so a test can hold the targets' list and the normalizer's reads equal.
/// </summary>
internal sealed class RawSettings
{
    private readonly IReadOnlyDictionary<string, string> _properties;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);
    private readonly HashSet<string> _readItems = new(StringComparer.Ordinal);

    public RawSettings(IReadOnlyDictionary<string, string> properties, IReadOnlyList<RawSettingItem> items)
    {
        _properties = properties;
        Items = items;
    }

    public IReadOnlyList<RawSettingItem> Items { get; }

    /// <summary>The names of the properties read so far.</summary>
    public IReadOnlyCollection<string> ReadNames => _read;

    /// <summary>The property's value; empty when it is not set (MSBuild makes no difference either).</summary>
    public string this[string property]
    {
        get
        {
            _read.Add(property);
            return _properties.TryGetValue(property, out var value) ? value : "";
        }
    }

    /// <summary>The items of one setting (<c>ContainerPort</c>, <c>RuncVolume</c>…), in project order.</summary>
    public IReadOnlyList<RawSettingItem> ItemsOf(string setting)
    {
        _readItems.Add(setting);
        return Items.Where(i => string.Equals(i.Setting, setting, StringComparison.Ordinal)).ToList();
    }

    /// <summary>The item settings (<c>Setting</c> metadata values) asked for so far.</summary>
    public IReadOnlyCollection<string> ReadItemSettings => _readItems;

    /// <summary><paramref name="value"/>, or <paramref name="fallback"/> when it is empty (as MSBuild's <c>Condition="'$(X)' == ''"</c> defaults).</summary>
    internal static string Or(string value, string fallback) => string.IsNullOrWhiteSpace(value) ? fallback : value;

    // As MSBuild compares in a condition: case-insensitively.
    internal static bool IsTrue(string value) => string.Equals(value.Trim(), "true", StringComparison.OrdinalIgnoreCase);

    internal static bool IsFalse(string value) => string.Equals(value.Trim(), "false", StringComparison.OrdinalIgnoreCase);
}
