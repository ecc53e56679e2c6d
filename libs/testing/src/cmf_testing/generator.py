"""Client-shaped CMF push payloads of any size, for the tests and the benchmarks.

A payload is what ``cmf metadata push`` sends (``docs/wire-contract.md`` §2.3): the client's
``dumptojson`` text (``json.dumps`` with its default ``", "`` / ``": "`` separators, keys in the
client's order), double-encoded in the body
``{"exec_uuid": null, "json_payload": "<text>", "pipeline_name": …}``.

The shape: one pipeline, ``stages`` stages, a chain of N executions. Execution i reads the shared
Environment artifact (the client links it to every execution) and two Datasets, and writes two
Datasets, which execution i+1 reads; so lineage depth equals N. Uuids (version 1), md5-like uris,
commits and times come from a random generator seeded with the seed and the pipeline name: the
same arguments always give the same bytes, and two pipeline names share no artifact.

The text is built piece by piece, never as one nested document: each artifact is serialised once
(it appears under its producer and its consumer), so 100,000 executions (~360 MB) are cheap.

    python -m cmf_testing.generator 1000 > push.json                 # the HTTP body
    python -m cmf_testing.generator 1000 --decoded > payload.json    # the json_payload, decoded
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import uuid
from collections.abc import Iterator
from typing import Any

from cmf_common.metadata_events import INPUT, OUTPUT

GIT_REPO = "/srv/repo/cmf_git_remote.git"
STORAGE = "/srv/cmf_local_storage/files/md5"
BASE_MS = 1_795_723_831_678  # the time of the captured example push (data/cmf)
STAGE_NAMES = ("Prepare", "Featurize", "Train", "Evaluate")
# The client's local ids and type ids; the server re-creates everything with its own.
PARENT_TYPE_ID, STAGE_TYPE_ID, ENV_TYPE_ID, DATASET_TYPE_ID, FIRST_EXEC_TYPE_ID = 10, 11, 12, 13, 14
EXECUTION_MS = 1_000  # one execution a second
GREGORIAN_OFFSET = 0x01B21DD213814000  # 100 ns intervals from 1582-10-15 to 1970-01-01


def _tail(obj: dict[str, Any]) -> str:
    """``obj`` serialised without its opening brace, to follow keys written by hand."""
    return json.dumps(obj)[1:]


def stage_short_name(k: int) -> str:
    return STAGE_NAMES[k] if k < len(STAGE_NAMES) else f"Stage{k + 1}"


class _Chain:
    """One pipeline's payload; the random draws happen in document order."""

    def __init__(self, pipeline: str, n_executions: int, stages: int, seed: int) -> None:
        if n_executions < 1:
            raise ValueError("n_executions must be at least 1")
        if not 1 <= stages <= n_executions:
            raise ValueError("stages must be between 1 and n_executions")
        self.pipeline = pipeline
        self.n = n_executions
        self.stages = stages
        self.seed = seed
        self.rng = random.Random(f"cmf-bench:{seed}:{pipeline}")
        self.node = self.rng.getrandbits(48) | (1 << 40)  # multicast bit: a random uuid1 node
        self.clock_seq = self.rng.getrandbits(14)
        self.t0 = BASE_MS + self.rng.randrange(86_400_000)
        env_uri = self._md5()
        self.env_file = f"cmf_artifacts/python_env_{self._md5()}.txt"
        self.env_text = json.dumps(
            {
                "type": "Environment",
                "create_time_since_epoch": self.t0 - 3_000,
                "custom_properties": {},
                "id": 1,
                "last_update_time_since_epoch": self.t0 - 3_000,
                "name": f"{self.env_file}:{env_uri}",
                "properties": {"git_repo": GIT_REPO, "Commit": env_uri, "url": self._url(env_uri)},
                "type_id": ENV_TYPE_ID,
                "uri": env_uri,
            }
        )

    def _md5(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _url(self, uri: str) -> str:
        return f"{self.pipeline}:{STORAGE}/{uri[:2]}/{uri[2:]}"

    def _uuid1(self, ms: int) -> str:
        t = ms * 10_000 + GREGORIAN_OFFSET
        return str(
            uuid.UUID(
                fields=(
                    t & 0xFFFFFFFF,
                    (t >> 32) & 0xFFFF,
                    ((t >> 48) & 0x0FFF) | 0x1000,
                    ((self.clock_seq >> 8) & 0x3F) | 0x80,
                    self.clock_seq & 0xFF,
                    self.node,
                )
            )
        )

    def exec_ms(self, i: int) -> int:
        return self.t0 + i * EXECUTION_MS

    def stage_of(self, i: int) -> int:
        return i * self.stages // self.n

    def first_execution(self, k: int) -> int:
        return next(i for i in range(k * self.n // self.stages, self.n) if self.stage_of(i) == k)

    def datasets(self, j: int) -> tuple[str, str]:
        """The serialised pair of Datasets between execution j-1 and execution j."""
        texts = []
        for m in range(2):
            uri = self._md5()
            if j == 0:  # the chain's sources
                ms = self.t0 - 2_000 + m
                path = f"artifacts/raw/data{m}.xml"
                custom: dict[str, Any] = {"source": "synthetic"}
            else:  # written by execution j-1
                ms = self.exec_ms(j - 1) + 500 + m
                path = f"artifacts/step{j}/part{m}.tsv"
                custom = {}
            texts.append(
                json.dumps(
                    {
                        "type": "Dataset",
                        "create_time_since_epoch": ms,
                        "custom_properties": custom,
                        "id": 2 + 2 * j + m,
                        "last_update_time_since_epoch": ms,
                        "name": f"{path}:{uri}",
                        "properties": {"Commit": uri, "git_repo": GIT_REPO, "url": self._url(uri)},
                        "type_id": DATASET_TYPE_ID,
                        "uri": uri,
                    }
                )
            )
        return texts[0], texts[1]

    def execution(self, i: int, inputs: tuple[str, str], outputs: tuple[str, str]) -> str:
        k = self.stage_of(i)
        short = stage_short_name(k)
        stage = f"{self.pipeline}/{short}"
        ms = self.exec_ms(i)
        events = [f'{{"type": {INPUT}, "artifact": {self.env_text}}}']
        events += [f'{{"type": {INPUT}, "artifact": {a}}}' for a in inputs]
        events += [f'{{"type": {OUTPUT}, "artifact": {a}}}' for a in outputs]
        rest = {
            "create_time_since_epoch": ms,
            "custom_properties": {
                "step": i,
                "split": "0.2",
                "seed": self.seed,
                "learning_rate": f"{self.rng.uniform(1e-4, 1e-2):.6f}",
                "Python_Env": self.env_file,
            },
            "id": i + 1,
            "last_update_time_since_epoch": ms + 400,
            "properties": {
                "Pipeline_id": 1,
                "Execution": f"['{short.lower()}.py', '--step', '{i}']",
                "Git_Repo": GIT_REPO,
                "Pipeline_Type": self.pipeline,
                "Git_Start_Commit": f"{self.rng.getrandbits(160):040x}",
                "Context_Type": stage,
                "Execution_type_name": stage,
                "Context_ID": 2 + k,
                "Execution_uuid": self._uuid1(ms),
                "Git_End_Commit": "",
            },
            "type_id": FIRST_EXEC_TYPE_ID + k,
        }
        return (
            f'{{"type": {json.dumps(short)}, "name": "", "events": [{", ".join(events)}], '
            f"{_tail(rest)}"
        )

    def stage_tail(self, k: int) -> str:
        name = f"{self.pipeline}/{stage_short_name(k)}"
        ms = self.exec_ms(self.first_execution(k)) - 10
        return "], " + _tail(
            {
                "create_time_since_epoch": ms,
                "custom_properties": {"stage-note": f"stage {k + 1} of {self.stages}"},
                "id": 2 + k,
                "last_update_time_since_epoch": ms,
                "name": name,
                "properties": {"Pipeline_Stage": name},
                "type": "Pipeline_Stage",
                "type_id": STAGE_TYPE_ID,
            }
        )

    def pipeline_tail(self) -> str:
        ms = self.t0 - 5_000
        return (
            "], "
            + _tail(
                {
                    "create_time_since_epoch": ms,
                    "custom_properties": {"owner": "bench"},
                    "id": 1,
                    "last_update_time_since_epoch": ms,
                    "name": self.pipeline,
                    "properties": {"Pipeline": self.pipeline},
                    "type": "Parent_Context",
                    "type_id": PARENT_TYPE_ID,
                }
            )
            + "]}"
        )

    def chunks(self) -> Iterator[str]:
        yield '{"Pipeline": [{"stages": ['
        inputs = self.datasets(0)
        for i in range(self.n):
            k = self.stage_of(i)
            first_of_stage = i == 0 or self.stage_of(i - 1) != k
            if first_of_stage:
                opening = '{"executions": ['
                yield opening if k == 0 else f"{self.stage_tail(k - 1)}, {opening}"
            outputs = self.datasets(i + 1)
            yield ("" if first_of_stage else ", ") + self.execution(i, inputs, outputs)
            inputs = outputs
        yield self.stage_tail(self.stages - 1)
        yield self.pipeline_tail()


def payload_chunks(
    pipeline_name: str, n_executions: int, stages: int = 1, seed: int = 0
) -> Iterator[str]:
    """The client's ``json_payload`` text, in pieces (join them for the whole)."""
    return _Chain(pipeline_name, n_executions, stages, seed).chunks()


def payload_text(pipeline_name: str, n_executions: int, stages: int = 1, seed: int = 0) -> str:
    return "".join(payload_chunks(pipeline_name, n_executions, stages, seed))


def push_body(
    pipeline_name: str, n_executions: int, stages: int = 1, seed: int = 0
) -> dict[str, Any]:
    """The body of the client's ``POST /api/mlmd_push`` (key order as the client sends it)."""
    return {
        "exec_uuid": None,
        "json_payload": payload_text(pipeline_name, n_executions, stages, seed),
        "pipeline_name": pipeline_name,
    }


def push_body_bytes(pipeline_name: str, n_executions: int, stages: int = 1, seed: int = 0) -> bytes:
    """``push_body`` encoded as the client's ``requests`` does (``json.dumps``), built by parts.

    JSON string escaping works character by character, so each piece is escaped on its own.
    """
    parts = [b'{"exec_uuid": null, "json_payload": "']
    parts += (
        json.dumps(c)[1:-1].encode("ascii")
        for c in payload_chunks(pipeline_name, n_executions, stages, seed)
    )
    parts.append(f'", "pipeline_name": {json.dumps(pipeline_name)}}}'.encode("ascii"))
    return b"".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cmf_testing.generator",
        description="Write a client-shaped CMF push body (a chain of N executions) to stdout.",
    )
    parser.add_argument("n_executions", type=int)
    parser.add_argument("--pipeline", default=None, help="pipeline name (default bench-N)")
    parser.add_argument("--stages", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--decoded",
        action="store_true",
        help="write the json_payload itself rather than the HTTP body",
    )
    args = parser.parse_args(argv)
    name = args.pipeline or f"bench-{args.n_executions}"
    out = sys.stdout.buffer
    try:
        if args.decoded:
            for chunk in payload_chunks(name, args.n_executions, args.stages, args.seed):
                out.write(chunk.encode("ascii"))
        else:
            out.write(push_body_bytes(name, args.n_executions, args.stages, args.seed))
        out.write(b"\n")
        out.flush()
    except BrokenPipeError:  # `| head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
