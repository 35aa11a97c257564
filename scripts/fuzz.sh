#!/usr/bin/env bash
# Runs the fuzz targets under fuzz/ (cargo-fuzz, libFuzzer) and prints one row per target: inputs executed,
# executions per second, crashes. Not part of CI (a campaign takes hours); see fuzz/README.md.
#
#   scripts/fuzz.sh 10000000            # every target, ten million inputs each
#   scripts/fuzz.sh 600s semtech codec  # these two targets, ten minutes each
#
# The machine's toolchain is stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags to it. Sanitizer:
# FUZZ_SANITIZER (default none: the code under test forbids unsafe, so AddressSanitizer would mostly slow it
# down; `address` works too). Each target stops at its first crash, which libFuzzer writes to
# fuzz/artifacts/TARGET/; its log is fuzz/logs/TARGET.log. Run it under `nice` on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

usage() {
  echo "usage: $0 RUNS|SECONDSs [TARGET...]   (e.g. $0 10000000, or $0 600s semtech)" >&2
  exit 2
}
[ $# -ge 1 ] || usage
case "$1" in
  *[0-9]s) limit="-max_total_time=${1%s}" ;;
  *[!0-9]* | "") usage ;;
  *) limit="-runs=$1" ;;
esac
shift

export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building the targets (sanitizer: $sanitizer)"
cargo fuzz build -s "$sanitizer"

mkdir -p logs
rows=()
failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  seeds=()
  [ -d "seeds/$target" ] && seeds=("seeds/$target")
  before=$(find "artifacts/$target" -type f | wc -l)
  echo "== $target ($limit)"
  started=$SECONDS
  # -timeout: an input that takes 10 s is a hang; -print_final_stats: the counts read below.
  status=0
  cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" "${seeds[@]}" -- \
    "$limit" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"logs/$target.log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$target.log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "logs/$target.log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(( $(find "artifacts/$target" -type f | wc -l) - before ))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes="error (see logs/$target.log)"
  fi
  [ "$status" -eq 0 ] || failed=1
  rows+=("$(printf '%-16s %14s %10s %8ss  %s' "$target" "${runs:-?}" "${rate:-?}" $((SECONDS - started)) "$crashes")")
done

echo
printf '%-16s %14s %10s %9s  %s\n' target inputs exec/s time crashes
printf '%s\n' "${rows[@]}"
exit "$failed"
