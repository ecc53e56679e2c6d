"""Upstream's v1 artifact types and model cards (docs/upstream-v1.md §5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cmf_common import envelope
from cmf_common.envelope import EnvelopeRoute
from cmf_common.errors import DomainError, NotFound
from cmf_common.paging import BIGINT_MAX
from cmf_common.parameters import OWN_CHECKS
from cmf_metadata import artifacts as artifact_reads
from cmf_metadata import model_card as model_card_reads
from cmf_metadata.api.deps import Pool
from cmf_metadata.api.listings import ModelId

router = APIRouter(
    tags=["upstream v1: artifacts"], responses=envelope.RESPONSES, route_class=EnvelopeRoute
)

MODEL_CARD = "Model card retrieved successfully"


class NotAModel(DomainError):
    status = 400
    code = "not_a_model"
    title = "Not a Model artifact"


@router.get("/artifacts/types")
async def artifact_types(pool: Pool) -> JSONResponse:
    return envelope.success(
        await artifact_reads.artifact_types(pool), "Artifact types retrieved successfully"
    )


@router.get("/artifacts/models/{model_id}/card")
async def model_card_by_id(
    model_id: Annotated[int, OWN_CHECKS],  # upstream: an id no artifact can have is a 404
    pool: Pool,
) -> JSONResponse:
    """Unlike ``/v1/model-card``, an id that is no Model artifact is an error here. The card of
    a Model has its row first, so only an empty card costs a second read (which of the two)."""
    if not -BIGINT_MAX - 1 <= model_id <= BIGINT_MAX:
        raise NotFound(f"Model artifact with id {model_id} not found")
    card = await model_card_reads.model_card(pool, model_id)
    if card[0] == "":
        try:
            await artifact_reads.get_artifact(pool, model_id, event_limit=0)
        except NotFound as missing:
            raise NotFound(f"Model artifact with id {model_id} not found") from missing
        raise NotAModel(f"Artifact id {model_id} is not a Model artifact")
    return envelope.success(card, MODEL_CARD)


@router.get("/model-card")
async def model_card(modelId: ModelId, pool: Pool) -> JSONResponse:  # upstream's name
    return envelope.success(await model_card_reads.model_card(pool, modelId), MODEL_CARD)
