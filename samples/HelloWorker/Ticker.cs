namespace HelloWorker;

/// <summary>Logs a tick every few seconds until the host stops it (SIGTERM from runc / systemd).</summary>
public sealed class Ticker(ILogger<Ticker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var count = 0;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                logger.LogInformation("tick {Count}", ++count);
                await Task.Delay(TimeSpan.FromSeconds(5), stoppingToken);
            }
        }
        catch (OperationCanceledException)
        {
            logger.LogInformation("stopping after {Count} ticks", count);
        }
    }
}
