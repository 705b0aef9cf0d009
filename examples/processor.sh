#!/bin/sh
# The processor agent of the demo, run by `handoffctl serve` once per delivered intent.
#
# Reads the payload (JSON) on stdin: {"handoff_id": "...", "record_count": N}. Processes the
# records one step at a time and saves a checkpoint after each step, so a processor that dies
# mid-way is resumed at the next step by whoever gets the intent next. Prints the result (JSON)
# on stdout.
set -eu
payload=$(cat)
handoff_id=$(printf '%s' "$payload" | sed -n 's/.*"handoff_id":"\([^"]*\)".*/\1/p')
records=$(printf '%s' "$payload" | sed -n 's/.*"record_count":\([0-9]*\).*/\1/p')
done_steps=$(printf '%s' "${HANDOFF_CHECKPOINT:-}" | sed -n 's/.*"step":\([0-9]*\).*/\1/p')
done_steps=${done_steps:-0}
step_seconds=${PROCESSOR_STEP_SECONDS:-0.4}

if [ "$done_steps" -gt 0 ]; then
  echo "processor: attempt $HANDOFF_ATTEMPT of $HANDOFF_INTENT_ID resumes after step $done_steps of $records" >&2
else
  echo "processor: attempt $HANDOFF_ATTEMPT of $HANDOFF_INTENT_ID starts: $records records of $handoff_id" >&2
fi
step=$done_steps
while [ "$step" -lt "$records" ]; do
  step=$((step + 1))
  sleep "$step_seconds"                                  # the work of one step
  handoffctl checkpoint "$HANDOFF_INTENT_ID" --state "{\"step\":$step}"
  echo "processor:   step $step/$records done, checkpoint saved" >&2
done
printf '{"handoff_id":"%s","records_processed":%s,"resumed_after_step":%s,"attempt":%s}\n' \
  "$handoff_id" "$records" "$done_steps" "$HANDOFF_ATTEMPT"
