using NJsonSchema;
using Runcible.Core.RuntimeSpec;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>Checks generated documents against the OCI schema and checked-in golden files.</summary>
internal static class RuntimeSpecAssertions
{
    public const string SchemaPath = "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema/config-schema.json";

    private static readonly Lazy<JsonSchema> Schema = new(() => JsonSchema.FromFileAsync(SchemaPath).GetAwaiter().GetResult());

    public static string GoldenDirectory => Path.Combine(RepoPaths.Root, "tests", "Runcible.Tests", "RuntimeSpec", "Golden");

    public static void ValidatesAgainstSchema(RuntimeConfig config)
    {
        var json = System.Text.Encoding.UTF8.GetString(RuntimeSpecGenerator.Serialize(config));
        var errors = Schema.Value.Validate(json);
        Assert.True(errors.Count == 0, "schema errors: " + string.Join("; ", errors.Select(e => e.ToString())));
    }

    /// <summary>Compares bytes with Golden/<paramref name="name"/>; RUNCIBLE_UPDATE_GOLDEN=1 rewrites the file instead.</summary>
    public static void MatchesGolden(string name, byte[] actual)
    {
        var path = Path.Combine(GoldenDirectory, name);
        if (Environment.GetEnvironmentVariable("RUNCIBLE_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllBytes(path, actual);
        }

        Assert.True(File.Exists(path), $"golden file {path} is missing (set RUNCIBLE_UPDATE_GOLDEN=1 once, then review it)");
        Assert.Equal(File.ReadAllText(path), System.Text.Encoding.UTF8.GetString(actual));
    }
}
