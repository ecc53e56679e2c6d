"""A ``kill -9`` mid-upload leaves a ``.upload-*.part`` file beside its destination; the metadata
service's start removes every one of them (issue 12 item 11)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from cmf_metadata import files
from cmf_metadata.app import create_app as create_metadata
from cmf_metadata.settings import MetadataSettings


async def test_the_metadata_start_removes_partial_uploads(
    make_database_url: Callable[[], str], tmp_path: Path
) -> None:
    root = tmp_path / "files"
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "800d3d1d").write_text("id,label\n")
    torn = root / "labels" / f"{files.TEMP_PREFIX}abc{files.TEMP_SUFFIX}"
    torn.write_bytes(b"half an upl")
    settings = MetadataSettings(database_url=SecretStr(make_database_url()), files_dir=root)
    app = create_metadata(settings)
    async with app.router.lifespan_context(app):
        assert not torn.exists()
        assert (root / "labels" / "800d3d1d").read_text() == "id,label\n"
