"""Read-after-write lineage: a read never answers from before the pushes already acknowledged
for the pipelines it covers, token or not.

What a read covers: the tangled trees and ``display_lineage`` name their pipeline; the walks
(``/lineage/{id}``, ``/api/native/v1/lineage/...``) start at an artifact or execution whose
pipelines the graph may not know yet (the push that links it is the one not yet projected), so
they cover every pipeline. A consistency token (``X-CMF-Consistency-Token``) adds its pipeline
and seq.

The argument, from the metadata side's promise (:mod:`cmf_common.committed`): a push posts its
pipeline's committed sequence on the board after its commit and before it answers.

1. Every acknowledged push of ``p`` is on the board (or, when its post failed, in the metadata
   service's table, which is where a read asks when the board fails it): ``committed[p]`` read at
   the start of a read is at least the last acknowledged push's seq. A push that crashed between
   commit and post was never acknowledged; nobody can be waiting for it.
2. The read takes its version and the committed seqs in one board read (Redis: one round trip;
   in-process: no I/O), then needs, for each covered ``p``, the projector's applied seq of ``p``
   to have reached ``committed[p]`` at the version it answers at. It knows that without the store
   when this process saw, in the store, ``p`` applied up to ``a >= committed[p]`` and the store's
   version ``V`` afterwards, and the version it took is at least ``V``: the store's version only
   grows, each applied batch raises it (see :mod:`cmf_lineage.versions`), so a version at least
   ``V`` is a graph state at least as new as the one in which ``p`` had reached ``a``.
3. Otherwise it polls the store's applied seq of the lagging pipelines (the store is the
   truth; the board may lag it) until they reach their committed seqs, then answers at the
   store's version read afterwards, posted to the board before any answer (as a token read always
   did); it remembers ``(a, V)`` for each. Past ``LINEAGE_CONSISTENCY_WAIT_S`` it answers 503 with
   ``Retry-After``. So, by (1) and :mod:`cmf_lineage.versions` (2) and (4), the answer includes
   every acknowledged push of the covered pipelines.
4. Reads covering every pipeline would need every pipeline's committed seq; the board also
   holds their sum (``total``), moved in the same step as each seq. An unchanged total means no
   pipeline's committed seq moved since this process last proved them all applied, at a version
   the read's is at least: no further work. When it moved, the read fetches them all (one more
   board read, only after a push, when the cache misses anyway) and checks as in (2)-(3).
5. A pipeline nobody pushed has committed seq 0 (in-process board: absent means never pushed;
   Redis: absent is asked of the metadata service, since Redis may have lost the key), so a 404 for
   it answers at once instead of waiting the bound.
6. The cost of a cached read stays one board read: the memory of (2) answers the steady state.

When the board fails (Redis down): pushes still succeed (the post is kept and retried); reads ask
the metadata service over HTTP (``GET /api/native/v1/pipelines/{p}/sequence``,
``/api/native/v1/pipeline-sequences``), and answer 503 when they cannot learn the committed seqs
at all, rather than an answer that might be stale. What is accepted: Redis refusing the metadata
service's post while still answering lineage reads (a partition between the two) can leave an older
committed seq visible until the retry (every 0.5 s) succeeds; and a Redis that lost the
committed total makes reads covering every pipeline ask the metadata service each time until a
push posts again (the metadata service re-seeds the board when it starts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from urllib.parse import quote

import httpx
import structlog
from prometheus_client import Counter

from cmf_common.committed import CommittedRead, CommittedSource, CommittedUnavailable
from cmf_common.prefixes import NATIVE_V1
from cmf_lineage.graph import GraphStore
from cmf_lineage.versions import GraphVersions

log = structlog.get_logger(__name__)

CONSISTENCY_WAITS = Counter(
    "cmf_lineage_consistency_waits_total",
    "Lineage reads that had to wait for the projection, by outcome (reached, timeout).",
    ["outcome"],
)

MAX_REMEMBERED = 100_000  # pipelines whose applied seq this process remembers (then forgets)


class Behind(Exception):
    """The projection did not reach the pushes a read must include within the bound."""


class MetadataSequences:
    """The metadata service's committed sequences over HTTP (the truth the board copies)."""

    def __init__(
        self, client: httpx.AsyncClient, prefix: str = NATIVE_V1, auth: httpx.Auth | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.auth = auth or httpx.USE_CLIENT_DEFAULT

    async def _get(self, path: str) -> dict[str, object]:
        try:
            answer = await self.client.get(self.prefix + path, auth=self.auth)
        except httpx.HTTPError as exc:
            raise CommittedUnavailable(f"metadata: {type(exc).__name__}: {exc}") from exc
        if answer.status_code != 200:
            raise CommittedUnavailable(f"metadata answered {answer.status_code} for {path}")
        body: dict[str, object] = answer.json()
        return body

    async def read(self, pipelines: Sequence[str]) -> CommittedRead:
        seqs: dict[str, int | None] = {}
        for pipeline in pipelines:
            body = await self._get(f"/pipelines/{quote(pipeline, safe='')}/sequence")
            seqs[pipeline] = int(str(body["seq"]))
        return CommittedRead(seqs, None)

    async def read_all(self) -> tuple[dict[str, int], int]:
        body = await self._get("/pipeline-sequences")
        raw = body["pipelines"]
        assert isinstance(raw, dict)
        seqs = {str(p): int(s) for p, s in raw.items()}
        return seqs, sum(seqs.values())

    async def close(self) -> None:
        await self.client.aclose()


@dataclass(eq=False)
class Consistency:
    """The version a read answers at so that it includes what it must (see the argument).

    ``local`` is the embedded server's in-process committed board; ``shared`` Redis's (the
    version board's read brings its seqs in the same round trip; ``shared`` is read for all of
    them); ``metadata`` is asked when neither has them. With none of the three (a reader a test
    built), only consistency tokens are waited for."""

    store: GraphStore
    versions: GraphVersions
    consumer: str
    wait_s: float
    _: KW_ONLY
    local: CommittedSource | None = None
    shared: CommittedSource | None = None
    metadata: CommittedSource | None = None
    # pipeline -> (applied seq seen in the store, the store's version read after it)
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict, init=False)
    # (committed total, version): at that version every pipeline had applied that total
    _all_seen: tuple[int, int] | None = field(default=None, init=False)

    @property
    def enabled(self) -> bool:
        return self.local is not None or self.shared is not None or self.metadata is not None

    async def version(self, pipelines: Sequence[str] | None, need: Mapping[str, int]) -> int:
        """The version to answer a read covering ``pipelines`` (``None``: every pipeline) at,
        that also includes ``need`` (a token's pipeline and seq). Raises :class:`Behind`."""
        names = list(pipelines) if pipelines is not None and self.enabled else []
        version, read = await self.versions.latest_with_committed(names)
        wanted = dict(need)
        all_total: int | None = None
        if self.enabled and pipelines is not None:
            for pipeline, seq in (await self._committed(names, read)).items():
                wanted[pipeline] = max(wanted.get(pipeline, 0), seq)
        elif self.enabled:
            total = read.total if read is not None else await self._local_total()
            seen = self._all_seen
            if total is None or seen is None or seen[0] != total or seen[1] > version:
                seqs, all_total = await self._committed_all()
                for pipeline, seq in seqs.items():
                    wanted[pipeline] = max(wanted.get(pipeline, 0), seq)
        lagging = {p: s for p, s in wanted.items() if s > 0 and not self._reached(p, s, version)}
        if lagging:
            version = await self._wait(lagging)
        if all_total is not None:
            self._all_seen = (all_total, version)
        return version

    def _reached(self, pipeline: str, seq: int, version: int) -> bool:
        seen = self._seen.get(pipeline)
        return seen is not None and seen[0] >= seq and seen[1] <= version

    async def _local_total(self) -> int | None:
        if self.local is None:
            return None
        return (await self.local.read([])).total

    async def _committed(self, names: list[str], read: CommittedRead | None) -> dict[str, int]:
        if read is None and self.local is not None:
            read = await self.local.read(names)
        if read is None:
            read = await self._ask_metadata(names)
        missing = [p for p, s in read.seqs.items() if s is None]
        asked = (await self._ask_metadata(missing)).seqs if missing and self.metadata else {}
        return {p: (s if s is not None else (asked.get(p) or 0)) for p, s in read.seqs.items()}

    async def _ask_metadata(self, names: list[str]) -> CommittedRead:
        if self.metadata is None:
            raise Behind("the committed sequences cannot be learnt (the board failed)")
        try:
            return await self.metadata.read(names)
        except CommittedUnavailable as exc:
            log.warning("lineage.committed_unavailable", error=str(exc))
            raise Behind("the committed sequences cannot be learnt") from exc

    async def _committed_all(self) -> tuple[dict[str, int], int]:
        for source in (self.local, self.shared, self.metadata):
            if source is None:
                continue
            try:
                return await source.read_all()
            except CommittedUnavailable as exc:
                log.warning("lineage.committed_unavailable", error=str(exc))
        raise Behind("the committed sequences cannot be learnt")

    async def _wait(self, lagging: dict[str, int]) -> int:
        """Poll the store until every lagging pipeline reached its seq; the store's version
        after that (posted to the board)."""
        deadline = time.monotonic() + self.wait_s
        pause = 0.002
        applied: dict[str, int] = {}
        while True:
            for pipeline, seq in lagging.items():
                if applied.get(pipeline, -1) < seq:
                    applied[pipeline] = await self.store.applied_seq(self.consumer, pipeline)
            if all(applied[p] >= s for p, s in lagging.items()):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                CONSISTENCY_WAITS.labels("timeout").inc()
                behind = sorted(p for p, s in lagging.items() if applied[p] < s)
                raise Behind(f"the lineage graph has not yet reached the pushes of {behind}")
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)
        CONSISTENCY_WAITS.labels("reached").inc()
        version = await self.versions.committed()
        if len(self._seen) > MAX_REMEMBERED:
            self._seen.clear()
        for pipeline, seq in applied.items():
            self._seen[pipeline] = (seq, version)
        return version
