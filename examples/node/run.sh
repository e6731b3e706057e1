#!/usr/bin/env bash
# Installs the example's packages (npm) and runs its tests against LANYARD_IMAGE.
# Testcontainers' reaper (Ryuk) is an image from Docker Hub: where no registry is reachable,
# run with TESTCONTAINERS_RYUK_DISABLED=true (the tests stop their container themselves).
set -euo pipefail
cd "$(dirname "$0")"
[[ -d node_modules/testcontainers ]] || npm install --no-audit --no-fund --no-package-lock --loglevel=error
exec npm test --silent
