"""A small two-stage pipeline logged with the real ``cmflib`` (run with the cmflib venv's python).

Run it inside a folder prepared with ``cmf init local ...``. It writes its own small input files,
logs stage ``Prepare`` (a dataset with a label csv in, a dataset out) and stage ``Train`` (that
dataset in; a model, execution metrics and step metrics out), and prints, as the last line of
stdout, the JSON ``{"pipeline": ..., "executions": {"Prepare": uuid, "Train": uuid}}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cmflib.cmf import Cmf


def _write(path: str, text: str) -> str:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return path


def _uuid(execution: object) -> str:
    return str(execution.properties["Execution_uuid"].string_value)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipeline", default="Client-Test")
    parser.add_argument("--salt", default="", help="a line added to each file (other md5s)")
    args = parser.parse_args()
    salt = f"{args.salt}\n" if args.salt else ""

    data = _write(
        "artifacts/data.xml", f"<rows><row id='1'>a</row><row id='2'>b</row></rows>\n{salt}"
    )
    labels = _write("artifacts/labels.csv", f"id,label\n1,cat\n2,dog\n{salt}")

    cmf = Cmf(filepath="mlmd", pipeline_name=args.pipeline, custom_properties={"owner": "tests"})

    cmf.create_context(pipeline_stage="Prepare", custom_properties={"stage-note": "prep"})
    prepare = cmf.create_execution(
        execution_type="Prepare", custom_properties={"split": 0.5, "seed": 7}
    )
    cmf.log_dataset(
        data,
        "input",
        custom_properties={"source": "synthetic"},
        label=labels,
        label_properties={"annotator": "bob"},
    )
    train_tsv = _write("artifacts/parsed/train.tsv", f"1\ta\tcat\n2\tb\tdog\n{salt}")
    cmf.log_dataset(train_tsv, "output")

    cmf.create_context(pipeline_stage="Train")
    train = cmf.create_execution(execution_type="Train", custom_properties={"max_depth": 3})
    cmf.log_dataset(train_tsv, "input")
    model = _write("artifacts/model/model.pkl", f"not really a pickle: a tiny model\n{salt}")
    cmf.log_model(
        model,
        "output",
        model_framework="SKlearn",
        model_type="RandomForestClassifier",
        model_name="RandomForestClassifier:default",
    )
    cmf.log_execution_metrics("metrics", {"auc": 0.91, "loss": 0.12})
    for step in range(3):
        cmf.log_metric("training_metrics", {"step": step, "train_loss": 1.0 / (step + 1)})
    cmf.commit_metrics("training_metrics")
    cmf.finalize()

    result = {
        "pipeline": args.pipeline,
        "executions": {"Prepare": _uuid(prepare), "Train": _uuid(train)},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
