using System.Text;
using Microsoft.ML.OnnxRuntime;

namespace StyleTransfer.Tests;

/// <summary>
/// Runs an ONNX graph with ONNX Runtime, after rewriting its ModelProto at the protobuf level (an
/// independent little encoder, not the library's reader): the graph's outputs are replaced by the
/// values asked for, nodes that do not lead to them are dropped, and the image input can be given a
/// free height and width, so that intermediate tensors can be compared at any size.
/// </summary>
internal sealed class OnnxRuntimeReference : IDisposable
{
    private readonly InferenceSession session;

    /// <param name="modelBytes">The .onnx file's bytes.</param>
    /// <param name="outputs">Value names to return, in this order.</param>
    /// <param name="freeSize">Declare the image input as [1,C,H,W] with symbolic H and W.</param>
    public OnnxRuntimeReference(byte[] modelBytes, IReadOnlyList<string> outputs, bool freeSize)
    {
        Outputs = outputs;
        byte[] rewritten = Rewrite(modelBytes, outputs, freeSize);
        using var options = new SessionOptions
        {
            IntraOpNumThreads = 2,
            InterOpNumThreads = 1,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL,
        };
        session = new InferenceSession(rewritten, options);
    }

    public IReadOnlyList<string> Outputs { get; }

    /// <summary>Runs on one float input [1,C,H,W]; returns each requested output as (shape, data).</summary>
    public Dictionary<string, (long[] Shape, float[] Data)> Run(float[] input, long[] shape)
    {
        string inputName = session.InputNames.Single();
        using OrtValue value = OrtValue.CreateTensorValueFromMemory(input, shape);
        using var runOptions = new RunOptions();
        using IDisposableReadOnlyCollection<OrtValue> results = session.Run(runOptions, [inputName], [value], [.. Outputs]);
        var dict = new Dictionary<string, (long[], float[])>(StringComparer.Ordinal);
        for (int i = 0; i < Outputs.Count; i++)
        {
            OrtValue r = results[i];
            dict[Outputs[i]] = (r.GetTensorTypeAndShape().Shape, r.GetTensorDataAsSpan<float>().ToArray());
        }

        return dict;
    }

    public void Dispose() => session.Dispose();

    private static byte[] Rewrite(byte[] model, IReadOnlyList<string> outputs, bool freeSize)
    {
        var result = new MemoryStream();
        foreach (Field f in Fields(model, 0, model.Length))
        {
            if (f.Number == 7 && f.Wire == 2)
            {
                WriteLen(result, 7, RewriteGraph(model, f, outputs, freeSize));
            }
            else
            {
                result.Write(model, f.Start, f.End - f.Start);
            }
        }

        return result.ToArray();
    }

    private static byte[] RewriteGraph(byte[] model, Field graph, IReadOnlyList<string> outputs, bool freeSize)
    {
        List<Field> fields = Fields(model, graph.PayloadStart, graph.End);
        var initializerNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (Field f in fields.Where(f => f.Number == 5))
        {
            initializerNames.UnionWith(Strings(model, f, 8));
        }

        // Keep only the nodes that the requested outputs depend on (nodes are in topological order).
        List<Field> nodes = [.. fields.Where(f => f.Number == 1)];
        var needed = new HashSet<string>(outputs, StringComparer.Ordinal);
        var keep = new HashSet<int>();
        for (int i = nodes.Count - 1; i >= 0; i--)
        {
            if (Strings(model, nodes[i], 2).Any(needed.Contains))
            {
                keep.Add(nodes[i].Start);
                needed.UnionWith(Strings(model, nodes[i], 1));
            }
        }

        var result = new MemoryStream();
        foreach (Field f in fields)
        {
            if (f.Number == 1 && !keep.Contains(f.Start))
            {
                continue;
            }

            if (f.Number == 12)
            {
                continue;
            }

            if (f.Number == 11 && freeSize && !initializerNames.Contains(Strings(model, f, 1).Single()))
            {
                WriteLen(result, 11, ValueInfo(Strings(model, f, 1).Single(), ["1", "3", "H", "W"]));
                continue;
            }

            result.Write(model, f.Start, f.End - f.Start);
        }

        foreach (string name in outputs)
        {
            WriteLen(result, 12, ValueInfo(name, null));
        }

        return result.ToArray();
    }

    /// <summary>A float ValueInfoProto; dims are numbers or symbolic names; null: no shape.</summary>
    private static byte[] ValueInfo(string name, string[]? dims)
    {
        var shape = new MemoryStream();
        foreach (string d in dims ?? [])
        {
            var dim = new MemoryStream();
            if (long.TryParse(d, out long v))
            {
                WriteVarintField(dim, 1, (ulong)v);
            }
            else
            {
                WriteLen(dim, 2, Encoding.UTF8.GetBytes(d));
            }

            WriteLen(shape, 1, dim.ToArray());
        }

        var tensor = new MemoryStream();
        WriteVarintField(tensor, 1, 1);
        if (dims != null)
        {
            WriteLen(tensor, 2, shape.ToArray());
        }

        var type = new MemoryStream();
        WriteLen(type, 1, tensor.ToArray());
        var info = new MemoryStream();
        WriteLen(info, 1, Encoding.UTF8.GetBytes(name));
        WriteLen(info, 2, type.ToArray());
        return info.ToArray();
    }

    private static IEnumerable<string> Strings(byte[] buffer, Field message, int number) =>
        Fields(buffer, message.PayloadStart, message.End)
            .Where(f => f.Number == number && f.Wire == 2)
            .Select(f => Encoding.UTF8.GetString(buffer, f.PayloadStart, f.End - f.PayloadStart));

    private readonly record struct Field(int Number, int Wire, int Start, int PayloadStart, int End);

    private static List<Field> Fields(byte[] b, int pos, int end)
    {
        var list = new List<Field>();
        while (pos < end)
        {
            int start = pos;
            ulong key = ReadVarint(b, ref pos);
            int wire = (int)(key & 7);
            int payload = pos;
            switch (wire)
            {
                case 0:
                    ReadVarint(b, ref pos);
                    break;
                case 1:
                    pos += 8;
                    break;
                case 2:
                    int length = (int)ReadVarint(b, ref pos);
                    payload = pos;
                    pos += length;
                    break;
                case 5:
                    pos += 4;
                    break;
                default:
                    throw new InvalidDataException($"wire type {wire}");
            }

            list.Add(new Field((int)(key >> 3), wire, start, payload, pos));
        }

        return list;
    }

    private static ulong ReadVarint(byte[] b, ref int pos)
    {
        ulong v = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte x = b[pos++];
            v |= (ulong)(x & 0x7F) << shift;
            if ((x & 0x80) == 0)
            {
                return v;
            }
        }
    }

    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80)
        {
            s.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }

        s.WriteByte((byte)v);
    }

    private static void WriteVarintField(Stream s, int number, ulong v)
    {
        WriteVarint(s, (ulong)number << 3);
        WriteVarint(s, v);
    }

    private static void WriteLen(Stream s, int number, byte[] payload)
    {
        WriteVarint(s, ((ulong)number << 3) | 2);
        WriteVarint(s, (ulong)payload.Length);
        s.Write(payload);
    }
}
