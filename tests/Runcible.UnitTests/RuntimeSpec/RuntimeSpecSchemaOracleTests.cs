using NJsonSchema;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>The schema check used by the other tests really rejects invalid documents (its $refs resolve).</summary>
public class RuntimeSpecSchemaOracleTests
{
    [Theory]
    [InlineData("""{"process":{"cwd":"/","args":["x"],"user":{"uid":0,"gid":0}}}""")]
    [InlineData("""{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"bogus"}]}}""")]
    [InlineData("""{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":-1,"gid":0}}}""")]
    public async Task SchemaRejectsInvalidConfigs(string json)
    {
        var schema = await JsonSchema.FromFileAsync(RuntimeSpecAssertions.SchemaPath, TestContext.Current.CancellationToken);
        Assert.NotEmpty(schema.Validate(json));
    }
}
