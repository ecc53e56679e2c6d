"""What the Neo4j graph store and the Neo4j graph reader share: a driver, the database their
sessions use, and the schema (constraints and indexes) their statements rely on."""

from __future__ import annotations

from typing import ClassVar

from neo4j import AsyncDriver


class Neo4jClient:
    schema: ClassVar[tuple[str, ...]] = ()

    def __init__(self, driver: AsyncDriver, database: str | None = None) -> None:
        self.driver = driver
        self.database = database

    async def setup(self) -> None:
        """The schema, created on start (each statement is idempotent)."""
        async with self.driver.session(database=self.database) as session:
            for statement in self.schema:
                await (await session.run(statement)).consume()
