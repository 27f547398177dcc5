#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the mounted tests drive, then runs
# `cargo test` with any arguments given (`scripts/test.sh --test it history::`).
# Needs root, as the tests do (they mount FUSE and the kernel's tracefs).
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests run through the mount: find, tar, ls, du, dd, cat, stat, sh, bash, sleep, unshare,
# setpriv and useradd (tests/it/run.rs runs things as a user it creates), trace-cmd, which
# records from the mount and decodes our trace_pipe_raw pages, and what `utracefs run` is
# tested with: bpftrace, perf, and fusermount3 for a normal user's mount.
need=()
for tool in find tar ls du dd cat stat sh bash sleep unshare setpriv useradd trace-cmd bpftrace \
  perf fusermount3; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing what provides: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq findutils tar coreutils dash bash util-linux passwd trace-cmd bpftrace \
    linux-perf fuse3 >/dev/null
fi
[ -e /dev/fuse ] || modprobe fuse

exec cargo test "$@"
