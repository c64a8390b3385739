import type { AnyCommand } from './options.js';

export function registerReportStreams(_program: AnyCommand): void {}
