"""The Grafana dashboards and the Prometheus rules (deploy/grafana/) name only metrics that
exist: every metric name in their PromQL is one the real ``/metrics`` of running processes
exposes (``cmf-server up``, and the relay and lineage workers for what only they record), a
recording rule of the rules file, or Prometheus's own ``up``.

The workers connect to Kafka as they start: run this under /tmp/cmf-shared-services.lock.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cmf_testing.databases import (
    ADMIN_URL,
    create_database,
    drop_database,
    run_blocking,
    with_database,
)
from cmf_testing.generator import push_body
from cmf_testing.kafka import KAFKA_BOOTSTRAP
from cmf_testing.network import free_port
from cmf_testing.servers import ServerProcess, start_server, start_worker

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RULES = sorted((GRAFANA / "alerts").glob("*.yml"))
# Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
_NAME = re.compile(r"(?<![A-Za-z0-9_:.$])[A-Za-z_:][A-Za-z0-9_:]*")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: its identifiers once strings, label
    matchers, ranges and grouping clauses are gone, less functions (a name before ``(``) and
    keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        if text[match.end() :].lstrip().startswith("(") or match.group(0) in KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def exposed_names(exposition: str) -> set[str]:
    """The sample names a Prometheus text exposition has or declares: a family declared with
    no sample yet (a labelled metric nothing recorded) counts with every sample name its type
    gives it."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "counter":
                base = name.removesuffix("_total")
                names |= {f"{base}_total", f"{base}_created"}
            elif kind == "histogram":
                names |= {f"{name}{s}" for s in ("_bucket", "_sum", "_count", "_created")}
            elif kind == "summary":
                names |= {f"{name}{s}" for s in ("_sum", "_count", "_created")}
        elif line and not line.startswith("#"):
            found = _NAME.match(line)
            if found:
                names.add(found.group(0))
    return names


def _dashboard_exprs() -> dict[str, list[str]]:
    exprs: dict[str, list[str]] = {}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        exprs[path.name] = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    return exprs


def _rules() -> list[dict[str, Any]]:
    return [
        r for path in RULES for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]
    ]


@pytest.fixture(scope="module")
def databases() -> Iterator[Callable[[], str]]:
    """Empty databases on the test PostgreSQL, for this module, dropped after it."""
    made: list[str] = []

    def make() -> str:
        made.append(run_blocking(create_database("cmf_test")))
        return with_database(ADMIN_URL, made[-1])

    yield make
    for name in made:
        run_blocking(drop_database(name))


@pytest.fixture(scope="module")
def scraped(
    tmp_path_factory: pytest.TempPathFactory, databases: Callable[[], str]
) -> Iterator[set[str]]:
    """The metric names of a running stack: the server (on a PostgreSQL database of its own,
    so the relay can read its outbox), a relay to Kafka and a lineage projector."""
    tmp = tmp_path_factory.mktemp("metrics")
    database = databases()
    topic = f"test.metrics.{uuid.uuid4().hex[:8]}"
    kafka = {"KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP, "EVENTS_TOPIC": topic}
    processes: list[ServerProcess] = []
    lineage_env = {
        **kafka,
        "LINEAGE_DATABASE_URL": databases(),
        "LINEAGE_CONSUMER_GROUP": f"metrics-{uuid.uuid4().hex[:6]}",
    }
    try:
        # The server and the projector start side by side; the relay reads the outbox the
        # server's migrations make, so it starts after the server.
        with ThreadPoolExecutor(2) as pool:
            starting = [
                pool.submit(start_server, tmp, free_port(), {"DATABASE_URL": database}),
                pool.submit(start_worker, "lineage", tmp, lineage_env),
            ]
            for future in starting:
                processes.append(future.result())
        server = processes[0]
        pushed = httpx.post(
            f"{server.base_url}/api/mlmd_push", json=push_body("Metrics", 2), timeout=60
        )
        assert pushed.json() == {"status": "success"}, pushed.text
        processes.append(start_worker("relay", tmp, {**kafka, "METADATA_DATABASE_URL": database}))
        names: set[str] = set()
        for process in processes:
            answer = httpx.get(f"{process.base_url}/metrics", timeout=10)
            assert answer.status_code == 200, answer.text
            names |= exposed_names(answer.text)
        yield names
    finally:
        for process in reversed(processes):
            process.stop()


def test_the_parser_finds_the_metric_names_of_an_expression() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(cmf_a_bucket{route=~"/x.*"}'
        "[$__rate_interval]))) / on (job) group_left() cmf_b + 1e3 * time() > bool 0"
        ' and cmf:c:5m offset 5m or vector(1) unless cmf_d{le="1"}'
    )
    assert promql_metric_names(expr) == {"cmf_a_bucket", "cmf_b", "cmf:c:5m", "cmf_d"}


def test_every_dashboard_and_rule_names_only_metrics_that_exist(scraped: set[str]) -> None:
    rules = _rules()
    recorded = {r["record"] for r in rules if "record" in r}
    known = scraped | recorded | PROMETHEUS_OWN
    unknown = {
        f"{where}: {name}"
        for where, exprs in {
            **_dashboard_exprs(),
            **{f"rule {r.get('alert') or r.get('record')}": [str(r["expr"])] for r in rules},
        }.items()
        for expr in exprs
        for name in promql_metric_names(expr)
        if name not in known
    }
    assert not unknown, f"names no process exposes: {sorted(unknown)}"


def test_the_dashboards_cover_every_concept_and_use_the_provisioned_datasource() -> None:
    assert {p.stem for p in DASHBOARDS} == {"overview", "ingest", "lineage", "artifacts"}
    sources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uids = {d["uid"] for d in sources["datasources"]}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] == f"cmf-{path.stem}"
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"
            assert panel["targets"], f"{path.name}: {panel['title']} has no query"
    names = {
        n for exprs in _dashboard_exprs().values() for e in exprs for n in promql_metric_names(e)
    }
    for concept in (
        "cmf_http_requests_total",  # RED per route
        "cmf_http_request_duration_seconds_bucket",
        "cmf_metadata_push_bytes_bucket",  # push sizes
        "cmf_metadata_push_seconds_bucket",  # merge time
        "cmf_outbox_backlog",
        "cmf_outbox_oldest_age_seconds",
        "cmf_consumer_lag",
        "cmf_consumer_lag_seconds",
        "cmf_lineage_projection_lag_seconds_bucket",  # commit -> visible
        "cmf_dlq_depth",
        "cmf_lineage_cache_lookups_total",
        "cmf_lineage_query_seconds_bucket",  # graph query latency
        "cmf_artifacts_bytes_received_total",
        "cmf_artifacts_bytes_sent_total",
        "cmf_loop_stalled",  # loop liveness
    ):
        assert concept in names, f"no dashboard shows {concept}"


def test_the_freshness_objective_has_its_multiwindow_burn_rate_alerts() -> None:
    rules = _rules()
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    fast = alerts["LineageFreshnessBudgetBurnFast"]["expr"]
    assert "cmf:freshness_burn_rate:1h > 14.4" in fast and "cmf:freshness_burn_rate:5m" in fast
    assert "cmf:freshness_burn_rate:6h > 6" in alerts["LineageFreshnessBudgetBurnMedium"]["expr"]
    ratio = {r["record"]: r["expr"] for r in rules if "record" in r}["cmf:freshness_error_ratio:1h"]
    assert 'le=~"1(\\\\.0)?"' in ratio, "good events are the ones visible within 1 s"
