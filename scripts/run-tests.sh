#!/usr/bin/env bash
# Runs each Criterion test binary and prints one closing line over all of them.
# Exits non-zero when any test fails or crashes.
set -u
# TEST_JOBS: Criterion workers per binary (2 by default; the Makefile passes 1 in sanitizer
# builds because Criterion 2.4's parallel runner leaks 48 bytes of its own, which LeakSanitizer
# would report against the whole binary).
jobs=${TEST_JOBS:-2}
pass=0; fail=0; rc=0
for t in "$@"; do
  echo "== $t"
  out=$("$t" -j"$jobs" 2>&1); status=$?
  printf '%s\n' "$out"
  synth=$(printf '%s\n' "$out" | grep -E 'Synthesis: Tested:' | tail -n1)
  p=$(sed -nE 's/.*Passing: ([0-9]+).*/\1/p' <<<"$synth"); f=$(sed -nE 's/.*Failing: ([0-9]+).*/\1/p' <<<"$synth")
  c=$(sed -nE 's/.*Crashing: ([0-9]+).*/\1/p' <<<"$synth")
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0} + ${c:-0}))
  if [ $status -ne 0 ] || [ -z "$synth" ]; then rc=1; [ -z "$synth" ] && fail=$((fail + 1)); fi
done
echo "tests: $pass passed, $fail failed"
exit $rc
