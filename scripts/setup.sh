#!/usr/bin/env bash
# Installs everything the build and the tests need, from package registries only. Idempotent.
#   - libclang-dev (apt) for libmdbx's bindgen
#   - Foundry (forge, cast, anvil) and solc-js from npm, pinned, into .tools/
#   - .tools/bin/solc: a wrapper that answers like native solc, for forge and foundry-compilers
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
FOUNDRY_VERSION=1.7.1
SOLC_VERSION=0.8.30

if ! dpkg -s libclang-dev >/dev/null 2>&1; then
  echo "setup: installing libclang-dev"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev >/dev/null
fi

mkdir -p "$tools/bin"
stamp="$tools/.installed-$FOUNDRY_VERSION-$SOLC_VERSION"
if [ ! -f "$stamp" ]; then
  echo "setup: installing foundry $FOUNDRY_VERSION and solc-js $SOLC_VERSION from npm"
  cd "$tools"
  [ -f package.json ] || echo '{"name":"computechain-tools","private":true}' > package.json
  npm install --silent --no-audit --no-fund \
    "@foundry-rs/forge@$FOUNDRY_VERSION" "@foundry-rs/cast@$FOUNDRY_VERSION" \
    "@foundry-rs/anvil@$FOUNDRY_VERSION" "solc@$SOLC_VERSION" 2>&1 | grep -v 'npm warn' || true
  touch "$stamp"
fi

# Link the real binaries (not npm's node launchers), so processes and their memory are theirs.
for tool in forge cast anvil; do
  bin=$(find "$tools/node_modules/@foundry-rs" -path "*$tool-linux-*" -type f -name "$tool" | head -n1)
  [ -n "$bin" ] || { echo "setup: $tool binary not found in npm package" >&2; exit 1; }
  chmod +x "$bin"
  ln -sf "$bin" "$tools/bin/$tool"
done

cat > "$tools/bin/solc" <<SOLC
#!/usr/bin/env node
// solc-js behind native solc's command line: --version and --standard-json (stdin -> stdout).
const path = require('path'), fs = require('fs');
const solc = require('$tools/node_modules/solc');
const args = process.argv.slice(2);
if (args.includes('--version')) {
  console.log('solc, the solidity compiler commandline interface');
  console.log('Version: ' + solc.version().replace('Emscripten.clang', 'Linux.g++'));
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  console.error('this solc wrapper supports only --version and --standard-json');
  process.exit(1);
}
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--base-path' || args[i] === '--include-path') roots.push(args[++i]);
  else if (args[i].startsWith('--base-path=') || args[i].startsWith('--include-path=')) roots.push(args[i].split('=')[1]);
}
roots.push(process.cwd());
function findImports(p) {
  for (const r of roots) {
    const f = path.resolve(r, p);
    if (fs.existsSync(f)) return { contents: fs.readFileSync(f, 'utf8') };
  }
  if (fs.existsSync(p)) return { contents: fs.readFileSync(p, 'utf8') };
  return { error: 'File not found: ' + p };
}
const input = fs.readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImports }));
SOLC
chmod +x "$tools/bin/solc"
echo "setup: ok ($("$tools/bin/forge" --version | head -n1); $("$tools/bin/solc" --version | tail -n1))"
