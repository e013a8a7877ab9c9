using StyleTransfer.Jobs;

namespace StyleTransfer.Batch.Tests;

public class PlannerTests
{
    private static readonly RenderInput A = new("a.jpg", new string('a', 64));
    private static readonly RenderInput B = new("photos b.png", new string('b', 64));
    private static readonly RenderInput S = new("starry.png", new string('c', 64));

    private static StyleTransferOptions Options(IReadOnlyList<KeyValuePair<string, string>> combo) =>
        new StyleTransferOptions { Size = 64, Iterations = 3 } with
        {
            StyleWeight = combo.FirstOrDefault(c => c.Key == "style-weight").Value is { } w ? double.Parse(w, System.Globalization.CultureInfo.InvariantCulture) : 1e3,
        };

    [Fact]
    public void Every_content_with_every_style_once_per_sweep_value_with_predictable_names()
    {
        IReadOnlyList<RenderSpec> specs = BatchPlanner.Plan([A, B], [S], [SweepAxis.Parse("style-weight=1e7,1e8")], Options);

        Assert.Equal(
            ["a__starry__style-weight-1e7.png", "photos_b__starry__style-weight-1e7.png", "a__starry__style-weight-1e8.png", "photos_b__starry__style-weight-1e8.png"],
            specs.Select(s => s.Output));
        Assert.Equal([1e7, 1e7, 1e8, 1e8], specs.Select(s => s.Options.StyleWeight));
        Assert.Equal(4, specs.Select(s => s.Id).Distinct().Count());
    }

    [Fact]
    public void Seeds_are_derived_from_inputs_and_settings_unless_given()
    {
        IReadOnlyList<RenderSpec> first = BatchPlanner.Plan([A, B], [S], [], Options);
        IReadOnlyList<RenderSpec> again = BatchPlanner.Plan([A, B], [S], [], Options);
        Assert.Equal(first.Select(s => s.Seed), again.Select(s => s.Seed));
        Assert.Equal(first.Select(s => s.Id), again.Select(s => s.Id));
        Assert.NotEqual(first[0].Seed, first[1].Seed);
        Assert.InRange(first[0].Seed, 0, (1L << 48) - 1);

        IReadOnlyList<RenderSpec> seeded = BatchPlanner.Plan([A, B], [S], [], c => Options(c) with { Seed = 7 });
        Assert.Equal([7L, 7L], seeded.Select(s => s.Seed));

        // The device and thread count do not change the result, so not the identity either.
        IReadOnlyList<RenderSpec> elsewhere = BatchPlanner.Plan([A, B], [S], [], c => Options(c) with { Device = "cuda:1", Threads = 3 });
        Assert.Equal(first.Select(s => s.Id), elsewhere.Select(s => s.Id));
    }

    [Fact]
    public void Spec_and_result_round_trip_through_json()
    {
        RenderSpec spec = BatchPlanner.Plan([A], [S], [SweepAxis.Parse("--style-weight=1e5")], Options)[0];
        RenderSpec back = RenderSpec.FromJson(spec.ToJson());
        Assert.Equal(spec.Id, back.Id);
        Assert.Equal(spec.Options.StyleWeight, back.Options.StyleWeight);
        Assert.Equal(spec.Seed, back.Seed);
        Assert.Equal("style-weight", Assert.Single(back.Sweep).Key);
        Assert.Equal(spec.ToJson(), back.ToJson());
    }

    [Theory]
    [InlineData("style-weight", "--sweep must be NAME=V1,V2,... (e.g. style-weight=1e7,1e8), not 'style-weight'")]
    [InlineData("=1,2", "--sweep must be NAME=V1,V2,... (e.g. style-weight=1e7,1e8), not '=1,2'")]
    [InlineData("size=64,64", "--sweep size: a value is listed twice")]
    public void Bad_sweeps_are_refused_with_one_line(string spec, string message) =>
        Assert.Equal(message, Assert.Throws<StyleTransferException>(() => SweepAxis.Parse(spec)).Message);

    [Fact]
    public void Two_inputs_with_the_same_stem_are_refused_rather_than_overwriting_each_other()
    {
        var other = new RenderInput("a.png", new string('d', 64));
        var e = Assert.Throws<StyleTransferException>(() => BatchPlanner.Plan([A, other], [S], [], Options));
        Assert.Equal("two renders would both be named 'a__starry.png' (a.jpg × starry.png and a.png × starry.png): give the inputs distinct file names", e.Message);
    }
}
