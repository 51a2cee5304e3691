"""Vectorised features over a tokenized batch: TF-IDF of lemma uni/bigrams and mean static embeddings."""

from __future__ import annotations

from typing import NamedTuple

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

    def _bigram_lookup(self, keys: np.ndarray) -> np.ndarray:
        """Bigram column of each key, -1 when it is not a feature.

        A binary search over the sorted keys for a few queries (a handful of numpy calls);
        the hash index, a gather or two per key, for many.
        """
        if keys.size > SEARCH_KEYS:
            return self._bigram_index().get(keys)
        known = self.bigram_keys_
        pos = np.searchsorted(known, keys)
        np.minimum(pos, known.size - 1, out=pos)
        return np.where(known[pos] == keys, pos, -1)

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
        lex = self.parts(table, batch)[0]
        return sp.csr_matrix((lex.data, lex.indices, lex.indptr), shape=(lex.n_rows, lex.n_cols))

    def parts(
        self, table: TokenTable, batch: TokenBatch, marked: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    ) -> tuple[CsrParts, np.ndarray, np.ndarray]:
        """The TF-IDF matrix as raw CSR arrays, the row of each entry, and per marked unit its
        position in ``data`` (-1: not a feature).

        The predict path works on the arrays directly: scipy's constructor checks cost more
        than the whole computation for a few texts. ``marked`` is ``table.marked_units(batch)``
        when the caller already has it.
        """
        doc, units, _ = marked if marked is not None else table.marked_units(batch)
        cols = self.uni_map_[units]
        rows = doc
        if self.bigram_keys_.size and doc.size > 1:
            keys, bdoc = _bigrams(doc, units, self.n_units_, None)
            # Only pairs whose two units both occur in some kept bigram need a lookup.
            first, second = self._bigram_parts()
            maybe = first[keys // self.n_units_] & second[keys % self.n_units_]
            if maybe.any():
                keys, bdoc = keys[maybe], bdoc[maybe]
                found = self._bigram_lookup(keys)
                hit = found >= 0
                rows = np.concatenate([rows, bdoc[hit]])
                cols = np.concatenate([cols, self.n_uni_ + found[hit]])
        ok = cols >= 0
        # One integer sort groups entries by (row, column): CSR order with duplicates adjacent.
        key = rows[ok] * self.n_features + cols[ok]
        order = np.argsort(key, kind="stable")
        key = key[order]
        n = key.size
        new = np.ones(n + 1, dtype=bool)
        new[1:n] = key[1:] != key[:-1]
        bounds = np.flatnonzero(new)
        uniq = key[bounds[:-1]]
        counts = bounds[1:] - bounds[:-1]
        indices = uniq % self.n_features
        entry_rows = uniq // self.n_features
        indptr = _indptr(entry_rows, batch.n_docs)
        # Sublinear tf: 1 + log(count), in float32 as scipy's sum of float32 ones gave it.
        data = np.log1p(counts.astype(np.float32))
        data += 1.0
        data *= self.idf_[indices]
        _l2_normalise(data, indptr)
        # Where each unigram occurrence landed (the evidence adds its weight to its token).
        slot = np.empty(n, dtype=np.int64)
        slot[order] = np.cumsum(new[:n]) - 1
        uni_pos = np.full(units.size, -1, dtype=np.int64)
        uni_ok = ok[: units.size]
        uni_pos[uni_ok] = slot[: int(np.count_nonzero(uni_ok))]
        return CsrParts(data, indices, indptr, batch.n_docs, self.n_features), entry_rows, uni_pos


class EmbeddingFeatures:
    """Mean of static word-piece vectors per text, L2-normalised (model2vec's encoding, by table)."""

    def __init__(self, asset: StaticAsset, table: TokenTable):
        self.asset = asset
        self.table = table
        sums, counts = asset.encode_words(_embeddable(table))
        self.sums = sums
        self.counts = counts

    def transform(
        self, batch: TokenBatch, negated: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(float32 embeddings, per-doc normaliser, word-piece sums of the batch-extra words).

        ``negated`` is ``table.nominal_negated(batch)`` when the caller already has it.
        """
        n_known, n_docs = batch.n_known, batch.n_docs
        extra_sums, extra_counts = self.asset.encode_words(batch.extra)
        keep = ~(negated if negated is not None else self.table.nominal_negated(batch))
        known = (batch.sid < n_known) & keep
        ksid = batch.sid[known]
        kdoc = batch.doc[known]
        # Tokens arrive in document order, so the CSR structure is just the per-document counts.
        emb = csr_dot(CsrParts(None, ksid, _indptr(kdoc, n_docs), n_docs, n_known), self.sums)
        # Word-piece counts are small integers: any summation order gives the same float32 total.
        total = np.bincount(kdoc, weights=self.counts[ksid], minlength=n_docs).astype(np.float32)
        if batch.extra:
            unk = (batch.sid >= n_known) & keep
            udoc, usid = batch.doc[unk], batch.sid[unk] - n_known
            # Per row the distinct extra words in id order, each times its count (scipy's COO -> CSR).
            key = udoc * len(batch.extra) + usid
            uniq, counts = np.unique(key, return_counts=True)
            extra_part = CsrParts(
                counts.astype(np.float32), uniq % len(batch.extra), _indptr(uniq // len(batch.extra), n_docs), n_docs, len(batch.extra)
            )
            emb += csr_dot(extra_part, extra_sums)
            total = total + np.bincount(udoc, weights=extra_counts[usid], minlength=n_docs).astype(np.float32)
        emb /= np.maximum(total, 1.0)[:, None]
        norm = np.sqrt(np.add.reduce(emb * emb, axis=1))
        norm = np.where(norm > 0, norm, 1.0)
        emb /= norm[:, None]
        scale = np.maximum(total, 1.0) * norm
        return emb, scale, extra_sums


class CsrParts(NamedTuple):
    """A CSR matrix as plain arrays (``data`` None means all ones): no scipy checks per call."""

    data: np.ndarray | None
    indices: np.ndarray
    indptr: np.ndarray
    n_rows: int
    n_cols: int


_FIRST = np.zeros(1, dtype=np.int64)
_INT32_MAX = np.iinfo(np.int32).max
#: Up to this many bigram queries a binary search beats the hash index's fixed cost.
SEARCH_KEYS = 512
#: Up to this many rows a CSR product sums row by row in numpy; above it scipy's constructor
#: (about 40 us) costs less than the per-row reductions (measured: break-even near 8 rows).
LOOP_ROWS = 8


def csr_dot(m: CsrParts, dense: np.ndarray) -> np.ndarray:
    """``m @ dense`` with the same floats as scipy: each row summed in stored order, in dense's dtype."""
    if m.n_rows > LOOP_ROWS:
        data = m.data if m.data is not None else np.ones(m.indices.size, dtype=dense.dtype)
        indices, indptr = m.indices, m.indptr
        if max(m.n_cols, indices.size) < _INT32_MAX:
            # int32 index arrays spare scipy's constructor a scan of their contents (half its cost).
            indices, indptr = indices.astype(np.int32), indptr.astype(np.int32)
        return np.asarray(sp.csr_matrix((data, indices, indptr), shape=(m.n_rows, m.n_cols)) @ dense)
    out = np.zeros((m.n_rows, dense.shape[1]), dtype=dense.dtype)
    if not m.indices.size:
        return out
    gathered = dense[m.indices]
    if m.data is not None:
        gathered *= m.data[:, None]
    # A reduction over the outer axis adds whole rows one after another (scipy's order);
    # np.add.reduceat would not, so each row is reduced on its own.
    bounds = m.indptr.tolist()
    for r in range(m.n_rows):
        lo, hi = bounds[r], bounds[r + 1]
        if hi > lo:
            out[r] = np.add.reduce(gathered[lo:hi], axis=0)
    return out


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


def _l2_normalise(data: np.ndarray, indptr: np.ndarray) -> None:
    """Divide each CSR row's values by the row's L2 norm, in place (empty rows stay empty)."""
    if not data.size:
        return
    if indptr.size == 2:
        # One text (the common single request). reduceat, not reduce: reduce sums pairwise,
        # reduceat in order, and the norm must not depend on the batch size.
        sq = np.sqrt(np.add.reduceat(data * data, _FIRST))
        if sq[0] != 0:
            data /= sq
        return
    lengths = np.diff(indptr)
    nonempty = lengths > 0
    sq = np.ones(lengths.size, dtype=np.float32)
    sq[nonempty] = np.sqrt(np.add.reduceat(data * data, indptr[:-1][nonempty]))
    sq[sq == 0] = 1.0
    data /= np.repeat(sq, lengths)
