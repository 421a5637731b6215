"""Evidence bundles: raw bodies exactly as fetched, texts, diff, a manifest whose hashes hold."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.site import evidence
from tests.support import digest_history as data
from tests.support.digest_history import BuiltSite, History


def _open(blob: bytes) -> tuple[zipfile.ZipFile, dict]:
    archive = zipfile.ZipFile(io.BytesIO(blob))
    return archive, json.loads(archive.read("manifest.json"))


def test_site_bundle_unzips_and_every_manifest_hash_matches(site: BuiltSite) -> None:
    blob = (site.root / "evidence" / f"change-{site.history.rems}.zip").read_bytes()
    archive, manifest = _open(blob)
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(archive.namelist()) == {*listed, "manifest.json"}
    for path, entry in listed.items():
        content = archive.read(path)
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], path
        assert len(content) == entry["bytes"], path
    assert sorted(listed) == [
        "after/normalized.txt",
        "after/raw-body.html",
        "before/normalized.txt",
        "before/raw-body.html",
        "diff.txt",
    ]


def test_raw_bodies_are_the_bytes_as_fetched_and_texts_hash_to_the_stored_version(
    site: BuiltSite,
) -> None:
    archive, manifest = _open(
        (site.root / "evidence" / f"change-{site.history.rems}.zip").read_bytes()
    )
    for label, text in (("before", data.REMS_OLD), ("after", data.REMS_NEW)):
        version = manifest[label]
        body = archive.read(version["raw_body_file"])
        assert body == site.history.bodies[version["snapshot_id"]]
        assert hashlib.sha256(body).hexdigest() == version["raw_body_sha256"]
        assert archive.read(version["normalized_file"]).decode() == text
        assert hashlib.sha256(text.encode()).hexdigest() == version["normalized_sha256"]
        assert version["http_status"] == 200
        assert version["headers"]["X-Fixture"] == "SYNTHETIC"
        assert version["url"] == data.REMS.url
    assert manifest["after"]["fetched_at"] == "2026-11-27T14:05:00+00:00"
    assert "+" + data.REMS_ADDED in archive.read("diff.txt").decode()
    assert manifest["change"]["severity"] == "T1"
    assert manifest["source"]["id"] == data.REMS.id


def test_a_new_item_has_no_before_version(history_db: tuple[Engine, History]) -> None:
    engine, history = history_db
    with Session(engine) as session:
        archive, manifest = _open(evidence.build_bundle(session, history.recall))
    assert manifest["before"] is None
    assert manifest["after"]["headers"]["Content-Type"] == "application/rss+xml"
    assert "after/raw-body.xml" in archive.namelist()


def test_the_same_history_gives_the_same_bundle_bytes(history_db: tuple[Engine, History]) -> None:
    engine, history = history_db
    with Session(engine) as session:
        first = evidence.build_bundle(session, history.ketamine)
        second = evidence.build_bundle(session, history.ketamine)
    assert first == second


def test_unknown_change_names_the_id_and_how_to_find_one(
    history_db: tuple[Engine, History],
) -> None:
    engine, _ = history_db
    with Session(engine) as session, pytest.raises(evidence.EvidenceError) as raised:
        evidence.build_bundle(session, 999)
    assert "999" in str(raised.value) and "fdawatch changes" in str(raised.value)
