"""uxcx against fastText, spaCy textcat (BOW) and TF-IDF + logistic regression, in one run.

All four are trained on the same shipped corpus (training/data/train.jsonl) and scored on the
held-out split and, when present, on ../shared/data/real-dev.jsonl. Speed is batch
classification on one core (the process pins itself to one CPU and one BLAS thread).

    python -m bench.compare [--quick] [--out bench/results]
"""

from __future__ import annotations

import os

# One core, one thread: set before numpy and friends load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import gc
import json
import platform
import random
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from classifier.labels import LABELS
from training.config import TrainConfig
from training.data import HELDOUT_FILE, TRAIN_FILE, Record, load
from training.evaluate import label_metrics
from training.train import train

REAL_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-dev.jsonl"
Predict = Callable[[Sequence[str]], list[str]]


def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


# ------------------------------------------------------------------- peers
def fit_uxcx(train_recs: Sequence[Record]) -> tuple[Predict, Predict]:
    model, _ = train(TrainConfig(), train_recs)

    def full(texts: Sequence[str]) -> list[str]:
        return [p.label for p in model.predict_batch(texts)]

    def lean(texts: Sequence[str]) -> list[str]:
        return [p.label for p in model.predict_batch(texts, evidence=False)]

    return full, lean


def fit_tfidf(train_recs: Sequence[Record]) -> Predict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced"),
    )
    pipe.fit([r.text for r in train_recs], [r.label for r in train_recs])
    return lambda texts: list(pipe.predict(list(texts)))


_FT_TOKEN = re.compile(r"\w+|[^\w\s]")


def _ft_clean(text: str) -> str:
    return " ".join(_FT_TOKEN.findall(text.lower()))


def fit_fasttext(train_recs: Sequence[Record]) -> Predict:
    import fasttext

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        for r in train_recs:
            fh.write(f"__label__{r.label} {_ft_clean(r.text)}\n")
        path = fh.name
    model = fasttext.train_supervised(path, epoch=25, lr=0.5, wordNgrams=2, dim=100, thread=1, verbose=0, seed=0)
    os.unlink(path)

    def predict(texts: Sequence[str]) -> list[str]:
        labels, _ = model.predict([_ft_clean(t) for t in texts])
        return [lab[0].removeprefix("__label__") for lab in labels]

    return predict


def fit_spacy_textcat(train_recs: Sequence[Record], epochs: int = 10) -> Predict:
    import spacy
    from spacy.training import Example
    from spacy.util import minibatch

    nlp = spacy.blank("en")
    textcat: Any = nlp.add_pipe(
        "textcat",
        config={"model": {"@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": True, "ngram_size": 2, "no_output_layer": False}},
    )
    for lab in LABELS:
        textcat.add_label(lab)
    examples = [
        Example.from_dict(nlp.make_doc(r.text), {"cats": {lab: float(lab == r.label) for lab in LABELS}})
        for r in train_recs
    ]
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(0)
    for _ in range(epochs):
        rng.shuffle(examples)
        for batch in minibatch(examples, size=64):  # type: ignore[no-untyped-call]
            nlp.update(batch, sgd=optimizer, drop=0.2)

    def predict(texts: Sequence[str]) -> list[str]:
        return [max(doc.cats.items(), key=lambda kv: kv[1])[0] for doc in nlp.pipe(texts, batch_size=1000)]

    return predict


# ---------------------------------------------------------------- measures
def speed(predict: Predict, texts: Sequence[str], repeats: int) -> float:
    """Best-of-`repeats` texts per second for one batch call.

    Everything the bench has allocated so far (corpora, other models) is frozen out of the
    garbage collector first, as a serving process does after loading its model (`gc.freeze`),
    so no model pays for the bench's own heap.
    """
    predict(texts[:200])
    gc.collect()
    gc.freeze()
    try:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            predict(texts)
            best = min(best, time.perf_counter() - start)
    finally:
        gc.unfreeze()
    return len(texts) / best


def speed_texts(records: Sequence[Record], n: int) -> list[str]:
    """n corpus texts of typical length (60-200 characters, mean about 113), as distinct as the corpus allows."""
    pool = [r.text for r in records if 60 <= len(r.text) <= 200]
    random.Random(0).shuffle(pool)
    return [pool[i % len(pool)] for i in range(n)]


def run(quick: bool) -> dict[str, Any]:
    _pin_one_core()
    train_recs = load([TRAIN_FILE]).records
    held = load([HELDOUT_FILE]).records
    real = load([REAL_DEV]).records if REAL_DEV.is_file() else []
    texts = speed_texts([*train_recs, *held], 5000 if quick else 20000)
    repeats = 1 if quick else 5

    rows: list[dict[str, Any]] = []
    fitters: list[tuple[str, Callable[[], Any]]] = [
        ("uxcx", lambda: fit_uxcx(train_recs)),
        ("TF-IDF word 1-2 + LR", lambda: fit_tfidf(train_recs)),
        ("fastText", lambda: fit_fasttext(train_recs)),
        ("spaCy textcat BOW", lambda: fit_spacy_textcat(train_recs, 3 if quick else 10)),
    ]
    for name, fit in fitters:
        start = time.perf_counter()
        fitted = fit()
        train_s = time.perf_counter() - start
        variants = [(name, fitted[0]), (f"{name} (no evidence)", fitted[1])] if isinstance(fitted, tuple) else [(name, fitted)]
        for i, (vname, predict) in enumerate(variants):
            row: dict[str, Any] = {"model": vname, "train_seconds": round(train_s, 1) if i == 0 else None}
            for set_name, recs in (("heldout", held), ("real-dev", real)):
                if recs:
                    m = label_metrics([r.label for r in recs], predict([r.text for r in recs]))
                    row[f"{set_name}_macro_f1"] = m["macro_f1"]
                    row[f"{set_name}_f1"] = {k: v["f1"] for k, v in m["per_class"].items()}
            row["texts_per_second"] = round(speed(predict, texts, repeats))
            rows.append(row)
            print(json.dumps(row), flush=True)
    ft = next(r["texts_per_second"] for r in rows if r["model"] == "fastText")
    for r in rows:
        r["speed_vs_fasttext"] = round(r["texts_per_second"] / ft, 2)
    return {
        "rows": rows,
        "n_train": len(train_recs),
        "n_heldout": len(held),
        "n_real_dev": len(real),
        "speed_texts": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
        "machine": f"{platform.machine()}, Python {platform.python_version()}, 1 core pinned",
    }


def to_markdown(result: dict[str, Any]) -> str:
    has_real = result["n_real_dev"] > 0
    head = "| model | held-out macro-F1 | " + ("real-dev macro-F1 | real-dev F1 ux / cx / other | " if has_real else "")
    head += "texts/s (1 core) | vs fastText | train s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in result["rows"]:
        cells = [r["model"], f"{r['heldout_macro_f1']:.3f}"]
        if has_real:
            f = r["real-dev_f1"]
            cells += [f"{r['real-dev_macro_f1']:.3f}", f"{f['ux']:.2f} / {f['cx']:.2f} / {f['other']:.2f}"]
        cells += [f"{r['texts_per_second']:,}", f"{r['speed_vs_fasttext']:.2f}x", "" if r["train_seconds"] is None else f"{r['train_seconds']}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Trained on {result['n_train']} texts; held-out {result['n_heldout']}; real-dev {result['n_real_dev']}; "
        f"speed over {result['speed_texts']} texts of {result['mean_chars']} characters on average; {result['machine']}."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer texts and epochs (smoke run)")
    parser.add_argument("--out", default="bench/results", help="folder for compare.md and compare.json")
    args = parser.parse_args()
    result = run(args.quick)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    md = to_markdown(result)
    (out / "compare.md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
