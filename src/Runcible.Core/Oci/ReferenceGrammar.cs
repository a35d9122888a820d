using System.Text.RegularExpressions;

namespace Runcible.Core.Oci;

/// <summary>
/// The one implementation of distribution's reference grammar (its <c>reference</c> package, what docker and skopeo
/// accept), used both to parse <see cref="ImageReference"/> and to check names again before they go into a URL
/// (<see cref="Registry.RegistryNames"/>). ASCII only: .NET's <c>\w</c> and <c>\d</c> match Unicode letters and digits,
/// so the classes are spelled out; <c>\z</c>, not <c>$</c>, which also matches before a final newline.
/// </summary>
internal static partial class ReferenceGrammar
{
    /// <summary>The longest repository name (distribution's <c>NameTotalLengthMax</c>).</summary>
    public const int MaxNameLength = 255;

    /// <summary><c>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}</c>.</summary>
    public static bool IsTag(string value) => TagPattern().IsMatch(value);

    /// <summary>Lower-case <c>[a-z0-9]</c> components joined by <c>.</c>, <c>_</c>, <c>__</c> or <c>-</c>s, separated by <c>/</c>.</summary>
    public static bool IsRepositoryPath(string value) => RepositoryPattern().IsMatch(value);

    /// <summary>DNS labels (or an IPv4 address), or a bracketed IPv6 literal; an optional <c>:port</c>.</summary>
    public static bool IsDomain(string value) => DomainPattern().IsMatch(value);

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\z", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\z", RegexOptions.CultureInvariant)]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex(@"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[A-Fa-f0-9:]+\])(?::[0-9]{1,5})?\z", RegexOptions.CultureInvariant)]
    private static partial Regex DomainPattern();
}
