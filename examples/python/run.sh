#!/usr/bin/env bash
# Runs the example's tests in a virtualenv of their own, against LANYARD_BIN (default: the
# repository's release build) or LANYARD_IMAGE (a container image) when it is set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${LANYARD_EXAMPLE_VENV:-${TMPDIR:-/tmp}/lanyard-python-example-venv}"
[[ -x "$venv/bin/pytest" ]] || {
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
}
if [[ -z "${LANYARD_IMAGE:-}" ]]; then
  export LANYARD_BIN="${LANYARD_BIN:-$here/../../target/release/lanyard}"
fi
cd "$here"
exec "$venv/bin/pytest" -q -p no:cacheprovider "$@"
