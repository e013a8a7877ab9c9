using System.Globalization;
using StyleTransfer;
using StyleTransfer.Losses;
using StyleTransfer.Networks;
using StyleTransfer.Tests;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

// devicecheck parity FIXTURES_DIR [DEVICE]       the parity tests' reference cases on DEVICE (default cuda)
// devicecheck same-resnet18 A.onnx B.onnx [LAST]  taps up to LAST (layer3_1) equal between two graphs, on the CPU
// Prints one line per check; exit 1 when an fp32 check is outside its tolerance.
return DeviceCheck.Run(args);

/// <summary>The checks; each prints "check NAME max_rel=… tol=… ok|FAIL" or an informational line.</summary>
internal static class DeviceCheck
{
    /// <summary>As the CPU parity tests: 1e-4 relative to the largest magnitude of each reference tensor.</summary>
    private const double Tolerance = 1e-4;

    private static readonly string[] StyleTaps = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];
    private static readonly string[] ResNet18Taps = ["relu1", "layer1_0", "layer1_1", "layer2_0", "layer2_1", "layer3_0", "layer3_1"];
    private static int failures;

    public static int Run(string[] args)
    {
        TorchRuntime.EnsureLoaded();
        switch (args.FirstOrDefault())
        {
            case "parity" when args.Length >= 2:
                Parity(args[1], TorchRuntime.ResolveDevice(args.Length > 2 ? args[2] : "cuda"));
                break;
            case "same-resnet18" when args.Length >= 3:
                SameResNet18(args[1], args[2], args.Length > 3 ? args[3] : "layer3_1");
                break;
            default:
                Console.Error.WriteLine("usage: devicecheck parity FIXTURES_DIR [DEVICE] | devicecheck same-resnet18 A.onnx B.onnx [LAST_TAP]");
                return 2;
        }

        Console.WriteLine(failures == 0 ? "devicecheck: all checks within tolerance" : $"devicecheck: {failures} check(s) FAILED");
        return failures == 0 ? 0 : 1;
    }

    private static void Parity(string fixtures, Device device)
    {
        Console.WriteLine($"# libtorch {torch.__version__}, device {device}, cudnn tf32 default {(device.type == DeviceType.CUDA ? torch.backends.cudnn.allow_tf32.ToString() : "n/a")}");
        foreach (bool tf32 in device.type == DeviceType.CUDA ? new[] { false, true } : [false])
        {
            if (device.type == DeviceType.CUDA)
            {
                torch.backends.cudnn.allow_tf32 = tf32;
                torch.backends.cuda.matmul.allow_tf32 = tf32;
            }

            string mode = tf32 ? "tf32" : "fp32";
            double tol = tf32 ? double.PositiveInfinity : Tolerance;
            Vgg(fixtures, device, mode, tol);
            foreach (string network in new[] { "alexnet", "googlenet", "resnet50" })
            {
                Torchvision(fixtures, network, device, mode, tol);
            }

            ResNet18OnDevice(device, mode, tf32 ? double.PositiveInfinity : Tolerance);
        }

        foreach (Precision p in new[] { Precision.Bf16, Precision.Fp16 })
        {
            if (device.type != DeviceType.CUDA && p == Precision.Fp16)
            {
                continue;
            }

            VggTaps(fixtures, device, p, double.PositiveInfinity);
        }
    }

    private static void Vgg(string fixtures, Device device, string mode, double tol)
    {
        Dictionary<string, Tensor> reference = Safetensors.LoadStateDict(Path.Combine(fixtures, "vgg19_reference.safetensors"));
        using var scope = torch.NewDisposeScope();
        foreach (PoolingMode pooling in new[] { PoolingMode.Avg, PoolingMode.Max })
        {
            using Vgg19 net = Vgg19.Load(Path.Combine(fixtures, "vgg19_narrow.pth"), pooling);
            net.MoveTo(device);
            using var noGrad = torch.no_grad();
            Dictionary<string, Tensor> feats = net.Extract(reference["x"].to(device), net.TapNames.ToList());
            string prefix = pooling == PoolingMode.Avg ? "avg" : "max";
            double worst = net.TapNames.Max(tap => RelErr(reference[$"{prefix}.features.{tap}"], feats[tap]));
            Report($"vgg19 {prefix} 37 taps {mode}", worst, tol);
        }

        using (Vgg19 net = Vgg19.Load(Path.Combine(fixtures, "vgg19_narrow.pth"), PoolingMode.Avg))
        {
            net.MoveTo(device);
            Dictionary<string, Tensor> contentFeats, styleFeats;
            using (torch.no_grad())
            {
                contentFeats = net.Extract(reference["content"].to(device), ["relu4_2"]);
                styleFeats = net.Extract(reference["style"].to(device), StyleTaps);
            }

            Tensor x = reference["x"].to(device).requires_grad_(true);
            Dictionary<string, Tensor> feats = net.Extract(x, [.. StyleTaps, "relu4_2"]);
            Report($"vgg19 grams {mode}", StyleTaps.Max(t => RelErr(reference[$"gram.{t}"], Gram.Compute(feats[t]))), tol);
            Tensor lc = ContentLoss.Compute(feats["relu4_2"], contentFeats["relu4_2"]);
            Tensor ls = torch.zeros(1, device: device);
            foreach (string tap in StyleTaps)
            {
                ls = ls + (StyleLoss.Layer(feats[tap], Gram.Compute(styleFeats[tap]), styleFeats[tap].shape[2] * styleFeats[tap].shape[3]) * 0.2);
            }

            double alpha = reference["meta.alpha"].item<float>(), beta = reference["meta.beta"].item<float>();
            Tensor total = (lc * alpha) + (ls * beta);
            Report($"vgg19 content/style/total loss {mode}", new[] { RelErr(reference["loss.content"], lc.reshape(1)), RelErr(reference["loss.style"], ls.reshape(1)), RelErr(reference["loss.total"], total.reshape(1)) }.Max(), tol);
            total.backward();
            Report($"vgg19 d(total)/d(pixels) {mode}", RelErr(reference["grad.x"], x.grad!), tol);
        }

        DisposeAll(reference);
    }

    private static void VggTaps(string fixtures, Device device, Precision precision, double tol)
    {
        Dictionary<string, Tensor> reference = Safetensors.LoadStateDict(Path.Combine(fixtures, "vgg19_reference.safetensors"));
        using var scope = torch.NewDisposeScope();
        Vgg19 vgg = Vgg19.Load(Path.Combine(fixtures, "vgg19_narrow.pth"), PoolingMode.Avg);
        vgg.MoveTo(device);
        using IFeatureNetwork net = MixedPrecisionNetwork.Wrap(vgg, precision);
        using var noGrad = torch.no_grad();
        Dictionary<string, Tensor> feats = net.Extract(reference["x"].to(device), net.TapNames.ToList());
        double worst = net.TapNames.Max(tap => RelErr(reference[$"avg.features.{tap}"], feats[tap]));
        Report($"vgg19 avg 37 taps {precision.ToString().ToLowerInvariant()} (informational)", worst, tol);
        DisposeAll(reference);
    }

    private static void Torchvision(string fixtures, string network, Device device, string mode, double tol)
    {
        Dictionary<string, Tensor> reference = Safetensors.LoadStateDict(Path.Combine(fixtures, $"{network}_reference.safetensors"));
        using var scope = torch.NewDisposeScope();
        string weights = Path.Combine(fixtures, $"{network}_narrow.pth");
        using IFeatureNetwork net = network switch
        {
            "alexnet" => AlexNet.Load(weights),
            "googlenet" => GoogLeNet.Load(weights),
            _ => ResNet50.Load(weights),
        };
        net.MoveTo(device);
        string[] recorded = [.. reference.Keys.Where(k => k.StartsWith("features.", StringComparison.Ordinal)).Select(k => k["features.".Length..])];
        Tensor x = reference["x"].to(device).requires_grad_(true);
        Dictionary<string, Tensor> feats = net.Extract(x, recorded);
        Report($"{network} {recorded.Length} taps {mode}", recorded.Max(t => RelErr(reference[$"features.{t}"], feats[t])), tol);
        Tensor loss = torch.zeros(1, device: device);
        foreach (string tap in recorded)
        {
            loss = loss + feats[tap].pow(2).mean();
        }

        loss.backward();
        Report($"{network} loss and d(loss)/d(pixels) {mode}", Math.Max(RelErr(reference["loss"], loss), RelErr(reference["grad.x"], x.grad!)), tol);
        DisposeAll(reference);
    }

    /// <summary>The bundled ResNet-18 on the device against itself on the CPU (the CPU path is checked against ONNX Runtime by the tests).</summary>
    private static void ResNet18OnDevice(Device device, string mode, double tol)
    {
        if (device.type == DeviceType.CPU)
        {
            return;
        }

        (string model, string prep) = ResNet18.ResolvePaths(null);
        using var scope = torch.NewDisposeScope();
        using ResNet18 cpu = ResNet18.Load(model, prep);
        using ResNet18 gpu = ResNet18.Load(model, prep);
        gpu.MoveTo(device);
        using var gen = new Generator(5);
        Tensor image = torch.rand(new long[] { 1, 3, 160, 96 }, generator: gen);
        var results = new List<(Dictionary<string, Tensor> Feats, Tensor Grad)>();
        foreach ((ResNet18 net, Device d) in new[] { (cpu, torch.CPU), (gpu, device) })
        {
            Tensor x = image.to(d).detach().requires_grad_(true);
            Dictionary<string, Tensor> feats = net.Extract(x, ResNet18Taps);
            Tensor loss = torch.zeros(1, device: d);
            foreach (string tap in ResNet18Taps)
            {
                loss = loss + feats[tap].pow(2).mean();
            }

            loss.backward();
            results.Add((feats, x.grad!));
        }

        Report($"resnet18 {ResNet18Taps.Length} taps vs cpu {mode}", ResNet18Taps.Max(t => RelErr(results[0].Feats[t], results[1].Feats[t])), tol);
        Report($"resnet18 d(loss)/d(pixels) vs cpu {mode}", RelErr(results[0].Grad, results[1].Grad), tol);
    }

    private static void SameResNet18(string a, string b, string last)
    {
        (string _, string prep) = ResNet18.ResolvePaths(null);
        using var scope = torch.NewDisposeScope();
        using ResNet18 na = ResNet18.Load(a, prep), nb = ResNet18.Load(b, prep);
        string[] taps = [.. na.TapNames.Take(na.TapNames.ToList().IndexOf(last) + 1)];
        using var gen = new Generator(6);
        using var noGrad = torch.no_grad();
        Tensor image = torch.rand(new long[] { 1, 3, 128, 96 }, generator: gen);
        Dictionary<string, Tensor> fa = na.Extract(image, taps), fb = nb.Extract(image, taps);
        double worst = taps.Max(t => (fa[t] - fb[t]).abs().max().ToDouble());
        Report($"resnet18 {Path.GetFileName(b)} = {Path.GetFileName(a)} up to {last} ({taps.Length} taps), max abs diff", worst, 0);
    }

    private static double RelErr(Tensor expected, Tensor actual) => TensorCompare.MaxRelativeError(expected, actual);

    private static void Report(string what, double err, double tol)
    {
        bool ok = err <= tol || double.IsPositiveInfinity(tol);
        failures += ok ? 0 : 1;
        string verdict = double.IsPositiveInfinity(tol) ? "info" : ok ? "ok" : "FAIL";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"check {what}: max_rel={err:E2} tol={(double.IsPositiveInfinity(tol) ? "-" : tol.ToString("E0", CultureInfo.InvariantCulture))} {verdict}"));
    }

    private static void DisposeAll(Dictionary<string, Tensor> d)
    {
        foreach (Tensor t in d.Values)
        {
            t.Dispose();
        }
    }
}
