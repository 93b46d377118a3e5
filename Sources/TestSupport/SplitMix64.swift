// The seeded generator lives in PosterSimCore (the product's int8 calibration uses it too); the tests and
// benchmarks keep reaching it through TestSupport.
@_exported import struct PosterSimCore.SplitMix64
