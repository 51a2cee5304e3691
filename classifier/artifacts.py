"""Versioned model artifacts: `models/<version>/{model.joblib, manifest.json}`, `models/current`
and `models/history.jsonl` (every change of the current version, for rollback).

Loading verifies the payload's sha256, the library versions and the label set recorded in
the manifest *before* unpickling, and only ever reads from the models folder it is given.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

import joblib

from classifier.embeddings import sha256_file
from classifier.labels import LABELS, TOPICS

PAYLOAD = "model.joblib"
MANIFEST = "manifest.json"
CURRENT = "current"
HISTORY = "history.jsonl"
LOCK = ".lock"
#: How `models/current` came to name a version (recorded in the history).
ACTIONS = ("promote", "force", "rollback")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Libraries whose pickles must match: (distribution, how many version parts must agree).
PINNED_LIBRARIES: dict[str, int] = {"scikit-learn": 2, "numpy": 1, "scipy": 2, "joblib": 1}
RECORDED_LIBRARIES = (*PINNED_LIBRARIES, "spacy", "spacy-lookups-data", "tokenizers", "uxcx")


class ArtifactError(RuntimeError):
    """An artifact is missing, tampered with, or was built for other libraries or labels."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified model and its manifest."""

    model: Any
    version: str
    manifest: dict[str, Any]


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries an artifact depends on."""
    out: dict[str, str] = {}
    for dist in RECORDED_LIBRARIES:
        try:
            out[dist] = pkg_version(dist)
        except Exception:  # noqa: BLE001 - a missing optional distribution is recorded as such
            out[dist] = "not installed"
    return out


def new_version(data_hash: str, now: datetime | None = None) -> str:
    """A sortable, unique-enough version name: UTC timestamp plus the data hash prefix."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{data_hash[:8]}"


def check_version_name(version: str) -> str:
    """Refuse anything that is not a plain version folder name (no paths, no dots first)."""
    if not VERSION_RE.fullmatch(version) or version in {CURRENT}:
        raise ArtifactError(f"invalid model version name {version!r}")
    return version


def save(model: Any, models_dir: Path, version: str, manifest: dict[str, Any]) -> Path:
    """Write a new version folder (never overwriting one) and return its path."""
    check_version_name(version)
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / version
    if target.exists():
        raise ArtifactError(f"model version {version} already exists in {models_dir}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=models_dir))
    joblib.dump(model, tmp / PAYLOAD, compress=3)
    full = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "sha256": sha256_file(tmp / PAYLOAD),
        "libraries": library_versions(),
        "labels": list(LABELS),
        "topics": list(TOPICS),
        **manifest,
    }
    write_manifest(tmp, full)
    os.replace(tmp, target)
    return target


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write manifest.json atomically."""
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def read_manifest(models_dir: Path, version: str) -> dict[str, Any]:
    """The manifest of one version, or ArtifactError."""
    path = models_dir / check_version_name(version) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"no manifest for model version {version} in {models_dir}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"manifest of {version} is not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"manifest of {version} is not a JSON object")
    return data


def current_version(models_dir: Path) -> str | None:
    """The version named by `models/current`, or None when there is none."""
    path = models_dir / CURRENT
    if not path.is_file():
        return None
    name = path.read_text(encoding="utf-8").strip()
    return check_version_name(name) if name else None


@contextmanager
def _locked(models_dir: Path) -> Iterator[None]:
    """Serialise changes of `current` and the history between processes (advisory lock)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / LOCK, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def set_current(models_dir: Path, version: str, action: str = "promote", reason: str = "") -> None:
    """Point `models/current` at a verified version (atomic replace) and append the change to the history.

    Verification (checksum, libraries, label set) comes first, so `current` never names an
    artifact that `load` would refuse.
    """
    check_version_name(version)
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
    if not (models_dir / version / MANIFEST).is_file():
        raise ArtifactError(f"model version {version} does not exist in {models_dir}")
    verify(models_dir, version)
    with _locked(models_dir):
        previous = current_version(models_dir)
        tmp = models_dir / (CURRENT + ".tmp")
        tmp.write_text(version + "\n", encoding="utf-8")
        os.replace(tmp, models_dir / CURRENT)
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "action": action,
            "version": version,
            "previous": previous,
            "reason": reason,
        }
        with open(models_dir / HISTORY, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


def read_history(models_dir: Path) -> list[dict[str, Any]]:
    """Every recorded change of `current`, oldest first (unreadable lines are skipped)."""
    path = models_dir / HISTORY
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("version"), str) and VERSION_RE.fullmatch(entry["version"]):
            out.append(entry)
    return out


def previous_current(models_dir: Path) -> str | None:
    """The version that was current before the present one, by the history (undo order), or None.

    Rollbacks pop: after promote A, B, C a rollback goes to B and the next one to A.
    Versions whose folders were deleted are passed over.
    """
    stack: list[str] = []
    for entry in read_history(models_dir):
        version = entry["version"]
        if entry.get("action") == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
            if not stack:
                stack.append(version)
        else:
            previous = entry.get("previous")
            # A current that predates the history (or was set by hand) is known from `previous`.
            if isinstance(previous, str) and VERSION_RE.fullmatch(previous) and (not stack or stack[-1] != previous):
                stack.append(previous)
            if not stack or stack[-1] != version:
                stack.append(version)
    now = current_version(models_dir)
    if now is not None and (not stack or stack[-1] != now):
        stack.append(now)  # `current` was changed by hand, outside the history
    for version in reversed(stack[:-1]):
        if version != now and (models_dir / version / MANIFEST).is_file():
            return version
    return None


def list_versions(models_dir: Path) -> list[str]:
    """Version folders that hold a manifest, oldest first."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if p.is_dir() and (p / MANIFEST).is_file() and VERSION_RE.fullmatch(p.name))


def verify(models_dir: Path, version: str) -> dict[str, Any]:
    """Check checksum, libraries and label set of a version; return its manifest or raise."""
    manifest = read_manifest(models_dir, version)
    if manifest.get("version") != version:
        raise ArtifactError(
            f"the manifest in {models_dir / version} is for version {manifest.get('version')!r}: "
            "a foreign or copied artifact; train or promote a version instead of copying one"
        )
    payload = models_dir / version / PAYLOAD
    if not payload.is_file():
        raise ArtifactError(f"model version {version} has no {PAYLOAD}")
    actual = sha256_file(payload)
    if actual != manifest.get("sha256"):
        raise ArtifactError(
            f"checksum mismatch for {payload}: manifest says {str(manifest.get('sha256'))[:12]}..., "
            f"file is {actual[:12]}...; refusing to load a tampered or truncated artifact"
        )
    if manifest.get("labels") != list(LABELS) or manifest.get("topics") != list(TOPICS):
        raise ArtifactError(f"model version {version} was built for another label or topic set")
    installed = library_versions()
    recorded = manifest.get("libraries") or {}
    for dist, parts in PINNED_LIBRARIES.items():
        want = str(recorded.get(dist, "missing")).split(".")[:parts]
        have = installed[dist].split(".")[:parts]
        if want != have:
            raise ArtifactError(
                f"model version {version} was saved with {dist} {recorded.get(dist)}, "
                f"but {installed[dist]} is installed; retrain with `uxcx train`"
            )
    return manifest


def load(models_dir: Path, version: str | None = None) -> LoadedModel:
    """Load `version` (default: the current one) from `models_dir` after full verification."""
    name = current_version(models_dir) if version is None else check_version_name(version)
    if name is None:
        raise ArtifactError(f"no current model in {models_dir}; run `uxcx train` (or `make train`) first")
    manifest = verify(models_dir, name)
    model = joblib.load(models_dir / name / PAYLOAD)
    # Imported here: unpickling has just loaded it, and the registry commands (models list, show,
    # promote) need this module without the model's second of numpy, scikit-learn and spaCy imports.
    from classifier.model import UXCXClassifier

    if not isinstance(model, UXCXClassifier):
        raise ArtifactError(f"model version {name} holds a {type(model).__name__}, not a uxcx model")
    return LoadedModel(model=model, version=name, manifest=manifest)
