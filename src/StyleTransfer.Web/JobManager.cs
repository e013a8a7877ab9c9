using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Threading.Channels;
using StyleTransfer.Optimization;
using static TorchSharp.torch;

namespace StyleTransfer.Web;

/// <summary>One server-sent event: its name and its JSON data.</summary>
public sealed record ServerEvent(string Name, string Data);

/// <summary>
/// The queue: jobs run oldest first, one at a time per device (each on its own thread), the rest
/// wait with their position. Cancels queued and running jobs, publishes progress and previews to
/// the jobs' event streams, and keeps the store up to date at every change of state.
/// </summary>
public sealed class JobManager : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };
    private readonly WebSettings settings;
    private readonly JobStore store;
    private readonly Lock gate = new();
    private readonly List<JobRecord> queued = [];
    private readonly Dictionary<string, Running> running = [];
    private readonly Dictionary<string, List<Channel<ServerEvent>>> listeners = [];
    private bool stopping;

    private readonly IJobOptionsParser parser;

    /// <summary>Starts the jobs left queued in <paramref name="store"/>; <paramref name="parser"/> (the CLI's) turns their stored fields into options.</summary>
    public JobManager(WebSettings settings, JobStore store, IJobOptionsParser parser)
    {
        this.settings = settings;
        this.store = store;
        this.parser = parser;
        store.MarkInterrupted();
        queued.AddRange(store.List([JobStatus.Queued]));
        Pump();
    }

    public JobStore Store => store;

    public string UploadsDir => Path.Combine(settings.DataDir, "uploads");

    public string ResultsDir => Path.Combine(settings.DataDir, "results");

    public static string ResultFile(string id) => id + ".png";

    /// <summary>Queued and running jobs of one client.</summary>
    public int ActiveJobs(string client)
    {
        lock (gate)
        {
            return queued.Count(j => j.Client == client) + running.Values.Count(r => r.Job.Client == client);
        }
    }

    /// <summary>Queues the job unless its client has <see cref="WebSettings.MaxJobsPerClient"/> queued or running already (then false).</summary>
    public bool TrySubmit(JobRecord job)
    {
        lock (gate)
        {
            if (ActiveJobs(job.Client) >= settings.MaxJobsPerClient)
            {
                return false;
            }

            store.Insert(job);
            queued.Add(job);
            Pump();
            return true;
        }
    }

    /// <summary>The newest <paramref name="limit"/> jobs, queued and running ones as they are now.</summary>
    public List<JobRecord> List(int limit)
    {
        lock (gate)
        {
            return [.. store.List(limit: limit).Select(j => queued.FirstOrDefault(q => q.Id == j.Id) ?? running.Values.FirstOrDefault(r => r.Job.Id == j.Id)?.Job ?? j)];
        }
    }

    /// <summary>The job as it is now (the running one with its live progress), or null.</summary>
    public JobRecord? Get(string id)
    {
        lock (gate)
        {
            return queued.FirstOrDefault(j => j.Id == id) ?? running.Values.FirstOrDefault(r => r.Job.Id == id)?.Job ?? store.Get(id);
        }
    }

    /// <summary>1 for the next job to run on its device, 2 after it, …; null when not queued.</summary>
    public int? Position(JobRecord job)
    {
        lock (gate)
        {
            int index = queued.Where(j => j.Device == job.Device).ToList().FindIndex(j => j.Id == job.Id);
            return index < 0 ? null : index + 1;
        }
    }

    /// <summary>Cancels a queued job at once, a running one after its current iteration. False when the job had already ended.</summary>
    public bool Cancel(string id)
    {
        lock (gate)
        {
            if (queued.FirstOrDefault(j => j.Id == id) is { } waiting)
            {
                queued.Remove(waiting);
                waiting.Status = JobStatus.Cancelled;
                waiting.Finished = DateTimeOffset.UtcNow;
                store.Update(waiting);
                PublishJob(waiting, final: true);
                PublishPositions(waiting.Device);
                return true;
            }

            if (running.Values.FirstOrDefault(r => r.Job.Id == id) is { } r)
            {
                r.Stop.Cancel();
                return true;
            }

            return false;
        }
    }

    /// <summary>A stream of the job's events: its state now, then progress, previews and changes until it ends.</summary>
    public ChannelReader<ServerEvent>? Subscribe(string id)
    {
        lock (gate)
        {
            JobRecord? job = Get(id);
            if (job is null)
            {
                return null;
            }

            var channel = Channel.CreateUnbounded<ServerEvent>(new UnboundedChannelOptions { SingleReader = true });
            channel.Writer.TryWrite(new ServerEvent("job", Serialize(View(job))));
            Running? r = running.Values.FirstOrDefault(x => x.Job.Id == id);
            if (r?.LastPreview is { } preview)
            {
                channel.Writer.TryWrite(preview);
            }

            if (JobStatus.IsFinal(job.Status))
            {
                channel.Writer.TryComplete();
                return channel.Reader;
            }

            if (!listeners.TryGetValue(id, out List<Channel<ServerEvent>>? list))
            {
                listeners[id] = list = [];
            }

            list.Add(channel);
            return channel.Reader;
        }
    }

    public void Unsubscribe(string id, ChannelReader<ServerEvent> reader)
    {
        lock (gate)
        {
            if (listeners.TryGetValue(id, out List<Channel<ServerEvent>>? list))
            {
                list.RemoveAll(c => c.Reader == reader);
            }
        }
    }

    /// <summary>The job as the API shows it.</summary>
    public JobView View(JobRecord job)
    {
        string u = "/api/jobs/" + job.Id;
        double? elapsed = job.Status == JobStatus.Running && job.Started is { } s ? (DateTimeOffset.UtcNow - s).TotalSeconds : job.Seconds;
        double? eta = job.Status == JobStatus.Running && job.Iteration > 0 && elapsed is { } e ? e / job.Iteration * (job.Iterations - job.Iteration) : null;
        return new JobView(
            job.Id,
            job.Status,
            job.Status == JobStatus.Queued ? Position(job) : null,
            job.Iteration,
            job.Iterations,
            job.Losses.Count > 0 ? job.Losses[^1] : null,
            elapsed,
            eta,
            job.Error,
            job.Interrupted ? true : null,
            job.Created,
            job.Finished,
            job.Device,
            job.Seed,
            job.SecondsPerIteration,
            job.HookSeconds,
            job.Fields.GroupBy(f => f.Key).ToDictionary(g => g.Key, g => g.Last().Value),
            new ImageView(job.Content.Name, u + "/content", job.Content.Width, job.Content.Height),
            [.. job.Styles.Select((st, i) => new ImageView(st.Name, $"{u}/style/{i + 1}", st.Width, st.Height))],
            job.Status == JobStatus.Done ? new ImageView("result.png", u + "/result", job.Width ?? 0, job.Height ?? 0) : null,
            job.Losses);
    }

    public void Dispose()
    {
        List<Running> left;
        lock (gate)
        {
            stopping = true;
            left = [.. running.Values];
            left.ForEach(r => r.Stop.Cancel());
        }

        foreach (Running r in left)
        {
            r.Thread.Join(TimeSpan.FromSeconds(30));
        }

        // Streams of jobs still queued end too, so that the server's shutdown does not wait on them.
        lock (gate)
        {
            foreach (Channel<ServerEvent> c in listeners.Values.SelectMany(l => l))
            {
                c.Writer.TryComplete();
            }

            listeners.Clear();
        }
    }

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Json);

    /// <summary>Starts the oldest queued job of every idle device. Called under the lock.</summary>
    private void Pump()
    {
        if (stopping)
        {
            return;
        }

        foreach (JobRecord job in queued.ToList())
        {
            if (running.ContainsKey(job.Device))
            {
                continue;
            }

            queued.Remove(job);
            job.Status = JobStatus.Running;
            job.Started = DateTimeOffset.UtcNow;
            store.Update(job);
            var r = new Running(job);
            running[job.Device] = r;
            r.Thread = new Thread(() => Execute(r)) { IsBackground = true, Name = "stylize job " + job.Id };
            r.Thread.Start();
            PublishJob(job, final: false);
            PublishPositions(job.Device);
        }
    }

    private void Execute(Running r)
    {
        JobRecord job = r.Job;
        var previews = Channel.CreateBounded<(int, Tensor)>(
            new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            dropped => dropped.Item2.Dispose());
        Task encoder = Task.Run(() => EncodePreviews(r, previews.Reader));
        EngineOutcome? outcome = null;
        string? error = null;
        try
        {
            StyleTransferOptions options = ParseStored(job);
            outcome = StyleEngine.Run(
                Path.Combine(UploadsDir, job.Content.File),
                [.. job.Styles.Select(s => Path.Combine(UploadsDir, s.File))],
                Path.Combine(ResultsDir, ResultFile(job.Id)),
                options,
                settings.PreviewEvery,
                new Progress(this, r),
                (i, image) =>
                {
                    long start = Stopwatch.GetTimestamp();
                    Tensor copy = StyleEngine.Copy(image);
                    if (!previews.Writer.TryWrite((i, copy)))
                    {
                        copy.Dispose();
                    }

                    r.HookTicks += Stopwatch.GetTimestamp() - start;
                },
                r.Stop.Token);
        }
        catch (StyleTransferException e)
        {
            error = parser.Describe(e);
        }
        catch (Exception e)
        {
            error = $"internal error ({e.GetType().Name}: {e.Message.Split('\n')[0].Trim()})";
        }
        finally
        {
            previews.Writer.TryComplete();
            encoder.Wait();
            while (previews.Reader.TryRead(out (int, Tensor Image) left))
            {
                left.Image.Dispose();
            }
        }

        lock (gate)
        {
            running.Remove(job.Device);
            job.Finished = DateTimeOffset.UtcNow;
            job.Seconds = (job.Finished - job.Started)?.TotalSeconds;
            if (error != null)
            {
                job.Status = JobStatus.Failed;
                job.Error = error;
            }
            else if (outcome!.Cancelled)
            {
                job.Status = JobStatus.Cancelled;
                if (stopping)
                {
                    (job.Status, job.Interrupted, job.Error) = (JobStatus.Failed, true, JobStore.InterruptedError);
                }
            }
            else
            {
                job.Status = JobStatus.Done;
                (job.Width, job.Height, job.Seed) = (outcome.Width, outcome.Height, outcome.Seed);
                job.HookSeconds = (double)r.HookTicks / Stopwatch.Frequency;
                job.SecondsPerIteration = outcome.Last is { } last ? last.Elapsed.TotalSeconds / last.Iteration : null;
            }

            store.Update(job);
            PublishJob(job, final: true);
            Pump();
        }
    }

    /// <summary>Off the optimisation thread: each preview tensor to a JPEG data URL, sent to the job's listeners.</summary>
    private void EncodePreviews(Running r, ChannelReader<(int Iteration, Tensor Image)> reader)
    {
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            while (reader.TryRead(out (int Iteration, Tensor Image) item))
            {
                string data;
                try
                {
                    data = "data:image/jpeg;base64," + Convert.ToBase64String(StyleEngine.EncodeJpeg(item.Image));
                }
                catch (Exception failure) when (failure is InvalidOperationException or ArgumentException or ExternalException)
                {
                    continue; // A preview is a courtesy: a failed one never stops the job.
                }
                finally
                {
                    item.Image.Dispose();
                }

                var e = new ServerEvent("preview", Serialize(new { iteration = item.Iteration, image = data }));
                lock (gate)
                {
                    r.LastPreview = e;
                    Publish(r.Job.Id, e);
                }
            }
        }
    }

    /// <summary>The stored form fields back through the parser (the CLI's), with the server's thread count.</summary>
    private StyleTransferOptions ParseStored(JobRecord job) =>
        parser.Parse(job.Fields, job.Styles.Count) with { Threads = settings.Threads };

    private void PublishJob(JobRecord job, bool final)
    {
        Publish(job.Id, new ServerEvent("job", Serialize(View(job))));
        if (final && listeners.Remove(job.Id, out List<Channel<ServerEvent>>? list))
        {
            list.ForEach(c => c.Writer.TryComplete());
        }
    }

    private void PublishPositions(string device)
    {
        foreach (JobRecord j in queued.Where(j => j.Device == device))
        {
            PublishJob(j, final: false);
        }
    }

    private void Publish(string id, ServerEvent e)
    {
        if (listeners.TryGetValue(id, out List<Channel<ServerEvent>>? list))
        {
            list.ForEach(c => c.Writer.TryWrite(e));
        }
    }

    private sealed class Running(JobRecord job)
    {
        public JobRecord Job { get; } = job;

        public CancellationTokenSource Stop { get; } = new();

        public Thread Thread { get; set; } = null!;

        public ServerEvent? LastPreview { get; set; }

        /// <summary>Stopwatch ticks spent in the web app's hooks on the optimisation thread: progress events and preview copies.</summary>
        public long HookTicks { get; set; }
    }

    /// <summary>Per iteration, on the optimisation thread: a few field writes and one event per listener.</summary>
    private sealed class Progress(JobManager owner, Running r) : IProgress<IterationReport>
    {
        public void Report(IterationReport value)
        {
            long start = Stopwatch.GetTimestamp();
            try
            {
                Publish(value);
            }
            finally
            {
                r.HookTicks += Stopwatch.GetTimestamp() - start;
            }
        }

        private void Publish(IterationReport value)
        {
            lock (owner.gate)
            {
                JobRecord job = r.Job;
                (job.Iteration, job.Iterations) = (value.Iteration, value.Iterations);
                job.Losses.Add(value.Total);
                if (owner.listeners.ContainsKey(job.Id))
                {
                    double elapsed = value.Elapsed.TotalSeconds;
                    owner.Publish(job.Id, new ServerEvent("progress", string.Create(
                        CultureInfo.InvariantCulture,
                        $"{{\"iteration\":{value.Iteration},\"iterations\":{value.Iterations},\"scale\":{value.Scale},\"scales\":{value.Scales},\"loss\":{value.Total:R},\"content\":{value.Content:R},\"style\":{value.Style:R},\"elapsed\":{elapsed:F2},\"eta\":{elapsed / value.Iteration * (value.Iterations - value.Iteration):F2}}}")));
                }
            }
        }
    }
}

/// <summary>An image of a job, with the URL that serves it.</summary>
public sealed record ImageView(string Name, string Url, int Width, int Height);

/// <summary>GET /api/jobs/{id}.</summary>
public sealed record JobView(
    string Id,
    string Status,
    int? Position,
    int Iteration,
    int Iterations,
    double? Loss,
    double? Elapsed,
    double? Eta,
    string? Error,
    bool? Interrupted,
    DateTimeOffset Created,
    DateTimeOffset? Finished,
    string Device,
    long? Seed,
    double? SecondsPerIteration,
    double? HookSeconds,
    Dictionary<string, string> Settings,
    ImageView Content,
    List<ImageView> Styles,
    ImageView? Result,
    List<double> Losses);
