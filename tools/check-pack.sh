#!/usr/bin/env bash
# The library as a user gets it: `npm pack` the built package, install the tarball in a scratch
# project outside the repository, then compile (strict TypeScript) and run the README's library
# example there against a small committed checkpoint. Needs a build (npm run build) and the npm
# registry or npm's cache (for the package's dependencies, typescript and @types/node).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/frugal-pack-XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
cd "$repo"
test -f dist/index.js -a -f build/kernels.wasm || { echo "check-pack: run 'npm run build' first" >&2; exit 2; }
tarball="$(npm pack --ignore-scripts --silent --pack-destination "$scratch")"
echo "check-pack: $tarball ($(du -k "$scratch/$tarball" | cut -f1) KiB)" >&2
# the README's example: the first ```ts block of its "## Library" section
node -e '
  const md = require("fs").readFileSync("README.md", "utf8");
  const m = /```ts\n([\s\S]*?)```/.exec(md.slice(md.indexOf("\n## Library\n")));
  if (!m) { console.error("check-pack: README.md has no ```ts block under ## Library"); process.exit(2); }
  process.stdout.write(m[1]);' > "$scratch/example.ts"
mkdir -p "$scratch/runs/demo"
cp test/fixtures/mamba-d256-l4/config.json test/fixtures/mamba-d256-l4/model.safetensors "$scratch/runs/demo/"
cd "$scratch"
cat > package.json <<'JSON'
{ "name": "scratch", "private": true, "type": "module" }
JSON
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true, "types": ["node"], "skipLibCheck": true } }
JSON
ts="$(node -p 'require(process.argv[1]).devDependencies.typescript' "$repo/package.json")"
types="$(node -p 'require(process.argv[1]).devDependencies["@types/node"]' "$repo/package.json")"
npm install --prefer-offline --no-audit --no-fund --loglevel=error "./$tarball" "typescript@$ts" "@types/node@$types" >&2
npx tsc -p .
node example.js > out.txt
cat out.txt
grep -Eq '^[0-9]+ tokens at [0-9]+ tok/s$' out.txt
grep -Eq 'J/token \((estimated|measured)\)$' out.txt
echo "check-pack: the README example ran from the installed tarball" >&2
