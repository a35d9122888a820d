using System.Net;
using Runcible.Core.Diagnostics;
using Runcible.Core.Registry;
using Runcible.Core.Registry.Pipeline;
using Runcible.Tests.Infrastructure;
using static Runcible.Tests.Registry.PipelineTestSupport;

namespace Runcible.Tests.Registry;

/// <summary><see cref="EndpointProbeHandler"/> alone, over a scripted inner handler.</summary>
public class EndpointProbeHandlerTests
{
    private static async Task<Uri> SendAsync(HttpMessageInvoker invoker, RegistryClientOptions options, string registry)
    {
        using var request = Get($"https://{RegistryNames.ApiHost(registry)}/v2/r/manifests/latest", Context(options, registry, "r"));
        using var response = await invoker.SendAsync(request, Ct);
        return request.RequestUri!;
    }

    [Fact]
    public async Task ARegistryThatIsNotInsecureIsHTTPSWithoutAProbe()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path, loopbackIsInsecure: false);
        var inner = new ScriptedHandler(_ => ScriptedHandler.Ok());
        using var invoker = new HttpMessageInvoker(new EndpointProbeHandler(options, new InsecureRegistries(options), inner));

        Assert.Equal("https://localhost:5000/v2/r/manifests/latest", (await SendAsync(invoker, options, "localhost:5000")).ToString());
        Assert.Equal("https://registry-1.docker.io/v2/r/manifests/latest", (await SendAsync(invoker, options, "docker.io")).ToString());
        Assert.Equal(2, inner.Requests.Count);
    }

    [Fact]
    public async Task AnInsecureRegistryAnsweringPlainHTTPIsUsedOverPlainHTTPProbedOnceWarnedOnce()
    {
        using var home = new TempDirectory();
        var log = new RecordingBuildLog();
        var options = Options(home.Path, log);
        var inner = new ScriptedHandler(request => request.RequestUri!.AbsolutePath == "/v2/"
            ? ScriptedHandler.Challenge("Bearer", "realm=\"http://localhost:5000/token\"")
            : ScriptedHandler.Ok());
        using var invoker = new HttpMessageInvoker(new EndpointProbeHandler(options, new InsecureRegistries(options), inner));

        await SendAsync(invoker, options, "localhost:5000");
        await SendAsync(invoker, options, "localhost:5000");

        Assert.Equal(["http://localhost:5000/v2/", "http://localhost:5000/v2/r/manifests/latest", "http://localhost:5000/v2/r/manifests/latest"],
            inner.Requests.Select(r => r.Uri.ToString()));
        Assert.Null(inner.Requests[0].Authorization);
        var warning = Assert.Single(log.Warnings);
        Assert.Equal("RUNCIBLE1017", warning.Code);
        Assert.Contains("plain HTTP", warning.Message);
        Assert.Contains("a loopback address", warning.Message);
    }

    [Fact]
    public async Task ATLSPortAnsweringClearTextWith400IsHTTPS()
    {
        using var home = new TempDirectory();
        var log = new RecordingBuildLog();
        var options = Options(home.Path, log, insecure: ["registry.internal:5443"]);
        var inner = new ScriptedHandler(request => request.RequestUri!.Scheme == "http"
            ? ScriptedHandler.Status(HttpStatusCode.BadRequest)
            : ScriptedHandler.Ok());
        using var invoker = new HttpMessageInvoker(new EndpointProbeHandler(options, new InsecureRegistries(options), inner));

        Assert.Equal("https://registry.internal:5443/v2/r/manifests/latest", (await SendAsync(invoker, options, "registry.internal:5443")).ToString());
        Assert.Equal(["http://registry.internal:5443/v2/", "https://registry.internal:5443/v2/", "https://registry.internal:5443/v2/r/manifests/latest"],
            inner.Requests.Select(r => r.Uri.ToString()));
        Assert.Empty(log.Warnings);
    }

    [Fact]
    public async Task AFailedProbeIsForgottenAndTheNextRequestProbesAgain()
    {
        using var home = new TempDirectory();
        var options = Options(home.Path);
        var up = false;
        var inner = new ScriptedHandler(request => up
            ? ScriptedHandler.Ok()
            : throw new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused"));
        using var invoker = new HttpMessageInvoker(new EndpointProbeHandler(options, new InsecureRegistries(options), inner));

        var error = await Assert.ThrowsAsync<HttpRequestException>(() => SendAsync(invoker, options, "127.0.0.1:5000"));
        Assert.Equal(HttpRequestError.ConnectionError, error.HttpRequestError);
        Assert.Equal(["http://127.0.0.1:5000/v2/", "https://127.0.0.1:5000/v2/"], inner.Requests.Select(r => r.Uri.ToString()));

        up = true;
        Assert.Equal("http://127.0.0.1:5000/v2/r/manifests/latest", (await SendAsync(invoker, options, "127.0.0.1:5000")).ToString());
        Assert.Equal(4, inner.Requests.Count);
    }
}
