#!/usr/bin/env bash
# Install what the browser tests of the report need: headless Chromium + chromedriver (Debian
# packages) and axe-core (npm) into tests/browser/node_modules (gitignored). Idempotent; `.ci/run`
# calls it. Run it by hand before `pytest -m browser` on a fresh machine.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "tests/browser/setup.sh: chromium/chromedriver missing; install the Debian packages" \
         "'chromium' and 'chromium-driver' (as root)" >&2
  fi
fi

if [ ! -f "$here/node_modules/axe-core/axe.min.js" ]; then
  if command -v npm >/dev/null 2>&1; then
    (cd "$here" && npm install --no-audit --no-fund --silent --prefix "$here" axe-core@4)
  else
    echo "tests/browser/setup.sh: npm not found; install Node.js/npm to fetch axe-core" >&2
    exit 1
  fi
fi
echo "browser test assets ready: $(command -v chromium || echo 'no chromium'), axe-core $(node -p "require('$here/node_modules/axe-core/package.json').version" 2>/dev/null || echo '?')"
