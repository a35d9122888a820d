using NJsonSchema;

namespace Runcible.Tests.RuntimeSpec;

/// <summary>The schema check used by the other tests really rejects invalid documents (its $refs resolve).</summary>
public class RuntimeSpecSchemaOracleTests
{
    [Theory]
    [InlineData("""{"process":{"cwd":"/","args":["x"],"user":{"uid":0,"gid":0}}}""")]
    [InlineData("""{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"bogus"}]}}""")]
    [InlineData("""{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":-1,"gid":0}}}""")]
    // The seccomp part of the schema is checked too: an unknown action, architecture, operator, a rule without names.
    [InlineData("""{"ociVersion":"1.0.2","linux":{"seccomp":{"defaultAction":"SCMP_ACT_DENY"}}}""")]
    [InlineData("""{"ociVersion":"1.0.2","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_VAX"]}}}""")]
    [InlineData("""{"ociVersion":"1.0.2","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}}}""")]
    [InlineData("""{"ociVersion":"1.0.2","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"}]}}}""")]
    public async Task SchemaRejectsInvalidConfigs(string json)
    {
        var schema = await JsonSchema.FromFileAsync(RuntimeSpecAssertions.SchemaPath, TestContext.Current.CancellationToken);
        Assert.NotEmpty(schema.Validate(json));
    }
}
