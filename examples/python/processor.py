"""The processor agent of the Python demo: handles intent.handoff.process.v1 in steps, with a
checkpoint after each, so a processor killed mid-way is resumed at the next step by whoever
gets the intent next.

    /usr/bin/python3 examples/python/processor.py [agent address]

Needs the package on the path (PYTHONPATH=python) and a handoffd ($HANDOFF_SOCKET).
"""

import os
import sys
import time

import handoff

ADDRESS = sys.argv[1] if len(sys.argv) > 1 else "agent://demo/local/processor"
STEP_SECONDS = float(os.environ.get("PROCESSOR_STEP_SECONDS", "0.4"))

agent = handoff.Agent(ADDRESS, credit=1)


@agent.handler
def process(task: handoff.Task) -> dict:
    records = int(task.payload["record_count"])
    done = (task.checkpoint or {}).get("step", 0)
    if done:
        print(f"processor: attempt {task.attempt} of {task.intent_id} resumes after step "
              f"{done} of {records}", flush=True)
    else:
        print(f"processor: attempt {task.attempt} of {task.intent_id} starts: {records} records "
              f"of {task.payload['handoff_id']}", flush=True)
    step = done
    while step < records:
        time.sleep(STEP_SECONDS)  # the work of one step
        step += 1
        task.save_checkpoint({"step": step})  # durable when it returns
        print(f"processor:   step {step}/{records} done, checkpoint saved", flush=True)
    return {
        "handoff_id": task.payload["handoff_id"],
        "records_processed": records,
        "resumed_after_step": done,
        "attempt": task.attempt,
    }


if __name__ == "__main__":
    agent.run()  # until SIGTERM or SIGINT
