using HelloWorker;

var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddSystemd();
builder.Services.AddHostedService<Ticker>();
builder.Build().Run();
