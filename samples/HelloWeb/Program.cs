using System.Text;

var builder = WebApplication.CreateBuilder(args);

// Listen on the port the project declares as ContainerPort (8080), unless the host overrides it.
var port = Environment.GetEnvironmentVariable("HELLOWEB_PORT") ?? "8080";
builder.WebHost.UseUrls($"http://0.0.0.0:{port}");

var dataDirectory = Environment.GetEnvironmentVariable("HELLOWEB_DATA") ?? Path.Combine(AppContext.BaseDirectory, "data");

// /healthz (RuncHealthCheck in the project): ASP.NET health checks; "Healthy" while the app serves requests.
builder.Services.AddHealthChecks();

var app = builder.Build();
var notesFile = Path.Combine(dataDirectory, "notes.txt");
var gate = new SemaphoreSlim(1, 1);

app.Lifetime.ApplicationStopping.Register(() => app.Logger.LogInformation("SIGTERM received: shutting down gracefully"));
app.Lifetime.ApplicationStopped.Register(() => app.Logger.LogInformation("Stopped"));

app.MapHealthChecks("/healthz");

app.MapGet("/", () => Results.Text($"Hello from {Environment.MachineName}, pid {Environment.ProcessId}\n"));

// What the operator set at this host (runcible config set HELLOWEB_GREETING=...), and the heap limit the GC derived
// from the container's memory limit (75% of it unless GCHeapHardLimit is set).
app.MapGet("/greeting", () => Results.Text((Environment.GetEnvironmentVariable("HELLOWEB_GREETING") ?? "") + "\n"));
app.MapGet("/memory", () => Results.Text(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n"));

app.MapGet("/notes", async () =>
{
    await gate.WaitAsync();
    try
    {
        return Results.Text(File.Exists(notesFile) ? await File.ReadAllTextAsync(notesFile) : "", "text/plain", Encoding.UTF8);
    }
    finally
    {
        gate.Release();
    }
});

app.MapPost("/notes", async (HttpRequest request) =>
{
    using var reader = new StreamReader(request.Body, Encoding.UTF8);
    var note = (await reader.ReadToEndAsync()).ReplaceLineEndings(" ").Trim();
    await gate.WaitAsync();
    try
    {
        Directory.CreateDirectory(dataDirectory);
        await File.AppendAllTextAsync(notesFile, note + "\n");
        return Results.Text(await File.ReadAllTextAsync(notesFile), "text/plain", Encoding.UTF8);
    }
    finally
    {
        gate.Release();
    }
});

app.Run();
