namespace HelloWorker;

/// <summary>
/// Logs a tick every few seconds until the host stops it (SIGTERM from runc / systemd). Before that it
/// warms up for <c>HELLOWORKER_WARMUP_SECONDS</c> (default 0): the host reports ready to systemd
/// (<c>READY=1</c>, through runc's NOTIFY_SOCKET relay) only once every hosted service has started, so a
/// <c>Type=notify</c> unit stays <c>activating</c> until then.
/// </summary>
public sealed class Ticker(ILogger<Ticker> logger) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var warmup = int.TryParse(Environment.GetEnvironmentVariable("HELLOWORKER_WARMUP_SECONDS"), out var seconds) ? seconds : 0;
        if (warmup > 0)
        {
            logger.LogInformation("warming up for {Seconds} s before reporting ready", warmup);
            await Task.Delay(TimeSpan.FromSeconds(warmup), cancellationToken);
            logger.LogInformation("warmed up");
        }

        await base.StartAsync(cancellationToken);
    }

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
