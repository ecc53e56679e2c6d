"""The listing benchmark: CMF listing routes and the model card on 100,000 executions.

    python -m bench.listings [--requests 300] [--only debian|embedded] [--no-write]

For each PostgreSQL — Debian's (``make services-up``; a fresh database made for the run and
dropped after) and the embedded server's own (a fresh data dir) — it starts ``cmf-server up``
(``bench.run.Server``), seeds one pipeline with ten 10,000-execution pushes from the generator
(``bench.seed``: one stage, 100,000 executions) plus the captured example push (which holds a
Model), waits until the server is idle (the in-process lineage projection has caught up), then
times requests one at a time over loopback: executions-by-stage pages with a selective filter (a
different execution's uuid prefix each time), a broad one, none, an artifacts-by-stage page and
the model card. It reports p50/p95/p99 beside the reference's figures and the targets, prints a
markdown section and writes it into ``bench/RESULTS.md`` between the ``listings`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncpg
import httpx
import psutil

from bench.results import RESULTS, update_results
from bench.run import OUT_DIR, REPO_DIR, Server, machine
from bench.seed import seed
from cmf_testing.databases import create_database, drop_database, server_version, with_database
from cmf_testing.fixtures import CMF_FIXTURES

START, END = "<!-- listings:start -->", "<!-- listings:end -->"
DEBIAN_URL = os.environ.get("CMF_BENCH_DATABASE_URL", "postgresql://cmf:cmf@127.0.0.1:55432/cmf")
PIPELINE = "bench-listing"
STAGE = f"{PIPELINE}/Prepare"
PUSHES, EXECUTIONS = 10, 10_000
EXAMPLE = CMF_FIXTURES / "push_example.json"
SERVICES = ("METADATA", "LINEAGE", "ARTIFACTS", "GATEWAY")  # <SERVICE>_DATABASE_URL
WARMUP = 20
# Filters every generated execution matches, all different: parts (5 characters or more) of
# property names each execution carries. Each is asked once, warm-up included, so each is
# counted; more of them than the scenario asks for.
BROAD_FILTERS = sorted(
    {
        name[start : start + length]
        for name in ("learning_rate", "execution_type_name", "git_start_commit", "python_env")
        for length in range(5, len(name) + 1)
        for start in range(len(name) - length + 1)
    }
)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    request: Callable[[int], tuple[str, dict[str, Any]]]  # i -> (path, params)
    reference: str = "—"
    target_ms: float | None = None
    share: float = 1.0  # of --requests


@dataclass
class Timing:
    scenario: str
    samples: list[float] = field(default_factory=list)  # seconds
    errors: list[str] = field(default_factory=list)

    def quantile(self, q: float) -> float | None:
        if len(self.samples) < 2:
            return self.samples[0] if self.samples else None
        return statistics.quantiles(self.samples, n=100, method="inclusive")[round(q * 100) - 1]


@dataclass
class Run:
    database: str
    pg_version: str
    pushes_s: list[float]
    timings: dict[str, Timing]
    load_before: float
    executions_per_push: int


def _progress(message: str) -> None:
    print(f"[listings] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def debian_database() -> Iterator[str]:
    name = asyncio.run(create_database("cmf_bench_listings", admin_url=DEBIAN_URL))
    try:
        yield with_database(DEBIAN_URL, name)
    finally:
        asyncio.run(drop_database(name, DEBIAN_URL))


@contextlib.contextmanager
def server_on(database_url: str | None, data_root: str) -> Iterator[Server]:
    """``cmf-server up`` on ``database_url`` (every service's schema in it), or embedded."""
    data_dir = Path(tempfile.mkdtemp(prefix="cmf-bench-listings-", dir=data_root))
    data_dir.chmod(0o755)
    OUT_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC)
    log = OUT_DIR / f"listings-{'debian' if database_url else 'embedded'}-{stamp:%H%M%S}.log"
    saved = {f"{s}_DATABASE_URL": os.environ.get(f"{s}_DATABASE_URL") for s in SERVICES}
    for key in saved:
        if database_url is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = database_url
    server = Server(data_dir, log)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_until_idle(server: Server, quiet_s: float = 3.0, timeout_s: float = 900.0) -> None:
    """Until the server's processes (and an embedded postmaster's) stay under 3% CPU."""
    roots = [server.pid] + ([server.postmaster_pid()] if server.postmaster_pid() else [])
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        procs: list[psutil.Process] = []
        for pid in roots:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                procs += [root, *root.children(recursive=True)]
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.cpu_percent(None)
        time.sleep(1.0)
        busy = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                busy += p.cpu_percent(None)
        if busy < 3.0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet_s:
                return
        else:
            quiet_since = None
    _progress(f"the server was still busy after {timeout_s:.0f} s; measuring anyway")


def embedded_url(server: Server) -> str | None:
    """The embedded PostgreSQL's URI, read from its postmaster.pid (port and socket folder)."""
    try:
        lines = (server.data_dir / "postgres" / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    return f"postgresql://postgres:@/postgres?host={lines[4]}&port={lines[3]}"


async def _analyzed(url: str) -> bool:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT n_live_tup, n_mod_since_analyze,"
            "   coalesce(last_autoanalyze, last_analyze) IS NOT NULL AS analyzed"
            " FROM pg_stat_user_tables WHERE schemaname = 'metadata'"
            "   AND relname IN ('execution_search', 'stage_artifacts')"
        )
    finally:
        await conn.close()
    return len(rows) == 2 and all(
        r["analyzed"] and r["n_mod_since_analyze"] <= 0.2 * max(r["n_live_tup"], 1) for r in rows
    )


def wait_until_analyzed(url: str | None, timeout_s: float = 600.0) -> float:
    """Until autovacuum has analyzed the listing tables (the steady state after a big push:
    before any statistics the planner filters a whole stage instead of using the trigram
    index). Returns the seconds waited."""
    started = time.monotonic()
    if url is None:
        return 0.0
    while time.monotonic() - started < timeout_s:
        if asyncio.run(_analyzed(url)):
            return time.monotonic() - started
        time.sleep(2.0)
    _progress(f"autovacuum had not analyzed the listing tables after {timeout_s:.0f} s")
    return time.monotonic() - started


def _get(client: httpx.Client, path: str, params: dict[str, Any]) -> Any:
    response = client.get(path, params=params)
    response.raise_for_status()
    return response.json()


def uuid_prefixes(client: httpx.Client, count: int) -> list[str]:
    """The first uuid segment of ``count`` executions spread over the stage."""
    found: list[str] = []
    for page in (1, 25, 50, 75, 100):
        body = _get(
            client,
            f"/api/executions-by-stage/{PIPELINE}",
            {"stage_name": STAGE, "record_per_page": 1000, "active_page": page},
        )
        for item in body["items"]:
            for prop in item["execution_properties"]:
                if prop["name"] == "Execution_uuid":
                    found.append(prop["value"].split("-")[0])
    step = max(1, len(found) // count)
    return found[::step][:count]


def scenarios(prefixes: list[str], model_id: int | None) -> list[Scenario]:
    stage_page = f"/api/executions-by-stage/{PIPELINE}"
    found = [
        Scenario(
            "exec_selective",
            "`executions-by-stage` page, `filter_value` = an execution's uuid prefix (1 match)",
            lambda i: (
                stage_page,
                {
                    "stage_name": STAGE,
                    "record_per_page": 6,
                    "filter_value": prefixes[i % len(prefixes)],
                },
            ),
            "92 ms (1,000 executions)",
            50.0,
        ),
        Scenario(
            "exec_broad_new",
            "`executions-by-stage` page 1, `filter_value` = a new filter each request that every "
            "execution matches (a part of a property name all share): counted",
            lambda i: (
                stage_page,
                {
                    "stage_name": STAGE,
                    "record_per_page": 6,
                    "filter_value": BROAD_FILTERS[i % len(BROAD_FILTERS)],
                },
            ),
            "92 ms (1,000 executions)",
            None,
            0.2,
        ),
        Scenario(
            "exec_broad",
            "`executions-by-stage` pages 1–50 of `filter_value` = `learning_rate` (all 100,000 "
            "match): the UI paging through one filter, its total counted once per pipeline version",
            lambda i: (
                stage_page,
                {
                    "stage_name": STAGE,
                    "record_per_page": 6,
                    "active_page": 1 + i % 50,
                    "filter_value": "learning_rate",
                },
            ),
            "92 ms (1,000 executions)",
            50.0,
            0.5,
        ),
        Scenario(
            "exec_page",
            "`executions-by-stage` page, no filter (the UI's first view: 6, newest first)",
            lambda i: (
                stage_page,
                {"stage_name": STAGE, "record_per_page": 6, "active_page": 1 + i % 50},
            ),
            "92 ms (1,000 executions)",
            None,
            0.5,
        ),
        Scenario(
            "artifacts_page",
            "`artifacts-by-stage` page of Datasets by name (the Artifacts view's first page)",
            lambda i: (
                f"/api/artifacts-by-stage/{PIPELINE}",
                {
                    "stage_name": STAGE,
                    "artifact_type": "Dataset",
                    "record_per_page": 6,
                    "active_page": 1 + i % 50,
                },
            ),
            "39 ms (1,000 executions)",
            None,
            0.5,
        ),
    ]
    if model_id is not None:
        found.append(
            Scenario(
                "model_card",
                "`/model-card` of the example's Model (in the 100,000-execution store)",
                lambda i: ("/api/model-card", {"modelId": model_id}),
                "503 ms (1,000 executions)",
                50.0,
            )
        )
    return found


class Timed(Protocol):
    """A scenario as ``measure`` needs it: a name, its share of the requests (for
    ``time_scenarios``) and the i-th request."""

    @property
    def key(self) -> str: ...

    @property
    def share(self) -> float: ...

    @property
    def request(self) -> Callable[[int], tuple[str, dict[str, Any]]]: ...


def measure(client: httpx.Client, scenario: Timed, count: int) -> Timing:
    """``WARMUP`` requests, then ``count`` timed ones, one at a time."""
    timing = Timing(scenario.key)
    for i in range(WARMUP):
        path, params = scenario.request(i)
        client.get(path, params=params)
    for i in range(count):
        path, params = scenario.request(i)
        started = time.perf_counter()
        response = client.get(path, params=params)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            timing.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
            continue
        timing.samples.append(elapsed)
    return timing


def time_scenarios(
    client: httpx.Client, scenarios: Sequence[Timed], requests: int, say: Callable[[str], None]
) -> dict[str, Timing]:
    """Each scenario's share of ``requests`` (20 at least), timed by ``measure``."""
    timings = {}
    for scenario in scenarios:
        count = max(20, int(requests * scenario.share))
        timings[scenario.key] = t = measure(client, scenario, count)
        say(
            f"{scenario.key}: n={len(t.samples)} p50 {ms(t.quantile(0.5))}"
            f" p95 {ms(t.quantile(0.95))}" + (f" errors {t.errors[:2]}" if t.errors else "")
        )
    return timings


def postgres_version(server: Server, database_url: str | None) -> str:
    """The version of the PostgreSQL the server runs on: asked of Debian's, read from the
    embedded one's data dir."""
    if database_url is not None:
        return asyncio.run(server_version(database_url))
    with contextlib.suppress(OSError):
        return (server.data_dir / "postgres" / "PG_VERSION").read_text().strip()
    return "?"


def bench_one(
    database: str,
    database_url: str | None,
    requests: int,
    data_root: str,
    pushes: int = PUSHES,
    executions: int = EXECUTIONS,
) -> Run:
    """Seed a fresh server on one PostgreSQL and time every scenario on it."""
    with server_on(database_url, data_root) as server:
        _progress(f"{database}: server on {server.url}; seeding {pushes} x {executions:,}")
        seeded = seed(server.url, pushes=pushes, executions=executions, pipeline=PIPELINE)
        with httpx.Client(base_url=server.url, timeout=120) as client:
            client.post(
                "/api/mlmd_push",
                content=EXAMPLE.read_bytes(),
                headers={"Content-Type": "application/json"},
            ).raise_for_status()
            models = _get(
                client,
                "/api/artifacts-by-stage/Test-env",
                {"stage_name": "Test-env/Train", "artifact_type": "Model"},
            )
            model_id = models["items"][0]["artifact_id"] if models["items"] else None
            pg_version = postgres_version(server, database_url)
            _progress(f"{database}: waiting until the server is idle")
            wait_until_idle(server)
            waited = wait_until_analyzed(database_url or embedded_url(server))
            _progress(f"{database}: autovacuum analyzed the new rows ({waited:.0f} s waited)")
            load_before = os.getloadavg()[0]
            prefixes = uuid_prefixes(client, 200)
            timings = time_scenarios(
                client,
                scenarios(prefixes, model_id),
                requests,
                lambda message: _progress(f"{database}: {message}"),
            )
    return Run(database, pg_version, [p.seconds for p in seeded], timings, load_before, executions)


# What the listing tables cost a push: the same 10,000-execution pushes, interleaved, into
# three fresh Debian databases: as migrated, without the trigram index, without the triggers.
COST_VARIANTS = {
    "as migrated (search and stage tables, their indexes, the trigram index)": (),
    "without the trigram index": ("DROP INDEX execution_search_text",),
    "without the listing triggers (the store as it was before the listings)": (
        "DROP TRIGGER executions_search_on_insert ON executions",
        "DROP TRIGGER executions_search_on_update ON executions",
        "DROP TRIGGER events_stage_artifacts_on_insert ON events",
    ),
}


async def _push_cost(rounds: int, executions: int) -> dict[str, list[float]]:
    from pydantic import SecretStr

    from cmf_common.service import state_of
    from cmf_metadata.api.deps import MetadataState
    from cmf_metadata.app import create_app
    from cmf_metadata.settings import MetadataSettings
    from cmf_testing.generator import push_body_bytes

    names = {
        label: await create_database("cmf_bench_cost", admin_url=DEBIAN_URL)
        for label in COST_VARIANTS
    }
    stack = contextlib.AsyncExitStack()
    clients = {}
    try:
        for label, name in names.items():
            url = with_database(DEBIAN_URL, name)
            app = create_app(MetadataSettings(database_url=SecretStr(url), log_level="WARNING"))
            await stack.enter_async_context(app.router.lifespan_context(app))
            async with state_of(app, MetadataState).pool.acquire() as conn:
                for statement in COST_VARIANTS[label]:
                    await conn.execute(statement)
            transport = httpx.ASGITransport(app=app)
            clients[label] = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://metadata", timeout=900)
            )
        seconds: dict[str, list[float]] = {label: [] for label in COST_VARIANTS}
        for r in range(rounds):
            body = push_body_bytes(f"push-cost-{r}", executions, seed=r)
            for label, client in clients.items():
                started = time.perf_counter()
                response = await client.post(
                    "/api/mlmd_push", content=body, headers={"Content-Type": "application/json"}
                )
                seconds[label].append(time.perf_counter() - started)
                assert response.json() == {"status": "success"}, response.text
                _progress(f"push cost: {label}: {seconds[label][-1]:.1f} s")
        return seconds
    finally:
        await stack.aclose()
        for name in names.values():
            await drop_database(name, DEBIAN_URL)


def render_push_cost(costs: dict[str, list[float]], executions: int) -> list[str]:
    lines = [
        "",
        f"What the listing tables cost a push: {len(next(iter(costs.values())))} rounds of a "
        f"new {executions:,}-execution push into three fresh Debian databases, interleaved "
        "(the metadata app in-process, no HTTP server), median seconds per push:",
        "",
        "| store | median push | pushes |",
        "|---|---:|---|",
    ]
    for label, values in costs.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        lines.append(f"| {label} | {statistics.median(values):.1f} s | {shown} |")
    return lines


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    millis = seconds * 1000
    return f"{millis:.1f} ms" if millis < 100 else f"{millis:.0f} ms"


def against_target(timing: Timing, target_ms: float | None) -> tuple[str, str]:
    """The table's "target (p95)" and "within target" cells for ``timing``."""
    if target_ms is None:
        return "—", "—"
    p95 = timing.quantile(0.95)
    if p95 is None or timing.errors:
        return f"≤ {target_ms:g} ms", "**no** (errors)"
    return f"≤ {target_ms:g} ms", "yes" if p95 * 1000 <= target_ms else "**no**"


STORE_NAMES = {"debian": "Debian", "embedded": "embedded"}


class MeasuredRun(Protocol):
    """What the first line of a section says of each store's run."""

    @property
    def database(self) -> str: ...

    @property
    def pg_version(self) -> str: ...

    @property
    def load_before(self) -> float: ...


def measured_on(info: dict[str, Any], runs: Sequence[MeasuredRun]) -> str:
    """The machine, the commit and each store's PostgreSQL and load, as one sentence."""
    names = STORE_NAMES
    return (
        f"Measured {info['date']} on {info['cpu']}, {info['nproc']} CPUs (nproc), "
        f"{info['ram_bytes'] / 1024**3:.1f} GiB RAM, Linux {info['kernel']}; Python "
        f"{info['python']}; commit {info['commit']}. "
        + "; ".join(
            f"{names[r.database]} PostgreSQL {r.pg_version} (1-min load average "
            f"{r.load_before:.2f} when measuring began)"
            for r in runs
        )
        + "."
    )


class SeededRun(Protocol):
    """What the seeding sentence says of each store's run."""

    @property
    def database(self) -> str: ...

    @property
    def pushes_s(self) -> list[float]: ...


def seeding(runs: Sequence[SeededRun], executions: int) -> str:
    """How long the seed's pushes took on each store (no closing period)."""
    return "Seeding, the same run: " + "; ".join(
        f"{STORE_NAMES[r.database]}: median {statistics.median(r.pushes_s):.1f} s per "
        f"{executions:,}-execution push (slowest {max(r.pushes_s):.1f} s)"
        for r in runs
        if r.pushes_s
    )


def render(
    info: dict[str, Any],
    runs: list[Run],
    requests: int,
    costs: dict[str, list[float]] | None = None,
    cost_executions: int = EXECUTIONS,
) -> str:
    names = STORE_NAMES
    pushes, executions = len(runs[0].pushes_s), runs[0].executions_per_push
    lines = [
        measured_on(info, runs),
        "",
        f"Data: one pipeline, one stage, {pushes * executions:,} executions from {pushes} "
        f"pushes of {executions:,} (`bench/seed.py`: `cmf_testing/generator.py` seeds "
        f"0–{pushes - 1}; "
        "each execution reads the shared Environment and two Datasets and writes two), plus the "
        "captured example push (its Model is the one the model card is asked for). The server is "
        "`cmf-server up` on each PostgreSQL, the client httpx over loopback, one request at a "
        f"time, after {WARMUP} warm-up requests; up to {requests} requests per figure (fewer for "
        "the figures without a target), p50/p95/p99 of the whole request as the client saw it. "
        "Measuring starts once the server is idle and autovacuum has analyzed the new rows (the "
        "steady state): before the very first statistics of a fresh store, the planner filters "
        "the whole stage instead of using the trigram index (~300 ms for a selective filter "
        "over 100,000 executions, for up to a minute after the first big push).",
        "",
        "| request | PostgreSQL | n | p50 | p95 | p99 | reference | target (p95) | within target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for scenario in scenarios(["x"], 0):
        for run in runs:
            t = run.timings.get(scenario.key)
            if t is None:
                continue
            target, verdict = against_target(t, scenario.target_ms)
            lines.append(
                f"| {scenario.label} | {names[run.database]} | {len(t.samples)} "
                f"| {ms(t.quantile(0.5))} | {ms(t.quantile(0.95))} | {ms(t.quantile(0.99))} "
                f"| {scenario.reference} | {target} | {verdict} |"
            )
    lines += [
        "",
        seeding(runs, executions)
        + ". Each push now also writes, in its own transaction, `execution_search` (search "
        "text and sort key, with a trigram index), the stage counts and `stage_artifacts`.",
        "",
        "A broad filter's page is quick (the sort index is walked until the page is full), "
        "but its total has to test every execution of the stage (LIKE over the stored "
        "lower-case search text, a couple of µs each), so the first page of a new broad filter "
        "grows with the stage. That total is then kept in the process under the pipeline's "
        "version (its last outbox sequence, read in the page's snapshot; every push that "
        "changes the pipeline raises it), so the pages after it, and anyone asking the same "
        "again before the next push, are not counted again. A selective filter is answered "
        "from the trigram index whatever the stage holds, and an unfiltered page walks the "
        "sort index and reads the stage's kept count.",
    ]
    if costs:
        lines += render_push_cost(costs, cost_executions)
    return "\n".join(lines)


def add_store_arguments(parser: argparse.ArgumentParser, pushes: int, executions: int) -> None:
    """The options every benchmark over the two PostgreSQLs takes."""
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--only", choices=("debian", "embedded"), default=None)
    parser.add_argument(
        "--data-root", default=os.environ.get("CMF_BENCH_TMP", "/var/tmp"), help="data dirs"
    )
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    parser.add_argument("--pushes", type=int, default=pushes, help="(smaller for a trial run)")
    parser.add_argument("--executions", type=int, default=executions, help="per push")


R = TypeVar("R")


def on_each_store(
    args: argparse.Namespace, bench: Callable[[str, str | None, int, str, int, int], R]
) -> list[R]:
    """``bench`` on Debian's PostgreSQL (a fresh database), then on the embedded one."""
    runs = []
    if args.only in (None, "debian"):
        with debian_database() as url:
            runs.append(
                bench("debian", url, args.requests, args.data_root, args.pushes, args.executions)
            )
    if args.only in (None, "embedded"):
        runs.append(
            bench("embedded", None, args.requests, args.data_root, args.pushes, args.executions)
        )
    return runs


def write_raw(name: str, info: dict[str, Any], runs: Sequence[Any]) -> None:
    """Every sample of ``runs`` (dataclasses), beside the machine, in ``bench/out/<name>.json``."""
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / f"{name}.json").write_text(
        json.dumps({"machine": info, "runs": [asdict(r) for r in runs]}, indent=1)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listings", description=__doc__)
    add_store_arguments(parser, PUSHES, EXECUTIONS)
    parser.add_argument(
        "--push-cost", type=int, default=0, help="rounds of the push-cost comparison (0: none)"
    )
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC)
    runs = on_each_store(args, bench_one)
    info = machine()
    info["date"] = f"{stamp:%Y-%m-%d %H:%M} UTC"
    costs = asyncio.run(_push_cost(args.push_cost, args.executions)) if args.push_cost else None
    section = render(info, runs, args.requests, costs, args.executions)
    print(section)
    write_raw("listings", info, runs)
    if not args.no_write:
        update_results(START, END, "Listings", section)
        _progress(f"updated {RESULTS.relative_to(REPO_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
