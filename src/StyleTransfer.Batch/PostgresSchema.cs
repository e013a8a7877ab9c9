using Npgsql;

namespace StyleTransfer.Batch;

/// <summary>
/// The PostgreSQL schema that Orleans's ADO.NET clustering and grain storage need (tables, and the
/// queries Orleans reads from OrleansQuery by key), written for this project against the providers'
/// documented contract: Orleans reads result columns and binds parameters by name. The NuGet
/// packages do not ship the scripts, so it is created here, idempotently, by every worker and
/// submitter before Orleans starts (under an advisory lock, so concurrent starts do not race).
/// </summary>
public static class PostgresSchema
{
    public const string Invariant = "Npgsql";

    /// <summary>Creates what is missing; replaces the query texts with this version's.</summary>
    public static async Task EnsureAsync(ClusterAddress cluster, CancellationToken cancellation)
    {
        Register();
        try
        {
            await using var connection = new NpgsqlConnection(cluster.ConnectionString);
            await connection.OpenAsync(cancellation);
            await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_lock(7310517)", connection))
            {
                await lockCommand.ExecuteNonQueryAsync(cancellation);
            }

            await using (var tx = await connection.BeginTransactionAsync(cancellation))
            {
                await using (var create = new NpgsqlCommand(Tables, connection, tx))
                {
                    await create.ExecuteNonQueryAsync(cancellation);
                }

                foreach ((string key, string text) in Queries)
                {
                    await using var upsert = new NpgsqlCommand(
                        "INSERT INTO OrleansQuery (QueryKey, QueryText) VALUES (@k, @t) ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText", connection, tx);
                    upsert.Parameters.AddWithValue("k", key);
                    upsert.Parameters.AddWithValue("t", text);
                    await upsert.ExecuteNonQueryAsync(cancellation);
                }

                await tx.CommitAsync(cancellation);
            }

            await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(7310517)", connection);
            await unlock.ExecuteNonQueryAsync(cancellation);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            throw new StyleTransferException($"cannot reach the cluster database {cluster.Display} ({e.Message.Split('\n')[0].Trim()})", FailureKind.Engine);
        }
    }

    /// <summary>Orleans's ADO.NET providers find the driver by its invariant name.</summary>
    public static void Register()
    {
        if (!System.Data.Common.DbProviderFactories.TryGetFactory(Invariant, out _))
        {
            System.Data.Common.DbProviderFactories.RegisterFactory(Invariant, NpgsqlFactory.Instance);
        }
    }

    private const string Tables = """
        CREATE TABLE IF NOT EXISTS OrleansQuery (
            QueryKey varchar(64) NOT NULL PRIMARY KEY,
            QueryText varchar(8000) NOT NULL);

        -- Membership: one version row per deployment (bumped by every change: optimistic concurrency), one row per silo.
        CREATE TABLE IF NOT EXISTS OrleansMembershipVersionTable (
            DeploymentId varchar(150) NOT NULL PRIMARY KEY,
            Timestamp timestamptz(3) NOT NULL DEFAULT now(),
            Version integer NOT NULL DEFAULT 0);

        CREATE TABLE IF NOT EXISTS OrleansMembershipTable (
            DeploymentId varchar(150) NOT NULL REFERENCES OrleansMembershipVersionTable (DeploymentId),
            Address varchar(45) NOT NULL,
            Port integer NOT NULL,
            Generation integer NOT NULL,
            SiloName varchar(150) NOT NULL,
            HostName varchar(150) NOT NULL,
            Status integer NOT NULL,
            ProxyPort integer NULL,
            SuspectTimes varchar(8000) NULL,
            StartTime timestamptz(3) NOT NULL,
            IAmAliveTime timestamptz(3) NOT NULL,
            PRIMARY KEY (DeploymentId, Address, Port, Generation));

        -- Grain state: the scheduler's job state and the content-addressed blobs.
        CREATE TABLE IF NOT EXISTS OrleansStorage (
            GrainIdHash integer NOT NULL,
            GrainIdN0 bigint NOT NULL,
            GrainIdN1 bigint NOT NULL,
            GrainTypeHash integer NOT NULL,
            GrainTypeString varchar(512) NOT NULL,
            GrainIdExtensionString varchar(512) NULL,
            ServiceId varchar(150) NOT NULL,
            PayloadBinary bytea NULL,
            PayloadXml xml NULL,
            PayloadJson text NULL,
            ModifiedOn timestamp NOT NULL,
            Version integer NULL);
        CREATE INDEX IF NOT EXISTS IX_OrleansStorage ON OrleansStorage (GrainIdHash, GrainTypeHash);
        """;

    /// <summary>A grain's row: every key column equal, the extension string equal or both null.</summary>
    private const string GrainRow = """
        GrainIdHash = @GrainIdHash AND GrainTypeHash = @GrainTypeHash
            AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
            AND GrainTypeString = @GrainTypeString
            AND GrainIdExtensionString IS NOT DISTINCT FROM CAST(@GrainIdExtensionString AS varchar)
            AND ServiceId = @ServiceId
        """;

    private const string MembershipColumns = """
        v.DeploymentId, m.Address, m.Port, m.Generation, m.SiloName, m.HostName, m.Status, m.ProxyPort,
        m.SuspectTimes, m.StartTime, m.IAmAliveTime, v.Version
        """;

    private static readonly (string Key, string Text)[] Queries =
    [
        ("UpdateIAmAlivetimeKey", """
            UPDATE OrleansMembershipTable SET IAmAliveTime = @IAmAliveTime
            WHERE DeploymentId = @DeploymentId AND Address = @Address AND Port = @Port AND Generation = @Generation
            """),

        // Each of the following returns one row with the number of rows changed: > 0 is success.
        ("InsertMembershipVersionKey", """
            WITH ins AS (
                INSERT INTO OrleansMembershipVersionTable (DeploymentId) VALUES (@DeploymentId)
                ON CONFLICT (DeploymentId) DO NOTHING RETURNING 1)
            SELECT CAST(count(*) AS integer) FROM ins
            """),
        ("InsertMembershipKey", """
            WITH ver AS (
                UPDATE OrleansMembershipVersionTable SET Version = Version + 1, Timestamp = now()
                WHERE DeploymentId = @DeploymentId AND Version = @Version
                    AND NOT EXISTS (SELECT 1 FROM OrleansMembershipTable
                        WHERE DeploymentId = @DeploymentId AND Address = @Address AND Port = @Port AND Generation = @Generation)
                RETURNING 1),
            ins AS (
                INSERT INTO OrleansMembershipTable
                    (DeploymentId, Address, Port, Generation, SiloName, HostName, Status, ProxyPort, StartTime, IAmAliveTime)
                SELECT @DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName, @Status, @ProxyPort, @StartTime, @IAmAliveTime
                WHERE EXISTS (SELECT 1 FROM ver)
                RETURNING 1)
            SELECT CAST(count(*) AS integer) FROM ins
            """),
        ("UpdateMembershipKey", """
            WITH ver AS (
                UPDATE OrleansMembershipVersionTable SET Version = Version + 1, Timestamp = now()
                WHERE DeploymentId = @DeploymentId AND Version = @Version
                    AND EXISTS (SELECT 1 FROM OrleansMembershipTable
                        WHERE DeploymentId = @DeploymentId AND Address = @Address AND Port = @Port AND Generation = @Generation)
                RETURNING 1),
            upd AS (
                UPDATE OrleansMembershipTable
                SET Status = @Status, SuspectTimes = @SuspectTimes, IAmAliveTime = @IAmAliveTime
                WHERE DeploymentId = @DeploymentId AND Address = @Address AND Port = @Port AND Generation = @Generation
                    AND EXISTS (SELECT 1 FROM ver)
                RETURNING 1)
            SELECT CAST(count(*) AS integer) FROM upd
            """),
        ("MembershipReadRowKey", $"""
            SELECT {MembershipColumns}
            FROM OrleansMembershipVersionTable v
            LEFT JOIN OrleansMembershipTable m ON m.DeploymentId = v.DeploymentId
                AND m.Address = @Address AND m.Port = @Port AND m.Generation = @Generation
            WHERE v.DeploymentId = @DeploymentId
            """),
        ("MembershipReadAllKey", $"""
            SELECT {MembershipColumns}
            FROM OrleansMembershipVersionTable v
            LEFT JOIN OrleansMembershipTable m ON m.DeploymentId = v.DeploymentId
            WHERE v.DeploymentId = @DeploymentId
            """),
        ("DeleteMembershipTableEntriesKey", """
            DELETE FROM OrleansMembershipTable WHERE DeploymentId = @DeploymentId;
            DELETE FROM OrleansMembershipVersionTable WHERE DeploymentId = @DeploymentId;
            """),
        ("GatewaysQueryKey", """
            SELECT Address, ProxyPort, Generation FROM OrleansMembershipTable
            WHERE DeploymentId = @DeploymentId AND Status = @Status AND ProxyPort > 0
            """),
        ("CleanupDefunctSiloEntriesKey", """
            DELETE FROM OrleansMembershipTable
            WHERE DeploymentId = @DeploymentId AND IAmAliveTime < @IAmAliveTime AND Status <> 3
            """),

        // Grain storage (Orleans's binary serializer: only PayloadBinary is written): Version is the ETag; a write with a stale version changes nothing and returns the old one.
        ("WriteToStorageKey", $"""
            WITH upd AS (
                UPDATE OrleansStorage
                SET PayloadBinary = @PayloadBinary, PayloadJson = NULL, PayloadXml = NULL,
                    ModifiedOn = (now() AT TIME ZONE 'utc'), Version = Version + 1
                WHERE CAST(@GrainStateVersion AS integer) IS NOT NULL AND Version = @GrainStateVersion AND {GrainRow}
                RETURNING Version),
            ins AS (
                INSERT INTO OrleansStorage (GrainIdHash, GrainIdN0, GrainIdN1, GrainTypeHash, GrainTypeString, GrainIdExtensionString,
                    ServiceId, PayloadBinary, PayloadJson, PayloadXml, ModifiedOn, Version)
                SELECT @GrainIdHash, @GrainIdN0, @GrainIdN1, @GrainTypeHash, @GrainTypeString, @GrainIdExtensionString,
                    @ServiceId, @PayloadBinary, NULL, NULL, (now() AT TIME ZONE 'utc'), 1
                WHERE CAST(@GrainStateVersion AS integer) IS NULL AND NOT EXISTS (SELECT 1 FROM OrleansStorage WHERE {GrainRow})
                RETURNING Version)
            SELECT COALESCE((SELECT Version FROM upd), (SELECT Version FROM ins), CAST(@GrainStateVersion AS integer)) AS NewGrainStateVersion
            """),
        ("ReadFromStorageKey", $"""
            SELECT PayloadBinary, PayloadXml, PayloadJson, (now() AT TIME ZONE 'utc'), Version
            FROM OrleansStorage WHERE {GrainRow}
            """),
        ("ClearStorageKey", $"""
            UPDATE OrleansStorage SET PayloadBinary = NULL, PayloadJson = NULL, PayloadXml = NULL, Version = Version + 1
            WHERE Version = @GrainStateVersion AND {GrainRow}
            RETURNING Version AS NewGrainStateVersion
            """),
    ];
}
