/**
 * The page `frugal web` serves (its script, dist/web/page.js, does the rest). Every control has
 * a label and a `data-testid`; the layout is one column that fits a 375 px wide phone.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>frugal in the browser</title>
<style>
  * { box-sizing: border-box; }
  body { font: 16px/1.4 system-ui, sans-serif; margin: 0 auto; padding: 12px; max-width: 760px; color: #111; background: #fff; }
  h1 { font-size: 1.3rem; margin: 0 0 8px; }
  label { display: block; font-weight: 600; margin-top: 8px; }
  textarea, select, input { width: 100%; font: inherit; padding: 6px; border: 1px solid #555; border-radius: 4px; }
  .row { display: flex; flex-wrap: wrap; gap: 8px; }
  .row > div { flex: 1 1 100px; min-width: 0; }
  button { font: inherit; padding: 8px 16px; margin: 10px 8px 0 0; border-radius: 4px; border: 1px solid #034; background: #035; color: #fff; }
  button:disabled { background: #777; border-color: #777; }
  output, pre { display: block; white-space: pre-wrap; overflow-wrap: anywhere; }
  pre { background: #f3f3f3; padding: 8px; min-height: 4em; border-radius: 4px; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0; }
  dt { font-weight: 600; }
  dd { margin: 0; overflow-wrap: anywhere; }
</style>
</head>
<body>
<main>
<h1>frugal in the browser</h1>
<p>Runs in this tab on the CPU (WebAssembly SIMD): nothing leaves the device.</p>
<label for="model">Model</label>
<select id="model" data-testid="model"></select>
<label for="files">…or a model folder's files (config.json, model.safetensors or its shards, tokenizer.json, a LoRA adapter's files)</label>
<input id="files" data-testid="files" type="file" multiple>
<label for="model-url">…or a model folder's URL (Hugging Face layout; another site must allow this page to read it: CORS)</label>
<div class="row"><div style="flex:1 1 200px"><input id="model-url" data-testid="model-url" type="url" placeholder="https://example.org/my-model/"></div>
<div style="flex:0 0 auto"><button type="button" data-testid="load-url" style="margin:0">Load</button></div></div>
<p id="model-info" data-testid="model-info"></p>
<label for="prompt">Prompt</label>
<textarea id="prompt" data-testid="prompt" rows="3">The </textarea>
<div class="row">
  <div><label for="max-tokens">Max tokens</label><input id="max-tokens" data-testid="max-tokens" type="number" min="0" value="200"></div>
  <div><label for="temperature">Temperature</label><input id="temperature" data-testid="temperature" type="number" min="0" step="0.1" value="0.8"></div>
  <div><label for="top-k">Top-k</label><input id="top-k" data-testid="top-k" type="number" min="0" value="0"></div>
  <div><label for="top-p">Top-p</label><input id="top-p" data-testid="top-p" type="number" min="0" max="1" step="0.05" value="1"></div>
  <div><label for="seed">Seed</label><input id="seed" data-testid="seed" type="number" min="0" value="1"></div>
</div>
<label><input id="continue" data-testid="continue" type="checkbox" style="width:auto"> Continue the conversation (kept in this browser, as a frugal state file)</label>
<button type="button" data-testid="generate">Generate</button><button type="button" data-testid="stop" disabled>Stop</button>
<label><input id="side-by-side" data-testid="side-by-side" type="checkbox" style="width:auto"> Side by side: run a second model on the same prompt</label>
<h2 style="font-size:1.1rem">Output</h2>
<pre data-testid="output" aria-live="polite"></pre>
<section id="pane-b" data-testid="pane-b" hidden>
  <label for="model-b">Second model</label>
  <select id="model-b" data-testid="model-b"></select>
  <pre data-testid="output-b" aria-live="polite"></pre>
  <p>Status: <span data-testid="status-b"></span> · Tokens/s: <span data-testid="speed-b"></span></p>
</section>
<dl>
  <dt>Status</dt><dd data-testid="status">loading</dd>
  <dt>Loaded</dt><dd data-testid="progress"></dd>
  <dt>Backend</dt><dd data-testid="backend"></dd>
  <dt>Tokens/s</dt><dd data-testid="speed"></dd>
  <dt>Prompt</dt><dd data-testid="prefill"></dd>
  <dt>First token</dt><dd data-testid="first-token"></dd>
  <dt>State memory</dt><dd data-testid="state"></dd>
  <dt>Conversation</dt><dd data-testid="saved"></dd>
  <dt>Energy</dt><dd data-testid="energy"></dd>
</dl>
</main>
<script type="module" src="/page.js"></script>
</body>
</html>
`;
