#!/usr/bin/env bash
# Lints a gigmesh OpenAPI document with Redocly's recommended rules
# (redocly.yaml beside this script).
#
#   tests/openapi/lint.sh FILE           a saved document
#   tests/openapi/lint.sh URL            e.g. http://127.0.0.1:8080/api/openapi.json
#   tests/openapi/lint.sh --install      only install the linter (scripts/test)
#
# Installs the pinned @redocly/cli from package-lock.json (npm ci) when it is
# missing or not the pinned version. Exits 0 if the document has no error
# (warnings are printed), non-zero otherwise; 2 for bad usage or an install
# or fetch that failed; 3 if the install failed because this machine does
# not trust the registry's TLS certificate.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 FILE|URL|--install" >&2; exit 2; }
doc=$1

command -v npm >/dev/null || { echo "lint.sh: npm is not installed" >&2; exit 2; }

# No usage reports and no update notices: the linter must work offline
# from everything but the npm registry.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1

pinned=$(node -p "require('$here/package.json').devDependencies['@redocly/cli']")
installed=
if [ -f "$here/node_modules/@redocly/cli/package.json" ]; then
  installed=$(node -p "require('$here/node_modules/@redocly/cli/package.json').version")
fi
if [ "$installed" != "$pinned" ]; then
  echo "lint.sh: installing @redocly/cli (npm ci in $here)" >&2
  log=$(mktemp)
  if ! (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    cat "$log" >&2
    # A machine that does not trust the certificate the package registry
    # presents (e.g. a TLS-inspecting proxy whose CA only its host trusts)
    # cannot install anything from npm: say so apart (exit 3), so that
    # scripts/test can tell it from a broken lockfile.
    if grep -q -E 'SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF|CERT_UNTRUSTED' "$log"; then
      rm -f "$log"
      echo "lint.sh: this machine does not trust the package registry's TLS certificate" >&2
      exit 3
    fi
    rm -f "$log"
    echo "lint.sh: npm ci failed in $here" >&2
    exit 2
  fi
  cat "$log" >&2
  rm -f "$log"
fi
[ "$doc" != --install ] || exit 0

tmp=
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT
case $doc in
  http://* | https://*)
    tmp=$(mktemp -d)
    curl -fsS --max-time 30 -o "$tmp/openapi.json" "$doc" ||
      { echo "lint.sh: cannot fetch $doc" >&2; exit 2; }
    doc=$tmp/openapi.json
    ;;
  *)
    [ -f "$doc" ] || { echo "lint.sh: no such file: $doc" >&2; exit 2; }
    ;;
esac

# redocly lint exits non-zero when any rule at severity error fails (set -e
# passes that on, after the trap has removed the fetched copy).
"$here/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" \
  --format=stylish --max-problems=1000 "$doc"
