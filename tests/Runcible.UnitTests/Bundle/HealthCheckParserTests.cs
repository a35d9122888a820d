using System.Text;
using Runcible.Core.Bundle;
using Runcible.Core.Contracts;
using Runcible.Core.Diagnostics;
using Runcible.Core.RuntimeSpec;

namespace Runcible.Tests.Bundle;

public class HealthCheckParserTests
{
    private static readonly RawBundleSettings Good = BundleSettingsValidatorTests.Good;

    [Fact]
    public void NoCheckIsNoHealthAndDockersDefaultsApplyToACheck()
    {
        Assert.Null(new BundleSettingsValidator().Validate(Good).Health);
        var health = new BundleSettingsValidator().Validate(Good with { HealthCheck = " http://127.0.0.1:8080/healthz " }).Health!;
        Assert.Equal(("http://127.0.0.1:8080/healthz", 30, 30, 3, 0), (health.HttpUrl, health.IntervalSeconds, health.TimeoutSeconds, health.Retries, health.StartPeriodSeconds));
        Assert.Empty(health.Command);
    }

    [Fact]
    public void DurationsTakeSecondsMinutesAndHours()
    {
        var health = HealthCheckParser.Parse("http://localhost/", "10s", "2", "5", "2m")!;
        Assert.Equal((10, 2, 5, 120), (health.IntervalSeconds, health.TimeoutSeconds, health.Retries, health.StartPeriodSeconds));
        Assert.Equal(3600, HealthCheckParser.Parse("http://localhost/", "1h", null, null, null)!.IntervalSeconds);
    }

    [Theory]
    [InlineData("/app/healthcheck --quick", new[] { "/app/healthcheck", "--quick" })]
    [InlineData("test -f '/data/ok file'", new[] { "test", "-f", "/data/ok file" })]
    [InlineData("sh -c \"wget -qO- http://127.0.0.1/ | grep -q \\\"ok\\\"\"", new[] { "sh", "-c", "wget -qO- http://127.0.0.1/ | grep -q \"ok\"" })]
    [InlineData("  a\t b  ", new[] { "a", "b" })]
    [InlineData("x '' y", new[] { "x", "", "y" })]
    public void CommandsAreSplitIntoWordsWithoutExpansion(string check, string[] words)
    {
        var health = HealthCheckParser.Parse(check, null, null, null, null)!;
        Assert.Null(health.HttpUrl);
        Assert.Equal(words, health.Command);
    }

    [Theory]
    [InlineData("https://127.0.0.1/healthz")]
    [InlineData("http://example.com/healthz")]
    [InlineData("http://127.0.0.1:0/")]
    [InlineData("http://127.0.0.1:70000/")]
    [InlineData("http://300.1.1.1/")]
    [InlineData("http://127.0.0.1/a b")]
    [InlineData("http://127.0.0.1/$(reboot)")]
    [InlineData("http://127.0.0.1/'x'")]
    [InlineData("test -f 'unclosed")]
    [InlineData("test -f\n/x")]
    public void BadChecksAreRuncible4040(string check)
    {
        var error = Assert.Throws<RuncibleException>(() => new BundleSettingsValidator().Validate(Good with { HealthCheck = check }));
        Assert.Equal("RUNCIBLE4050", error.Code);
    }

    [Theory]
    [InlineData("http://127.0.0.1/", "0", null, null, null)]
    [InlineData("http://127.0.0.1/", "fast", null, null, null)]
    [InlineData("http://127.0.0.1/", "2d", null, null, null)]
    [InlineData("http://127.0.0.1/", null, "0s", null, null)]
    [InlineData("http://127.0.0.1/", null, "2h", null, null)]
    [InlineData("http://127.0.0.1/", null, null, "0", null)]
    [InlineData("http://127.0.0.1/", null, null, "101", null)]
    [InlineData("http://127.0.0.1/", null, null, "3.5", null)]
    [InlineData("http://127.0.0.1/", null, null, null, "-1")]
    [InlineData("", "30s", null, null, null)]
    [InlineData(null, null, null, "3", null)]
    public void BadTimingIsRuncible4041(string? check, string? interval, string? timeout, string? retries, string? startPeriod)
    {
        var error = Assert.Throws<RuncibleException>(() => new BundleSettingsValidator().Validate(Good with
        {
            HealthCheck = check,
            HealthInterval = interval,
            HealthTimeout = timeout,
            HealthRetries = retries,
            HealthStartPeriod = startPeriod,
        }));
        Assert.Equal("RUNCIBLE4051", error.Code);
    }

    [Fact]
    public void RuncibleJsonCarriesTheCheckForTheShim()
    {
        var health = HealthCheckParser.Parse("sh -c \"test -f /data/ok\"", "5", "2", "4", "1m")!;
        var info = new BundleRuntimeInfo
        {
            Name = "hello",
            Version = "1.0.0",
            Health = new BundleHealthCheck { Command = [.. health.Command], IntervalSeconds = 5, TimeoutSeconds = 2, Retries = 4, StartPeriodSeconds = 60 },
        };
        var json = Encoding.UTF8.GetString(RuntimeSpecGenerator.Serialize(info));
        // The shim reads it line by line: one word a line, 6 spaces in; the timing 4 spaces in.
        Assert.Contains("""
              "health": {
                "command": [
                  "sh",
                  "-c",
                  "test -f /data/ok"
                ],
                "intervalSeconds": 5,
                "timeoutSeconds": 2,
                "retries": 4,
                "startPeriodSeconds": 60
              }
            """.Replace("\r\n", "\n", StringComparison.Ordinal), json, StringComparison.Ordinal);
        Assert.DoesNotContain("\"http\"", json, StringComparison.Ordinal);
        Assert.DoesNotContain("health", Encoding.UTF8.GetString(RuntimeSpecGenerator.Serialize(new BundleRuntimeInfo { Name = "x" })), StringComparison.Ordinal);
    }
}
