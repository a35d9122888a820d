using System.Diagnostics;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.EndToEnd;

/// <summary>
/// <c>runc run</c> of an extracted bundle in the foreground, as a service manager would run it, with its
/// output captured; disposing kills and deletes the container whatever state it is in.
/// </summary>
internal sealed class RuncContainer : IDisposable
{
    private readonly BackgroundProcess _run;
    private readonly string _stateRoot;

    private RuncContainer(string bundle, string id, string stateRoot)
    {
        Id = id;
        _stateRoot = stateRoot;
        var start = new ProcessStartInfo("runc")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var argument in new[] { "--root", stateRoot, "run", "--bundle", bundle, id })
        {
            start.ArgumentList.Add(argument);
        }

        _run = new BackgroundProcess(Process.Start(start)!);
    }

    public string Id { get; }

    public string Output => _run.Output;

    public bool HasExited => _run.Process.HasExited;

    public static RuncContainer Start(string bundle, string stateRoot) =>
        new(bundle, "runcible-e2e-" + Guid.NewGuid().ToString("N")[..10], stateRoot);

    /// <summary>Sends the stop signal through runc (as the service's stop does) and waits for the app's exit code.</summary>
    public int Stop(string signal, TimeSpan timeout)
    {
        ProcessRunner.Run("runc", ["--root", _stateRoot, "kill", Id, signal]).EnsureSuccess("runc kill");
        if (!_run.Process.WaitForExit(timeout))
        {
            throw new TimeoutException($"the container did not stop within {timeout} after {signal}:\n{Output}");
        }

        _run.Process.WaitForExit();
        return _run.Process.ExitCode;
    }

    public int WaitForExit(TimeSpan timeout) => _run.WaitForExit(timeout);

    public void Dispose()
    {
        if (!_run.Process.HasExited)
        {
            ProcessRunner.Run("runc", ["--root", _stateRoot, "kill", Id, "KILL"]);
            _run.Process.WaitForExit(TimeSpan.FromSeconds(20));
        }

        ProcessRunner.Run("runc", ["--root", _stateRoot, "delete", "--force", Id]);
        _run.Process.Dispose();
    }
}
