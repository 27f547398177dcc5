#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the mounted tests drive, then runs
# `cargo test` with any arguments given (`scripts/test.sh --test it history::`).
# Needs root, as the tests do (they mount FUSE and the kernel's tracefs).
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests run through the mount: find, tar, ls, du, dd, cat, stat, sh, bash, sleep, unshare,
# and trace-cmd, which records from the mount and decodes our trace_pipe_raw pages.
need=()
for tool in find tar ls du dd cat stat sh bash sleep unshare trace-cmd; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing what provides: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq findutils tar coreutils dash bash util-linux trace-cmd >/dev/null
fi
[ -e /dev/fuse ] || modprobe fuse

exec cargo test "$@"
