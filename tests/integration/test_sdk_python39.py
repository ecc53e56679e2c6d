"""The Python SDK (libs/client) on Python 3.9, installed on its own.

The SDK keeps to Python 3.9 so that it sits beside ``cmflib`` in the environments teams have.
The 3.9 here is Debian's PyPy (bookworm's ``pypy3`` implements Python 3.9, with 3.9's standard
library; this machine's Debian packages no CPython 3.9), set up by scripts/sdk-py39-venv.sh with
only the SDK's dependencies and its tests' tools. The SDK goes in the way a user installs it,
``pip install`` of the workspace folder, and its own tests (libs/client/tests) run there
against that installed copy, not the source tree.

pandas publishes no wheel for PyPy 3.9 (building it and numpy from source would take the
better part of an hour here), so the 3.9 run has no pandas: ServerQuery's frames
(libs/client/tests/test_query.py) are tested on CPython only, and here ServerQuery must say
how to get pandas while everything else works without it, as the extra promises.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import run_checked

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "libs" / "client"
COMMAND_TIMEOUT_S = 300
SETUP_TIMEOUT_S = 900  # the first run installs PyPy and the venv


def _run(
    args: list[str | Path], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    return run_checked(args, timeout=COMMAND_TIMEOUT_S, env=env, cwd=cwd).stdout


@pytest.fixture(scope="module")
def python39() -> Path:
    done = run_checked([REPO / "scripts" / "sdk-py39-venv.sh"], timeout=SETUP_TIMEOUT_S)
    return Path(done.stdout.strip().splitlines()[-1]) / "bin" / "python"


def test_the_sdk_installs_on_its_own_and_passes_its_tests_on_python_3_9(
    python39: Path, tmp_path: Path
) -> None:
    assert _run([python39, "-c", "import sys; print(sys.version_info[:2])"]).strip() == "(3, 9)"
    site = tmp_path / "site"
    pip: list[str | Path] = [
        python39,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
    ]
    _run([*pip, "--no-index", "--target", site, CLIENT])
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    probe = (
        "import json, importlib.metadata as m, cmf_server_client\n"
        "d = m.distribution('cmf-server-client')\n"
        "print(json.dumps({'requires': d.requires, 'python': d.metadata['Requires-Python'],"
        " 'file': cmf_server_client.__file__}))\n"
    )
    installed = json.loads(_run([python39, "-c", probe], env=env, cwd=tmp_path))
    # Few dependencies: httpx, and the extras.
    assert installed["python"] == ">=3.9"
    assert sorted(installed["requires"]) == [
        "httpx>=0.24",
        "pandas>=1.5; extra == 'pandas'",
        "tqdm>=4.60; extra == 'progress'",
    ]
    assert installed["file"].startswith(str(site)), installed
    # pandas is optional: without it, ServerQuery says which extra to install.
    no_pandas = (
        "from cmf_server_client import ServerQuery\n"
        "try:\n    ServerQuery('http://127.0.0.1:9')\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    said = _run([python39, "-c", no_pandas], env=env, cwd=tmp_path)
    assert "pip install 'cmf-server-client[pandas]'" in said, said
    # Its tests, against the installed copy, with the suite's rules (warnings are errors);
    # every one but the DataFrame tests, which need pandas (see above).
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\nasyncio_mode = auto\nfilterwarnings = error\naddopts = -ra\n")
    tests = sorted(p for p in (CLIENT / "tests").glob("test_*.py") if p.name != "test_query.py")
    assert [p.name for p in tests] == ["test_client.py", "test_display.py"]
    # Its own ini and no conftest: the repository's root conftest.py is the server's.
    pytest_args: list[str | Path] = [
        "-c",
        ini,
        "--rootdir",
        tmp_path,
        "--noconftest",
        "-p",
        "no:cacheprovider",
    ]
    output = _run([python39, "-m", "pytest", *pytest_args, "-q", *tests], env=env, cwd=tmp_path)
    print(output)
    assert " passed" in output and "skipped" not in output and "failed" not in output, output
