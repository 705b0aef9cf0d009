"""Power cuts under load: one handoffd on cutfs (tests/chaos/cutfs.c), cut again and again while
senders hand off numbered intents and an agent completes them; then a checker in the manner of
Jepsen's queue checker says whether anything acknowledged was lost.

    /usr/bin/python3 tests/chaos/powercut.py --bin BUILD/daemons --cutfs BUILD/tests/cutfs \\
        [--cuts 20] [--seed 1] [--report report.json]

Needs root and FUSE (/dev/fuse); without them it says so and exits 77 (ctest: skipped).

Each cut is placed by a trigger cutfs watches for, chosen in turn:
  wal-append     right after a write to the write-ahead log, before its flush
  lmdb-commit    right after a write to the LMDB data file, before its flush
  log-restart    right after the data file is flushed (mdb_env_sync), before the log restarts
  anytime        at a random moment (cutfs freezes on SIGUSR2)
and, every other cut, torn: each unflushed 4 KiB page survives or not at random.

Every send is recorded: acknowledged (send returned its id), failed (refused: not stored), or
indeterminate (no answer: it may or may not be stored). The checker, after the last cut and a
bounded wait for quiescence, reports:
  lost          acknowledged, but missing
  stored_though_refused  a send refused (not stored, it said) whose intent is stored
  incomplete    acknowledged and stored, but not completed once the run has quiesced
  duplicated    one logical send (its number) stored as two intents
  unexpected    an intent nobody sent, or a result for one
  wrong_result  a completed intent whose result is not the one its agent computed
  bad_history   events whose seq is not 1, 2, 3, ... or that do not start with intent.created
  failed_start  a restart that did not open the store and answer (also after a cut during
                the first start of a new data directory, at its 1st, 2nd, ... data file write)
and, as figures: executions per intent, indeterminate sends found stored or not, recovery time
(start to first answer) after each cut. Exit status 1 on any anomaly; the report is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
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
WORKER = "agent://chaos/powercut/worker"
TRIGGERS = ["wal-append", "lmdb-commit", "log-restart", "anytime"]


def log(message: str) -> None:
    print(f"powercut: {message}", flush=True)


class Node:
    """handoffd with its data directory on cutfs; started, cut and started again."""

    def __init__(self, root: Path, bin_dir: Path, cutfs: Path, fsync: bool = True) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.cutfs_path = cutfs
        self.backing = root / "disk"
        self.mount = root / "mnt"
        self.backing.mkdir()
        self.mount.mkdir()
        self.endpoint = f"ipc://{root}/handoffd.sock"
        self.config = root / "handoffd.toml"
        self.fsync = fsync
        self.boots = 0
        self.fs: Optional[subprocess.Popen] = None
        self.daemon: Optional[subprocess.Popen] = None
        self.log_file = open(root / "handoffd.log", "ab")

    def mount_fs(self, freeze: Optional[str], seed: int, torn: bool, armed: bool = False) -> None:
        args = [str(self.cutfs_path), str(self.backing), str(self.mount), "--seed", str(seed)]
        if freeze:
            args += ["--freeze-at", freeze]
        if armed:
            args.append("--armed")
        if torn:
            args.append("--torn")
        self.fs = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log_file)
        if self._line(10.0) != "mounted":
            raise RuntimeError("cutfs did not mount (see handoffd.log)")

    def _line(self, timeout: float) -> Optional[str]:
        assert self.fs is not None and self.fs.stdout is not None
        ready, _, _ = select.select([self.fs.stdout], [], [], timeout)
        if not ready:
            return None
        return self.fs.stdout.readline().decode().strip()

    def write_config(self, fsync: bool) -> None:
        self.config.write_text(
            "[node]\n"
            'name = "chaos"\n'
            f'data_dir = "{self.mount}/data"\n'
            f'agent_endpoint = "{self.endpoint}"\n'
            'default_lease = "2s"\n'
            'retry_initial = "100ms"\n'
            "max_attempts = 0\n"
            f"fsync = {'true' if fsync else 'false'}\n"
        )

    def start(self, timeout: float = 30.0) -> Optional[float]:
        """Starts handoffd; the seconds until it answered, or None if it never did. Without
        fsync (the control run), the first boot still flushes, so the store exists on disk."""
        self.write_config(self.fsync or self.boots == 0)
        self.boots += 1
        started = time.monotonic()
        self.daemon = subprocess.Popen(
            [str(self.bin_dir / "handoffd"), "--config", str(self.config)],
            stdout=self.log_file, stderr=self.log_file)
        while time.monotonic() - started < timeout:
            if self.daemon.poll() is not None:
                return None
            try:
                with handoff.Client(self.endpoint, timeout=1.0) as c:
                    c.status()
                return time.monotonic() - started
            except handoff.HandoffError:
                time.sleep(0.02)
        return None

    def first_boot_cut(self, write: int, seed: int) -> bool:
        """A torn cut at the `write`-th write to the data file of a brand-new data directory,
        during the daemon's first start; then a start on what is left. True if it answered."""
        shutil.rmtree(self.backing)
        self.backing.mkdir()
        self.boots = 0
        self.mount_fs(f"write:data.mdb:{write}", seed=seed, torn=True, armed=True)
        self.write_config(self.fsync)
        self.daemon = subprocess.Popen(
            [str(self.bin_dir / "handoffd"), "--config", str(self.config)],
            stdout=self.log_file, stderr=self.log_file)
        self._line(3.0)  # frozen, or the start went past that write
        assert self.fs is not None
        self.fs.send_signal(signal.SIGUSR1)
        self.daemon.kill()
        self.daemon.wait(30)
        self.reap_fs()
        self.mount_fs(None, seed=seed, torn=False)
        answered = self.start() is not None
        self.stop()
        return answered

    def cut(self, anytime_after: Optional[float]) -> str:
        """Waits for the trigger (or freezes after `anytime_after` s), kills the daemon, cuts."""
        assert self.fs is not None and self.daemon is not None
        self.fs.send_signal(signal.SIGHUP)  # the trigger counts from now: the daemon is up
        how = "trigger"
        if anytime_after is not None:
            time.sleep(anytime_after)
            self.fs.send_signal(signal.SIGUSR2)
            how = "anytime"
        if self._line(15.0) != "frozen":
            self.fs.send_signal(signal.SIGUSR2)  # the trigger never came: freeze now
            self._line(5.0)
            how = "fallback"
        # The power goes: what was not flushed is gone, and every operation, the frozen ones
        # too, fails from now on (a process blocked in a FUSE operation cannot even die until
        # it is answered). Then the daemon is killed: nothing it does after the cut lasts.
        self.fs.send_signal(signal.SIGUSR1)
        self.daemon.kill()
        self.daemon.wait(30)
        self.reap_fs()
        return how

    def reap_fs(self) -> None:
        """Waits for cutfs to unmount and exit after the cut. The cut itself (what the backing
        directory keeps) is done before it unmounts; if the kernel is slow to let the mount go,
        killing cutfs ends the connection and changes nothing on the disk."""
        assert self.fs is not None
        try:
            self.fs.wait(10)
        except subprocess.TimeoutExpired:
            log("cutfs slow to unmount after the cut: killed (the cut was already made)")
            self.fs.kill()
            self.fs.wait(30)
            subprocess.run(["umount", "-l", str(self.mount)], stderr=subprocess.DEVNULL)
        self.fs = None

    def log_tail(self, lines: int = 20) -> str:
        self.log_file.flush()
        text = (self.root / "handoffd.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Ends whatever runs, frozen or not: the filesystem first (a daemon blocked in a
        frozen operation cannot even die until it is answered), then the daemon."""
        if self.fs and self.fs.poll() is None:
            self.fs.terminate()  # flushes what was written and unmounts; frozen calls fail
        if self.daemon and self.daemon.poll() is None:
            self.daemon.kill()
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                pass
        if self.fs:
            try:
                self.fs.wait(30)
            except subprocess.TimeoutExpired:
                self.fs.kill()
        self.fs = None
        self.daemon = None
        subprocess.run(["umount", "-l", str(self.mount)], stderr=subprocess.DEVNULL)


class History:
    """What every send did, as the senders saw it, and what the agent ran."""

    def __init__(self) -> None:
        self.mu = threading.Lock()
        self.sends: Dict[str, Dict] = {}  # intent id -> {n, outcome}
        self.executions: Counter = Counter()

    def invoke(self, intent_id: str, n: int) -> None:
        with self.mu:
            self.sends[intent_id] = {"n": n, "outcome": "invoked"}

    def finish(self, intent_id: str, outcome: str) -> None:
        with self.mu:
            self.sends[intent_id]["outcome"] = outcome

    def executed(self, intent_id: str) -> None:
        with self.mu:
            self.executions[intent_id] += 1


def sender(endpoint: str, history: History, first: int, step: int, stop: threading.Event) -> None:
    n = first
    client: Optional[handoff.Client] = None
    while not stop.is_set():
        intent_id = handoff.new_intent_id()
        history.invoke(intent_id, n)
        try:
            if client is None:
                client = handoff.Client(endpoint, timeout=2.0)
            client.send_intent(intent_type="intent.chaos.double.v1", to_agent=WORKER,
                               intent_id=intent_id, payload={"n": n})
            history.finish(intent_id, "acknowledged")
        except (handoff.Unavailable, handoff.TimedOut) as e:
            # No answer: it may be stored or not. A new connection for the next.
            history.finish(intent_id, "indeterminate")
            if client is not None:
                client.close()
                client = None
            stop.wait(0.05)
        except handoff.HandoffError:
            history.finish(intent_id, "failed")  # refused (not_stored included): not stored
            stop.wait(0.05)
        n += step
    if client is not None:
        client.close()


def run_agent(endpoint: str, history: History, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            agent = handoff.Agent(WORKER, credit=8, endpoint=endpoint, timeout=2.0)

            @agent.handler
            def double(task: handoff.Task) -> dict:
                history.executed(task.intent_id)
                return {"n2": 2 * task.payload["n"]}

            runner = threading.Thread(target=agent.run, daemon=True)
            runner.start()
            stop.wait()
            agent.stop()
            runner.join(10)
            return
        except handoff.HandoffError:
            stop.wait(0.2)


def check(node: Node, history: History, quiesce: float) -> Dict:
    acknowledged = {i for i, s in history.sends.items() if s["outcome"] == "acknowledged"}
    # A send still in flight when the senders stopped is as good as unanswered.
    indeterminate = {i for i, s in history.sends.items()
                     if s["outcome"] in ("indeterminate", "invoked")}
    failed = {i for i, s in history.sends.items() if s["outcome"] == "failed"}
    sent = set(history.sends)
    with handoff.Client(node.endpoint, timeout=10.0) as client:
        # Quiescence: every acknowledged intent completed, or the bounded wait is over.
        deadline = time.monotonic() + quiesce
        pending = set(acknowledged)
        while pending and time.monotonic() < deadline:
            for intent_id in list(pending):
                try:
                    if client.get(intent_id)["status"] == "COMPLETED":
                        pending.discard(intent_id)
                except handoff.NotFound:
                    pass
            if pending:
                time.sleep(0.5)
        # Every send, asked for by its id: the store's answer is the one that counts.
        stored: Dict[str, Dict] = {}
        for intent_id in sent:
            try:
                stored[intent_id] = client.get(intent_id)
            except handoff.NotFound:
                pass
        # Whatever else the store holds was sent by nobody: counted by status, named from the
        # newest listed.
        total = sum(client.status()["intents"].values())
        strangers = set()
        for status in ("SUBMITTED", "DELIVERED", "ACKNOWLEDGED", "IN_PROGRESS", "COMPLETED",
                       "FAILED"):
            for intent in client.list(status=status, limit=10000):
                if intent["intent_id"] not in sent:
                    strangers.add(intent["intent_id"])
        bad_history = []
        for intent_id in stored:
            events = client.events(intent_id)
            seqs = [e["seq"] for e in events]
            if seqs != list(range(1, len(seqs) + 1)) or events[0]["event_type"] != "intent.created":
                bad_history.append(intent_id)
    by_n: Dict[int, List[str]] = {}
    for intent_id, intent in stored.items():
        by_n.setdefault(intent["payload"]["n"], []).append(intent_id)
    unexpected = sorted(strangers) + sorted(i for i in history.executions if i not in sent)
    if total > len(stored) and not strangers:
        unexpected.append(f"{total - len(stored)} intent(s) not listed")
    report: Dict = {"anomalies": {
        "lost": sorted(acknowledged - set(stored)),
        "incomplete": sorted(i for i in acknowledged
                             if i in stored and stored[i]["status"] != "COMPLETED"),
        "stored_though_refused": sorted(failed & set(stored)),
        "duplicated": sorted(n for n, ids in by_n.items() if len(ids) > 1),
        "unexpected": unexpected,
        "wrong_result": sorted(i for i, intent in stored.items()
                               if intent["status"] == "COMPLETED"
                               and intent["result"] != {"n2": 2 * intent["payload"]["n"]}),
        "bad_history": sorted(bad_history),
    }}
    executions = Counter(history.executions[i] for i in stored if stored[i]["status"] == "COMPLETED")
    report["figures"] = {
        "sends": len(sent),
        "acknowledged": len(acknowledged),
        "failed": sum(1 for s in history.sends.values() if s["outcome"] == "failed"),
        "indeterminate": len(indeterminate),
        "indeterminate_stored": len(indeterminate & set(stored)),
        "stored": len(stored),
        "completed": sum(1 for i in stored.values() if i["status"] == "COMPLETED"),
        "executions_per_intent": {str(k): v for k, v in sorted(executions.items())},
    }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="directory with handoffd")
    parser.add_argument("--cutfs", required=True, help="the cutfs binary")
    parser.add_argument("--cuts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--first-boot-cuts", type=int, default=6,
                        help="cuts during the first start of a new data directory, first")
    parser.add_argument("--quiesce", type=float, default=90.0, help="seconds to wait at the end")
    parser.add_argument("--report", help="write the JSON report here too")
    parser.add_argument("--no-fsync", action="store_true",
                        help="run handoffd with fsync = false: the checker must find losses "
                        "(with --expect-loss, the run passes only if it does)")
    parser.add_argument("--expect-loss", action="store_true")
    args = parser.parse_args()

    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        log("SKIPPED: needs root and /dev/fuse to mount cutfs (CI runs it as root)")
        return SKIP
    cutfs = Path(args.cutfs)
    if not cutfs.exists():
        log(f"SKIPPED: {cutfs} was not built (libfuse3-dev missing?)")
        return SKIP
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="handoff-powercut-"))
    node = Node(root, Path(args.bin), cutfs, fsync=not args.no_fsync)
    history = History()
    stop = threading.Event()  # the senders
    agent_stop = threading.Event()
    threads: List[threading.Thread] = []
    agent_thread: Optional[threading.Thread] = None
    cuts: List[Dict] = []
    failed_start: List[int] = []
    interrupted = False

    def on_signal(signum, frame):  # clean up even when interrupted
        raise KeyboardInterrupt

    # SIGINT too: a run started in the background of a script inherits SIGINT ignored, and
    # Python then leaves it so.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    first_boot: List[int] = []
    try:
        # Cuts during the first start of a new data directory: it must start afterwards.
        for write in range(1, args.first_boot_cuts + 1):
            if not node.first_boot_cut(write, seed=args.seed * 7 + write):
                first_boot.append(write)
                log(f"first-boot cut at data file write {write}: the next start failed:\n"
                    + node.log_tail())
        shutil.rmtree(node.backing)
        node.backing.mkdir()
        node.boots = 0
        for i in range(args.cuts):
            kind = TRIGGERS[i % len(TRIGGERS)]
            if args.no_fsync and kind == "log-restart":
                kind = "anytime"  # without fsync the data file is never flushed
            torn = i % 2 == 1 and not args.no_fsync  # the control loses whole writes
            freeze = {
                "wal-append": f"write:wal:{rng.randint(5, 60)}",
                "lmdb-commit": f"write:data.mdb:{rng.randint(5, 60)}",
                "log-restart": f"fsync:data.mdb:{rng.randint(1, 4)}",
                "anytime": None,
            }[kind]
            node.mount_fs(freeze, seed=args.seed * 1000 + i, torn=torn)
            recovery = node.start()
            if recovery is None:
                failed_start.append(i)
                log(f"cut {i}: handoffd did not start on what the last cut left; its log ends:\n"
                    + node.log_tail())
                node.stop()
                break
            if not threads:
                for s in range(args.senders):
                    t = threading.Thread(target=sender, daemon=True,
                                         args=(node.endpoint, history, s, args.senders, stop))
                    t.start()
                    threads.append(t)
                agent_thread = threading.Thread(target=run_agent, daemon=True,
                                                args=(node.endpoint, history, agent_stop))
                agent_thread.start()
            how = node.cut(rng.uniform(0.3, 1.5) if kind == "anytime" else None)
            cuts.append({"kind": kind, "torn": torn, "freeze": freeze or "SIGUSR2",
                         "placed_by": how, "recovery_s": round(recovery, 3)})
            log(f"cut {i + 1}/{args.cuts}: {kind}{' torn' if torn else ''} ({how}); "
                f"{len(history.sends)} sends so far")
        # The last boot: no more cuts; let the work finish.
        node.mount_fs(None, seed=0, torn=False)
        recovery = node.start()
        if recovery is None:
            failed_start.append(args.cuts)
        stop.set()
        for t in threads:
            t.join(15)
        report = {"cuts": cuts, "anomalies": {}, "figures": {}}
        if recovery is not None:
            report.update(check(node, history, args.quiesce))  # the agent still works
        agent_stop.set()
        if agent_thread:
            agent_thread.join(15)
        report["anomalies"]["failed_start"] = failed_start
        report["anomalies"]["failed_start_after_first_boot_cut"] = first_boot
        report["figures"]["first_boot_cuts"] = args.first_boot_cuts
        recoveries = [c["recovery_s"] for c in cuts]
        report["figures"]["cuts"] = len(cuts)
        report["figures"]["cuts_by_kind"] = dict(Counter(c["kind"] for c in cuts))
        report["figures"]["torn_cuts"] = sum(1 for c in cuts if c["torn"])
        report["figures"]["worst_recovery_s"] = max(recoveries) if recoveries else None
    except KeyboardInterrupt:
        interrupted = True
        report = {"interrupted": True}
    finally:
        stop.set()
        agent_stop.set()
        node.stop()
        shutil.rmtree(root, ignore_errors=True)
    if interrupted:
        log("interrupted: everything it made is removed")
        return 1
    text = json.dumps(report, indent=2, sort_keys=True)
    if args.report:
        Path(args.report).write_text(text + "\n")
    anomalies = {k: v for k, v in report["anomalies"].items() if v}
    figures = report["figures"]
    log(f"{figures.get('cuts')} cuts, {figures.get('sends')} sends "
        f"({figures.get('acknowledged')} acknowledged, {figures.get('indeterminate')} "
        f"indeterminate, {figures.get('failed')} failed), {figures.get('completed')} completed; "
        f"executions per intent {figures.get('executions_per_intent')}; worst recovery "
        f"{figures.get('worst_recovery_s')} s")
    if args.expect_loss:
        # The control run: acknowledged sends without fsync must not all survive, or the cuts
        # and the checker prove nothing.
        if report["anomalies"].get("lost") or report["anomalies"].get("failed_start"):
            log(f"as expected without fsync: {len(report['anomalies'].get('lost', []))} "
                f"acknowledged intents lost, {len(report['anomalies']['failed_start'])} "
                "store(s) unopenable: the cuts lose what was not flushed, and the checker sees it")
            return 0
        log("FAILED: without fsync nothing was lost: the cuts or the checker do not work")
        return 1
    if anomalies:
        log("ANOMALIES: " + json.dumps(anomalies)[:2000])
        return 1
    log("no anomalies: nothing acknowledged was lost, duplicated or changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
