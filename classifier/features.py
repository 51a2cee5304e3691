"""Vectorised features over a tokenized batch: TF-IDF of lemma uni/bigrams and mean static embeddings."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from classifier.embeddings import StaticAsset
from classifier.text import MASKS, SEP, UNK, HashIndex, TokenBatch, TokenTable


class LexicalFeatures:
    """Sublinear TF-IDF over lemma unigrams and bigrams, computed without per-text Python."""

    def __init__(self, min_df: int = 2, ngram_max: int = 2):
        self.min_df = min_df
        self.ngram_max = ngram_max

    def fit(self, table: TokenTable, batch: TokenBatch) -> LexicalFeatures:
        """Keep n-grams that occur in at least ``min_df`` documents; learn their idf."""
        doc, units, _ = table.marked_units(batch)
        n_units = 2 * table.n_units
        banned = np.zeros(n_units, dtype=bool)
        for u in (SEP, UNK):
            banned[table.unit_index[u]] = banned[table.unit_index[u] + table.n_units] = True
        uni_df = _doc_freq(doc, units, n_units)
        uni_df[banned] = 0
        uni_keep = np.flatnonzero(uni_df >= self.min_df)
        self.uni_map_ = np.full(n_units, -1, dtype=np.int64)
        self.uni_map_[uni_keep] = np.arange(uni_keep.size)
        dfs = [uni_df[uni_keep]]
        names = [_unit_name(table, u) for u in uni_keep.tolist()]
        self.bigram_keys_ = np.zeros(0, dtype=np.int64)
        if self.ngram_max >= 2:
            keys, bdoc = _bigrams(doc, units, n_units, banned)
            pairs = np.unique(np.stack([bdoc, keys]), axis=1)
            uniq, counts = np.unique(pairs[1], return_counts=True)
            keep = uniq[counts >= self.min_df]
            self.bigram_keys_ = keep
            dfs.append(counts[counts >= self.min_df])
            names += [f"{_unit_name(table, k // n_units)} {_unit_name(table, k % n_units)}" for k in keep.tolist()]
        self.n_units_ = n_units
        self.n_uni_ = int(uni_keep.size)
        df = np.concatenate(dfs).astype(np.float64)
        self.idf_ = (np.log((1 + batch.n_docs) / (1 + df)) + 1.0).astype(np.float32)
        self.feature_names_ = names
        return self

    def _bigram_parts(self) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "_parts", None) is None:
            first = np.zeros(self.n_units_, dtype=bool)
            second = np.zeros(self.n_units_, dtype=bool)
            first[self.bigram_keys_ // self.n_units_] = True
            second[self.bigram_keys_ % self.n_units_] = True
            self._parts = (first, second)
        return self._parts

    def _bigram_index(self) -> HashIndex:
        if getattr(self, "_index", None) is None:
            self._index = HashIndex(self.bigram_keys_, np.arange(self.bigram_keys_.size, dtype=np.int64))
        return self._index

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.pop("_parts", None)
        state.pop("_index", None)
        return state

    @property
    def n_features(self) -> int:
        """Width of the feature matrix."""
        return int(self.idf_.size)

    def transform(self, table: TokenTable, batch: TokenBatch) -> sp.csr_matrix:
        """TF-IDF matrix (rows L2-normalised) for a tokenized batch."""
        doc, units, _ = table.marked_units(batch)
        cols = self.uni_map_[units]
        rows = doc
        if self.bigram_keys_.size:
            keys, bdoc = _bigrams(doc, units, self.n_units_, None)
            # Only pairs whose two units both occur in some kept bigram need the binary search.
            first, second = self._bigram_parts()
            maybe = first[keys // self.n_units_] & second[keys % self.n_units_]
            keys, bdoc = keys[maybe], bdoc[maybe]
            found = self._bigram_index().get(keys)
            hit = found >= 0
            rows = np.concatenate([rows, bdoc[hit]])
            cols = np.concatenate([cols, self.n_uni_ + found[hit]])
        ok = cols >= 0
        rows, cols = rows[ok], cols[ok]
        # Group by row with one stable integer sort; sum_duplicates then sorts within short rows.
        order = np.argsort(rows, kind="stable")
        m = sp.csr_matrix(
            (np.ones(cols.size, dtype=np.float32), cols[order], _indptr(rows, batch.n_docs)),
            shape=(batch.n_docs, self.n_features),
        )
        m.sum_duplicates()
        np.log1p(m.data, out=m.data)
        m.data += 1.0
        m.data *= self.idf_[m.indices]
        return _l2_rows(m)


class EmbeddingFeatures:
    """Mean of static word-piece vectors per text, L2-normalised (model2vec's encoding, by table)."""

    def __init__(self, asset: StaticAsset, table: TokenTable):
        self.asset = asset
        self.table = table
        sums, counts = asset.encode_words(_embeddable(table))
        self.sums = sums
        self.counts = counts

    def transform(self, batch: TokenBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(float32 embeddings, per-doc normaliser, word-piece sums of the batch-extra words)."""
        n_known = batch.n_known
        extra_sums, extra_counts = self.asset.encode_words(batch.extra)
        keep = ~self.table.nominal_negated(batch)
        known = (batch.sid < n_known) & keep
        shape_k = (batch.n_docs, n_known)
        # Tokens arrive in document order, so the CSR structure is just the per-document counts.
        ck = sp.csr_matrix(
            (np.ones(int(known.sum()), dtype=np.float32), batch.sid[known], _indptr(batch.doc[known], batch.n_docs)),
            shape=shape_k,
        )
        emb = np.asarray(ck @ self.sums)
        total = ck @ self.counts
        if batch.extra:
            unk = (batch.sid >= n_known) & keep
            ce = sp.csr_matrix(
                (np.ones(int(unk.sum()), dtype=np.float32), (batch.doc[unk], batch.sid[unk] - n_known)),
                shape=(batch.n_docs, len(batch.extra)),
            )
            emb += ce @ extra_sums
            total = total + ce @ extra_counts
        emb /= np.maximum(total, 1.0)[:, None]
        norm = np.linalg.norm(emb, axis=1)
        norm = np.where(norm > 0, norm, 1.0)
        emb /= norm[:, None]
        scale = np.maximum(total, 1.0) * norm
        return emb, scale, extra_sums


def _indptr(doc: np.ndarray, n_docs: int) -> np.ndarray:
    ptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(doc, minlength=n_docs), out=ptr[1:])
    return ptr


def _unit_name(table: TokenTable, unit: int) -> str:
    n = table.n_units
    return table.units[unit] if unit < n else f"not:{table.units[unit - n]}"


def _embeddable(table: TokenTable) -> list[str]:
    # Masks and the separator carry no meaning for the embedding: they map to an empty string.
    mask_units = np.asarray([table.unit_index[m] for m in (*MASKS, SEP)])
    first = table.flat[table.ptr[:-1]]
    single = (table.ptr[1:] - table.ptr[:-1]) == 1
    masked = single & np.isin(first, mask_units)
    return ["" if m else s for s, m in zip(table.surfaces, masked.tolist())]


def _doc_freq(doc: np.ndarray, units: np.ndarray, n_units: int) -> np.ndarray:
    pairs = np.unique(doc.astype(np.int64) * n_units + units)
    return np.bincount(pairs % n_units, minlength=n_units)


def _bigrams(
    doc: np.ndarray, units: np.ndarray, n_units: int, banned: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    same = doc[:-1] == doc[1:]
    if banned is not None:
        same &= ~banned[units[:-1]] & ~banned[units[1:]]
    keys = units[:-1] * n_units + units[1:]
    return keys[same], doc[:-1][same]


def _l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    lengths = np.diff(m.indptr)
    sq = np.zeros(m.shape[0], dtype=np.float32)
    nonempty = lengths > 0
    if m.nnz:
        sq[nonempty] = np.sqrt(np.add.reduceat(m.data * m.data, m.indptr[:-1][nonempty]))
    sq[sq == 0] = 1.0
    m.data /= np.repeat(sq, lengths)
    return m
