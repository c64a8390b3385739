/**
 * Messages between the page and the module Worker that owns the wasm memory, the model and every
 * recurrent state (the main thread only renders).
 */

import type { PoolStats } from '../kernels/threads.js';
/** A file of a model the server offers: its size and SHA-256 (the page caches it by that). */
export interface FileEntry {
  bytes: number;
  sha256: string;
}

/**
 * Where a model's files come from: a folder URL the server lists (with its files), files the person
 * picked, or any folder URL (an HF-style directory, read by its standard file names; the server
 * must allow this page to read it: CORS), with optionally a LoRA adapter's folder URL.
 */
export type ModelSource =
  | { url: string; manifest: Record<string, FileEntry> }
  | { files: Record<string, Uint8Array> }
  | { folder: string; adapter?: string };

export type ToWorker =
  | {
      type: 'load';
      /** URL of the kernels module; `build` names an opt-in build (the backend gets it as a suffix). */
      kernels: string;
      build?: 'relaxed-simd';
      name: string;
      model: ModelSource;
      threads: number;
    }
  | {
      type: 'generate';
      prompt: string;
      maxTokens: number;
      temperature: number;
      topK: number;
      topP: number;
      seed: number;
      /** Continue the conversation so far (its state) instead of starting afresh. */
      continue: boolean;
    }
  | { type: 'abort' }
  | { type: 'snapshot' }
  | { type: 'restore'; bytes: Uint8Array };

export type FromWorker =
  | { type: 'progress'; loaded: number; total: number }
  | { type: 'ready'; name: string; architecture: string; parameters: number; backend: string; cached: boolean }
  | { type: 'tokens'; text: string; count: number; tokensPerSecond: number }
  | {
      type: 'done';
      tokens: number;
      tokensPerSecond: number;
      /** Joules per token, estimated (browsers expose no energy counters): see `energyLabel`. */
      jPerToken: number;
      energyLabel: string;
      stateBytes: number;
      aborted: boolean;
      /** Tokens of the prompt, and how fast the prefill read them (one parallel pass). */
      promptTokens: number;
      prefillTokensPerSecond: number;
      /** What the prefill asked of the kernel threads: parallel calls, the caller's wait at their joins (ms), worker sleeps. */
      prefillPool: PoolStats;
      /** The same for the tokens after the prefill (the generation's steps). */
      decodePool: PoolStats;
    }
  /** The conversation's state as a state file (docs/DESIGN.md), and the tokens it holds. */
  | { type: 'snapshot'; bytes: Uint8Array; tokens: number }
  | { type: 'restored'; tokens: number }
  | { type: 'error'; message: string };

/** How often the worker posts the tokens made so far (and listens for `abort`). */
export const BATCH_MS = 30;

/** Watts per busy core behind the browser's J/token estimate (frugal's fallback CPU figure in Node too). */
export const WATTS_PER_CORE = 10;
