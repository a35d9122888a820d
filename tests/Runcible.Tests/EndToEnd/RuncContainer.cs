using System.Diagnostics;
using System.Text;
using Runcible.Tests.Infrastructure;

namespace Runcible.Tests.EndToEnd;

/// <summary>
/// <c>runc run</c> of an extracted bundle in the foreground, as a service manager would run it, with its
/// output captured; disposing kills and deletes the container whatever state it is in.
/// </summary>
internal sealed class RuncContainer : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
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

        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _process.StandardInput.Close();
    }

    public string Id { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    public static RuncContainer Start(string bundle, string stateRoot) =>
        new(bundle, "runcible-e2e-" + Guid.NewGuid().ToString("N")[..10], stateRoot);

    /// <summary>Sends the stop signal through runc (as the service's stop does) and waits for the app's exit code.</summary>
    public int Stop(string signal, TimeSpan timeout)
    {
        ProcessRunner.Run("runc", ["--root", _stateRoot, "kill", Id, signal]).EnsureSuccess("runc kill");
        if (!_process.WaitForExit(timeout))
        {
            throw new TimeoutException($"the container did not stop within {timeout} after {signal}:\n{Output}");
        }

        _process.WaitForExit();
        return _process.ExitCode;
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            throw new TimeoutException($"the container did not exit within {timeout}:\n{Output}");
        }

        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            ProcessRunner.Run("runc", ["--root", _stateRoot, "kill", Id, "KILL"]);
            _process.WaitForExit(TimeSpan.FromSeconds(20));
        }

        ProcessRunner.Run("runc", ["--root", _stateRoot, "delete", "--force", Id]);
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
