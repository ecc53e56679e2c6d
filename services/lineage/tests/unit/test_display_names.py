"""The reference UI's display names (docs/wire-contract.md §1.5) from the captured artifacts."""

from __future__ import annotations

import pytest

from cmf_lineage.display import artifact_display_name, execution_display_name

UUID1 = "76526bbe-e9d5-11f1-a002-02fc00000001"
EXEC_UUID = "72d025da-e9d5-11f1-a002-02fc00000001"


@pytest.mark.parametrize(
    ("type_", "name", "uri", "shown"),
    [
        (
            "Dataset",
            "artifacts/data.xml:18b9e58c4262091a8806fb81b89b9f61",
            "18b9e58c4262091a8806fb81b89b9f61",
            "data.xml:18b9",
        ),
        (
            "Model",
            "artifacts/model/model.pkl:cd24e3c0c20c51b12879a98838cfea55:2",
            "cd24e3c0c20c51b12879a98838cfea55",
            "model.pkl:cd24",
        ),
        ("Metrics", f"metrics:{UUID1}:2", UUID1, "metrics:7652:2"),
        (
            "Step_Metrics",
            f"cmf_artifacts/{EXEC_UUID}/metrics/training_metrics:df14268b940d4c4238390fe6fe6e86f5"
            ":2:76506e86-e9d5-11f1-a002-02fc00000001",
            "df14268b940d4c4238390fe6fe6e86f5",
            f"{EXEC_UUID}/metrics/training_metrics:df14:2:7650",
        ),
        (
            "Dataslice",
            f"cmf_artifacts/{EXEC_UUID}/dataslice/slice-a:aa11bb22",
            "aa11bb22",
            f"{EXEC_UUID}/dataslice/slice-a:aa11",
        ),
    ],
)
def test_artifact_display_names_follow_the_reference(
    type_: str, name: str, uri: str, shown: str
) -> None:
    assert artifact_display_name(type_, name, uri) == shown


def test_execution_display_name_is_stage_and_uuid4() -> None:
    assert execution_display_name("Test-env/Prepare", "6e892a4e-e9d5") == "Prepare_6e89"
