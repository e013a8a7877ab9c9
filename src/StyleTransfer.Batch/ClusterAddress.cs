using Npgsql;

namespace StyleTransfer.Batch;

/// <summary>A cluster's PostgreSQL database, given as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or postgresql://).</summary>
public sealed record ClusterAddress(string ConnectionString, string Display)
{
    public static ClusterAddress Parse(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) || uri.Scheme is not ("postgres" or "postgresql") || uri.Host.Length == 0)
        {
            throw new StyleTransferException($"--cluster must be postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, not '{Redact(url)}'");
        }

        string[] user = uri.UserInfo.Split(':', 2);
        string database = Uri.UnescapeDataString(uri.AbsolutePath.Trim('/'));
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = database.Length == 0 ? "postgres" : database,
            Username = user[0].Length == 0 ? "postgres" : Uri.UnescapeDataString(user[0]),
            Timeout = 10,
            CommandTimeout = 30,
        };
        if (user.Length == 2)
        {
            b.Password = Uri.UnescapeDataString(user[1]);
        }

        return new ClusterAddress(b.ConnectionString, $"postgres://{b.Username}@{b.Host}:{b.Port}/{b.Database}");
    }

    /// <summary>The URL without its password, for messages.</summary>
    private static string Redact(string url) => System.Text.RegularExpressions.Regex.Replace(url, "(//[^:/@]*:)[^@]*@", "$1***@");
}
