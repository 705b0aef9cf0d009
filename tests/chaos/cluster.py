"""Three nodes, each in its own network namespace, under a nemesis; then a checker.

    /usr/bin/python3 tests/chaos/cluster.py --bin BUILD/daemons [--seconds 150] [--seed 1]
        [--rate 20] [--report report.json] [--keep]

Needs root and network namespaces (ip netns); without them it says so and exits 77 (ctest:
skipped). Everything it makes (namespaces, veth pairs, a bridge, processes, files) is removed at
the end, also when interrupted (SIGINT, SIGTERM).

The cluster: node-a, node-b and node-c in namespaces of their own, linked by veth pairs to a
bridge in a fourth namespace (10.77.N.1-3), full-mesh peers over CURVE; node-x hosts
agent://chaos/x/*. On each node an agent (`handoffctl serve`, a shell command that logs each
execution and doubles the payload's n), and a sender that hands numbered intents to the other
nodes' agents at a steady rate.

The nemesis, one fault at a time, healed before the next:
  kill          SIGKILL one daemon, start it again on the same data directory at once
  kill-two      the same for two daemons
  kill-again    SIGKILL and restart one daemon three times in quick succession
  pause         SIGSTOP one daemon past the peer heartbeats and the leases, then SIGCONT
  isolate       a node's link down (a partition from both others, both ways)
  one-way       a node's outgoing packets dropped (tc), its incoming ones delivered
  cut-link      one link between two nodes cut both ways (blackhole routes)
  cut-link-one-way  the same, one way only (a's packets to b dropped, b's to a delivered)
  slow          a node's link slow and lossy (tc netem; skipped where the kernel lacks it)
  agent-kill    SIGKILL an agent mid-work, start it again
  agent-offline an agent restarted while its daemon is down
After each heal the nemesis sends a probe across the healed part and times how long it takes
to complete: the recovery time.

The checker, after the nemesis and a bounded wait for quiescence, reports as anomalies:
  lost                acknowledged on its origin, but missing there
  incomplete          acknowledged, but not COMPLETED on its origin once quiet
  duplicated          one logical send stored as two intents
  unexpected          intents on a node that no send explains
  wrong_result        a result that is not its agent's
  bad_history         event seqs not 1, 2, 3, ... on either copy
  copies_disagree     the origin's copy and the destination's differ in status or result, or
                      the origin's history lacks some of the destination's events
and as figures: sends by outcome, faults by kind, executions per intent, recovery times.
Exit status 1 on any anomaly; the report is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "python"))

import handoff  # noqa: E402

SKIP = 77
NODES = ["node-a", "node-b", "node-c"]
FAULTS = ["kill", "pause", "isolate", "agent-kill", "one-way", "cut-link", "kill-two", "slow",
          "agent-offline", "kill-again", "cut-link-one-way"]


def log(message: str) -> None:
    print(f"cluster: {message}", flush=True)


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def worker(node: str) -> str:
    return f"agent://chaos/{node[-1]}/worker"


class Net:
    """The namespaces, the bridge and the links; faults on them."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.hub = f"hof{tag}h"
        self.ns = {n: f"hof{tag}{n[-1]}" for n in NODES}
        self.subnet = 100 + (os.getpid() % 100)
        self.ip = {n: f"10.77.{self.subnet}.{i + 1}" for i, n in enumerate(NODES)}
        self.netem = False

    def up(self) -> None:
        sh("ip", "netns", "add", self.hub)
        sh("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.hub, "link", "set", "br0", "up")
        for i, node in enumerate(NODES):
            ns = self.ns[node]
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", self.hub, "link", "add", f"v{i}", "type", "veth", "peer", "name",
               "eth0", "netns", ns)
            sh("ip", "-n", self.hub, "link", "set", f"v{i}", "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.ip[node]}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        probe = sh("tc", "-n", self.ns["node-a"], "qdisc", "add", "dev", "lo", "root", "netem",
                   "delay", "1ms", check=False)
        self.netem = probe.returncode == 0
        if self.netem:
            sh("tc", "-n", self.ns["node-a"], "qdisc", "del", "dev", "lo", "root", check=False)

    def down(self) -> None:
        for ns in list(self.ns.values()) + [self.hub]:
            sh("ip", "netns", "del", ns, check=False)

    def exec_prefix(self, node: str) -> List[str]:
        return ["ip", "netns", "exec", self.ns[node]]

    def link(self, node: str, up: bool) -> None:
        sh("ip", "-n", self.ns[node], "link", "set", "eth0", "up" if up else "down")

    def egress(self, node: str, qdisc: Optional[List[str]]) -> bool:
        """Sets (or with None removes) a qdisc on the node's link; False if the kernel lacks it."""
        if qdisc is None:
            sh("tc", "-n", self.ns[node], "qdisc", "del", "dev", "eth0", "root", check=False)
            return True
        r = sh("tc", "-n", self.ns[node], "qdisc", "add", "dev", "eth0", "root", *qdisc,
               check=False)
        return r.returncode == 0

    def blackhole(self, a: str, b: str, on: bool, both_ways: bool = True) -> None:
        for x, y in ((a, b), (b, a)) if both_ways else ((a, b),):
            sh("ip", "-n", self.ns[x], "route", "add" if on else "del", "blackhole",
               f"{self.ip[y]}/32", check=False)


class Cluster:
    def __init__(self, root: Path, bin_dir: Path, net: Net, sabotage: bool = False) -> None:
        self.root = root
        self.sabotage = sabotage
        self.bin = bin_dir
        self.net = net
        self.daemons: Dict[str, Optional[subprocess.Popen]] = {n: None for n in NODES}
        self.agents: Dict[str, Optional[subprocess.Popen]] = {n: None for n in NODES}
        self.log = open(root / "cluster.log", "ab")
        self.keys: Dict[str, str] = {}
        for node in NODES:
            key_file = root / f"{node}.key"
            out = sh(str(bin_dir / "handoffd"), "--keygen", str(key_file))
            self.keys[node] = out.stdout.strip()
        for node in NODES:
            self.write_config(node)

    def endpoint(self, node: str) -> str:
        return f"ipc://{self.root}/{node}.sock"

    def write_config(self, node: str) -> None:
        lines = [
            "[node]",
            f'name = "{node}"',
            f'data_dir = "{self.root}/{node}"',
            f'agent_endpoint = "{self.endpoint(node)}"',
            f'peer_endpoint = "tcp://{self.net.ip[node]}:7400"',
            f'secret_key_file = "{self.root}/{node}.key"',
            'default_lease = "3s"',
            'peer_heartbeat = "500ms"',
            'retransmit_initial = "200ms"',
            'retransmit_max = "2s"',
            'retry_initial = "200ms"',
            "max_attempts = 0",
        ]
        for peer in NODES:
            if peer == node:
                continue
            lines += ["[[peers]]", f'name = "{peer}"',
                      f'endpoint = "tcp://{self.net.ip[peer]}:7400"',
                      f'public_key = "{self.keys[peer]}"']
            lines += ["[[routes]]", f'match = "agent://chaos/{peer[-1]}/*"', f'node = "{peer}"']
        (self.root / f"{node}.toml").write_text("\n".join(lines) + "\n")

    def start(self, node: str, timeout: float = 30.0) -> bool:
        self.daemons[node] = subprocess.Popen(
            self.net.exec_prefix(node) + [str(self.bin / "handoffd"), "--config",
                                          str(self.root / f"{node}.toml")],
            stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemons[node].poll() is not None:
                return False
            try:
                with handoff.Client(self.endpoint(node), timeout=1.0) as c:
                    c.status()
                return True
            except handoff.HandoffError:
                time.sleep(0.05)
        return False

    def kill(self, node: str) -> None:
        d = self.daemons[node]
        if d and d.poll() is None:
            d.kill()
            d.wait(30)

    def signal(self, node: str, sig: int) -> None:
        d = self.daemons[node]
        if d and d.poll() is None:
            d.send_signal(sig)

    def start_agent(self, node: str) -> None:
        # The control run's agents get every 50th number wrong, on purpose.
        wrong = " + (n % 50 == 0)" if self.sabotage else ""
        command = (f'echo "$HANDOFF_INTENT_ID" >> {self.root}/executions-{node}; '
                   "n=$(sed 's/.*\"n\": *\\([0-9]*\\).*/\\1/'); "
                   f'echo "{{\\"n2\\":$((n*2{wrong}))}}"')
        env = dict(os.environ, HANDOFF_SOCKET=self.endpoint(node))
        self.agents[node] = subprocess.Popen(
            [str(self.bin / "handoffctl"), "serve", "--as", worker(node), "--credit", "8",
             "--exec", command], env=env, stdout=self.log, stderr=self.log)

    def kill_agent(self, node: str) -> None:
        a = self.agents[node]
        if a and a.poll() is None:
            a.kill()
            a.wait(30)

    def wait_connected(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ok = True
                for node in NODES:
                    with handoff.Client(self.endpoint(node), timeout=2.0) as c:
                        peers = c.status().get("peers", [])
                    ok = ok and len(peers) == 2 and all(p.get("connected") for p in peers)
                if ok:
                    return True
            except handoff.HandoffError:
                pass
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        for node in NODES:
            for p in (self.agents[node], self.daemons[node]):
                if p and p.poll() is None:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                    try:
                        p.wait(30)
                    except subprocess.TimeoutExpired:
                        pass

    def executions(self) -> Counter:
        counts: Counter = Counter()
        for node in NODES:
            path = self.root / f"executions-{node}"
            if path.exists():
                counts.update(line.strip() for line in path.read_text().splitlines() if line)
        return counts


class History:
    def __init__(self) -> None:
        self.mu = threading.Lock()
        self.sends: Dict[str, Dict] = {}
        self.probes: Dict[str, tuple] = {}  # the nemesis's probe intents: id -> (origin, dest)

    def invoke(self, intent_id: str, n: int, origin: str, dest: str) -> None:
        with self.mu:
            self.sends[intent_id] = {"n": n, "origin": origin, "dest": dest, "outcome": "invoked"}

    def finish(self, intent_id: str, outcome: str) -> None:
        with self.mu:
            self.sends[intent_id]["outcome"] = outcome


def sender(cluster: Cluster, origin: str, history: History, first: int, step: int,
           rate: float, stop: threading.Event) -> None:
    n = first
    client: Optional[handoff.Client] = None
    others = [x for x in NODES if x != origin]
    while not stop.is_set():
        dest = others[n % 2]
        intent_id = handoff.new_intent_id()
        history.invoke(intent_id, n, origin, dest)
        try:
            if client is None:
                client = handoff.Client(cluster.endpoint(origin), timeout=2.0)
            client.send_intent(intent_type="intent.chaos.double.v1", to_agent=worker(dest),
                               intent_id=intent_id, payload={"n": n})
            history.finish(intent_id, "acknowledged")
        except (handoff.Unavailable, handoff.TimedOut):
            history.finish(intent_id, "indeterminate")
            if client is not None:
                client.close()
                client = None
        except handoff.HandoffError:
            history.finish(intent_id, "failed")
        n += step
        stop.wait(1.0 / rate)
    if client is not None:
        client.close()


def probe(cluster: Cluster, history: History, origin: str, dest: str,
          timeout: float = 60.0, describe_after: float = 10.0) -> Optional[float]:
    """Seconds for an intent from `origin` to `dest`'s agent to complete; None past timeout.

    A probe still running after `describe_after` seconds is described in the log (where it
    stands on both nodes, what its agent holds), once: the diagnosis of a slow recovery."""
    started = time.monotonic()
    intent_id = handoff.new_intent_id()
    history.probes[intent_id] = (origin, dest)
    described = False
    while time.monotonic() - started < timeout:
        elapsed = time.monotonic() - started
        if not described and elapsed >= describe_after:
            log(f"probe {origin} -> {dest} still running after {elapsed:.1f} s:")
            describe_probe(cluster, intent_id, origin, dest)
            described = True
        try:
            with handoff.Client(cluster.endpoint(origin), timeout=2.0) as c:
                c.send_intent(intent_type="intent.chaos.probe.v1", to_agent=worker(dest),
                              intent_id=intent_id, payload={"n": -1})
                left = timeout - (time.monotonic() - started)
                if not described:
                    left = min(left, describe_after - (time.monotonic() - started))
                if c.wait_for(intent_id, timeout=max(left, 0.1))["status"] == "COMPLETED":
                    return time.monotonic() - started
        except handoff.TimedOut:
            pass  # the wait's chunk ran out: describe, or wait again
        except handoff.HandoffError:
            time.sleep(0.2)
    return None


def describe_probe(cluster: Cluster, intent_id: str, origin: str, dest: str) -> None:
    """Logs where a slow probe stands on both nodes and what its agent's address holds: in
    flight, queued ahead of it, receivers (the diagnosis of a slow recovery)."""
    for node in (origin, dest):
        try:
            with handoff.Client(cluster.endpoint(node), timeout=5.0) as c:
                got = c.get(intent_id)
                events = [(e["seq"], e["event_type"], e["node"]) for e in c.events(intent_id)]
                log(f"  probe on {node}: {got['status']} attempt {got.get('delivery_attempt')}; "
                    f"events {events}")
        except handoff.HandoffError as e:
            log(f"  probe on {node}: {e}")
    try:
        with handoff.Client(cluster.endpoint(dest), timeout=5.0) as c:
            now_ms = time.time() * 1000
            for status in ("DELIVERED", "ACKNOWLEDGED", "IN_PROGRESS"):
                rows = c.list(status=status, to_agent=worker(dest), limit=20)
                ages = [round((now_ms - c.events(r["intent_id"])[-1]["at"]) / 1000, 1)
                        for r in rows]
                log(f"  {dest}: {len(rows)} {status}, seconds since their last event {ages}")
            for row in c.agents():
                if row.get("address") == worker(dest):
                    log(f"  {dest}: {row}")
    except handoff.HandoffError as e:
        log(f"  {dest}: {e}")
    agent = cluster.agents[dest]
    if agent is not None:
        log(f"  {dest}'s agent {agent.pid}: "
            f"{'running' if agent.poll() is None else f'exited {agent.returncode}'}")


def nemesis(cluster: Cluster, net: Net, history: History, rng: random.Random, seconds: float,
            kinds: List[str], faults: Counter, recoveries: List[Dict], skipped: Counter) -> None:
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        fault = kinds[i % len(kinds)]
        i += 1
        a, b = rng.sample(NODES, 2)
        hold = rng.uniform(3.0, 6.0)
        if fault == "kill":
            cluster.kill(a)
            cluster.start(a)
        elif fault == "kill-again":
            for _ in range(3):
                cluster.kill(a)
                cluster.start(a)
                time.sleep(rng.uniform(0.1, 0.5))
        elif fault == "cut-link-one-way":
            net.blackhole(a, b, True, both_ways=False)
            time.sleep(hold)
            net.blackhole(a, b, False, both_ways=False)
        elif fault == "kill-two":
            cluster.kill(a)
            cluster.kill(b)
            cluster.start(a)
            cluster.start(b)
        elif fault == "pause":
            cluster.signal(a, signal.SIGSTOP)
            time.sleep(hold)
            cluster.signal(a, signal.SIGCONT)
        elif fault == "isolate":
            net.link(a, False)
            time.sleep(hold)
            net.link(a, True)
        elif fault == "one-way":
            if not net.egress(a, ["netem", "loss", "100%"]) and not net.egress(
                    a, ["tbf", "rate", "8bit", "burst", "1540", "latency", "1ms"]):
                skipped[fault] += 1
                continue
            time.sleep(hold)
            net.egress(a, None)
        elif fault == "cut-link":
            net.blackhole(a, b, True)
            time.sleep(hold)
            net.blackhole(a, b, False)
        elif fault == "slow":
            if not net.netem:
                skipped[fault] += 1
                continue
            net.egress(a, ["netem", "delay", "100ms", "30ms", "loss", "10%"])
            time.sleep(hold)
            net.egress(a, None)
        elif fault == "agent-kill":
            cluster.kill_agent(a)
            cluster.start_agent(a)
        elif fault == "agent-offline":
            cluster.kill(a)
            cluster.kill_agent(a)
            cluster.start_agent(a)
            time.sleep(1.0)
            cluster.start(a)
        faults[fault] += 1
        took = probe(cluster, history, b, a)
        recoveries.append({"fault": fault, "node": a, "recovery_s":
                           None if took is None else round(took, 3)})
        log(f"{fault} on {a}: healed; a probe {b} -> {a} took "
            f"{'over 60 s' if took is None else f'{took:.2f} s'}")
        time.sleep(rng.uniform(1.0, 2.0))


def purge_some(cluster: Cluster, history: History) -> None:
    """The control's loss: a few acknowledged intents purged on their origin once ended."""
    victims = [i for i, s in history.sends.items() if s["outcome"] == "acknowledged"][:5]
    for intent_id in victims:
        origin = history.sends[intent_id]["origin"]
        with handoff.Client(cluster.endpoint(origin), timeout=10.0) as c:
            try:
                c.wait_for(intent_id, timeout=60)
                c.purge(intent_id)
            except handoff.HandoffError as e:
                log(f"control: could not purge {intent_id}: {e}")


def check(cluster: Cluster, history: History, quiesce: float) -> Dict:
    sends = history.sends
    acknowledged = {i for i, s in sends.items() if s["outcome"] == "acknowledged"}
    clients = {n: handoff.Client(cluster.endpoint(n), timeout=10.0) for n in NODES}
    try:
        deadline = time.monotonic() + quiesce
        pending = set(acknowledged)
        while pending and time.monotonic() < deadline:
            for intent_id in list(pending):
                try:
                    if clients[sends[intent_id]["origin"]].get(intent_id)["status"] == "COMPLETED":
                        pending.discard(intent_id)
                except handoff.NotFound:
                    pass
            if pending:
                time.sleep(0.5)
        origin_copy: Dict[str, Dict] = {}
        dest_copy: Dict[str, Dict] = {}
        for intent_id, s in sends.items():
            for copies, node in ((origin_copy, s["origin"]), (dest_copy, s["dest"])):
                try:
                    copies[intent_id] = clients[node].get(intent_id)
                except handoff.NotFound:
                    pass
        bad_history, disagree = [], []
        for intent_id in origin_copy:
            s = sends[intent_id]
            o_events = clients[s["origin"]].events(intent_id)
            d_events = clients[s["dest"]].events(intent_id) if intent_id in dest_copy else []
            for events in (o_events, d_events):
                seqs = [e["seq"] for e in events]
                if seqs != list(range(1, len(seqs) + 1)):
                    bad_history.append(intent_id)
            o, d = origin_copy[intent_id], dest_copy.get(intent_id)
            if d is not None:
                mirrored = [e["event_type"] for e in o_events if e["node"] == s["dest"]]
                own = [e["event_type"] for e in d_events]
                if (o["status"], o["result"]) != (d["status"], d["result"]) or mirrored != own:
                    disagree.append(intent_id)
        expected = Counter()
        for intent_id in origin_copy:
            expected[sends[intent_id]["origin"]] += 1
        for intent_id in dest_copy:
            expected[sends[intent_id]["dest"]] += 1
        # The probes, looked up by id like the sends: both copies of each count as expected.
        for intent_id, (origin, dest) in history.probes.items():
            for node in (origin, dest):
                try:
                    clients[node].get(intent_id)
                    expected[node] += 1
                except handoff.NotFound:
                    pass
        unexpected = []
        for node in NODES:
            total = sum(clients[node].status()["intents"].values())
            if total > expected[node]:
                unexpected.append(f"{node}: {total - expected[node]} intent(s) no send explains")
    finally:
        for c in clients.values():
            c.close()
    executions = cluster.executions()
    by_n: Dict[int, int] = Counter(origin_copy[i]["payload"]["n"] for i in origin_copy)
    report = {"anomalies": {
        "lost": sorted(acknowledged - set(origin_copy)),
        "incomplete": sorted(i for i in acknowledged
                             if i in origin_copy and origin_copy[i]["status"] != "COMPLETED"),
        "duplicated": sorted(n for n, k in by_n.items() if k > 1),
        "unexpected": unexpected,
        "wrong_result": sorted(i for i, c in origin_copy.items() if c["status"] == "COMPLETED"
                               and c["result"] != {"n2": 2 * c["payload"]["n"]}),
        "bad_history": sorted(set(bad_history)),
        "copies_disagree": sorted(disagree),
    }}
    report["figures"] = {
        "sends": len(sends),
        "acknowledged": len(acknowledged),
        "indeterminate": sum(1 for s in sends.values() if s["outcome"] in ("indeterminate",
                                                                          "invoked")),
        "failed": sum(1 for s in sends.values() if s["outcome"] == "failed"),
        "completed": sum(1 for c in origin_copy.values() if c["status"] == "COMPLETED"),
        "executions_per_intent": {str(k): v for k, v in sorted(Counter(
            executions[i] for i in origin_copy
            if origin_copy[i]["status"] == "COMPLETED").items())},
    }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="directory with handoffd and handoffctl")
    parser.add_argument("--seconds", type=float, default=150.0, help="how long the nemesis runs")
    parser.add_argument("--rate", type=float, default=20.0, help="sends per second per node")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiesce", type=float, default=120.0)
    parser.add_argument("--report", help="write the JSON report here too")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run's directory (data, logs) when it finds anomalies")
    parser.add_argument("--control", action="store_true",
                        help="sabotage the run (agents get every 50th result wrong, and some "
                        "completed intents are purged before the check): it passes only if the "
                        "checker reports wrong results and lost intents")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help="the faults to inject, in turn (default: all)")
    args = parser.parse_args()
    kinds = [k for k in args.faults.split(",") if k]
    unknown = [k for k in kinds if k not in FAULTS]
    if unknown or not kinds:
        parser.error(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
    if os.geteuid() != 0 or shutil.which("ip") is None:
        log("SKIPPED: needs root and iproute2 for network namespaces (CI runs it as root)")
        return SKIP
    tag = f"{os.getpid() % 100000}"
    net = Net(tag)
    try:
        net.up()
    except RuntimeError as e:
        net.down()
        log(f"SKIPPED: cannot make network namespaces here ({e})")
        return SKIP
    if not net.netem:
        log("note: this kernel has no netem qdisc: 'slow' faults are skipped, 'one-way' uses tbf")
    root = Path(tempfile.mkdtemp(prefix="handoff-cluster-"))
    cluster = Cluster(root, Path(args.bin), net, sabotage=args.control)
    history = History()
    stop = threading.Event()
    faults: Counter = Counter()
    skipped: Counter = Counter()
    recoveries: List[Dict] = []
    interrupted = False

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    # SIGINT too: a run started in the background of a script inherits SIGINT ignored, and
    # Python then leaves it so.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    report: Dict = {}
    try:
        for node in NODES:
            if not cluster.start(node):
                raise RuntimeError(f"{node} did not start")
        if not cluster.wait_connected():
            raise RuntimeError("the links did not come up")
        for node in NODES:
            cluster.start_agent(node)
        threads = [threading.Thread(target=sender, daemon=True,
                                    args=(cluster, node, history, i, len(NODES), args.rate, stop))
                   for i, node in enumerate(NODES)]
        for t in threads:
            t.start()
        nemesis(cluster, net, history, random.Random(args.seed), args.seconds, kinds, faults,
                recoveries, skipped)
        stop.set()
        for t in threads:
            t.join(15)
        if args.control:
            purge_some(cluster, history)
        report = check(cluster, history, args.quiesce)
        worst = [r["recovery_s"] for r in recoveries]
        report["figures"]["faults"] = dict(faults)
        report["figures"]["faults_skipped"] = dict(skipped)
        report["figures"]["worst_recovery_s"] = (None if None in worst
                                                 else max(worst) if worst else None)
        report["recoveries"] = recoveries
        if None in worst:
            report["anomalies"]["no_recovery"] = [r for r in recoveries if r["recovery_s"] is None]
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()
        cluster.stop()
        net.down()
        if args.keep and report and any(report.get("anomalies", {}).values()):
            log(f"kept the run's directory: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if interrupted:
        log("interrupted: everything it made is removed")
        return 1
    text = json.dumps(report, indent=2, sort_keys=True)
    if args.report:
        Path(args.report).write_text(text + "\n")
    f = report["figures"]
    log(f"{sum(faults.values())} faults {dict(faults)}; {f['sends']} sends ({f['acknowledged']} "
        f"acknowledged, {f['indeterminate']} indeterminate, {f['failed']} failed), "
        f"{f['completed']} completed; executions per intent {f['executions_per_intent']}; "
        f"worst recovery {f['worst_recovery_s']} s")
    anomalies = {k: v for k, v in report["anomalies"].items() if v}
    if args.control:
        if anomalies.get("wrong_result") and anomalies.get("lost"):
            log(f"control: the checker found the sabotage ({len(anomalies['wrong_result'])} wrong "
                f"results, {len(anomalies['lost'])} lost)")
            return 0
        log("FAILED: the control's sabotage went unnoticed: the checker does not work")
        return 1
    if anomalies:
        log("ANOMALIES: " + json.dumps(anomalies)[:3000])
        return 1
    log("no anomalies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
