#!/usr/bin/env bash
# Prints, in a few dozen lines, why a test run in BUILD_DIR failed: the failed CTest cases, their
# GoogleTest failure messages and the key lines of each sanitizer report. test.sh calls it last for
# every failed sanitizer run and a failed ordinary suite, so a CI page that keeps only the tail of
# the output still names the cause (the full output is above it). Always exits 0.
#   scripts/failure_summary.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: failure_summary.sh BUILD_DIR}
temporary="$build/Testing/Temporary"
echo "=== failure summary of $build"
# ctest rewrites LastTestsFailed.log only when a case fails: one older than LastTest.log is a
# previous run's.
if [ -s "$temporary/LastTestsFailed.log" ] && ! [ "$temporary/LastTestsFailed.log" -ot "$temporary/LastTest.log" ]; then
  echo "--- failed tests:"
  head -20 "$temporary/LastTestsFailed.log"
  # GoogleTest prints "<file>:<line>: Failure" and the expectation on the lines after it.
  echo "--- their failure messages (first 80 lines):"
  grep -A14 -E ': Failure$|\*\*\*(Timeout|Exception)' "$temporary/LastTest.log" | head -80
else
  echo "--- no test case failed in the last run"
fi
reports=$(find "$build/sanitizer-logs" -type f 2>/dev/null | sort)
if [ -n "$reports" ]; then
  echo "--- sanitizer reports: $(echo "$reports" | wc -l); the key lines of the first:"
  first=$(echo "$reports" | head -1)
  echo "$first"
  grep -m 25 -E 'ERROR|SUMMARY|#[0-9]+ |runtime error|WARNING' "$first" || head -25 "$first"
fi
exit 0
