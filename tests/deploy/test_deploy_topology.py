"""Every CMF process in docker-compose.yml, the rendered Kubernetes overlays and the images is
the one cmf_server.topology lists (the list the distributed-mode test starts its processes
from): its command and port, the settings it is given (only those it reads, every one it
requires, secrets only as files or by reference), its probes; the same for the programs beside
them (TensorBoard); and the code really serves the topology's /livez, /readyz and /metrics on
each, and the gateway TensorBoard under /tensorboard/ as compose and Kubernetes wire them."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy_paths import DEPLOY, OVERLAYS, load_yaml
from deployment import (
    COMPOSE,
    DOCKER,
    SERVICE_IMAGES,
    Objects,
    dockerfiles,
    exec_form,
    of_kind,
    stages,
)

from cmf_server import cli, topology
from cmf_testing.network import free_port
from cmf_testing.servers import start_cmf_process
from cmf_testing.tensorboard import scalar_log, served_scalars

# Read by every process outside its settings class (cmf_common.tracing, cmf_common.settings).
EXTRA_ENV = {
    "SECRETS_DIR",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SERVICE_NAME",
}
# The image each process runs in (a worker in its service's image).
IMAGE_OF = {
    topology.GATEWAY: "gateway",
    topology.METADATA: "metadata",
    topology.LINEAGE: "lineage",
    topology.ARTIFACTS: "artifacts",
    topology.UI: "ui",
    topology.RELAY: "metadata",
    topology.PROJECTOR: "lineage",
    topology.ARTIFACTS_RELAY: "artifacts",
    topology.TENSORBOARD: "tensorboard",
}
EVERY = (*topology.PROCESSES, *topology.INFRA)
# Where the metadata service keeps the uploads, and the programs that read them.
FILES_READERS = [topology.TENSORBOARD]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)
    return loaded


def _container(objects: list[dict[str, Any]], process: topology.Process) -> dict[str, Any]:
    deployment = of_kind(objects, "Deployment")[f"cmf-{process.name}"]
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


# ---------------------------------------------------------------- docker-compose.yml


def test_every_process_is_a_compose_service(compose: dict[str, Any]) -> None:
    assert set(topology.BY_NAME) <= set(compose["services"])


@pytest.mark.parametrize("process", EVERY, ids=lambda p: p.name)
def test_a_process_runs_the_topology_command_on_its_port(
    compose: dict[str, Any], process: topology.Process
) -> None:
    service = compose["services"][process.name]
    assert service["command"] == process.argv("0.0.0.0")[1:]
    check = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{process.port}{process.readyz}'" in check


@pytest.mark.parametrize("process", topology.INFRA, ids=lambda p: p.name)
def test_a_program_beside_cmf_is_given_no_cmf_setting(
    compose: dict[str, Any], rendered: Objects, process: topology.Process
) -> None:
    assert not compose["services"][process.name].get("environment")
    assert not compose["services"][process.name].get("secrets")
    for overlay in OVERLAYS:
        assert not _container(rendered[overlay], process).get("env"), overlay


@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
def test_a_cmf_service_is_given_only_settings_its_process_reads(
    compose: dict[str, Any], process: topology.Process
) -> None:
    service = compose["services"][process.name]
    env = set(service.get("environment", {}))
    secrets = {name.upper() for name in service.get("secrets", [])}
    stray = (env | secrets) - set(process.env_names) - EXTRA_ENV
    assert not stray, f"{process.name} is given settings it does not read: {sorted(stray)}"
    # Every secret setting comes from a secret file (SECRETS_DIR), never the environment.
    assert not env & set(process.secrets)
    if secrets:
        assert service["environment"]["SECRETS_DIR"] == "/run/secrets"


@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
def test_a_cmf_service_is_given_every_setting_it_requires(
    compose: dict[str, Any], process: topology.Process
) -> None:
    service = compose["services"][process.name]
    given = set(service.get("environment", {})) | {s.upper() for s in service.get("secrets", [])}
    missing = {s.name for s in process.settings if s.required} - given
    assert not missing, f"{process.name} lacks {sorted(missing)}"


@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
def test_a_cmf_service_reaches_the_others_at_their_compose_names(
    compose: dict[str, Any], process: topology.Process
) -> None:
    env = compose["services"][process.name].get("environment", {})
    urls = topology.default_urls()
    for called, setting in process.upstreams.items():
        assert env[setting] == urls[called], (process.name, setting)


@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
def test_a_cmf_service_is_given_the_fixed_settings(
    compose: dict[str, Any], process: topology.Process
) -> None:
    env = compose["services"][process.name].get("environment", {})
    assert {name: env.get(name) for name in process.fixed} == process.fixed


def _compose_mount(service: dict[str, Any], path: str) -> tuple[str, bool]:
    """The volume mounted at the folder holding ``path``, and whether read only."""
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        if path == target or path.startswith(target + "/"):
            return source, mode == ["ro"]
    raise AssertionError(f"nothing is mounted at {path}")


@pytest.mark.parametrize("reader", FILES_READERS)
def test_tensorboard_reads_the_volume_the_metadata_service_uploads_to(
    compose: dict[str, Any], reader: str
) -> None:
    metadata = compose["services"][topology.METADATA]
    files_dir = metadata["environment"]["FILES_DIR"]
    assert files_dir == topology.FILES_DIR
    written, _ = _compose_mount(metadata, files_dir)
    process = topology.process(reader)
    logdir = process.command[process.command.index("--logdir") + 1]
    assert logdir == f"{files_dir}/{topology.TENSORBOARD_LOGS}"
    assert _compose_mount(compose["services"][reader], logdir) == (written, True)


def test_cmf_containers_run_read_only_without_privileges(compose: dict[str, Any]) -> None:
    for name in [*topology.names(), "migrate"]:
        service = compose["services"][name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "/tmp" in service["tmpfs"]


def test_prometheus_scrapes_every_cmf_process_on_its_port() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for process in topology.PROCESSES:
        assert f"{process.name}:{process.port}" in targets


# ---------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("process", EVERY, ids=lambda p: p.name)
def test_a_container_runs_the_topology_command_with_its_probes(
    rendered: Objects, overlay: str, process: topology.Process
) -> None:
    container = _container(rendered[overlay], process)
    assert container["args"] == process.argv("0.0.0.0")[1:]
    (port,) = container["ports"]
    assert port["containerPort"] == process.port
    for probe, path in (
        ("startupProbe", process.livez),
        ("livenessProbe", process.livez),
        ("readinessProbe", process.readyz),
    ):
        assert container[probe]["httpGet"]["path"] == path
        assert container[probe]["httpGet"]["port"] == port["name"]
    assert {"requests", "limits"} <= set(container["resources"])
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
def test_a_container_gets_its_settings_and_its_secrets_by_reference(
    rendered: Objects, overlay: str, process: topology.Process
) -> None:
    container = _container(rendered[overlay], process)
    config = of_kind(rendered[overlay], "ConfigMap")["cmf-config"]["data"]
    env = {e["name"]: e for e in container["env"]}
    stray = set(env) - set(process.env_names) - EXTRA_ENV
    assert not stray, f"{process.name} is given settings it does not read: {sorted(stray)}"
    missing = {s.name for s in process.settings if s.required} - set(env)
    assert not missing, f"{process.name} lacks {sorted(missing)}"
    for name, entry in env.items():
        source = entry.get("valueFrom", {})
        if name in process.secrets and not name.startswith("TLS_"):
            assert "secretKeyRef" in source, f"{process.name}: {name} is not from a Secret"
            assert source["secretKeyRef"]["name"] == "cmf-secrets"
        elif "configMapKeyRef" in source:
            assert source["configMapKeyRef"]["key"] in config, (process.name, name)
    urls = topology.default_urls()
    for called, setting in process.upstreams.items():
        ref = env[setting]["valueFrom"]["configMapKeyRef"]["key"]
        assert config[ref] == urls[called], (process.name, setting)
    for name, value in process.fixed.items():
        ref = env[name]["valueFrom"]["configMapKeyRef"]["key"]
        assert config[ref] == value, (process.name, name)


def _pod_mount(deployment: dict[str, Any], path: str) -> tuple[str, bool]:
    """The claim mounted at the folder holding ``path``, and whether read only."""
    pod = deployment["spec"]["template"]["spec"]
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    (container,) = pod["containers"]
    for mount in container["volumeMounts"]:
        target = mount["mountPath"]
        if mount["name"] in claims and (path == target or path.startswith(target + "/")):
            return claims[mount["name"]], bool(mount.get("readOnly"))
    raise AssertionError(f"no claim is mounted at {path}")


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("reader", FILES_READERS)
def test_tensorboard_reads_the_claim_the_metadata_service_uploads_to(
    rendered: Objects, overlay: str, reader: str
) -> None:
    objects = rendered[overlay]
    config = of_kind(objects, "ConfigMap")["cmf-config"]["data"]
    assert config["FILES_DIR"] == topology.FILES_DIR
    deployments = of_kind(objects, "Deployment")
    written, _ = _pod_mount(deployments[f"cmf-{topology.METADATA}"], config["FILES_DIR"])
    process = topology.process(reader)
    logdir = process.command[process.command.index("--logdir") + 1]
    assert logdir == f"{topology.FILES_DIR}/{topology.TENSORBOARD_LOGS}"
    assert _pod_mount(deployments[f"cmf-{reader}"], logdir) == (written, True)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("process", EVERY, ids=lambda p: p.name)
def test_each_process_is_a_service_at_its_port(
    rendered: Objects, overlay: str, process: topology.Process
) -> None:
    service = of_kind(rendered[overlay], "Service")[process.name]
    (port,) = service["spec"]["ports"]
    assert port["port"] == process.port


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
def test_each_process_has_a_service_a_budget_and_a_monitor(
    rendered: Objects, overlay: str, process: topology.Process
) -> None:
    objects = rendered[overlay]
    service = of_kind(objects, "Service")[process.name]
    (port,) = service["spec"]["ports"]
    assert f"cmf-{process.name}" in of_kind(objects, "PodDisruptionBudget")
    monitor = of_kind(objects, "ServiceMonitor")[f"cmf-{process.name}"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == (port["name"], process.metrics)


def test_prod_serves_tls_at_the_ingress_and_the_gateway(rendered: Objects) -> None:
    objects = rendered["prod"]
    ingress = of_kind(objects, "Ingress")["cmf-gateway"]["spec"]
    assert ingress["tls"][0]["secretName"]
    gateway = _container(objects, topology.process(topology.GATEWAY))
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert env["TLS_CERT_PATH"] and env["TLS_KEY_PATH"]
    assert gateway["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"


# ---------------------------------------------------------------- images


def test_there_is_an_image_for_every_process() -> None:
    names = {p.stem for p in dockerfiles()}
    assert set(IMAGE_OF.values()) <= names


@pytest.mark.parametrize("image", [*SERVICE_IMAGES, topology.TENSORBOARD])
def test_a_service_image_runs_its_process_on_its_port(image: str) -> None:
    process = topology.process(image)
    final = stages(DOCKER / f"{image}.Dockerfile")[-1]
    (entrypoint,) = final.values("ENTRYPOINT")
    (cmd,) = final.values("CMD")
    assert [*exec_form(entrypoint), *exec_form(cmd)] == process.argv("0.0.0.0")
    assert final.values("EXPOSE") == [str(process.port)]
    (health,) = final.values("HEALTHCHECK")
    assert f"http://127.0.0.1:{process.port}{process.livez}'" in health


# ---------------------------------------------------------------- what the code serves


@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
async def test_a_process_serves_its_health_and_metrics_routes(
    process: topology.Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its app, built as ``cmf-server`` builds it for the topology's command and asked over
    ASGI (not started: nothing is dialled), answers the probes' paths."""
    # What a process refuses to be built without.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("PRINCIPAL_SECRET", "a-test-principal-secret-of-32-bytes")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    urls = topology.default_urls()
    for called, setting in process.upstreams.items():
        monkeypatch.setenv(setting, urls[called])
    verb, name = process.command
    factory, port = (cli.SERVICES if verb == "serve" else cli.WORKERS)[name]
    assert port == process.port
    module, _, attribute = factory.partition(":")
    app = getattr(importlib.import_module(module), attribute)()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for path in (process.livez, process.readyz):
            answer = await client.get(path)
            assert answer.status_code == 200, (process.name, path, answer.text)
            assert answer.json()["status"] == "ok"
        assert process.metrics is not None
        metrics = await client.get(process.metrics)
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        missing = await client.get("/no-such-route-anywhere")
        # The routes above are not a catch-all's (the gateway asks an unknown path for a token).
        assert missing.status_code in (401, 404)


@pytest.fixture
def tensorboard_logs(tmp_path: Path) -> Path:
    """A logdir as the metadata service lays it out: ``<pipeline>/<run>/events...``."""
    logdir = tmp_path / "tensorboard-logs"
    scalar_log(logdir / "Board" / "run-1", "loss", (0.9, 0.5, 0.25))
    return logdir


@pytest.fixture
def tensorboard(tensorboard_logs: Path, tmp_path: Path) -> Iterator[topology.Layout]:
    """TensorBoard run by the topology's command (on ``tensorboard_logs``, a free port), and
    the gateway as ``cmf-server serve gateway`` with the settings the topology gives it, access
    off (no token database). Only TensorBoard is beside it: the services it must be told of
    have free ports where nothing answers."""
    started = (topology.TENSORBOARD, topology.GATEWAY)
    told = (topology.METADATA, topology.LINEAGE, topology.ARTIFACTS)
    layout = topology.Layout("127.0.0.1", {name: free_port() for name in (*started, *told)})
    argv = layout.argv(topology.TENSORBOARD)
    argv[argv.index("--logdir") + 1] = str(tensorboard_logs)
    argv[0] = str(Path(sys.executable).parent / argv[0])
    with (tmp_path / "tensorboard.log").open("wb") as output:
        board = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    env = {
        **layout.env(topology.GATEWAY),
        "AUTH": "off-i-know",
        "PRINCIPAL_SECRET": "a-test-principal-secret-of-32-bytes",
    }
    port = layout.ports[topology.GATEWAY]
    try:
        with start_cmf_process(layout.argv(topology.GATEWAY)[1:], tmp_path, port, tmp_path, env):
            yield layout
    finally:
        board.terminate()
        board.wait(timeout=30)


def test_the_gateway_serves_tensorboard_as_the_deployments_wire_them(
    tensorboard: topology.Layout,
) -> None:
    """What compose and Kubernetes run: the UI's TensorBoard page loads the gateway's
    /tensorboard/, which the gateway proxies to TensorBoard at TENSORBOARD_UPSTREAM_URL."""
    gateway = tensorboard.url(topology.GATEWAY)
    page_url = gateway + topology.process(topology.METADATA).fixed["TENSORBOARD_URL"]

    served = served_scalars(page_url, "Board/run-1", "loss")
    assert [round(v, 2) for v in served] == [0.9, 0.5, 0.25]
