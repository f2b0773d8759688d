"""The pinned multi-instance runner (FastFormers section 6.2, Table 2).

N worker processes × T intra-op threads. Each worker is pinned (``sched_setaffinity``) to
its own physical cores before it imports a tensor library, loads its engine, warms up,
then waits for the parent's request; each timed pass starts on a common barrier, and the
parent takes the wall time from the first start to the last finish. A ``Pool`` keeps its
workers for several requests (the re-timing rounds); ``run_pool`` is one request. Batches
are formed once in the parent and dealt to instances balanced by padded tokens, so the
merged predictions are exactly what a single instance would give.

A worker that raises reports its error; one that dies is noticed by its exit code; either
way the run fails with that message instead of hanging. Each worker's batches travel in a
file, not in its spawn arguments: those go down a pipe the parent blocks on, so a child that
died while starting (a script without a ``__main__`` guard) used to hang the parent forever.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import queue
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from autotune.engines import EngineSpec, load
from compress.errors import UserInputError

if TYPE_CHECKING:  # workers get plain feature dicts: importing compress.batching costs seconds per worker
    from compress.batching import Batch

log = logging.getLogger(__name__)

WARMUP_BATCHES = 2
# what exit code 1 before any report usually means: Python refused to bootstrap the spawned child
_START_HINT = ("; its stderr says why (a script that starts the pool needs an "
               "`if __name__ == \"__main__\":` guard, since workers are spawned)")


class WorkerError(RuntimeError):
    """A worker failed; the message is the worker's own error."""


@dataclass(frozen=True)
class PoolResult:
    logits: np.ndarray  # merged, original row order
    walls: tuple[float, ...]  # per repeat: first start -> last finish (s)
    latencies: tuple[float, ...]  # per batch, all instances, all repeats (s)
    peak_rss_mb: tuple[float, ...]  # per instance
    cpu_seconds: tuple[float, ...]  # per repeat: CPU time of all instances in the timed region
    core_sets: tuple[tuple[int, ...] | None, ...]  # per instance as given, None = not pinned
    cpus_allowed: tuple[str, ...]  # per instance, Cpus_allowed_list read by the worker at the end of its run
    pids: tuple[int, ...]


def assign_cores(cores: Sequence[Sequence[int]], instances: int, threads: int | None,
                 allow_oversubscribe: bool = False) -> list[tuple[int, ...] | None]:
    """Logical CPUs for each instance: ``threads`` whole physical cores each, or None (no pinning)."""
    if threads is None:
        if instances > 1 and not allow_oversubscribe:
            raise UserInputError(f"{instances} instances without thread control would share all cores; "
                                 f"give --threads or allow over-subscription")
        return [None] * instances
    need, have = instances * threads, len(cores)
    if need > have and not allow_oversubscribe:
        raise UserInputError(f"{instances} instances x {threads} threads = {need} cores, but only {have} physical "
                             f"cores are available; lower them or allow over-subscription")
    out = []
    for i in range(instances):
        picked = [cores[(i * threads + t) % have] for t in range(threads)]
        out.append(tuple(sorted({c for core in picked for c in core})))
    return out


def shard(batches: Sequence[Batch], instances: int) -> list[list[int]]:
    """Batch positions per instance, greedy by padded tokens (longest first onto the lightest)."""
    cost = [b.features["input_ids"].size for b in batches]
    load = [0] * instances
    out: list[list[int]] = [[] for _ in range(instances)]
    for i in sorted(range(len(batches)), key=lambda i: -cost[i]):
        k = min(range(instances), key=lambda k: (load[k], k))
        out[k].append(i)
        load[k] += cost[i]
    return [sorted(s) for s in out]


def _worker(rank: int, spec: EngineSpec, threads: int | None, cpus: tuple[int, ...] | None,
            batch_file: str, commands, barrier, results) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    try:
        with open(batch_file, "rb") as fh:
            batches: list[dict[str, np.ndarray]] = pickle.load(fh)
        if cpus is not None:
            os.sched_setaffinity(0, cpus)  # before any thread pool exists
            os.environ["OMP_NUM_THREADS"] = str(threads)
        engine = load(spec, threads)
        for b in batches[:WARMUP_BATCHES]:
            engine.predict(b)
        results.put(("ready", rank, -1))
        while (repeats := commands.get()) is not None:  # idle here, off the cores, between runs
            for r in range(repeats):
                barrier.wait(timeout=600)
                cpu0, start = time.process_time(), time.perf_counter()
                outs, lat = [], []
                for b in batches:
                    t0 = time.perf_counter()
                    outs.append(engine.predict(b))
                    lat.append(time.perf_counter() - t0)
                end = time.perf_counter()
                cpu_s = time.process_time() - cpu0
                peak = _status("VmHWM") / 1024  # kB; not ru_maxrss, which keeps the parent's peak across exec
                results.put(("ok", rank, r, start, end, lat, outs if r == repeats - 1 else None, peak, cpu_s,
                             _status("Cpus_allowed_list")))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        results.put(("error", rank, f"instance {rank} (pid {os.getpid()}): {last}"))


def _status(key: str):
    """A field of /proc/<pid>/status: an int for sizes (kB), else the text."""
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                value = line.split(":", 1)[1].strip()
                return int(value.split()[0]) if value.endswith("kB") else value
    return 0 if key.startswith("Vm") else ""


class Pool:
    """Pinned workers started once (spawn, imports, engine load, warm-up), then timed passes on
    request: interleaved re-timing rounds ask the same workers again rather than paying the
    start-up every round (seconds a timing; a PyTorch worker imports torch). Between runs the
    workers wait on their command queues, off the cores."""

    def __init__(self, spec: EngineSpec, batches: Sequence[Batch], instances: int, threads: int | None,
                 cores: Sequence[Sequence[int]], allow_oversubscribe: bool = False, timeout_s: float = 1800.0,
                 start_method: str = "spawn") -> None:
        self.cpu_sets = assign_cores(cores, instances, threads, allow_oversubscribe)
        self.shards = shard(batches, instances)
        self._batches, self._spec, self._threads, self._timeout_s = batches, spec, threads, timeout_s
        self._ctx = mp.get_context(start_method)
        self._results = self._ctx.Queue()
        self._barrier = self._ctx.Barrier(instances)
        self._commands = [self._ctx.Queue() for _ in range(instances)]
        self._procs: list = []
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._closed = False

    def __enter__(self) -> "Pool":
        self._tmp = tempfile.TemporaryDirectory(prefix="pool-")
        try:
            files = [_write_shard(Path(self._tmp.name) / f"instance-{k}.pkl",
                                  [self._batches[i].features for i in s]) for k, s in enumerate(self.shards)]
            self._procs = [self._ctx.Process(target=_worker, name=f"instance-{k}", daemon=True,
                                             args=(k, self._spec, self._threads, self.cpu_sets[k], files[k],
                                                   self._commands[k], self._barrier, self._results))
                           for k in range(len(self.shards))]
            for p in self._procs:
                p.start()
            self._gather(per_rank=1)  # every worker loaded and warmed up
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, repeats: int = 1) -> PoolResult:
        """``repeats`` timed passes over every shard, the instances started together each pass."""
        if not self._procs:
            raise RuntimeError("the pool is closed" if self._closed else
                               "the pool is not started: open it in a `with` block (a Timing too) before running it")
        for q in self._commands:
            q.put(repeats)
        try:
            got = self._gather(per_rank=repeats)
        except BaseException:
            self.close()  # a worker that failed mid-pass leaves the others at the barrier: no second run
            raise
        return _merge(self._batches, self.shards, got, len(self.shards), repeats, self.cpu_sets,
                      tuple(p.pid for p in self._procs))

    def close(self) -> None:
        """Stops and reaps the workers, whatever state they are in; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        for q in self._commands:
            q.put(None)
        self._barrier.abort()  # a worker left waiting for a dead one's pass
        for p in self._procs:
            if p.pid is None:  # never started
                continue
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
        self._procs = []
        for q in self._commands:  # the parent's feeder threads, one per queue it wrote to
            q.close()
            q.join_thread()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _gather(self, per_rank: int) -> dict[tuple[int, int], tuple]:
        deadline = time.monotonic() + self._timeout_s
        got: dict[tuple[int, int], tuple] = {}
        while len(got) < len(self._procs) * per_rank:
            try:
                msg = self._results.get(timeout=0.5)
            except queue.Empty:
                _check_alive(self._procs, got, per_rank, deadline)
                continue
            if msg[0] == "error":
                raise WorkerError(msg[2])
            got[(msg[1], msg[2])] = msg[3:]
        return got


def run_pool(spec: EngineSpec, batches: Sequence[Batch], instances: int, threads: int | None,
             cores: Sequence[Sequence[int]], repeats: int = 1, allow_oversubscribe: bool = False,
             timeout_s: float = 1800.0, start_method: str = "spawn") -> PoolResult:
    """Run ``batches`` on ``instances`` pinned workers, ``repeats`` timed passes each."""
    with Pool(spec, batches, instances, threads, cores, allow_oversubscribe, timeout_s, start_method) as pool:
        return pool.run(repeats)


def _write_shard(path: Path, features: list[dict[str, np.ndarray]]) -> str:
    with open(path, "wb") as fh:
        pickle.dump(features, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return str(path)


def _check_alive(procs, got, per_rank: int, deadline: float) -> None:
    for k, p in enumerate(procs):
        done = sum(1 for (rank, _) in got if rank == k) == per_rank
        if not p.is_alive() and not done:
            raise WorkerError(f"instance {k} (pid {p.pid}) died with exit code {p.exitcode} before reporting"
                              f"{_START_HINT if p.exitcode == 1 else ''}")
    if time.monotonic() > deadline:
        raise WorkerError("timed out waiting for the instances to finish")


def _merge(batches, shards, got, instances, repeats, cpu_sets, pids) -> PoolResult:
    from compress.batching import restore_order  # seconds of imports: not in the spawned workers (see above)

    walls, cpu, lat = [], [], []
    for r in range(repeats):
        runs = [got[(k, r)] for k in range(instances)]
        walls.append(max(x[1] for x in runs) - min(x[0] for x in runs))
        cpu.append(sum(x[5] for x in runs))
        for x in runs:
            lat.extend(x[2])
    outputs: list[np.ndarray | None] = [None] * len(batches)
    for k in range(instances):
        for i, out in zip(shards[k], got[(k, repeats - 1)][3]):
            outputs[i] = out
    peak = tuple(max(got[(k, r)][4] for r in range(repeats)) for k in range(instances))
    allowed = tuple(got[(k, repeats - 1)][6] for k in range(instances))
    logits = restore_order(batches, outputs)
    return PoolResult(logits, tuple(walls), tuple(lat), peak, tuple(cpu), tuple(cpu_sets), allowed, pids)
