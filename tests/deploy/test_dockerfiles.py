"""deploy/docker: one Dockerfile per image, each multi-stage, from the lock, as a user of its
own, with a HEALTHCHECK; the build stage's install steps, run here in a scratch venv, give
a working ``cmf-server``, and the UI image's Node stage, run here in a scratch folder, builds
the SPA that ``cmf-server serve ui`` serves. (What each image runs is checked against the
topology in test_deploy_topology.py.)"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from deploy_paths import ROOT, makefile_uv, makefile_variable
from deployment import DOCKER, SERVICE_IMAGES, Stage, dockerfiles, env_of, exec_form, stages

from cmf_server import distributed

# Settings of the build stage left out here: they make the image small and its start fast
# (no uv cache in a layer, bytecode compiled ahead), not the install different.
NOT_HERE = {"UV_NO_CACHE", "UV_COMPILE_BYTECODE"}


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.stem)
def test_an_image_is_built_in_stages_and_runs_as_a_user_of_its_own(path: Path) -> None:
    built = stages(path)
    assert len(built) >= 2, "multi-stage: the build tools stay out of the image"
    final = built[-1]
    (user,) = final.values("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "a numeric, unprivileged user"
    (health,) = final.values("HEALTHCHECK")
    assert "CMD" in health
    # Nothing is built or fetched in the final stage: it copies what the build stage made.
    for run in final.values("RUN"):
        assert not re.search(r"\b(pip|uv|npm|apt-get)\b", run), run


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.stem)
def test_hadolint_finds_nothing(path: Path) -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run(
        [str(hadolint), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_the_python_images_share_one_build_stage() -> None:
    builds = {}
    for path in dockerfiles():
        for stage in stages(path):
            if stage.name == "build":
                builds[path.stem] = stage.instructions
    assert set(SERVICE_IMAGES) <= set(builds)
    first = builds["metadata"]
    for image in SERVICE_IMAGES:
        assert builds[image] == first, f"{image}'s build stage differs from metadata's"


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.stem)
def test_an_image_copies_only_what_the_repository_has_and_the_context_sends(
    path: Path,
) -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in stages(path):
        for value in stage.values("COPY"):
            if value.startswith("--from="):
                continue
            *sources, _ = shlex.split(value)
            for source in sources:
                assert (ROOT / source).exists(), f"{path.name}: COPY {source}"
                assert not any(source.startswith(i.rstrip("/")) for i in ignored), source


def test_the_images_install_the_locked_packages_with_the_pinned_uv() -> None:
    uv_version = makefile_variable("UV_VERSION")
    for path in dockerfiles():
        for stage in stages(path):
            if stage.name != "build":
                continue
            assert env_of(stage)["UV_VERSION"] == uv_version
            syncs = [r for r in stage.values("RUN") if r.startswith("uv sync")]
            assert syncs and all("--frozen" in r for r in syncs), path.name


def run_step(step: str, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """A build stage's ``RUN`` ``step``, run here as ``argv`` (``env``: None inherits ours)."""
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{step}:\n{done.stdout}\n{done.stderr}"


def copy_into(workdir: Path, value: str) -> None:
    """A ``COPY`` from the build context (the repository) into ``workdir``, as docker does it."""
    *sources, dest = shlex.split(value)
    for source in sources:
        # COPY a b/ puts a inside b; COPY a b makes b.
        target = workdir / dest
        if dest.endswith("/"):
            target = target / Path(source).name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / source).is_dir():
            skip = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / source, target, ignore=skip)
        else:
            shutil.copy2(ROOT / source, target)


def replay(stage: Stage, workdir: Path, run: Callable[[str], None]) -> None:
    """``stage``'s instructions in order, here: ``WORKDIR`` makes ``workdir``, ``COPY`` copies
    into it from the repository, and each ``RUN`` is handed to ``run``."""
    for instruction, value in stage.instructions:
        if instruction == "WORKDIR":
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY":
            copy_into(workdir, value)
        elif instruction == "RUN":
            run(value)


def run_build_stage(image: str, scratch: Path) -> Path:
    """The build stage of ``image``, run here: its COPYs into a scratch context, its ``uv``
    steps with the Makefile's uv (the ``pip install uv`` step is that same pin), its ENV but
    for the scratch venv's path; the venv it made."""
    (build,) = [s for s in stages(DOCKER / f"{image}.Dockerfile") if s.name == "build"]
    env = {k: v for k, v in env_of(build).items() if k not in NOT_HERE}
    venv = scratch / "venv"
    workdir = scratch / "src"
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))},
        **env,
        "UV_PYTHON": "python3.11",
    }
    uv = makefile_uv()

    def run(value: str) -> None:
        if value.startswith("pip install"):
            assert '"uv==${UV_VERSION}"' in value, value
            return
        assert value.startswith("uv "), f"a build step this test does not know: {value}"
        run_step(value, [str(uv), *shlex.split(value)[1:]], workdir, environ)

    replay(build, workdir, run)
    return venv


@pytest.fixture(scope="module")
def built_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the service images hold (their build stages are one, checked above)."""
    return run_build_stage("metadata", tmp_path_factory.mktemp("image"))


def test_the_built_image_has_a_working_cmf_server(built_venv: Path) -> None:
    done = subprocess.run(
        [str(built_venv / "bin" / "cmf-server"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for command in ("serve", "worker", "migrate"):
        assert command in done.stdout


def test_the_built_image_holds_every_process_and_its_migrations(built_venv: Path) -> None:
    """Installed as wheels (not editable), without the embedded PostgreSQL: every app factory
    the processes run imports, and every service's migrations are in the package."""
    script = """
import importlib, sys
from cmf_server import cli
from cmf_common.migrations import load_migrations
from cmf_server.migrate import schemas
for factory, _ in [*cli.SERVICES.values(), *cli.WORKERS.values()]:
    module, _, name = factory.partition(":")
    getattr(importlib.import_module(module), name)
import cmf_server
assert "site-packages" in cmf_server.__file__, cmf_server.__file__
try:
    import pgserver
except ImportError:
    pass
else:
    sys.exit("pgserver is in the image")
from cmf_artifacts.app import MIGRATIONS as A
from cmf_lineage.store import MIGRATIONS as L
from cmf_metadata.app import MIGRATIONS as M
from cmf_gateway.auth.store import MIGRATIONS as G
for package in {*A, *L, *M, *G}:
    assert load_migrations(package), package
print("ok")
"""
    done = subprocess.run(
        [str(built_venv / "bin" / "python"), "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        cwd=built_venv,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_ui_image_builds_the_spa_from_its_lock() -> None:
    (spa, *_) = stages(DOCKER / "ui.Dockerfile")
    assert spa.name == "spa" and spa.base.startswith("${NODE_IMAGE}")
    runs = spa.values("RUN")
    assert runs[0].startswith("npm ci"), "the locked packages (package-lock.json)"
    package = json.loads((ROOT / "services" / "ui" / "package.json").read_text())
    assert runs[-1] == "npm run build" and "build" in package["scripts"]
    final = stages(DOCKER / "ui.Dockerfile")[-1]
    assert any(v.startswith("--from=spa /ui/dist ") for v in final.values("COPY"))
    assert "UI_DIR=/opt/cmf-ui" in " ".join(final.values("ENV"))


def run_spa_stage(scratch: Path) -> Path:
    """The UI image's Node stage, run here: its COPYs into a scratch folder, its RUNs with this
    machine's npm (``npm ci`` with ``--offline``: from npm's cache, which ``make test`` filled
    building the UI from the same lock); the ``dist`` it built."""
    npm = shutil.which("npm")
    assert npm, "npm is needed (make ui installs what the UI's build needs)"
    (spa, *_) = stages(DOCKER / "ui.Dockerfile")
    workdir = scratch / "spa"

    def run(value: str) -> None:
        argv = shlex.split(value)
        assert argv[0] == "npm", f"a build step this test does not know: {value}"
        if argv[1] == "ci":
            argv.append("--offline")
        run_step(value, [npm, *argv[1:]], workdir)

    replay(spa, workdir, run)
    return workdir / "dist"


async def test_the_ui_image_s_node_stage_builds_the_spa_that_serve_ui_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SPA built from exactly what the stage copies, laid out as the final stage lays it
    (``UI_DIR``), answered by ``cmf-server serve ui``'s app: the page and every asset it names."""
    dist = run_spa_stage(tmp_path)
    monkeypatch.setenv("UI_DIR", str(dist))
    app = distributed.ui_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        page = await client.get("/ui/")
        assert page.status_code == 200, page.text
        assets = re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', page.text)
        assert any(a.endswith(".js") for a in assets), page.text
        for asset in assets:
            assert (await client.get(asset)).status_code == 200, asset


def test_the_tensorboard_image_holds_the_locked_tensorboard(tmp_path: Path) -> None:
    venv = run_build_stage("tensorboard", tmp_path)
    final = stages(DOCKER / "tensorboard.Dockerfile")[-1]
    (entrypoint,) = final.values("ENTRYPOINT")
    (program,) = exec_form(entrypoint)
    done = subprocess.run(
        [str(venv / "bin" / program), "--version_tb"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lock = (ROOT / "uv.lock").read_text()
    assert f'name = "tensorboard"\nversion = "{done.stdout.strip()}"' in lock
