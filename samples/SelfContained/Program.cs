using System.Runtime.InteropServices;

// A self-contained single-file app: runs on runtime-deps, which has no .NET runtime of its own.
using var stop = new CancellationTokenSource();
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    Console.WriteLine("SIGTERM received: stopping");
    stop.Cancel();
});

Console.WriteLine($"Hello from a self-contained {RuntimeInformation.RuntimeIdentifier} app, .NET {Environment.Version}");
if (args.Contains("--once"))
{
    return 0;
}

try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}

Console.WriteLine("stopped");
return 0;
