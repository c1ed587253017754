#!/usr/bin/env bash
# Runs each Criterion test binary and prints one closing line over all of them.
# Exits non-zero when any test fails or crashes.
set -u
pass=0; fail=0; rc=0
for t in "$@"; do
  echo "== $t"
  out=$("$t" -j2 2>&1); status=$?
  printf '%s\n' "$out"
  synth=$(printf '%s\n' "$out" | grep -E 'Synthesis: Tested:' | tail -n1)
  p=$(sed -nE 's/.*Passing: ([0-9]+).*/\1/p' <<<"$synth"); f=$(sed -nE 's/.*Failing: ([0-9]+).*/\1/p' <<<"$synth")
  c=$(sed -nE 's/.*Crashing: ([0-9]+).*/\1/p' <<<"$synth")
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0} + ${c:-0}))
  if [ $status -ne 0 ] || [ -z "$synth" ]; then rc=1; [ -z "$synth" ] && fail=$((fail + 1)); fi
done
echo "tests: $pass passed, $fail failed"
exit $rc
