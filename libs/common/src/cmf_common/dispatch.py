"""Hands events to the handlers registered for their type, with bounded retries.

Used alike by the Kafka consumer runner and the embedded in-process delivery, so a handler
behaves the same in both ways of running. Handlers are plain async functions taking a list of
envelopes, registered per type: consecutive events for one handler arrive together, in order
(a handler registered for several types gets them mixed).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from opentelemetry.trace import SpanKind
from prometheus_client import Counter

from cmf_common.events import Envelope
from cmf_common.tracing import batch_span

log = structlog.get_logger(__name__)

Handler = Callable[[list[Envelope]], Awaitable[None]]

HANDLED = Counter(
    "cmf_events_handled_total", "Events handled, by consumer and type.", ["consumer", "type"]
)
RETRIES = Counter(
    "cmf_event_handler_retries_total", "Handler retries after a failure.", ["consumer", "type"]
)
DEAD = Counter(
    "cmf_events_dead_lettered_total",
    "Events given up on after bounded retries.",
    ["consumer", "type"],
)
OUTAGE_RETRIES = Counter(
    "cmf_event_handler_outage_retries_total",
    "Retries while a handler's store was unavailable.",
    ["consumer"],
)
SKIPPED = Counter(
    "cmf_events_skipped_total",
    "Events of a type no handler is registered for.",
    ["consumer", "type"],
)


class PermanentError(Exception):
    """A handler's verdict that retrying cannot help (malformed data): dead-letter at once."""


class StoreUnavailable(Exception):
    """The handler's store cannot be reached (restarting, network down). Nothing is wrong with
    the events: they are retried until the store is back, never dead-lettered, and the offset
    is not committed meanwhile."""


@dataclass(frozen=True)
class Failure:
    envelope: Envelope
    error: str
    attempts: int


class Dispatcher:
    def __init__(
        self,
        consumer: str,
        handlers: dict[str, Handler],
        *,
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        backoff_max_s: float = 5.0,
        outage_retry_s: float = 1.0,
    ) -> None:
        """``outage_retry_s``: how often a handler whose store is unavailable is tried again
        (so it resumes within that of the store's return; never more often than
        ``backoff_max_s``)."""
        self.consumer = consumer
        self.handlers = handlers
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.outage_retry_s = min(outage_retry_s, backoff_max_s)
        self._outage_since: float | None = None  # while a handler's store is unavailable
        self._outage_waits = 0

    async def dispatch(
        self, envelopes: list[Envelope], *, alive: Callable[[], None] | None = None
    ) -> list[Failure]:
        """Handle ``envelopes`` in order; returns the ones given up on (for the dead letter).
        ``alive`` is called at each wait for an unavailable store: the loop carrying the
        dispatcher is waiting out an outage, not stuck (its heartbeat beats)."""
        failures: list[Failure] = []
        for handler, run in self._runs(envelopes):
            if handler is None:
                for type_, count in _types(run).items():
                    SKIPPED.labels(self.consumer, type_).inc(count)
                continue
            with batch_span(
                f"process {self.consumer}",
                [e.traceparent for e in run],
                kind=SpanKind.CONSUMER,
                **{
                    "messaging.consumer.group.name": self.consumer,
                    "messaging.batch.message_count": len(run),
                },
            ):
                failure = await self._with_retries(handler, run, alive)
            if failure is None:
                self._handled(run)
                continue
            if len(run) == 1:
                failures.append(failure)
                continue
            # One bad event must not sink its neighbours: retry them one by one.
            for envelope in run:
                single = await self._with_retries(handler, [envelope], alive)
                if single is None:
                    self._handled([envelope])
                else:
                    failures.append(single)
        for failure in failures:
            DEAD.labels(self.consumer, failure.envelope.type).inc()
            log.error(
                "event.dead_lettered",
                consumer=self.consumer,
                event_id=failure.envelope.id,
                type=failure.envelope.type,
                subject=failure.envelope.subject,
                error=failure.error,
                attempts=failure.attempts,
            )
        return failures

    async def _with_retries(
        self, handler: Handler, run: list[Envelope], alive: Callable[[], None] | None
    ) -> Failure | None:
        attempt = 0
        while attempt < self.max_attempts:
            attempt += 1
            try:
                await handler(run)
                self._store_back()
                return None
            except PermanentError as exc:
                return Failure(run[0], f"{type(exc).__name__}: {exc}", attempt)
            except StoreUnavailable as exc:
                attempt -= 1  # an outage is not the events' fault: wait it out
                OUTAGE_RETRIES.labels(self.consumer).inc()
                self._outage_waits += 1
                if self._outage_since is None:  # one line per outage, not one per retry
                    self._outage_since = time.monotonic()
                    log.warning(
                        "dependency.unavailable",
                        consumer=self.consumer,
                        part="handler",
                        error=str(exc),
                        retry_every_s=self.outage_retry_s,
                    )
                await asyncio.sleep(self.outage_retry_s)
                if alive is not None:
                    alive()
            except Exception as exc:
                if attempt == self.max_attempts:
                    return Failure(run[0], f"{type(exc).__name__}: {exc}", attempt)
                RETRIES.labels(self.consumer, run[0].type).inc()
                delay = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
                log.warning(
                    "event.retry",
                    consumer=self.consumer,
                    type=run[0].type,
                    attempt=attempt,
                    error=f"{type(exc).__name__}: {exc}",
                )
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
        return None  # unreachable: the loop returns on its last attempt

    def _runs(self, envelopes: list[Envelope]) -> list[tuple[Handler | None, list[Envelope]]]:
        """``envelopes`` cut into runs of consecutive events for one handler (``None``: no
        handler), in order. A handler registered for several types (the lineage projector for
        every metadata event) takes a mixed batch in one call: one push is several types in a
        row, so runs of one type made a backlog of N events N graph transactions (about 30
        events/s on a loaded machine, slower than 50 clients push: after an outage the
        delivery never caught up)."""
        runs: list[tuple[Handler | None, list[Envelope]]] = []
        for envelope in envelopes:
            handler = self.handlers.get(envelope.type)
            if runs and runs[-1][0] is handler:
                runs[-1][1].append(envelope)
            else:
                runs.append((handler, [envelope]))
        return runs

    def _handled(self, run: list[Envelope]) -> None:
        for type_, count in _types(run).items():
            HANDLED.labels(self.consumer, type_).inc(count)

    def _store_back(self) -> None:
        if self._outage_since is None:
            return
        log.info(
            "dependency.available",
            consumer=self.consumer,
            part="handler",
            down_s=round(time.monotonic() - self._outage_since, 1),
            retries=self._outage_waits,
        )
        self._outage_since, self._outage_waits = None, 0


def _types(envelopes: list[Envelope]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for envelope in envelopes:
        counts[envelope.type] = counts.get(envelope.type, 0) + 1
    return counts
