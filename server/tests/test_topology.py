"""The distributed topology (cmf_server.topology) agrees with the code: each process's
command is one ``cmf-server`` runs, its port is its own, every setting it lists is one its
settings classes read (with the fixed values they accept), and the paths it gives TensorBoard
are the ones the metadata service and the gateway use."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from cmf_artifacts.settings import ArtifactSettings
from cmf_gateway.settings import UiSettings
from cmf_lineage.settings import LineageSettings
from cmf_metadata import files
from cmf_metadata.settings import MetadataSettings
from cmf_server import cli, tensorboard, topology
from cmf_server.settings import ServerSettings

SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    topology.GATEWAY: (ServerSettings, tensorboard.TensorBoardSettings),
    topology.METADATA: (MetadataSettings,),
    topology.LINEAGE: (LineageSettings,),
    topology.ARTIFACTS: (ArtifactSettings,),
    topology.UI: (UiSettings,),
    topology.RELAY: (MetadataSettings,),
    topology.PROJECTOR: (LineageSettings,),
    topology.ARTIFACTS_RELAY: (ArtifactSettings,),
}
# Read outside the settings classes: by OpenTelemetry, by the TLS layer of the HTTP server.
READ_ELSEWHERE = {"OTEL_TRACES_EXPORTER", "TLS_CERT_PATH", "TLS_KEY_PATH"}


def test_every_process_has_its_own_port() -> None:
    ports = [p.port for p in topology.BY_NAME.values()]
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
    fields = {name for cls in SETTINGS[process.name] for name in cls.model_fields}
    for setting in process.settings:
        if setting.name in READ_ELSEWHERE or setting.name.endswith("_DATABASE_URL"):
            continue
        assert setting.name.lower() in fields, (process.name, setting.name)


@pytest.mark.parametrize("process", topology.PROCESSES, ids=lambda p: p.name)
def test_the_fixed_values_are_ones_the_process_accepts(
    process: topology.Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in process.fixed.items():
        monkeypatch.setenv(name, value)
    for cls in SETTINGS[process.name]:
        mine = {n: v for n, v in process.fixed.items() if n.lower() in cls.model_fields}
        if mine:
            read = cls()
            assert {n: str(getattr(read, n.lower())) for n in mine} == mine, process.name


def test_every_upstream_is_a_listed_process() -> None:
    for process in topology.PROCESSES:
        assert set(process.calls) <= set(topology.BY_NAME), process.name
        for called, setting in process.upstreams.items():
            if topology.process(called).program == "cmf-server":
                assert setting == topology.url_setting(called)


def test_tensorboard_reads_where_the_metadata_service_writes_and_is_served_where_proxied() -> None:
    assert MetadataSettings.model_fields["files_dir"].default == Path(topology.FILES_DIR)
    assert files.TENSORBOARD == topology.TENSORBOARD_LOGS
    assert tensorboard.PREFIX == topology.TENSORBOARD_PREFIX
    board = topology.process(topology.TENSORBOARD)
    assert board.command[board.command.index("--path_prefix") + 1] == tensorboard.PREFIX
    assert board.livez == board.readyz == tensorboard.PREFIX + "/"


def test_a_layout_gives_each_process_its_upstreams() -> None:
    ports = {name: 20000 + i for i, name in enumerate(topology.BY_NAME)}
    layout = topology.Layout("127.0.0.1", ports)
    env = layout.env(topology.GATEWAY)
    assert env["METADATA_URL"] == layout.url(topology.METADATA)
    assert env["TENSORBOARD_UPSTREAM_URL"] == layout.url(topology.TENSORBOARD)
    assert set(env) == set(topology.process(topology.GATEWAY).upstreams.values())
    assert layout.env(topology.ARTIFACTS) == {"METADATA_URL": layout.url(topology.METADATA)}
    assert layout.argv(topology.RELAY)[1:3] == ["worker", "relay"]
    assert layout.argv(topology.TENSORBOARD)[0] == "tensorboard"


def test_a_stack_without_tensorboard_gives_the_gateway_no_upstream_for_it() -> None:
    layout = topology.Layout("127.0.0.1", {topology.GATEWAY: 20000, topology.METADATA: 20001})
    assert layout.env(topology.GATEWAY) == {"METADATA_URL": layout.url(topology.METADATA)}


def test_names_are_the_cmf_processes_unless_a_kind_is_asked() -> None:
    assert topology.TENSORBOARD not in topology.names()
    assert topology.names("infra") == [topology.TENSORBOARD]
    assert topology.names("worker") == [
        topology.RELAY,
        topology.PROJECTOR,
        topology.ARTIFACTS_RELAY,
    ]
