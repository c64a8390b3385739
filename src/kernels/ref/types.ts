/** Reference kernels take either precision, so gradient checks can run in float64. */
export type F = Float32Array | Float64Array;
