#!/usr/bin/env bash
# Abuse benchmark (issue 12): six attack probes — unauthenticated disk fill, password storm, query size, slow
# HTTP clients, series cardinality, spoofed MQTT topics — against the release build of a baseline commit
# ("before", default 7cd5502, the commit before the admission work) and of the working tree ("after"), side by
# side, printed as one table. Loopback only, free ports, bounded loads, a temporary directory; every server is
# stopped at the end. About 4 minutes after the builds.
#   usage: bench/abuse.sh [--only 1,3] [--json PATH] [--keep] [--rss-limit-gib 4]
#   (bench/abuse_bench.py --help lists every option; ABUSE_BASELINE=<commit> picks another baseline)
# The baseline is built once in a git worktree under target/abuse-baseline/ with a target dir of its own; its
# binary is kept there (target/abuse-baseline/bydata-<commit>) and the worktree removed again.
set -euo pipefail
cd "$(dirname "$0")/.."

base_rev="${ABUSE_BASELINE:-7cd5502}"
base_commit="$(git rev-parse --verify "$base_rev^{commit}")"
short="$(git rev-parse --short "$base_commit")"
dir="target/abuse-baseline"
before="$dir/bydata-$short"
src="$dir/src"

remove_worktree() {
  if [ -e "$src" ]; then
    git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
  fi
  git worktree prune
}

if [ ! -x "$before" ]; then
  mkdir -p "$dir"
  remove_worktree # a worktree left by an interrupted run
  trap remove_worktree EXIT
  echo "building the baseline $short (release) in $src" >&2
  git worktree add --detach --quiet "$src" "$base_commit"
  (cd "$src" && nice -n 10 cargo build --release --locked -q --bin bydata --target-dir ../target)
  cp "$dir/target/release/bydata" "$before.tmp"
  mv "$before.tmp" "$before"
  remove_worktree
  trap - EXIT
fi

echo "building the working tree (release)" >&2
nice -n 10 cargo build --release --locked -q --bin bydata

after_label="working tree at $(git rev-parse --short HEAD)"
[ -z "$(git status --porcelain --untracked-files=no)" ] || after_label="$after_label + uncommitted changes"
exec nice -n 10 python3 bench/abuse_bench.py --before "$before" --after target/release/bydata \
  --before-label "$short" --after-label "$after_label" "$@"
