using System.Net;
using System.Net.Sockets;

namespace Runcible.Tests.Infrastructure.Registry;

/// <summary>
/// A TCP listener on a free 127.0.0.1 port that serves each connection on a task of its own until disposed: the base of
/// the test servers that answer one request per connection (<see cref="TokenServer"/>, <see cref="ScriptedHttpServer"/>).
/// A subclass calls <see cref="StartAccepting"/> at the end of its constructor, once it can serve.
/// </summary>
public abstract class LoopbackTcpServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stopping = new();
    private Task _acceptLoop = Task.CompletedTask;

    protected LoopbackTcpServer()
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
    }

    public int Port { get; }

    /// <summary>Cancelled when the server is disposed.</summary>
    protected CancellationToken Stopping => _stopping.Token;

    protected void StartAccepting() => _acceptLoop = Task.Run(AcceptLoopAsync);

    /// <summary>Serves one connection (and disposes it); must not throw for a client that misbehaves.</summary>
    protected abstract Task ServeAsync(TcpClient client);

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stopping.Token);
            }
            catch (Exception e) when (_stopping.IsCancellationRequested || e is SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(client));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Stop();
        try
        {
            await _acceptLoop;
        }
        catch (OperationCanceledException)
        {
        }

        _stopping.Dispose();
        GC.SuppressFinalize(this);
    }
}
