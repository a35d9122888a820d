using System.Text;

namespace Runcible.Core.Registry;

/// <summary>One <c>WWW-Authenticate</c> challenge: a scheme (Bearer, Basic) and its parameters (realm, service, scope).</summary>
internal sealed class AuthenticationChallenge
{
    private AuthenticationChallenge(string scheme, IReadOnlyDictionary<string, string> parameters)
    {
        Scheme = scheme;
        Parameters = parameters;
    }

    public string Scheme { get; }

    public IReadOnlyDictionary<string, string> Parameters { get; }

    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);

    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    public string? this[string name] => Parameters.TryGetValue(name, out var value) ? value : null;

    /// <summary>Parses the scheme and the <c>auth-param</c> list (<c>key=token</c> or <c>key="quoted, string"</c>).</summary>
    public static AuthenticationChallenge? Parse(string scheme, string? parameterText)
    {
        if (string.IsNullOrWhiteSpace(scheme))
        {
            return null;
        }

        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var text = parameterText ?? "";
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ',' || char.IsWhiteSpace(text[i])))
            {
                i++;
            }

            var keyStart = i;
            while (i < text.Length && text[i] != '=' && text[i] != ',')
            {
                i++;
            }

            var key = text[keyStart..i].Trim();
            if (i >= text.Length || text[i] != '=')
            {
                continue;
            }

            i++;
            var value = new StringBuilder();
            if (i < text.Length && text[i] == '"')
            {
                i++;
                while (i < text.Length && text[i] != '"')
                {
                    if (text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                    }

                    value.Append(text[i]);
                    i++;
                }

                i++;
            }
            else
            {
                while (i < text.Length && text[i] != ',')
                {
                    value.Append(text[i]);
                    i++;
                }
            }

            if (key.Length > 0)
            {
                parameters[key] = value.ToString().Trim();
            }
        }

        return new AuthenticationChallenge(scheme.Trim(), parameters);
    }
}
