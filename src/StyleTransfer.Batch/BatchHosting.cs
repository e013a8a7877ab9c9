using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace StyleTransfer.Batch;

/// <summary>
/// How the batch system's Orleans hosts are built: the in-process silo (localhost clustering,
/// in-memory state) that `stylize batch` starts by itself, a cluster worker's silo (ADO.NET
/// clustering and grain storage in PostgreSQL), and a cluster client for the submitter.
/// </summary>
public static class BatchHosting
{
    public const string StorageName = "stylize";
    public const string SchedulerKey = "default";
    private const string ClusterId = "stylize";
    private const string ServiceId = "stylize-batch";

    /// <summary>One silo in this process with localhost clustering and memory storage, and a worker on each of <paramref name="worker"/>'s devices.</summary>
    public static IHost InProcess(WorkerSettings worker)
    {
        int siloPort = FreePort(), gatewayPort = FreePort();
        return Build(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, serviceId: ServiceId, clusterId: $"{ClusterId}-{Environment.ProcessId}-{siloPort}");
            silo.AddMemoryGrainStorage(StorageName);
        }, worker);
    }

    /// <summary>A worker's silo in the cluster at <paramref name="cluster"/> (postgres://...), listening on loopback or <paramref name="address"/>.</summary>
    public static IHost ClusterWorker(ClusterAddress cluster, WorkerSettings worker, IPAddress? address, int? siloPort, int? gatewayPort, TimeSpan probeTimeout)
    {
        string connection = cluster.ConnectionString;
        IPAddress advertised = address ?? IPAddress.Loopback;
        int sPort = siloPort ?? FreePort(), gPort = gatewayPort ?? FreePort();
        return Build(silo =>
        {
            silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (ClusterId, ServiceId));
            silo.ConfigureEndpoints(advertised, sPort, gPort, listenOnAnyHostAddress: address != null && !IPAddress.IsLoopback(address));
            silo.UseAdoNetClustering(o => (o.Invariant, o.ConnectionString) = (PostgresSchema.Invariant, connection));
            silo.AddAdoNetGrainStorage(StorageName, o => (o.Invariant, o.ConnectionString) = (PostgresSchema.Invariant, connection));
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                // A render machine that stops answering is declared dead after a few missed probes,
                // and its renders are handed out again; one vote suffices, since a silo wrongly
                // declared dead only costs its running renders, which are redone.
                o.ProbeTimeout = probeTimeout;
                o.NumMissedProbesLimit = 2;
                o.NumVotesForDeathDeclaration = 1;
                o.TableRefreshTimeout = TimeSpan.FromSeconds(2);
                o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(10);
            });
        }, worker);
    }

    /// <summary>A client of the cluster at <paramref name="cluster"/>, for a submitter that renders nothing itself.</summary>
    public static IHost ClusterClient(ClusterAddress cluster)
    {
        string connection = cluster.ConnectionString;
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        Quiet(builder.Logging);
        builder.UseOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (ClusterId, ServiceId));
            client.UseAdoNetClustering(o => (o.Invariant, o.ConnectionString) = (PostgresSchema.Invariant, connection));
            client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(2));
            client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(15));
        });
        return builder.Build();
    }

    private static IHost Build(Action<ISiloBuilder> configure, WorkerSettings worker)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        Quiet(builder.Logging);
        builder.Services.AddSingleton(worker);
        builder.Services.AddSingleton<BlobCache>();
        builder.UseOrleans(silo =>
        {
            configure(silo);
            silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(15));
        });

        // After the silo's own hosted service, so the workers start once the silo is up.
        builder.Services.AddHostedService<RenderWorker>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        return builder.Build();
    }

    /// <summary>Orleans's own log is not printed: the worker and the submitter print their own lines.</summary>
    private static void Quiet(ILoggingBuilder logging) => logging.ClearProviders();

    /// <summary>A loopback TCP port free right now.</summary>
    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
