// Child process for the kill test in atomic.test.ts: writes checkpoints in an endless loop until
// the parent SIGKILLs it. Every file of generation g starts with "gen=g" and ends with "end=g",
// so a torn or mixed checkpoint is visible from the contents alone.
// Usage: node atomic-child.mjs <path of compiled atomic.js> <checkpoint dir> <first generation>
import { pathToFileURL } from 'node:url';

const [modPath, dir, first] = process.argv.slice(2);
const { writeDirAtomic } = await import(pathToFileURL(modPath).href);

const FILES = ['weights.bin', 'optimizer.bin', 'config.json', 'state.json'];
let gen = Number(first);
let announced = false;
for (;;) {
  const files = {};
  FILES.forEach((name, i) => {
    // Sizes vary with the generation so that writes take different times.
    const filler = String.fromCharCode(97 + ((gen + i) % 26)).repeat(2000 + ((gen * 7919 + i * 104729) % 60000));
    files[name] = `gen=${gen}\n${filler}\nend=${gen}\n`;
  });
  writeDirAtomic(dir, files);
  if (!announced) {
    process.stdout.write('ready\n');
    announced = true;
  }
  gen++;
}
