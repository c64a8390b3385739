/**
 * frugal's WebAssembly SIMD kernels: f32 twins of src/kernels/ref/*, same names and argument order,
 * taking byte offsets into the imported shared memory instead of arrays. Nothing here allocates and
 * the module's only static data is a few constant tables (assembly/vmath.ts), inside the first 64
 * KiB that the heap leaves to it.
 */
export {
  matmulNT, matmulNN, matmulTN, matmulNTStrided, matmulNNStrided, matmulTNStrided, transpose, padRows,
  packPanels4, unpackPanels4, matmulNTP4, matmulNTP4Strided,
} from './matmul';
export { scanForward, scanBackward, scanStep, scanForwardRange, scanBackwardRange } from './scan';
export { conv1dForward, conv1dPrefill, conv1dBackward, conv1dStep } from './conv';
export { ssdRecurrent, ssdChunkForward, ssdChunkBackward } from './ssd';
export { mamba3ScanForward, mamba3MimoScanForward } from './mamba3';
export { mamba3MimoScanBackward } from './mamba3-back';
export { mimoUpForward, mimoUpBackward, mimoDownForward, mimoDownBackward } from './mimo';
export { mambaConvStep, mambaScanStep, mambaScanStepRange, mambaDeltaPrefill, mambaGatePrefill } from './mamba1';
export { dtSoftplusForward, dtSoftplusBackward, gatedRmsnormForward, gatedRmsnormBackward } from './mamba2';
export { rmsnormForward, rmsnormBackward, addRmsnormForward } from './norm';
export {
  add, mul, fillZero, accumulate, mulAccumulate, siluForward, siluBackward, softplusForward, softplusBackward, expForward,
  accumulatePartials, sliceColumns, sliceColumnsBackward, swigluForward, swigluBackward,
} from './elementwise';
export { crossEntropyForward, crossEntropyBackward, embeddingForward, embeddingBackward } from './loss';
export { adamwStep } from './optim';
export { readBandwidth } from './bench';
export {
  quantizeQ8, quantizeQ4, dequantizeQ8, dequantizeQ4, embeddingQ8, embeddingQ4,
  matmulQ8, matmulQ4, matmulQ8Strided, matmulQ4Strided,
} from './quant';
export {
  repackQ4x4, repackQ8x4, prepQ4x4, prepQ8x4, matmulQ4x4, matmulQ4x4Strided, matmulQ8x4, matmulQ8x4Strided,
  dequantizeQ4x4, dequantizeQ8x4,
} from './quant4x4';
