"""The uxcx classifier: a scikit-learn estimator over lexical and static-embedding features.

Three linear heads share one feature matrix: the primary label (calibrated by temperature
scaling fitted on out-of-fold logits), one binary head per issue label (for ``labels``),
and the topic. Everything per text is vectorised over the batch.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from spacy.lang.en.stop_words import STOP_WORDS

from classifier.embeddings import load_asset
from classifier.features import CsrParts, EmbeddingFeatures, LexicalFeatures, csr_dot
from classifier.labels import LABEL_OF_TOPIC, LABELS, TOPICS, TOPICS_BY_LABEL, Label
from classifier.text import MASKS, SEP, TokenBatch, TokenTable, english_forms, split_tokens


class Prediction(NamedTuple):
    """The model's answer for one text (immutable; a named tuple is cheap to build in bulk)."""

    label: str
    labels: tuple[str, ...]
    topic: str
    confidence: float
    scores: dict[str, float]
    evidence: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, the shape the CLI and the API return."""
        return {
            "label": self.label,
            "labels": list(self.labels),
            "topic": self.topic,
            "confidence": round(self.confidence, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "evidence": list(self.evidence),
        }


class UXCXClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # sklearn ships no type hints
    """Predicts label (ux|cx|other), labels, topic, calibrated scores and evidence.

    ``fit(texts, y, labels=None, topics=None)``: ``y`` holds primary labels, ``labels``
    the full label lists, ``topics`` the topics (each defaults from ``y``).
    """

    # Fitted state that is filled lazily (after fit or unpickling), for the type checker.
    asset_sha256_: str | None
    _runtime: EmbeddingFeatures | None
    _heads: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    _centred: np.ndarray | None
    _centred_emb: np.ndarray | None
    _ok_surface: np.ndarray | None

    def __init__(
        self,
        C: float = 16.0,
        topic_C: float = 16.0,
        topic_mix: float = 0.5,
        embedding_weight: float = 0.5,
        use_embeddings: bool = True,
        min_df: int = 2,
        ngram_max: int = 2,
        class_weight: str | None = None,
        calibrate: bool = True,
        cv: int = 5,
        both_threshold: float = 0.5,
        evidence_k: int = 3,
        max_iter: int = 3000,
        random_state: int = 0,
        asset_path: str | None = None,
        keep_oof: bool = False,
    ):
        self.C = C
        self.topic_C = topic_C
        self.topic_mix = topic_mix
        self.embedding_weight = embedding_weight
        self.use_embeddings = use_embeddings
        self.min_df = min_df
        self.ngram_max = ngram_max
        self.class_weight = class_weight
        self.calibrate = calibrate
        self.cv = cv
        self.both_threshold = both_threshold
        self.evidence_k = evidence_k
        self.max_iter = max_iter
        self.random_state = random_state
        self.asset_path = asset_path
        self.keep_oof = keep_oof

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: Sequence[str],
        y: Sequence[str],
        labels: Sequence[Sequence[str]] | None = None,
        topics: Sequence[str] | None = None,
    ) -> UXCXClassifier:
        """Build the token table with spaCy, learn features and the three heads."""
        texts = _check_texts(X)
        y_arr = np.asarray(list(y), dtype=object)
        if len(y_arr) != len(texts):
            raise ValueError(f"X has {len(texts)} texts but y has {len(y_arr)} labels")
        bad = sorted({str(v) for v in y_arr} - set(LABELS))
        if bad:
            raise ValueError(f"unknown labels {bad}; expected {list(LABELS)}")
        multi = [list(x) for x in labels] if labels is not None else [[v] for v in y_arr]
        topic_arr = np.asarray(
            list(topics) if topics is not None else [TOPICS_BY_LABEL[v][-1] for v in y_arr], dtype=object
        )

        forms: set[str] = set(english_forms())
        for text in texts:
            forms.update(split_tokens(text))
        self.table_ = TokenTable.build(forms)
        batch = self.table_.tokenize(texts)
        self.lexical_ = LexicalFeatures(self.min_df, self.ngram_max).fit(self.table_, batch)
        self.asset_sha256_ = None
        if self.use_embeddings:
            asset = load_asset(Path(self.asset_path) if self.asset_path else None)
            self.asset_sha256_ = asset.sha256
        self._runtime = None
        feats = self._features(batch)[0]

        self.classes_ = np.asarray(LABELS, dtype=object)
        y_idx = np.asarray([LABELS.index(v) for v in y_arr])
        self.label_head_ = self._lr(self.C).fit(feats, y_idx)
        self.topics_ = np.asarray(TOPICS, dtype=object)
        t_idx = np.asarray([TOPICS.index(t) for t in topic_arr])
        self.topic_head_ = self._lr(self.topic_C).fit(feats, t_idx)
        self.temperature_ = self._fit_temperature(feats, y_idx, t_idx) if self.calibrate else 1.0

        self.issue_heads_ = {}
        for issue in (Label.UX.value, Label.CX.value):
            target = np.asarray([issue in m for m in multi], dtype=int)
            self.issue_heads_[issue] = self._lr(self.C, balanced=False).fit(feats, target)

        self._heads = None
        self._centred = None
        return self

    def _lr(self, C: float, balanced: bool = True) -> LogisticRegression:
        return LogisticRegression(
            C=C,
            max_iter=self.max_iter,
            class_weight=self.class_weight if balanced else None,
            random_state=self.random_state,
        )

    def _mixed_scores(self, label_logits: np.ndarray, topic_logits: np.ndarray) -> np.ndarray:
        """Label log-scores: the label head mixed with the topic head summed up to its labels.

        The 15-way topic head sees finer structure; its view of the label is a second opinion
        that generalises better to real text than the 3-way head alone.
        """
        topic_to_label = np.log(_softmax(topic_logits) @ _TOPIC_TO_LABEL + 1e-12)
        mixed: np.ndarray = (1.0 - self.topic_mix) * _log_softmax(label_logits) + self.topic_mix * topic_to_label
        return mixed

    def _fit_temperature(self, feats: sp.csr_matrix, y_idx: np.ndarray, t_idx: np.ndarray) -> float:
        """One temperature for the label scores, fitted on out-of-fold scores (NLL)."""
        folds = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)
        scores = np.zeros((feats.shape[0], len(LABELS)))
        for train, test in folds.split(np.zeros(len(y_idx)), y_idx):
            label_head = clone(self.label_head_).fit(feats[train], y_idx[train])
            with warnings.catch_warnings():
                # sklearn's "could be a regression problem" hint fires on small folds with 15 topics.
                warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
                topic_head = clone(self.topic_head_).fit(feats[train], t_idx[train])
            topic_logits = np.full((test.size, len(TOPICS)), -1e9)
            topic_logits[:, topic_head.classes_] = topic_head.decision_function(feats[test])
            scores[test] = self._mixed_scores(label_head.decision_function(feats[test]), topic_logits)

        def nll(t: float) -> float:
            return float(-_log_softmax(scores / t)[np.arange(len(y_idx)), y_idx].mean())

        temperature = float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)
        if self.keep_oof:
            # Calibrated out-of-fold label probabilities of the training texts, for label audits.
            self.oof_proba_ = _softmax(scores / temperature)
        return temperature

    # ------------------------------------------------------------ features
    def _embedder(self) -> EmbeddingFeatures | None:
        if not self.use_embeddings:
            return None
        # Built lazily after fit or unpickling: word sums come from the verified packaged asset.
        if getattr(self, "_runtime", None) is None:
            with _LOCK:
                if getattr(self, "_runtime", None) is None:
                    asset = load_asset(Path(self.asset_path) if self.asset_path else None, self.asset_sha256_)
                    self._runtime = EmbeddingFeatures(asset, self.table_)
        return self._runtime

    def _features(self, batch: TokenBatch) -> tuple[sp.csr_matrix, dict[str, Any]]:
        lex = self.lexical_.transform(self.table_, batch)
        extra: dict[str, Any] = {"lex": lex}
        embedder = self._embedder()
        if embedder is None:
            return lex, extra
        emb, scale, extra_sums = embedder.transform(batch)
        extra.update(scale=scale, extra_sums=extra_sums)
        feats = sp.hstack([lex, sp.csr_matrix(emb * self.embedding_weight)], format="csr")
        return feats, extra

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_runtime"] = None
        state["_ok_surface"] = None
        state["_ok_feature"] = None
        state["_heads"] = None
        state["_centred"] = None
        state["_centred_emb"] = None
        state["_surface_score"] = None
        return state

    # ------------------------------------------------------------- predict
    def _stacked_heads(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All heads as one weight matrix (lexical rows, embedding rows) and one bias vector.

        Columns: the 3 label logits, the ux and cx issue logits, the 15 topic logits.
        """
        heads = getattr(self, "_heads", None)
        if heads is None:
            issue = [self.issue_heads_[k] for k in (Label.UX.value, Label.CX.value)]
            # Topics absent from the training data keep a hopeless bias, so columns stay aligned.
            topic_coef = np.zeros((len(TOPICS), self.label_head_.coef_.shape[1]))
            topic_bias = np.full(len(TOPICS), -1e9)
            topic_coef[self.topic_head_.classes_] = self.topic_head_.coef_
            topic_bias[self.topic_head_.classes_] = self.topic_head_.intercept_
            coef = np.vstack([self.label_head_.coef_, *(h.coef_ for h in issue), topic_coef])
            bias = np.concatenate([self.label_head_.intercept_, *(h.intercept_ for h in issue), topic_bias])
            n_lex = self.lexical_.n_features
            # float32 like the features, so no matrix is up-cast per batch.
            w_lex = np.ascontiguousarray(coef[:, :n_lex].T, dtype=np.float32)
            w_emb = np.ascontiguousarray(coef[:, n_lex:].T * self.embedding_weight, dtype=np.float32)
            heads = self._heads = (w_lex, w_emb, bias)
        return heads

    def _logits(self, batch: TokenBatch) -> tuple[np.ndarray, dict[str, Any]]:
        """Logits of every head for a batch, without building the stacked feature matrix.

        Works on raw CSR arrays (scipy's per-call checks cost more than the maths on a few
        texts) and computes each per-batch intermediate once; ``extra`` hands them to the
        evidence.
        """
        w_lex, w_emb, bias = self._stacked_heads()
        marked = self.table_.marked_units(batch)
        lex, lex_rows, uni_pos = self.lexical_.parts(self.table_, batch, marked)
        extra: dict[str, Any] = {"lex": lex, "lex_rows": lex_rows, "uni_pos": uni_pos, "marked": marked}
        logits = csr_dot(lex, w_lex).astype(np.float64) + bias
        embedder = self._embedder()
        if embedder is not None:
            negated = self.table_.nominal_negated(batch)
            emb, scale, extra_sums = embedder.transform(batch, negated)
            extra.update(scale=scale, extra_sums=extra_sums, negated=negated)
            logits += emb @ w_emb
        return logits, extra

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, columns in ``classes_`` order (ux, cx, other)."""
        logits, _ = self._logits(self.table_.tokenize(_check_texts(X)))
        return self._label_proba(logits)

    def _label_proba(self, logits: np.ndarray) -> np.ndarray:
        return _softmax(self._mixed_scores(logits[:, :3], logits[:, 5:]) / self.temperature_)

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """Primary labels."""
        labels: np.ndarray = self.classes_[self.predict_proba(X).argmax(axis=1)]
        return labels

    def predict_batch(self, X: Sequence[str], evidence: bool = True) -> list[Prediction]:
        """Full predictions for a batch of texts, in one vectorised pass."""
        texts = _check_texts(X)
        if not texts:
            return []
        batch = self.table_.tokenize(texts)
        logits, extra = self._logits(batch)
        proba = self._label_proba(logits)
        label_idx = proba.argmax(axis=1)
        topic_logits = logits[:, 5:]
        topic_idx = np.where(_TOPIC_OF_LABEL[label_idx], topic_logits, -np.inf).argmax(axis=1)
        issue = (logits[:, 3:5] >= _logit(self.both_threshold)).tolist()
        ev = self._evidence(batch, extra, label_idx) if evidence and self.evidence_k > 0 else [()] * len(texts)

        # Build the per-text answers from plain lists: no numpy scalar access inside the loop.
        out = []
        for k, row, t, (ux_hit, cx_hit), words in zip(label_idx.tolist(), proba.tolist(), topic_idx.tolist(), issue, ev):
            # The other issue label joins a ux or cx answer when its own head says so.
            second = cx_hit if k == _UX_I else ux_hit if k == _CX_I else False
            out.append(
                Prediction(LABELS[k], _LABEL_SETS[k * 2 + second], TOPICS[t], row[k], dict(zip(LABELS, row)), words)
            )
        return out

    # ------------------------------------------------------------ evidence
    def _evidence(self, batch: TokenBatch, extra: dict[str, Any], label_idx: np.ndarray) -> list[tuple[str, ...]]:
        """Words and phrases whose features pushed the chosen label up the most (vectorised)."""
        centred, centred_emb = self._centred_heads()
        lex: CsrParts = extra["lex"]
        data, indices, rows = lex.data, lex.indices, extra["lex_rows"]
        assert data is not None
        # Flat takes: a 2-D fancy index with two index arrays costs several times more.
        lex_contrib = data * centred.ravel().take(label_idx[rows] * centred.shape[1] + indices)
        n_uni = self.lexical_.n_uni_

        # Per token: the unigram weight of its lemma(s) plus its share of the embedding term.
        doc, sid = batch.doc, batch.sid
        if centred_emb is None:
            tok_score = np.zeros(sid.size)
        else:
            negated: np.ndarray = extra["negated"]
            scores = self._surface_scores()
            if not batch.extra:
                # Every token is a fitted surface: one take, then zero the ones left out of the embedding.
                tok_score = scores.ravel().take(sid * scores.shape[1] + label_idx[doc])
                tok_score[negated] = 0.0
            else:
                tok_score = np.zeros(sid.size)
                in_emb = ~negated
                is_known = sid < batch.n_known
                known = is_known & in_emb
                tok_score[known] = scores.ravel().take(sid[known] * scores.shape[1] + label_idx[doc[known]])
                unknown = ~is_known & in_emb
                if unknown.any():
                    es = extra["extra_sums"][sid[unknown] - batch.n_known]
                    tok_score[unknown] = np.einsum("ij,ij->i", es, centred_emb[label_idx[doc[unknown]]])
            tok_score /= extra["scale"][doc]
        tok_of_unit = extra["marked"][2]
        uni_pos: np.ndarray = extra["uni_pos"]
        has = uni_pos >= 0
        if has.any():
            # Unigram features in order of their units; a token with two units ("can't") gets both.
            _add_in_order(tok_score, tok_of_unit[has], lex_contrib[uni_pos[has]])

        ok = self._evidence_ok(sid, batch)
        if getattr(self, "_ok_feature", None) is None:
            self._ok_feature = np.asarray([_showable_phrase(n) for n in self.lexical_.feature_names_], dtype=bool)
        is_bigram = (indices >= n_uni) & self._ok_feature[indices]
        # Candidates: tokens (kind 0, id = surface id) and bigrams (kind 1, id = feature column).
        tok_ok = ok & (tok_score > 0)
        big_ok = is_bigram & (lex_contrib > 0)
        n_tok = int(np.count_nonzero(tok_ok))
        c_row = np.concatenate([doc[tok_ok], rows[big_ok]])
        c_score = np.concatenate([tok_score[tok_ok], lex_contrib[big_ok]])
        c_id = np.concatenate([sid[tok_ok], indices[big_ok]])
        # One float sort: by row, then by falling score (tanh keeps scores inside the row's band).
        order = np.argsort(c_row * 4.0 + (1.0 - np.tanh(c_score)), kind="stable")
        c_row, c_id = c_row[order], c_id[order]
        c_kind = order >= n_tok
        # A word that occurs twice has the same score, so its copies sit side by side.
        fresh = np.ones(c_row.size, dtype=bool)
        fresh[1:] = (c_row[1:] != c_row[:-1]) | (c_kind[1:] != c_kind[:-1]) | (c_id[1:] != c_id[:-1])
        c_row, c_kind, c_id = c_row[fresh], c_kind[fresh], c_id[fresh]
        starts = np.searchsorted(c_row, c_row, side="left")
        keep = (np.arange(c_row.size) - starts) < self.evidence_k
        result: list[list[str]] = [[] for _ in range(batch.n_docs)]
        names = self.lexical_.feature_names_
        surfaces, n_known, batch_extra = self.table_.surfaces, batch.n_known, batch.extra
        for r, kind, ident in zip(c_row[keep].tolist(), c_kind[keep].tolist(), c_id[keep].tolist()):
            if kind:
                result[r].append(_display(names[ident]))
            else:
                result[r].append(surfaces[ident] if ident < n_known else batch_extra[ident - n_known])
        return [tuple(x) for x in result]

    def _surface_scores(self) -> np.ndarray:
        """Per fitted surface and label: its word-piece sum dotted with the centred embedding head.

        What the evidence needs per known token, computed once instead of gathering a
        256-wide row pair per token and call. Row by row with the same einsum on the same
        contiguous float32 x float64 operands as a per-call gather, so the floats are identical.
        """
        if getattr(self, "_surface_score", None) is None:
            embedder = self._embedder()
            _, centred_emb = self._centred_heads()
            assert embedder is not None and centred_emb is not None
            sums = embedder.sums
            out = np.empty((sums.shape[0], centred_emb.shape[0]))
            step = 4096
            for start in range(0, sums.shape[0], step):
                chunk = sums[start : start + step]
                for k in range(centred_emb.shape[0]):
                    out[start : start + step, k] = np.einsum("ij,ij->i", chunk, np.tile(centred_emb[k], (chunk.shape[0], 1)))
            self._surface_score = out
        return self._surface_score

    def _centred_heads(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The label head centred over labels, and its embedding part scaled as in the logits.

        Computed once: centring the whole label head costs milliseconds, too much per call.
        """
        centred = getattr(self, "_centred", None)
        if centred is None:
            coef = self.label_head_.coef_
            # C order: sklearn's coef_ is Fortran-ordered, and ravel() would copy it on every call.
            centred = np.ascontiguousarray(coef - coef.mean(axis=0, keepdims=True))
            n_lex = self.lexical_.n_features
            self._centred_emb = centred[:, n_lex:] * self.embedding_weight if self.use_embeddings else None
            self._centred = centred
        return centred, self._centred_emb

    def _evidence_ok(self, sid: np.ndarray, batch: TokenBatch) -> np.ndarray:
        """Tokens that may be shown as evidence: words, not masks, stop words or punctuation."""
        ok_surface = getattr(self, "_ok_surface", None)
        if ok_surface is None:
            ok_surface = self._ok_surface = np.asarray([_showable(s) for s in self.table_.surfaces], dtype=bool)
        if not batch.extra:
            shown: np.ndarray = ok_surface[sid]
            return shown
        ok = np.zeros(sid.size, dtype=bool)
        known = sid < batch.n_known
        ok[known] = ok_surface[sid[known]]
        if batch.extra:
            extra_ok = np.asarray([_showable(s) for s in batch.extra], dtype=bool)
            ok[~known] = extra_ok[sid[~known] - batch.n_known]
        return ok


def _showable_phrase(name: str) -> bool:
    parts = [p.removeprefix("not:") for p in name.split(" ")]
    return not any(p in _NOT_EVIDENCE for p in parts) and any(_showable(p) for p in parts)


def _add_in_order(target: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """``np.add.at(target, index, values)`` for a non-decreasing index, with the same floats, faster.

    Repeats of an index are consecutive; the k-th occurrences of all indices are added in
    pass k, so each target still receives its values in their original order.
    """
    first = np.ones(index.size, dtype=bool)
    first[1:] = index[1:] != index[:-1]
    if first.all():
        target[index] += values
        return
    starts = np.flatnonzero(first)
    rank = np.arange(index.size) - np.repeat(starts, np.diff(starts, append=index.size))
    for k in range(int(rank.max()) + 1):
        sel = rank == k
        target[index[sel]] += values[sel]


@lru_cache(maxsize=1 << 16)
def _display(name: str) -> str:
    # Units inside a negation scope are named "not:<lemma>"; show them as plain words after "not".
    parts = name.split(" ")
    plain = " ".join(p.removeprefix("not:") for p in parts)
    return f"not {plain}" if parts[0].startswith("not:") else plain


def _showable(word: str) -> bool:
    return word not in _NOT_EVIDENCE and word not in STOP_WORDS and any(ch.isalpha() for ch in word)


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return float(np.log(p / (1 - p)))


_LOCK = threading.Lock()
_UX_I, _CX_I = LABELS.index(Label.UX.value), LABELS.index(Label.CX.value)
#: labels for (primary label index * 2 + has second issue label)
_LABEL_SETS = [("ux",), ("ux", "cx"), ("cx",), ("cx", "ux"), ("other",), ("other",)]
_TOPIC_TO_LABEL = np.asarray([[LABEL_OF_TOPIC[t] == lab for lab in LABELS] for t in TOPICS], dtype=float)
#: per label, which topics belong to it
_TOPIC_OF_LABEL = _TOPIC_TO_LABEL.T > 0


def _softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax; the same operations as scipy.special.softmax(x, axis=1), minus its dispatch."""
    shifted = np.exp(x - np.maximum.reduce(x, axis=1, keepdims=True))
    probs: np.ndarray = shifted / np.add.reduce(shifted, axis=1, keepdims=True)
    return probs


def _log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax; the same operations as scipy.special.log_softmax(x, axis=1)."""
    top = np.maximum.reduce(x, axis=1, keepdims=True)
    if not np.isfinite(top).all():
        top = np.where(np.isfinite(top), top, 0.0)
    shifted = x - top
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.add.reduce(np.exp(shifted), axis=1, keepdims=True))
_NOT_EVIDENCE = {SEP, *MASKS, "\ue000", "\ue001", "\ue002"}


def _check_texts(X: Sequence[str]) -> list[str]:
    texts = list(X)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text {i} is {type(t).__name__}, expected str")
    return texts
