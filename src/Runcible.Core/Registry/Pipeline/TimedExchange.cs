namespace Runcible.Core.Registry.Pipeline;

/// <summary>One exchange bounded by the request timeout (for its response headers); running out is a retryable failure, not the caller's cancellation.</summary>
internal static class TimedExchange
{
    /// <param name="who">Who did not answer, for the message: <c>registry.example</c>, <c>the token server</c>.</param>
    public static async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> send,
        HttpRequestMessage request, TimeSpan timeout, string who, CancellationToken cancellationToken)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timer.CancelAfter(timeout);
        try
        {
            return await send(request, timer.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TransientRegistryException($"no answer from {who} within {timeout.TotalSeconds:0} s", null, e);
        }
    }
}
