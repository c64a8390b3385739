/** Measurements: the Mamba vs transformer scaling study (study.ts), its summary, table and chart. */
export { ARCHS, projectNextSeconds, runArch, runScaling } from './study.js';
export type { ArchResult, PointEnergy, ScalingOptions, ScalingPoint, ScalingResult, StopInfo, StudyArch } from './study.js';
export { scalingTable, summarize, summaryLines } from './summary.js';
export type { ScalingSummary } from './summary.js';
export { scalingSvg } from './svg.js';
export { studyPair, PARITY_TOLERANCE } from './models.js';
export type { StudyPair } from './models.js';
export { kvBytesPerToken, mambaDecodeWork, transformerDecodeWork } from './cost.js';
