/**
 * The page: renders what the Worker reports and sends it what the person asks. Contract for
 * outside checks: `?prompt=&max_tokens=&temperature=&seed=&autorun=1`, and the `data-testid`s
 * prompt, generate, stop, output (generated text only), status (loading | ready | generating |
 * done | error: <message>), backend, speed (tokens/s), energy (J/token with its label).
 */
import type { FileEntry, FromWorker, ToWorker } from './protocol.js';

const $ = <T extends HTMLElement>(id: string) => document.querySelector(`[data-testid="${id}"]`) as T;

interface ModelEntry {
  name: string;
  url: string;
  files: Record<string, FileEntry>;
}

// beside this file in dist/web/ (a plain string, so that the bundler leaves it alone)
const workerUrl = import.meta.url.replace(/page\.js([?#].*)?$/, 'worker.js');
const worker = new Worker(workerUrl, { type: 'module' });
const send = (m: ToWorker) => worker.postMessage(m);
const params = new URLSearchParams(location.search);
let models: ModelEntry[] = [];
let current = '';

/** The conversation of model `name` is kept in the Origin Private File System, as a state file. */
const stateFileName = (name: string) => `frugal-state-${name.replace(/[^\w.-]/g, '_')}.safetensors`;

async function saveConversation(bytes: Uint8Array): Promise<void> {
  const dir = await navigator.storage.getDirectory();
  const f = await (await dir.getFileHandle(stateFileName(current), { create: true })).createWritable();
  await f.write(bytes as Uint8Array<ArrayBuffer>);
  await f.close();
}

/** Send the saved conversation of the model just loaded to the worker, if there is one. */
async function restoreConversation(): Promise<void> {
  const dir = await navigator.storage.getDirectory();
  let file: File;
  try {
    file = await (await dir.getFileHandle(stateFileName(current))).getFile();
  } catch {
    return; // nothing saved for this model
  }
  send({ type: 'restore', bytes: new Uint8Array(await file.arrayBuffer()) });
}
let autorun = params.get('autorun') === '1';
/** The autorun generation is under way: its first token is timed from the page's start (loading included). */
let timingFirst = false;
/**
 * A module that uses a relaxed-SIMD instruction (i8x16.relaxed_swizzle): WebAssembly.validate
 * accepts it only where the browser runs relaxed SIMD.
 */
const RELAXED_PROBE = Uint8Array.of(
  0,
  97,
  115,
  109,
  1,
  0,
  0,
  0,
  1,
  5,
  1,
  96,
  0,
  1,
  123,
  3,
  2,
  1,
  0,
  10,
  15,
  1,
  13,
  0,
  65,
  1,
  253,
  15,
  65,
  2,
  253,
  15,
  253,
  128,
  2,
  11,
);
/**
 * The kernels: Node's default build (plain SIMD), or with `?kernels=relaxed` the opt-in
 * relaxed-SIMD build (fused multiply-adds: faster where the CPU has FMA, not bit-identical to
 * Node), when this browser validates relaxed SIMD; otherwise the default build runs.
 */
const relaxed = params.get('kernels') === 'relaxed' && WebAssembly.validate(RELAXED_PROBE);
const kernels: { kernels: string; build?: 'relaxed-simd' } = relaxed
  ? { kernels: new URL('/kernels-relaxed.wasm', location.href).href, build: 'relaxed-simd' }
  : { kernels: new URL('/kernels.wasm', location.href).href };
/** Kernel threads when the page is cross-origin isolated: ?threads=N, else up to 4 of the device's cores. */
const threads = Math.max(1, Math.floor(Number(params.get('threads') ?? Math.min(4, navigator.hardwareConcurrency || 1))) || 1);

function setStatus(s: string): void {
  $('status').textContent = s;
  const busy = s === 'generating' || s === 'loading';
  $<HTMLButtonElement>('generate').disabled = busy;
  $<HTMLButtonElement>('stop').disabled = s !== 'generating';
}

function numberField(id: string, fallback: number): number {
  const v = Number($<HTMLInputElement>(id).value);
  return Number.isFinite(v) ? v : fallback;
}

function generate(): void {
  $('output').textContent = '';
  $('speed').textContent = '';
  setStatus('generating');
  const request: ToWorker = {
    type: 'generate',
    prompt: $<HTMLTextAreaElement>('prompt').value,
    maxTokens: Math.max(0, Math.floor(numberField('max-tokens', 200))),
    temperature: Math.max(0, numberField('temperature', 0.8)),
    topK: Math.max(0, Math.floor(numberField('top-k', 0))),
    topP: Math.min(1, Math.max(1e-6, numberField('top-p', 1))),
    seed: Math.max(0, Math.floor(numberField('seed', 1))),
    continue: $<HTMLInputElement>('continue').checked,
  };
  // start the workers once this frame's rendering of the cleared output and the new status is
  // done, so that it does not take a core from the prompt's kernel threads (on a two-core machine
  // it stalled one of them for a few milliseconds in each prefill); a hidden page, which gets no
  // frames, starts them at once
  afterPaint(() => {
    send(request);
    if (side !== null) {
      $('output-b').textContent = '';
      $('status-b').textContent = 'generating';
      side.postMessage({ ...request, continue: false });
    }
  });
}

/** Run `fn` after the next frame is painted (a task queued from its animation frame), or at once when the page is hidden. */
function afterPaint(fn: () => void): void {
  if (document.visibilityState === 'hidden') fn();
  else requestAnimationFrame(() => setTimeout(fn, 0));
}

/**
 * Side by side: a second Worker runs another model (by default the transformer, when the server
 * offers one) on the same prompt and settings, and renders into its own pane.
 */
let side: Worker | null = null;

function loadRequest(entry: ModelEntry): ToWorker {
  return {
    type: 'load',
    ...kernels,
    name: entry.name,
    model: { url: new URL(entry.url, location.href).href, manifest: entry.files },
    threads,
  };
}

function toggleSide(on: boolean): void {
  $('pane-b').hidden = !on;
  if (!on) {
    side?.terminate();
    side = null;
    return;
  }
  side = new Worker(workerUrl, { type: 'module' });
  side.onmessage = (ev: MessageEvent<FromWorker>) => {
    const m = ev.data;
    if (m.type === 'ready') $('status-b').textContent = `ready: ${m.name} (${m.architecture}), ${m.backend}`;
    else if (m.type === 'tokens') {
      $('output-b').append(m.text); // a new text node: no re-layout of what is there
      $('speed-b').textContent = m.tokensPerSecond.toFixed(1);
    } else if (m.type === 'done') {
      $('speed-b').textContent = m.tokensPerSecond.toFixed(1);
      $('status-b').textContent = 'done';
    } else if (m.type === 'error') $('status-b').textContent = `error: ${m.message}`;
  };
  const pickB = $<HTMLSelectElement>('model-b');
  $('status-b').textContent = 'loading';
  side.postMessage(loadRequest(models[pickB.selectedIndex]));
}

function load(entry: ModelEntry): void {
  setStatus('loading');
  send(loadRequest(entry));
}

async function loadPicked(list: FileList): Promise<void> {
  const files: Record<string, Uint8Array> = {};
  for (const f of Array.from(list)) files[f.name] = new Uint8Array(await f.arrayBuffer());
  setStatus('loading');
  send({
    type: 'load',
    ...kernels,
    name: list[0]?.name ?? 'picked files',
    model: { files },
    threads,
  });
}

/** A model folder at any URL (and optionally a LoRA adapter's folder), read by the standard file names. */
function loadUrl(folder: string, adapter?: string): void {
  const abs = (u: string) => new URL(u, location.href).href;
  setStatus('loading');
  send({
    type: 'load',
    ...kernels,
    name: folder.replace(/\/+$/, '').split('/').pop() || folder,
    model: { folder: abs(folder), adapter: adapter ? abs(adapter) : undefined },
    threads,
  });
}

worker.onmessage = (ev: MessageEvent<FromWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case 'progress':
      // a folder read from a URL has no listing: its total is not known up front
      $('progress').textContent = `${(m.loaded / 1e6).toFixed(2)}${m.total > 0 ? ` / ${(m.total / 1e6).toFixed(2)}` : ''} MB`;
      break;
    case 'ready':
      current = m.name;
      $('backend').textContent = m.backend;
      void restoreConversation().catch((e: unknown) => setStatus(`error: cannot read the saved conversation (${String(e)})`));
      $('model-info').textContent =
        `${m.name}: ${m.architecture}, ${m.parameters.toLocaleString('en-US')} parameters` +
        (m.cached ? ' (from this browser’s cache)' : '');
      setStatus('ready');
      if (autorun) {
        autorun = false;
        timingFirst = true;
        generate();
      }
      break;
    case 'tokens':
      if (timingFirst) {
        timingFirst = false;
        $('first-token').textContent = `${performance.now().toFixed(0)} ms after the page opened`;
      }
      $('output').append(m.text); // a new text node, not the whole text replaced at every batch
      $('speed').textContent = m.tokensPerSecond.toFixed(1);
      break;
    case 'done':
      $('speed').textContent = m.tokensPerSecond.toFixed(1);
      $('energy').textContent = `${m.jPerToken.toPrecision(3)} J/token (${m.energyLabel})`;
      $('state').textContent = `${(m.stateBytes / 1024).toFixed(1)} KiB`;
      $('prefill').textContent = `${m.promptTokens} tokens at ${m.prefillTokensPerSecond.toFixed(1)} tokens/s`;
      // for `frugal bench web`: how the prefill's parallel calls went (joins waited on, worker sleeps)
      $('prefill').dataset.pool = JSON.stringify(m.prefillPool);
      $('speed').dataset.pool = JSON.stringify(m.decodePool ?? null);
      if ($<HTMLInputElement>('continue').checked) send({ type: 'snapshot' });
      setStatus('done');
      break;
    case 'snapshot':
      void saveConversation(m.bytes).then(
        () => {
          $('saved').textContent = `${m.tokens} tokens saved`;
        },
        (e: unknown) => setStatus(`error: cannot save the conversation (${String(e)})`),
      );
      break;
    case 'restored':
      $<HTMLInputElement>('continue').checked = true;
      $('saved').textContent = `${m.tokens} tokens restored`;
      break;
    case 'error':
      setStatus(`error: ${m.message}`);
      $<HTMLButtonElement>('generate').disabled = false;
      break;
  }
};
worker.onerror = (e) => setStatus(`error: ${e.message || 'the worker failed to start'}`);

async function start(): Promise<void> {
  const p = params.get('prompt');
  if (p !== null) $<HTMLTextAreaElement>('prompt').value = p;
  for (const [q, id] of [
    ['max_tokens', 'max-tokens'],
    ['temperature', 'temperature'],
    ['seed', 'seed'],
    ['top_k', 'top-k'],
    ['top_p', 'top-p'],
  ] as const) {
    const v = params.get(q);
    if (v !== null) $<HTMLInputElement>(id).value = v;
  }
  $('generate').addEventListener('click', generate);
  $('stop').addEventListener('click', () => {
    send({ type: 'abort' });
    side?.postMessage({ type: 'abort' });
  });
  $<HTMLInputElement>('side-by-side').addEventListener('change', (e) => toggleSide((e.target as HTMLInputElement).checked));
  $<HTMLSelectElement>('model-b').addEventListener('change', () => {
    toggleSide(false);
    toggleSide(true);
  });
  const picker = $<HTMLSelectElement>('model');
  picker.addEventListener('change', () => load(models[picker.selectedIndex]));
  $<HTMLInputElement>('files').addEventListener('change', (e) => {
    const list = (e.target as HTMLInputElement).files;
    if (list && list.length > 0) void loadPicked(list);
  });
  $('load-url').addEventListener('click', () => {
    const u = $<HTMLInputElement>('model-url').value.trim();
    if (u) loadUrl(u);
  });
  const res = await fetch('/api/models');
  models = (await res.json()) as ModelEntry[];
  const pickB = $<HTMLSelectElement>('model-b');
  for (const m of models) {
    picker.append(new Option(m.name, m.url));
    pickB.append(new Option(m.name, m.url));
  }
  const transformer = models.findIndex((m) => /transformer|llama/i.test(m.name));
  pickB.selectedIndex = transformer >= 0 ? transformer : Math.min(1, models.length - 1);
  const folder = params.get('model_url');
  if (folder !== null) {
    $<HTMLInputElement>('model-url').value = folder;
    loadUrl(folder, params.get('adapter_url') ?? undefined);
  } else if (models.length > 0) load(models[0]);
  else setStatus('error: the server offers no model; pick a model folder’s files');
}

start().catch((e: unknown) => setStatus(`error: ${e instanceof Error ? e.message : String(e)}`));
