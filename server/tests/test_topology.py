"""The distributed topology (cmf_server.topology) agrees with the code: each process's
command is one ``cmf-server`` runs, its port is its own, and every setting it lists is one its
settings class reads."""

from __future__ import annotations

import pytest

from cmf_artifacts.settings import ArtifactSettings
from cmf_common.settings import ServiceSettings
from cmf_gateway.settings import UiSettings
from cmf_lineage.settings import LineageSettings
from cmf_metadata.settings import MetadataSettings
from cmf_server import cli, topology
from cmf_server.settings import ServerSettings

SETTINGS: dict[str, type[ServiceSettings]] = {
    topology.GATEWAY: ServerSettings,
    topology.METADATA: MetadataSettings,
    topology.LINEAGE: LineageSettings,
    topology.ARTIFACTS: ArtifactSettings,
    topology.UI: UiSettings,
    topology.RELAY: MetadataSettings,
    topology.PROJECTOR: LineageSettings,
    topology.ARTIFACTS_RELAY: ArtifactSettings,
}
# Read outside the settings classes: by OpenTelemetry, by the TLS layer of the HTTP server.
READ_ELSEWHERE = {"OTEL_TRACES_EXPORTER", "TLS_CERT_PATH", "TLS_KEY_PATH"}


def test_every_process_has_its_own_port() -> None:
    ports = [p.port for p in topology.PROCESSES]
    assert len(ports) == len(set(ports))
    assert topology.process(topology.GATEWAY).port == 8080


@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
def test_every_process_command_is_one_the_cli_runs(process: topology.Process) -> None:
    verb, name = process.command
    known = cli.SERVICES if verb == "serve" else cli.WORKERS
    assert name in known
    argv = process.argv("127.0.0.1", 9999)
    assert argv[0] == "cmf-server"
    parsed = cli._parser().parse_args(argv[1:])
    assert (parsed.command, parsed.name, parsed.host, parsed.port) == (
        verb,
        name,
        "127.0.0.1",
        9999,
    )


@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
def test_every_listed_setting_is_read_by_the_process(process: topology.Process) -> None:
    fields = SETTINGS[process.name].model_fields
    for setting in process.settings:
        if setting.name in READ_ELSEWHERE or setting.name.endswith("_DATABASE_URL"):
            continue
        assert setting.name.lower() in fields, (process.name, setting.name)


@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
def test_a_process_reads_the_url_of_each_process_it_calls(process: topology.Process) -> None:
    for called in process.calls:
        assert topology.url_setting(called) in process.env_names


def test_a_layout_gives_each_process_its_upstreams() -> None:
    ports = {p.name: 20000 + i for i, p in enumerate(topology.PROCESSES)}
    layout = topology.Layout("127.0.0.1", ports)
    env = layout.env(topology.GATEWAY)
    assert env["METADATA_URL"] == layout.url(topology.METADATA)
    assert set(env) == {topology.url_setting(n) for n in topology.process("gateway").calls}
    assert layout.env(topology.ARTIFACTS) == {"METADATA_URL": layout.url(topology.METADATA)}
    assert layout.argv(topology.RELAY)[1:3] == ["worker", "relay"]
