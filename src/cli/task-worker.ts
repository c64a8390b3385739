/** Worker-thread entry for runInWorker (interrupt.ts): runs one convert or quantize job. */
import { parentPort, workerData } from 'node:worker_threads';
import { FrugalError } from '../io/errors.js';
import { convertCheckpoint } from '../models/convert.js';
import { quantizeToDir } from '../models/quantize-checkpoint.js';
import type { WorkerJob, WorkerReply } from './interrupt.js';

const port = parentPort;
if (port) {
  const send = (m: WorkerReply) => port.postMessage(m);
  const log = (m: string) => send({ log: m });
  const job = workerData as WorkerJob;
  try {
    const done = job.task === 'convert' ? convertCheckpoint({ ...job.options, log }) : quantizeToDir(job.options, log);
    send({ done });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    send({ error: { message: err.message, exitCode: e instanceof FrugalError ? e.exitCode : undefined, stack: err.stack } });
  }
}
