"""docker-compose.yml: valid by the Compose specification's schema (vendored in
deploy/schemas/), every container healthy before another depends on it, secrets only from
files. (Each CMF container against the topology: test_deploy_topology.py.)"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from deploy_paths import DEPLOY, ROOT, load_yaml
from deployment import COMPOSE

# Containers that have no healthcheck, and why.
NO_HEALTHCHECK = {
    "kafka-topics": "a one-shot job (depended on as service_completed_successfully)",
    "migrate": "a one-shot job (depended on as service_completed_successfully)",
    "otel-collector": "its image has no shell or client to probe with; depended on as started",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)
    return loaded


def test_compose_file_is_valid_by_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_every_container_has_a_healthcheck_or_a_reason(compose: dict[str, Any]) -> None:
    lacking = {n for n, s in compose["services"].items() if "healthcheck" not in s}
    assert lacking == set(NO_HEALTHCHECK)


def test_every_dependency_waits_for_a_condition(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for dep, how in service.get("depends_on", {}).items():
            assert dep in compose["services"], (name, dep)
            wanted = (
                "service_completed_successfully" if dep in ("migrate", "kafka-topics") else None
            )
            if dep in NO_HEALTHCHECK and wanted is None:
                wanted = "service_started"
            assert how["condition"] == (wanted or "service_healthy"), (name, dep)


def test_only_the_gateway_and_grafana_publish_ports(compose: dict[str, Any]) -> None:
    published = {n for n, s in compose["services"].items() if s.get("ports")}
    assert published == {"gateway", "grafana"}


def test_the_secrets_script_writes_every_secret_file(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    subprocess.run(
        [str(DEPLOY / "compose-secrets.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    wanted = {Path(s["file"]).name for s in compose["secrets"].values()}
    assert {p.name for p in tmp_path.iterdir()} == wanted
    for name, secret in compose["secrets"].items():
        assert secret["file"] == f"./deploy/secrets/{name}"
    # Each role's URL holds its own role and a password of its own.
    urls = [(tmp_path / f"{s}_database_url").read_text() for s in ("metadata", "lineage")]
    assert urls[0].startswith("postgresql://cmf_metadata:")
    assert urls[0].split("@")[0] != urls[1].split("@")[0]
    # Written once: a second run keeps every value.
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    subprocess.run([str(DEPLOY / "compose-secrets.sh"), str(tmp_path)], check=True, timeout=30)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before


def test_compose_images_are_pinned() -> None:
    text = COMPOSE.read_text()
    for image in re.findall(r"^\s+image: (\S+)$", text, flags=re.MULTILINE):
        assert ":" in image and not image.endswith(":latest"), image


def test_every_file_it_mounts_is_in_the_repository(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), (name, source)
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name


def _confirmed_images() -> set[str]:
    """The images docs/deploy.md's "Image tags" table lists, each with how its tag was found
    to be published."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("\n## Image tags\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE))


def test_every_third_party_image_is_one_whose_tag_the_docs_confirm() -> None:
    used: set[str] = set()
    for path in (COMPOSE, *sorted((DEPLOY / "k8s").rglob("*.yaml"))):
        used |= set(re.findall(r"^\s+image: (\S+)$", path.read_text(), flags=re.MULTILINE))
    for path in sorted((DEPLOY / "docker").glob("*.Dockerfile")):
        used |= set(re.findall(r"^ARG \w+_IMAGE=(\S+)$", path.read_text(), flags=re.MULTILINE))
    third_party = {image for image in used if not image.startswith("cmf-server/")}
    assert third_party == _confirmed_images()
