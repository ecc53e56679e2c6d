"""A one-stage hyper-parameter sweep logged with the real ``cmflib`` (run with the cmflib venv's
python) inside a folder prepared with ``cmf init local ...``: ``--runs`` executions of stage
``Train``, each with its own parameters and metrics. Prints the JSON ``{"pipeline", "runs"}``
as the last line of stdout.
"""

from __future__ import annotations

import argparse
import functools
import json

import cmflib.cmf
from cmflib.cmf import Cmf

# For every execution cmflib lists the python environment (pip) and commits its file to DVC, ~1.5 s
# each; the sweep's runs share one environment, so it is listed, committed and hashed once (the
# metadata logged is the same).
cmflib.cmf.get_python_env = functools.cache(cmflib.cmf.get_python_env)  # type: ignore[attr-defined]
cmflib.cmf.dvc_get_hash = functools.cache(cmflib.cmf.dvc_get_hash)  # type: ignore[attr-defined]
cmflib.cmf.dvc_get_url = functools.cache(cmflib.cmf.dvc_get_url)  # type: ignore[attr-defined]
_commit_output = cmflib.cmf.commit_output  # type: ignore[attr-defined]
_committed: set[str] = set()


def _commit_once(url: str, execution_id: int) -> None:
    if url not in _committed:
        _committed.add(url)
        _commit_output(url, execution_id)


cmflib.cmf.commit_output = _commit_once  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipeline", default="Sweep")
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()

    cmf = Cmf(filepath="mlmd", pipeline_name=args.pipeline, custom_properties={"team": "ui"})
    cmf.create_context(pipeline_stage="Train")
    for run in range(args.runs):
        cmf.create_execution(
            execution_type="Train",
            custom_properties={
                "run": run,
                "learning_rate": f"{0.001 * (1 + run % 7):.4f}",
                "max_depth": 2 + run % 5,
                "optimizer": ["adam", "sgd", "rmsprop"][run % 3],
                "accuracy": f"{0.70 + (run * 37 % 29) / 100:.3f}",
            },
            create_new_execution=True,
        )
    cmf.finalize()
    print(json.dumps({"pipeline": args.pipeline, "runs": args.runs}))


if __name__ == "__main__":
    main()
