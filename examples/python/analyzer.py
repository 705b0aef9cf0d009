"""The analyzer of the Python demo: hands off intent.handoff.process.v1 and waits for the
outcome, then prints the result and the intent's history.

    /usr/bin/python3 examples/python/analyzer.py send [records] [to]   # prints the intent id
    /usr/bin/python3 examples/python/analyzer.py wait ID              # result and history

Needs the package on the path (PYTHONPATH=python) and a handoffd ($HANDOFF_SOCKET).
"""

import datetime
import sys

from handoff import Client

PROCESSOR = "agent://demo/local/processor"


def send(records: int, to: str) -> None:
    with Client() as client:
        intent_id = client.send_intent({
            "intent_type": "intent.handoff.process.v1",
            "from_agent": "agent://demo/local/analyzer",
            "to_agent": to,
            "payload": {"handoff_id": "HO-2026-0033", "record_count": records},
            "lease": 2,
        })  # returns once the intent is on disk
    print(intent_id)


def wait(intent_id: str) -> None:
    with Client() as client:
        outcome = client.wait_for(intent_id, timeout=120)
        print(f"analyzer: {intent_id} ended {outcome['status']} after "
              f"{outcome['delivery_attempt']} deliveries: {outcome['result']}")
        print("analyzer: its history:")
        for e in client.events(intent_id):
            at = datetime.datetime.fromtimestamp(e["at"] / 1000).strftime("%H:%M:%S.%f")[:-3]
            print(f"  {e['seq']:>3} {at} {e['event_type']:<24} {e['status']:<12} {e['actor']}")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "send":
        send(int(sys.argv[2]) if len(sys.argv) > 2 else 8,
             sys.argv[3] if len(sys.argv) > 3 else PROCESSOR)
    elif len(sys.argv) == 3 and sys.argv[1] == "wait":
        wait(sys.argv[2])
    else:
        sys.exit(__doc__)
