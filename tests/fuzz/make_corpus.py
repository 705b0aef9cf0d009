#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/): well-formed
inputs of every kind each decoder takes, from which libFuzzer mutates. Run it again after a
protocol change; its output is committed. Uses Debian's python3-msgpack."""

import hashlib
import os
import struct

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
ID = "01a20b67-dfc4-7000-9c02-2173baa0aecf"
PARENT = "01a20b67-dfc4-7000-9c02-2173baa0aed0"
TO = "agent://acme/prod/worker"
FROM = "agent://acme/prod/sender"


def pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def write(target: str, data: bytes) -> None:
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def request(op: str, rid: int, **fields) -> dict:
    return {"v": 1, "op": op, "rid": rid, **fields}


APPROVAL = {"question": "Ship it?", "outcomes": ["yes", "no"]}
SEND = dict(intent_type="intent.handoff.process.v1", to_agent=TO, from_agent=FROM,
            payload={"records": 1200, "name": "x", "list": [1, 2.5, None, True]},
            correlation_id="c-1", lease_ms=30000, deadline=1900000000000,
            idempotency_key="k-1", reply_to=FROM, max_attempts=3, retry_initial_ms=200,
            retry_multiplier=2.0, retry_max_ms=5000)

REQUESTS = [
    request("hello", 1),
    request("status", 2),
    request("send", 3, **SEND),
    request("send", 4, intent_type="intent.a.v1", to_agent=TO, approval=APPROVAL,
            wait_rid=5, wait_timeout_ms=1000),
    request("send", 6, intent_type="intent.a.v1", to_agent=TO, intent_id=ID, parent_id=PARENT),
    request("get", 7, intent_id=ID),
    request("events", 8, intent_id=ID, since=0, limit=10),
    request("wait", 9, intent_id=ID, timeout_ms=100),
    request("list", 10, limit=100, status="SUBMITTED", to_agent=TO),
    request("cancel", 11, intent_id=ID, reason="no longer needed", actor="ops"),
    request("receive", 12, address=TO, credit=4),
    request("ack", 13, intent_id=ID, attempt=1, start=True),
    request("heartbeat", 14, intent_id=ID, attempt=1),
    request("checkpoint", 15, intent_id=ID, attempt=1, state={"step": 3}),
    request("complete", 16, intent_id=ID, attempt=1, result={"ok": True, "n": [1, 2]}),
    request("fail", 17, intent_id=ID, attempt=1,
            error={"code": "boom", "message": "it broke", "retryable": True}),
    request("request_approval", 18, intent_id=ID, attempt=1, question="Go on?",
            outcomes=["go", "stop"]),
    request("approve", 19, intent_id=ID, comment="fine", outcome="go", actor="alice"),
    request("reject", 20, intent_id=ID, comment="no", actor="bob"),
    request("replay", 21, intent_id=ID, actor="ops"),
    request("purge", 22, intent_id=ID),
    request("audit", 23, since=0, limit=50),
]

INTENT = {"intent_id": ID, "intent_type": "intent.a.v1", "from_agent": FROM, "to_agent": TO,
          "correlation_id": "c-1", "origin_node": "node-a", "target_node": "node-b",
          "status": "SUBMITTED", "delivery_attempt": 0, "lease_ms": 30000, "max_attempts": 5,
          "retry_initial_ms": 1000, "retry_multiplier": 2.0, "retry_max_ms": 60000,
          "created_at": 1700000000000, "updated_at": 1700000000000, "seq": 1,
          "payload": {"n": 1}, "checkpoint": None, "result": None, "approval": APPROVAL}
EVENT = {"intent_id": ID, "seq": 2, "event_type": "intent.delivered", "status": "DELIVERED",
         "at": 1700000000100, "node": "node-b", "actor": TO, "details": {"attempt": 1}}

REPLIES = [
    {"v": 1, "rid": 3, "ok": True, "intent_id": ID, "status": "SUBMITTED", "created": True},
    {"v": 1, "rid": 7, "ok": True, "intent": INTENT},
    {"v": 1, "rid": 8, "ok": True, "events": [EVENT]},
    {"v": 1, "rid": 9, "ok": False, "error": {"code": "not_stored", "message": "disk full"}},
    {"v": 1, "push": "deliver", "intent": INTENT},
]


def peer(kind: str, seq: int, body: dict, sender: str = "node-a") -> dict:
    return {"v": 3, "kind": kind, "from": sender, "seq": seq, "body": body}


PEER = [
    peer("intent", 1, {"intent": INTENT}),
    peer("update", 2, {"intent_id": ID, "remote_seq": 1, "status": "COMPLETED",
                       "delivery_attempt": 1, "events": [EVENT], "result": {"ok": True},
                       "checkpoint": {"step": 1}, "has_checkpoint": True}, "node-b"),
    peer("update", 3, {"intent_id": ID, "remote_seq": 2, "status": "FAILED",
                       "event": EVENT, "error": {"code": "x", "message": "y"}}, "node-b"),
    # A compact update: [id, remote_seq, status, delivery_attempt, waiting_reason, error,
    # last_error, approval, has_checkpoint, checkpoint, result, events].
    peer("update", 6, [bytes.fromhex(ID.replace("-", "")), 2, 6, 1, "", None,
                       {"code": "x", "message": "y", "retryable": True}, None, True,
                       pack({"step": 1}), pack({"ok": True}),
                       [[1, "intent.received", 1, 1700000000050, "system", {"from_node": "a"}],
                        [2, "intent.completed", 6, 1700000000100, TO, None]]], "node-b"),
    # A compact intent: [id, intent_type, from_agent, to_agent, correlation_id, parent_id,
    # replay_of, origin_node, target_node, lease_ms, deadline, max_attempts, retry_initial_ms,
    # retry_multiplier, retry_max_ms, created_at, approval, payload, checkpoint].
    peer("intent", 7, [bytes.fromhex(ID.replace("-", "")), "intent.a.v1", FROM, TO, "c-1", "",
                       "", "node-a", "node-b", 30000, 0, 5, 1000, 2.0, 60000, 1700000000000,
                       None, {"n": 1}, None]),
    peer("control", 4, {"intent_id": ID, "action": "cancel", "actor": "ops", "reason": "r"}),
    peer("control", 5, {"intent_id": ID, "action": "approve", "outcome": "yes"}),
    {"v": 3, "kind": "ack", "from": "node-b", "boot": 7, "acked": 4},
    {"v": 3, "kind": "ack", "from": "node-b", "boot": 7, "acked": 4, "batches": True,
     "compact_messages": True},
    {"v": 3, "kind": "ping", "from": "node-a", "boot": 7},
]

CONFIGS = [
    b'log_level = "info"\n[node]\nname = "node-a"\ndata_dir = "/var/lib/handoff"\n'
    b'agent_endpoint = "ipc:///run/handoff/node-a.sock"\npeer_endpoint = "tcp://0.0.0.0:7601"\n'
    b'fsync = true\nmap_size = "1GiB"\nmax_payload_bytes = "1MiB"\nmax_batch = 1024\n'
    b'default_lease = "30s"\nretention = "7d"\nmax_attempts = 5\nretry_initial = "1s"\n'
    b'retry_multiplier = 2.0\nretry_max = "1m"\npeer_security = "curve"\n'
    b'max_client_backlog = "16MiB"\n'
    b'[[peers]]\nname = "node-b"\nendpoint = "tcp://10.0.0.2:7601"\n'
    b'public_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"\n'
    b'[[routes]]\npattern = "agent://acme/prod/*"\nnode = "node-b"\n',
    b'[node]\nname = "node-z"\npeer_security = "none"\n',
    b'[node]\nname = "x"\ndefault_lease = 30\nmap_size = 1048576\n',
]




def turn_script(steps) -> bytes:
    out = b""
    for kind, body in steps:
        out += bytes([kind]) + struct.pack("<H", len(body)) + body
    return out


def main() -> None:
    for r in REQUESTS:
        write("agent_protocol", pack(r))
    for r in REPLIES:
        write("agent_protocol", pack(r))
    # Version 2 batches: several requests, several replies, one of each, a batch of one.
    v2 = [dict(r, v=2) for r in REQUESTS]
    write("agent_protocol", pack(v2[:4]))
    write("agent_protocol", pack(v2[:1]))
    write("agent_protocol", pack(REPLIES[:4]))
    write("agent_protocol", pack([v2[0], REPLIES[0]]))
    for m in PEER:
        write("peer_protocol", pack(m))
    write("peer_protocol", pack(PEER[:3]))  # a batch
    for c in CONFIGS:
        write("config", c)
    # WAL: a raw empty file, a torn header, and payload lists (mode 0) with small write sets
    # as bytes the decoder must refuse or take.
    write("wal_replay", b"\x01")
    write("wal_replay", b"\x01HOwl\x01\x00\x00\x00" + b"\x01" + b"\x00" * 7)
    write("wal_replay", b"\x01HOwl\x02\x00\x00\x00" + b"\x01" + b"\x00" * 23 + b"abc")
    write("wal_replay", b"\x00" + struct.pack("<H", 8) + b"\x00" * 8)
    write("wal_replay", b"\x00" + struct.pack("<H", 3) + b"abc" + struct.pack("<H", 0))
    # A write set in the current framing (op 'p'/'e', varint lengths) and in schema 3's ('P',
    # u32 lengths), each a put and an erase.
    for ws in (b"p\x03\x02k1\x02v1e\x05\x04gone",
               b"P\x03\x02\x00\x00\x00k1\x02\x00\x00\x00v1E\x05\x04\x00\x00\x00gone"):
        write("wal_replay", b"\x00" + struct.pack("<H", len(ws)) + ws)
    # Whole turns: send, deliver, ack, checkpoint, complete, time passing, a rollback.
    ref = b"\xa3@@\x00"  # the first intent sent

    def req(op: str, **fields) -> bytes:
        b = pack(request(op, 1, **fields))
        return b.replace(pack(ID), ref)

    write("turn", turn_script([(0, req("send", **SEND)), (2, b""),
                               (0, req("ack", intent_id=ID, attempt=1, start=True)),
                               (0, req("checkpoint", intent_id=ID, attempt=1, state={"s": 1})),
                               (0, req("complete", intent_id=ID, attempt=1, result={"ok": 1}))]))
    write("turn", turn_script([(0, req("send", intent_type="intent.a.v1", to_agent=TO,
                                       lease_ms=100, max_attempts=2)),
                               (2, b""), (1, b"\x05"), (2, b""), (1, b"\x05"),
                               (0, req("get", intent_id=ID))]))
    write("turn", turn_script([(0, req("send", intent_type="intent.a.v1", to_agent=TO,
                                       approval=APPROVAL)),
                               (0, req("approve", intent_id=ID, outcome="yes")),
                               (3, req("cancel", intent_id=ID)), (2, b""),
                               (0, req("fail", intent_id=ID, attempt=1,
                                       error={"code": "e", "message": "m",
                                              "retryable": True})),
                               (1, b"\x30"), (0, req("replay", intent_id=ID)),
                               (0, req("purge", intent_id=ID))]))
    write("turn", turn_script([(0, req("send", intent_type="intent.a.v1", to_agent=TO,
                                       deadline=1700000000500)),
                               (1, b"\x10"), (0, req("audit", since=0, limit=10)),
                               (0, req("list", limit=10))]))


if __name__ == "__main__":
    main()
