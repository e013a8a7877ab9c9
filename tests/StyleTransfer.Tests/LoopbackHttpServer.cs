using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace StyleTransfer.Tests;

/// <summary>A request as the server saw it: method, path, and the Range header (null when absent).</summary>
internal sealed record SeenRequest(string Method, string Path, string? Range);

/// <summary>
/// What the server answers: a status line, a body, and how to misbehave. <paramref name="ContentLength"/>
/// is the Content-Length announced (default: the body's length); <paramref name="CloseAfter"/> sends only
/// that many body bytes and then closes the connection (a truncated response).
/// </summary>
internal sealed record Answer(int Status, string Reason, byte[] Body, long? ContentLength = null, string? ContentRange = null, int? CloseAfter = null)
{
    public static Answer NotFound() => new(404, "Not Found", Encoding.ASCII.GetBytes("not found"));
}

/// <summary>
/// A minimal HTTP/1.1 server on 127.0.0.1 (a free port), one request per connection, answering
/// with <c>answer</c>. It serves the model-download tests so that no real URL is ever contacted.
/// </summary>
internal sealed class LoopbackHttpServer : IDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly Func<SeenRequest, Answer> answer;
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;

    public LoopbackHttpServer(Func<SeenRequest, Answer> answer)
    {
        this.answer = answer;
        listener.Start();
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        loop = Task.Run(Serve);
    }

    public int Port { get; }

    /// <summary>The base URL the tests give the downloader.</summary>
    public Uri BaseUrl => new($"http://127.0.0.1:{Port}/models/");

    public ConcurrentQueue<SeenRequest> Requests { get; } = new();

    /// <summary>Serves <paramref name="content"/> as /models/<paramref name="name"/>, honouring "Range: bytes=N-" with a 206; 404 for anything else.</summary>
    public static Func<SeenRequest, Answer> Serving(string name, byte[] content) => request =>
    {
        if (request.Path != "/models/" + name)
        {
            return Answer.NotFound();
        }

        if (request.Range is { } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            int from = int.Parse(range["bytes=".Length..^1], CultureInfo.InvariantCulture);
            return new Answer(206, "Partial Content", content[from..], ContentRange: $"bytes {from}-{content.Length - 1}/{content.Length}");
        }

        return new Answer(200, "OK", content);
    };

    /// <summary>A loopback port with nothing listening on it (connections are refused).</summary>
    public static int ClosedPort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Stop();
        try
        {
            loop.Wait(TimeSpan.FromSeconds(10));
        }
        catch (AggregateException)
        {
            // The accept loop ends with the listener.
        }

        stop.Dispose();
    }

    private async Task Serve()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            using (client)
            {
                try
                {
                    await Handle(client);
                }
                catch (IOException)
                {
                    // The client went away (e.g. it refused a too-large answer): next connection.
                }
            }
        }
    }

    private async Task Handle(TcpClient client)
    {
        NetworkStream stream = client.GetStream();
        string head = await ReadHead(stream);
        string[] lines = head.Split("\r\n");
        string[] requestLine = lines[0].Split(' ');
        string? range = lines.Skip(1)
            .Select(l => l.Split(':', 2))
            .Where(kv => kv.Length == 2 && kv[0].Trim().Equals("Range", StringComparison.OrdinalIgnoreCase))
            .Select(kv => kv[1].Trim())
            .FirstOrDefault();
        var request = new SeenRequest(requestLine[0], requestLine[1], range);
        Requests.Enqueue(request);
        Answer a = answer(request);
        var header = new StringBuilder();
        header.Append(CultureInfo.InvariantCulture, $"HTTP/1.1 {a.Status} {a.Reason}\r\n");
        header.Append(CultureInfo.InvariantCulture, $"Content-Length: {a.ContentLength ?? a.Body.Length}\r\n");
        if (a.ContentRange != null)
        {
            header.Append(CultureInfo.InvariantCulture, $"Content-Range: {a.ContentRange}\r\n");
        }

        header.Append("Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(header.ToString()));
        await stream.WriteAsync(a.Body.AsMemory(0, Math.Min(a.Body.Length, a.CloseAfter ?? a.Body.Length)));
        await stream.FlushAsync();

        // A graceful close (FIN after the last byte), so the client receives everything sent.
        client.Client.Shutdown(SocketShutdown.Send);
    }

    /// <summary>The request line and headers, up to the blank line (at most 16 KB).</summary>
    private static async Task<string> ReadHead(NetworkStream stream)
    {
        var bytes = new List<byte>();
        byte[] one = new byte[1];
        while (bytes.Count < 16384)
        {
            if (await stream.ReadAsync(one) == 0)
            {
                break;
            }

            bytes.Add(one[0]);
            int n = bytes.Count;
            if (n >= 4 && bytes[n - 4] == '\r' && bytes[n - 3] == '\n' && bytes[n - 2] == '\r' && bytes[n - 1] == '\n')
            {
                break;
            }
        }

        return Encoding.ASCII.GetString([.. bytes]);
    }
}
