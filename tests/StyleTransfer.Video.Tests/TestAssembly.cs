using Xunit;

// One test class at a time. TorchSharp turns every double argument of a tensor operator into a
// native Scalar that only the garbage collector frees; a collection forced by another class's run
// (MemoryTrim, every few iterations) can finalize that Scalar while its operator is still running
// in native code ("Unknown scalar type", or a crash). Tests in parallel made that likely; see
// docs/performance.md, "Memory".
[assembly: CollectionBehavior(DisableTestParallelization = true)]
