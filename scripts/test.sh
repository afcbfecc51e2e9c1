#!/usr/bin/env bash
# The whole test suite, with everything it needs installed first.
# Used by the README ("run the tests") and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends keeps it to the binaries; the package's service is not started here.
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# `standin` builds the test-support stand-in kubelet (support/standin-kubelet) used by the
# live-probe tests; it is never part of the shipped binary.
echo "==> cargo test"
cargo test --locked --all-targets --features standin
