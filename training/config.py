"""Training configuration: model hyper-parameters and the split, from defaults or a TOML/JSON file."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained model besides the data."""

    model: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        """Read `[model]` parameters and `seed` from a .toml or .json file."""
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {unknown}; allowed: {sorted(known)}")
        return cls(model=dict(data.get("model", {})), seed=int(data.get("seed", 0)))

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for the manifest."""
        return asdict(self)
