"""The push/pull benchmark: our embedded server against the reference server's figures.

    python -m bench.run [--sizes 10,100,1000,10000] [--big 100000] [--repeat 3]

It starts ``cmf-server up`` (the embedded server, on a private PostgreSQL in a fresh data dir;
``DATABASE_URL`` is removed from its environment) on a free loopback port and, for each size and
each repeat, on a fresh pipeline: pushes a new client-shaped pipeline
(``cmf_testing.generator``), pushes the identical body again (``{"status":"exists"}``) and pulls
it (``POST /api/mlmd_pull``). The big push runs once. Memory is sampled with psutil: the
server's process tree, and its PostgreSQL (the postmaster and its backends) apart. Figures are
medians over the repeats; nothing is asserted, only reported: a markdown table on stdout and the
``push-pull`` section of ``bench/RESULTS.md``. The server's log and the raw figures go to
``bench/out/``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from bench.results import RESULTS, update_results
from cmf_testing.generator import push_body_bytes
from cmf_testing.network import free_port

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
START, END = "<!-- push-pull:start -->", "<!-- push-pull:end -->"
MIB = 1024 * 1024
EVENTS_PER_EXECUTION = 5  # Environment + 2 inputs + 2 outputs, as the generator sends them

# docs/reference-baseline.md: HewlettPackard/cmf a2149225, ml-metadata 1.15 on PostgreSQL 15, one
# uvicorn process, a 2-core machine, client-shaped chains of 2 inputs + 2 outputs, median of 3.
REF_PUSH = {10: 0.68, 100: 6.2, 1000: 116.0}
REF_REPUSH = {10: 0.062, 100: 0.534, 1000: 12.1}
REF_PULL = {10: 0.079, 100: 0.71, 1000: 7.0}
REF_PULL_BYTES_1000 = 3.1e6
REF_PEAK_RSS_MIB = 353

TARGET_PUSH = {1000: 2.0, 10000: 15.0}
TARGET_REPUSH = {1000: 0.3}
TARGET_PULL = {1000: 0.5}
TARGET_RSS_SIZE, TARGET_RSS_BYTES = 10000, 1024 * MIB


# --- the server -------------------------------------------------------------------------------


def _cmf_server() -> str:
    beside = Path(sys.executable).with_name("cmf-server")
    if beside.exists():
        return str(beside)
    found = shutil.which("cmf-server")
    if found is None:
        raise SystemExit("cmf-server not found: run `make install` and use the venv's python")
    return found


def spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``command`` in its own session (a Ctrl-C of the bench reaches it only through
    :func:`terminate`), its stdout and stderr written to ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(
    proc: subprocess.Popen[bytes], url: str, timeout_s: float, exited: Callable[[int], str]
) -> bool:
    """Whether ``url`` answered 200 within ``timeout_s``, polled every 0.2 s; if ``proc`` ends
    first, a RuntimeError saying ``exited(its return code)``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(exited(proc.returncode))
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        time.sleep(0.2)
    return False


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM and a minute to stop; then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Server:
    """``cmf-server up`` in a subprocess, logging JSON lines to ``log_path``."""

    def __init__(self, data_dir: Path, log_path: Path, binary: str | None = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.binary = binary  # another checkout's cmf-server; default: this venv's
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self, timeout_s: float = 180.0) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        command = [
            self.binary or _cmf_server(),
            "up",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-format",
            "json",
        ]
        self.proc = spawn(command, env, self.log_path)
        if not wait_ready(
            self.proc,
            f"{self.url}/livez",
            timeout_s,
            lambda code: f"cmf-server exited with {code}:\n{self.log_tail()}",
        ):
            raise RuntimeError(
                f"cmf-server gave no 200 on /livez in {timeout_s:g} s:\n{self.log_tail()}"
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def postmaster_pid(self) -> int | None:
        """The embedded PostgreSQL's postmaster (pg_ctl detaches it from the server's tree)."""
        try:
            first = (self.data_dir / "postgres" / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (OSError, ValueError):
            return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def new_log_records(self) -> list[dict[str, Any]]:
        """The JSON log records written since the last call."""
        with self.log_path.open("rb") as f:
            f.seek(self._log_offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._log_offset += end
        records = []
        for line in data[:end].splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn shuts down; the last handle stops PostgreSQL); then, only
        if still there, the server and the postmaster it started, each by its pid."""
        if self.proc is None:
            return
        postmaster = self.postmaster_pid()
        terminate(self.proc)
        if postmaster is not None and psutil.pid_exists(postmaster):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(postmaster)
                if "postgres" in proc.name():
                    try:
                        proc.wait(timeout=30)
                    except psutil.TimeoutExpired:
                        proc.terminate()
                        proc.wait(timeout=30)


# --- memory -----------------------------------------------------------------------------------


class MemorySampler(threading.Thread):
    """Peak RSS of the server's process tree and, apart, of its PostgreSQL (the postmaster and
    its children: a sum of RSS, which counts shared buffers once per backend, and a sum of PSS,
    which counts them once). The server's own peak also comes from the kernel's VmHWM, reset
    before each measurement, so a spike between two samples is not missed."""

    def __init__(self, server: Server, interval_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._peaks = {"server": 0, "pg_rss": 0, "pg_pss": 0}
        self._pg_procs: list[psutil.Process] = []
        self._tree: list[psutil.Process] = []
        self._refreshed = 0.0

    def _refresh(self) -> None:
        postmaster = self.server.postmaster_pid()
        pg: list[psutil.Process] = []
        if postmaster is not None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(postmaster)
                pg = [root, *root.children(recursive=True)]
        tree: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.server.pid)
            tree = [root, *root.children(recursive=True)]
        pg_pids = {p.pid for p in pg}
        self._pg_procs = pg
        self._tree = [p for p in tree if p.pid not in pg_pids]
        self._refreshed = time.monotonic()

    def sample(self) -> None:
        if time.monotonic() - self._refreshed > 0.5:
            self._refresh()
        server = pg_rss = pg_pss = 0
        for p in self._tree:
            with contextlib.suppress(psutil.Error):
                server += p.memory_info().rss
        for p in self._pg_procs:
            with contextlib.suppress(psutil.Error):
                full = p.memory_full_info()
                pg_rss += full.rss
                pg_pss += full.pss
        with self._lock:
            self._peaks["server"] = max(self._peaks["server"], server)
            self._peaks["pg_rss"] = max(self._peaks["pg_rss"], pg_rss)
            self._peaks["pg_pss"] = max(self._peaks["pg_pss"], pg_pss)

    def run(self) -> None:
        while not self._halt.is_set():
            with contextlib.suppress(Exception):
                self.sample()
            self._halt.wait(self.interval_s)

    def halt(self) -> None:
        self._halt.set()

    def reset(self) -> None:
        with self._lock:
            self._peaks = dict.fromkeys(self._peaks, 0)
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.server.pid}/clear_refs").write_text("5")  # resets VmHWM
        self.sample()

    def peaks(self) -> dict[str, int]:
        self.sample()
        with self._lock:
            peaks = dict(self._peaks)
        peaks["server"] = max(peaks["server"], _vm_hwm(self.server.pid))
        return peaks


def _vm_hwm(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Run:
    size: int
    repeat: int
    pipeline: str
    payload_bytes: int = 0
    push_s: float | None = None
    push_server_ms: float | None = None
    repush_s: float | None = None
    repush_server_ms: float | None = None
    pull_s: float | None = None
    pull_bytes: int | None = None
    pull_executions: int | None = None
    server_rss: int = 0
    pg_rss: int = 0
    pg_pss: int = 0
    push_server_rss: int = 0  # the peaks during the new push alone
    push_pg_rss: int = 0
    push_pg_pss: int = 0
    errors: list[str] = field(default_factory=list)


def _post(client: httpx.Client, path: str, content: bytes) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    return time.perf_counter() - started, response


def _status(response: httpx.Response) -> str | None:
    with contextlib.suppress(ValueError, AttributeError):
        status = response.json().get("status")
        return status if isinstance(status, str) else None
    return None


def _merged_ms(server: Server, pipeline: str) -> float | None:
    for record in reversed(server.new_log_records()):
        if record.get("event") == "push.merged" and record.get("pipeline") == pipeline:
            value = record.get("duration_ms")
            return float(value) if isinstance(value, int | float) else None
    return None


def _count_executions(body: bytes) -> int:
    document = orjson.loads(body)
    return sum(
        len(stage.get("executions") or [])
        for pipeline in document.get("Pipeline") or []
        for stage in pipeline.get("stages") or []
    )


def measure(
    client: httpx.Client,
    server: Server,
    sampler: MemorySampler,
    size: int,
    repeat: int,
    seed: int,
    stages: int,
    ops: tuple[str, ...],
) -> Run:
    pipeline = f"bench-{size}-r{repeat}" if repeat >= 0 else "bench-warmup"
    run = Run(size, repeat, pipeline)
    body = push_body_bytes(pipeline, size, stages=stages, seed=seed + repeat)
    run.payload_bytes = len(body)
    gc.collect()
    server.new_log_records()
    sampler.reset()
    try:
        run.push_s, response = _post(client, "/api/mlmd_push", body)
        run.push_server_ms = _merged_ms(server, pipeline)
        peaks = sampler.peaks()
        run.push_server_rss, run.push_pg_rss = peaks["server"], peaks["pg_rss"]
        run.push_pg_pss = peaks["pg_pss"]
        if response.status_code != 200 or _status(response) != "success":
            run.errors.append(f"push: HTTP {response.status_code} {response.text[:300]!r}")
            return run
        if "repush" in ops:
            run.repush_s, response = _post(client, "/api/mlmd_push", body)
            run.repush_server_ms = _merged_ms(server, pipeline)
            if response.status_code != 200 or _status(response) != "exists":
                run.errors.append(f"re-push: HTTP {response.status_code} {response.text[:300]!r}")
        del body
        gc.collect()
        if "pull" in ops:
            request = orjson.dumps({"pipeline_name": pipeline})
            run.pull_s, response = _post(client, "/api/mlmd_pull", request)
            if response.status_code != 200:
                run.errors.append(f"pull: HTTP {response.status_code} {response.text[:300]!r}")
            else:
                run.pull_bytes = len(response.content)
                run.pull_executions = _count_executions(response.content)
                if run.pull_executions != size:
                    run.errors.append(f"pull: {run.pull_executions} executions, pushed {size}")
    except httpx.HTTPError as exc:
        run.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        if not server.alive():
            run.errors.append(f"the server exited; its log ends:\n{server.log_tail()}")
    finally:
        peaks = sampler.peaks()
        run.server_rss, run.pg_rss, run.pg_pss = peaks["server"], peaks["pg_rss"], peaks["pg_pss"]
    return run


# --- reporting --------------------------------------------------------------------------------


def _median(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[Run]) -> dict[str, Any]:
    ok = [r for r in runs if not r.errors] or runs
    return {
        "size": runs[0].size,
        "runs": len(runs),
        "failed": sum(1 for r in runs if r.errors),
        "payload_bytes": _median([r.payload_bytes for r in ok]),
        "push_s": _median([r.push_s for r in ok]),
        "push_server_ms": _median([r.push_server_ms for r in ok]),
        "repush_s": _median([r.repush_s for r in ok]),
        "repush_server_ms": _median([r.repush_server_ms for r in ok]),
        "pull_s": _median([r.pull_s for r in ok]),
        "pull_bytes": _median([r.pull_bytes for r in ok]),
        "server_rss": _median([r.server_rss for r in ok]),
        "pg_rss": _median([r.pg_rss for r in ok]),
        "pg_pss": _median([r.pg_pss for r in ok]),
        "push_server_rss": _median([r.push_server_rss for r in ok]),
        "push_pg_rss": _median([r.push_pg_rss for r in ok]),
        "push_pg_pss": _median([r.push_pg_pss for r in ok]),
    }


def _secs(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.01 else f"{value * 1000:.1f} ms"
    if value < 10:
        return f"{value:.2f} s"
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


def _limit(limit: float | None) -> str:
    return "—" if limit is None else f"≤ {limit:g} s"


def _size(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1e6:
        return f"{value / 1e6:.1f} MB"
    return f"{value / 1e3:.0f} kB"


def _mib(value: float | None) -> str:
    return "—" if not value else f"{value / MIB:,.0f} MiB"


def _n(size: int) -> str:
    return f"{size:,}"


def _verdict(value: float | None, limit: float | None, state: str = "ok") -> str:
    """``state``: "ok", "failed" (every run failed) or "not run"."""
    if limit is None:
        return "—"
    if state == "not run":
        return "not run"
    if value is None or state == "failed":
        return "**no** (failed)"
    return "yes" if value <= limit else "**no**"


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:
        ncpu = os.cpu_count() or 0
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "-C", str(REPO_DIR), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return {
        "cpu": model,
        "nproc": ncpu,
        "ram_bytes": psutil.virtual_memory().total,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit,
    }


def render(
    info: dict[str, Any],
    summaries: list[dict[str, Any]],
    big: dict[str, Any] | None,
    failures: list[str],
    repeat: int,
) -> str:
    by_size = {s["size"]: s for s in summaries}
    lines = [
        f"Measured {info['date']} on {info['cpu']}, {info['nproc']} CPUs (nproc), "
        f"{info['ram_bytes'] / 1024**3:.1f} GiB RAM, Linux {info['kernel']}; Python "
        f"{info['python']}; commit {info['commit']}. The embedded server (`cmf-server up`, "
        f"PostgreSQL {info['pg_version']} from pgserver, in a fresh data dir) and the client "
        "(httpx) on one machine, over loopback. Payload: one stage, a chain of N executions, "
        "each with the shared Environment + 2 Datasets in and 2 Datasets out "
        "(`cmf_testing/generator.py`).",
        "",
        f"Median of {repeat} runs, each on a fresh pipeline"
        + (f"; the {_n(big['size'])}-execution pipeline was measured once." if big else "."),
        "`server merge` is the server's own `push.merged` duration (payload validation, plan "
        "and the database transaction); the rest of `new push` is sending, receiving and "
        "parsing the body. "
        "`events/s` counts the 5 events of each execution as sent (the reference's 34 events/s "
        "for 1,000 executions counts 4). "
        "RSS is the peak during the run (pushes and pull): `server` is the cmf-server process "
        "(sampled every 50 ms, and its kernel VmHWM); `postgres` is the sum over the postmaster "
        "and its backends (RSS, and PSS which counts shared buffers once).",
        "",
        "| executions | payload | new push | server merge | events/s | re-push (`exists`) "
        "| pull | pull body | server RSS | postgres RSS (PSS) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [*summaries, *([big] if big else [])]
    for s in rows:
        events = (s["size"] * EVENTS_PER_EXECUTION / s["push_s"]) if s["push_s"] else None
        merge = s["push_server_ms"] / 1000 if s["push_server_ms"] is not None else None
        failed_runs = f" ({s['failed']} of {s['runs']} failed)" if s["failed"] else ""
        lines.append(
            f"| {_n(s['size'])}{failed_runs} | {_size(s['payload_bytes'])} | {_secs(s['push_s'])} "
            f"| {_secs(merge)} | {f'{events:,.0f}' if events else '—'} "
            f"| {_secs(s['repush_s'])} | {_secs(s['pull_s'])} | {_size(s['pull_bytes'])} "
            f"| {_mib(s['server_rss'])} | {_mib(s['pg_rss'])} ({_mib(s['pg_pss'])}) |"
        )

    lines += [
        "",
        "Against the reference server (`docs/reference-baseline.md`: HewlettPackard/cmf "
        "a2149225 on PostgreSQL 15, a 2-core machine, median of 3) and our targets:",
        "",
        "| figure | ours | reference | target | within target |",
        "|---|---:|---:|---:|---|",
    ]

    def row(label: str, ours: str, ref: str, target: str, verdict: str) -> None:
        lines.append(f"| {label} | {ours} | {ref} | {target} | {verdict} |")

    def get(size: int, key: str) -> Any:
        return by_size[size][key] if size in by_size else None

    def failed(size: int) -> str:
        if size not in by_size:
            return "not run"
        return "failed" if by_size[size]["failed"] == by_size[size]["runs"] else "ok"

    for size in sorted({*REF_PUSH, *TARGET_PUSH, *by_size}):
        if size not in by_size and size not in TARGET_PUSH:
            continue
        limit = TARGET_PUSH.get(size)
        row(
            f"new push, {_n(size)} executions",
            _secs(get(size, "push_s")),
            _secs(REF_PUSH.get(size)),
            _limit(limit),
            _verdict(get(size, "push_s"), limit, failed(size)),
        )
    rss = get(TARGET_RSS_SIZE, "server_rss")
    row(
        f"server RSS, {_n(TARGET_RSS_SIZE)} executions",
        _mib(rss),
        f"{REF_PEAK_RSS_MIB} MiB peak (1,000-scale runs)",
        "≤ 1 GiB",
        _verdict(rss, TARGET_RSS_BYTES, failed(TARGET_RSS_SIZE)),
    )
    row(
        f"postgres RSS (PSS), {_n(TARGET_RSS_SIZE)} executions",
        f"{_mib(get(TARGET_RSS_SIZE, 'pg_rss'))} ({_mib(get(TARGET_RSS_SIZE, 'pg_pss'))})",
        "—",
        "—",
        "—",
    )
    for size in sorted({*REF_REPUSH, *by_size}):
        if size not in by_size:
            continue
        limit = TARGET_REPUSH.get(size)
        row(
            f"re-push (`exists`), {_n(size)} executions",
            _secs(get(size, "repush_s")),
            _secs(REF_REPUSH.get(size)),
            _limit(limit),
            _verdict(get(size, "repush_s"), limit, failed(size)),
        )
    for size in sorted({*REF_PULL, *by_size}):
        if size not in by_size:
            continue
        limit = TARGET_PULL.get(size)
        ref = _secs(REF_PULL.get(size))
        if size == 1000:
            ref += f" ({_size(REF_PULL_BYTES_1000)})"
        row(
            f"pull, {_n(size)} executions",
            f"{_secs(get(size, 'pull_s'))} ({_size(get(size, 'pull_bytes'))})",
            ref,
            _limit(limit),
            _verdict(get(size, "pull_s"), limit, failed(size)),
        )
    if big:
        ok = not big["failed"]
        row(
            f"new push, {_n(big['size'])} executions (once)",
            f"{_secs(big['push_s'])}; peak RSS during the push: server "
            f"{_mib(big['push_server_rss'])}, postgres {_mib(big['push_pg_rss'])} "
            f"({_mib(big['push_pg_pss'])})",
            "—",
            "succeeds",
            "yes" if ok else "**no** (failed)",
        )
    if failures:
        lines += ["", "Failures:", ""]
        lines += [f"* {f}" for f in failures]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _describe(run: Run) -> str:
    parts = [
        f"{_n(run.size)} exec r{run.repeat}: push {_secs(run.push_s)} "
        f"[server {_mib(run.push_server_rss)}]"
    ]
    if run.push_server_ms is not None:
        parts.append(f"(merge {_secs(run.push_server_ms / 1000)})")
    parts.append(
        f"re-push {_secs(run.repush_s)}, pull {_secs(run.pull_s)} "
        f"({_size(run.pull_bytes)}), server {_mib(run.server_rss)}, postgres "
        f"{_mib(run.pg_rss)} ({_mib(run.pg_pss)})"
    )
    if run.errors:
        parts.append(f"ERRORS: {run.errors}")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", default="10,100,1000,10000", help="execution counts, comma separated"
    )
    parser.add_argument(
        "--big",
        type=int,
        default=100_000,
        help="the execution count pushed once at the end (0: none)",
    )
    parser.add_argument(
        "--big-ops",
        default="push,pull",
        help="what the big run does: push, and optionally repush and pull",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stages", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-root",
        default=os.environ.get("CMF_BENCH_TMP", "/var/tmp"),
        help="where the fresh data dir is made (a disk, not a tmpfs)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the data dir")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    big_ops = tuple(o.strip() for o in args.big_ops.split(",") if o.strip())

    OUT_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC)
    data_dir = Path(tempfile.mkdtemp(prefix="cmf-bench-", dir=args.data_root))
    data_dir.chmod(0o755)  # as root, PostgreSQL runs as a system user that must enter it
    log_path = OUT_DIR / f"server-{stamp:%Y%m%dT%H%M%S}.log"
    server = Server(data_dir, log_path)
    runs: list[Run] = []
    big_run: Run | None = None
    pg_version = "(embedded)"
    started = time.monotonic()
    try:
        _progress(f"starting {_cmf_server()} (data {data_dir}, log {log_path})")
        server.start()
        with contextlib.suppress(OSError):
            pg_version = (data_dir / "postgres" / "PG_VERSION").read_text().strip()
        sampler = MemorySampler(server)
        sampler.start()
        _progress(
            f"server up on {server.url} (pid {server.pid}, postmaster {server.postmaster_pid()})"
        )
        timeout = httpx.Timeout(3600.0, connect=10.0)
        with httpx.Client(base_url=server.url, timeout=timeout) as client:
            # Warm-up, not recorded: the first requests pay for imports, caches, connections.
            warm = measure(
                client, server, sampler, 10, -1, args.seed, args.stages, ("repush", "pull")
            )
            if warm.errors:
                _progress(f"warm-up: {warm.errors}")
            for size in sizes:
                for repeat in range(args.repeat):
                    run = measure(
                        client,
                        server,
                        sampler,
                        size,
                        repeat,
                        args.seed,
                        args.stages,
                        ("repush", "pull"),
                    )
                    runs.append(run)
                    _progress(_describe(run))
                    if not server.alive():
                        break
                if not server.alive():
                    break
            if args.big and server.alive():
                big_run = measure(
                    client, server, sampler, args.big, 0, args.seed, args.stages, big_ops
                )
                _progress(_describe(big_run))
        sampler.halt()
    finally:
        server.stop()
        if args.keep_data:
            _progress(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)

    info = machine()
    info["date"] = f"{stamp:%Y-%m-%d %H:%M} UTC"
    info["pg_version"] = pg_version
    summaries = [
        summarise([r for r in runs if r.size == size])
        for size in sizes
        if any(r.size == size for r in runs)
    ]
    big = summarise([big_run]) if big_run else None
    failures = [
        f"{_n(r.size)} executions, run {r.repeat}: {e}"
        for r in [*runs, *([big_run] if big_run else [])]
        for e in r.errors
    ]
    section = render(info, summaries, big, failures, args.repeat)
    print(section)
    (OUT_DIR / "push-pull.json").write_text(
        json.dumps(
            {
                "machine": info,
                "runs": [asdict(r) for r in [*runs, *([big_run] if big_run else [])]],
                "summaries": summaries,
                "big": big,
            },
            indent=1,
        )
    )
    if not args.no_write:
        update_results(START, END, "Push and pull", section)
        _progress(f"updated {RESULTS.relative_to(REPO_DIR)}")
    _progress(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
