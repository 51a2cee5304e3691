"""The static embedding asset: a word-piece table distilled from all-MiniLM-L6-v2 (model2vec).

The asset ships inside the package (``classifier/assets/static-minilm/``) and is verified
against the sha256 sums in its manifest before use. Inference needs only numpy and the
``tokenizers`` library; building the asset needs torch (``make asset``, optional extra).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

ASSET_NAME = "static-minilm"
ASSET_FILES = ("embeddings.npy", "tokenizer.json")


class AssetError(RuntimeError):
    """The static embedding asset is missing or does not match its manifest."""


def default_asset_dir() -> Path:
    """Where the packaged asset lives."""
    return Path(str(files("classifier").joinpath("assets", ASSET_NAME)))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StaticAsset:
    """A verified word-piece embedding table and its tokenizer."""

    vectors: np.ndarray
    tokenizer: object
    sha256: str
    manifest: dict[str, object]

    @property
    def dim(self) -> int:
        """Embedding width."""
        return int(self.vectors.shape[1])

    def encode_words(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Sum of word-piece vectors and word-piece count for each word (float32, int)."""
        if not words:
            return np.zeros((0, self.dim), dtype=np.float32), np.zeros(0, dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(words), add_special_tokens=False)  # type: ignore[attr-defined]
        ids = [e.ids for e in encodings]
        counts = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=int(counts.sum()))
        sums = np.zeros((len(words), self.dim), dtype=np.float32)
        rows = np.repeat(np.arange(len(words)), counts)
        np.add.at(sums, rows, self.vectors[flat])
        return sums, counts.astype(np.float32)


def load_asset(path: Path | None = None, expected_sha256: str | None = None) -> StaticAsset:
    """Load the asset after checking every file against the manifest; raise AssetError if not."""
    from tokenizers import Tokenizer

    root = path or default_asset_dir()
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise AssetError(f"static embedding asset not found at {root} (run `make asset` to build it)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    sums = manifest.get("sha256", {})
    for name in ASSET_FILES:
        file = root / name
        if not file.is_file():
            raise AssetError(f"asset file {file} is missing")
        actual = sha256_file(file)
        if actual != sums.get(name):
            raise AssetError(f"asset file {file} does not match its manifest checksum (got {actual[:12]}...)")
    combined = hashlib.sha256("".join(sums[n] for n in ASSET_FILES).encode()).hexdigest()
    if expected_sha256 is not None and combined != expected_sha256:
        raise AssetError(
            f"the model was trained with asset {expected_sha256[:12]}..., but the installed asset is {combined[:12]}..."
        )
    vectors = np.load(root / "embeddings.npy").astype(np.float32)
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    return StaticAsset(vectors=vectors, tokenizer=tokenizer, sha256=combined, manifest=manifest)
