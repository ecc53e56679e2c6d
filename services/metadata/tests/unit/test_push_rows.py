"""The push's pure step from a plan to the execution rows it writes."""

from __future__ import annotations

from cmf_metadata.merge import MergePlan, PipelineHead, PlannedExecution, PushStatus, TypeKind
from cmf_metadata.push import StoredContexts, _execution_rows
from cmf_metadata.store.push import ExecutionKey, StoredExecution

CONTEXTS = StoredContexts(
    types={(TypeKind.EXECUTION, "P/Train"): 7}, pipeline_id=1, stage_ids={"P/Train": 3}
)


def _planned(name: str, *uuids: str) -> PlannedExecution:
    return PlannedExecution(
        stage="P/Train",
        type="P/Train",
        name=name,
        uuid=",".join(uuids),
        uuids=list(uuids),
        properties={},
        custom_properties={},
        events=[],
    )


def _plan(*executions: PlannedExecution) -> MergePlan:
    return MergePlan(PipelineHead("P", {}, {}), PushStatus.SUCCESS, executions=list(executions))


def test_new_executions_take_fresh_ids_in_plan_order() -> None:
    writes = _execution_rows(
        _plan(_planned("", "a"), _planned("", "b")), CONTEXTS, {}, iter([10, 11])
    )
    assert [r.id for r in writes.inserts] == writes.ids == [10, 11]
    assert writes.updates == {}
    assert writes.inserts[0].properties == {
        "Context_ID": 3,
        "Pipeline_id": 1,
        "Execution_uuid": "a",
    }


def test_a_stored_reused_execution_is_updated_with_the_union_of_its_uuids() -> None:
    stored = {ExecutionKey("P/Train", "train"): StoredExecution(5, "a,b")}
    writes = _execution_rows(_plan(_planned("train", "b", "c")), CONTEXTS, stored, iter([]))
    assert writes.inserts == [] and writes.ids == [5]
    assert writes.updates[5].uuid == "a,b,c"
    assert writes.updates[5].properties["Execution_uuid"] == "a,b,c"


def test_a_reused_execution_twice_in_one_push_is_inserted_then_updated() -> None:
    plan = _plan(_planned("train", "a"), _planned("train", "b"))
    writes = _execution_rows(plan, CONTEXTS, {}, iter([10, 11]))
    assert writes.ids == [10, 10]
    assert [r.id for r in writes.inserts] == [10]
    assert writes.updates[10].uuid == "a,b"
