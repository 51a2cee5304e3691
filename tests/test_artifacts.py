"""Artifacts: versioned save, verified load, refusal of tampered, truncated or foreign files."""

import json

import pytest

from classifier import artifacts
from classifier.artifacts import ArtifactError


@pytest.fixture()
def saved(tmp_path, tiny_model):
    version = artifacts.new_version("ab" * 32)
    artifacts.save(tiny_model, tmp_path, version, {"training_data_sha256": "ab" * 32})
    artifacts.set_current(tmp_path, version)
    return tmp_path, version


def test_roundtrip_through_current(saved, tiny_model):
    models, version = saved
    loaded = artifacts.load(models)
    assert loaded.version == version and artifacts.current_version(models) == version
    assert loaded.manifest["labels"] == ["ux", "cx", "other"]
    assert set(loaded.manifest["libraries"]) >= {"scikit-learn", "numpy", "spacy"}
    assert (loaded.model.predict(["payment page freezes"]) == tiny_model.predict(["payment page freezes"])).all()


def test_never_overwrites_a_version(saved, tiny_model):
    models, version = saved
    with pytest.raises(ArtifactError, match="already exists"):
        artifacts.save(tiny_model, models, version, {})


def test_tampered_payload_is_refused(saved):
    models, version = saved
    payload = models / version / artifacts.PAYLOAD
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0xFF
    payload.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        artifacts.load(models)


def test_truncated_payload_is_refused(saved):
    models, version = saved
    payload = models / version / artifacts.PAYLOAD
    payload.write_bytes(payload.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        artifacts.load(models)


def _edit_manifest(models, version, **changes):
    path = models / version / artifacts.MANIFEST
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        manifest[key] = value
    path.write_text(json.dumps(manifest))


def test_foreign_label_set_is_refused(saved):
    models, version = saved
    _edit_manifest(models, version, labels=["bug", "praise"])
    with pytest.raises(ArtifactError, match="another label or topic set"):
        artifacts.load(models)


def test_other_library_versions_are_refused(saved):
    models, version = saved
    manifest = artifacts.read_manifest(models, version)
    manifest["libraries"]["scikit-learn"] = "0.1.0"
    _edit_manifest(models, version, libraries=manifest["libraries"])
    with pytest.raises(ArtifactError, match="scikit-learn 0.1.0"):
        artifacts.load(models)


@pytest.mark.parametrize("name", ["../etc", "/abs/path", "a/b", ".hidden", "", "current"])
def test_path_like_versions_are_refused(saved, name):
    models, _ = saved
    with pytest.raises(ArtifactError, match="invalid model version"):
        artifacts.load(models, name)


def test_missing_current_says_what_to_do(tmp_path):
    with pytest.raises(ArtifactError, match="run `uxcx train`"):
        artifacts.load(tmp_path)
