#!/usr/bin/env bash
# Installs the pinned playwright-core (package-lock.json: npm ci) that
# browser.js drives Debian's Chromium with, when it is missing or not the
# pinned version. Exits 0 when installed, 2 if the install failed, 3 if it
# failed because this machine does not trust the package registry's TLS
# certificate (scripts/test then skips the browser test, loudly, as it does
# the OpenAPI lint).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v npm >/dev/null || { echo "install.sh: npm is not installed" >&2; exit 2; }
export NO_UPDATE_NOTIFIER=1
pinned=$(node -p "require('$here/package.json').devDependencies['playwright-core']")
installed=
if [ -f "$here/node_modules/playwright-core/package.json" ]; then
  installed=$(node -p "require('$here/node_modules/playwright-core/package.json').version")
fi
[ "$installed" != "$pinned" ] || exit 0
echo "install.sh: installing playwright-core (npm ci in $here)" >&2
log=$(mktemp)
if ! (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
  cat "$log" >&2
  if grep -q -E 'SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF|CERT_UNTRUSTED' "$log"; then
    rm -f "$log"
    echo "install.sh: this machine does not trust the package registry's TLS certificate" >&2
    exit 3
  fi
  rm -f "$log"
  echo "install.sh: npm ci failed in $here" >&2
  exit 2
fi
rm -f "$log"
