"""What the deployment tests read: the Dockerfiles as stages of instructions, the rendered
objects by kind and name."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy_paths import DEPLOY, ROOT
from dockerfile_parse import DockerfileParser

COMPOSE = ROOT / "docker-compose.yml"
DOCKER = DEPLOY / "docker"

SERVICE_IMAGES = ("gateway", "metadata", "lineage", "artifacts", "ui")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [v for i, v in self.instructions if i == instruction]


def stages(path: Path) -> list[Stage]:
    structure = DockerfileParser(path=str(path)).structure
    out: list[Stage] = []
    for item in structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            base, _, name = value.partition(" AS ")
            out.append(Stage(name.strip(), base.strip()))
        elif out:
            out[-1].instructions.append((instruction, value))
    return out


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in stage.values("ENV"):
        for pair in shlex.split(value):
            key, _, val = pair.partition("=")
            env[key] = val
    return env


def exec_form(value: str) -> list[str]:
    parsed: list[str] = json.loads(value)
    return parsed


def dockerfiles() -> list[Path]:
    return sorted(DOCKER.glob("*.Dockerfile"))


Objects = dict[str, list[dict[str, Any]]]


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}
