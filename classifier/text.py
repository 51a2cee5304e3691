"""Text processing: spaCy builds the token tables at training time; inference applies them vectorised.

spaCy (``spacy.blank("en")`` with the lookup lemmatizer from ``spacy-lookups-data``)
decides, once per distinct word form, its normalised lemma units ("can't" -> can, not;
"crashes" -> crash) and which forms are URLs, e-mails, handles, numbers or redaction
runs. Per text at inference only a compiled regex and dictionary lookups run, over the
whole batch at once, so the per-text cost stays far below spaCy's tokenizer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Mask units that replace personal or volatile tokens.
MASK_URL = "<url>"
MASK_EMAIL = "<email>"
MASK_USER = "<user>"
MASK_NUM = "<num>"
MASK_REDACTED = "<redacted>"
MASKS: tuple[str, ...] = (MASK_URL, MASK_EMAIL, MASK_USER, MASK_NUM, MASK_REDACTED)
#: The unit every word unseen at training time maps to (never a feature).
UNK = "<unk>"
#: Separator between texts of a batch; the tokenizer yields it as its own token.
SEP = "\x00"
_MASK_CHARS = {"\ue000": MASK_URL, "\ue001": MASK_EMAIL, "\ue002": MASK_USER}

# The fast path: URLs are replaced first, then punctuation and @handles are spaced out
# by one C-level substitution and the batch is split on whitespace. Tokens the table does
# not know are split again by FALLBACK_RE, which mirrors spaCy's finer rules.
URL_RE = re.compile(r"(?:https?://|www\.)\S+")
HANDLE_RE = re.compile(r"@\w+")
# A plain character class lets the regex engine scan ahead fast; an alternation here costs 2x.
PUNCT_RE = re.compile(r"[^\w\s']")
FALLBACK_RE = re.compile(
    r"x{2,}(?:[/.\-]x{2,})*(?:[/.\-]\d+)?(?![^\W\d_])"
    r"|\d+(?:[.,:/\-]\d+)*"
    r"|[^\W\d_]+(?:'[^\W\d_]+)*"
    r"|[^\w\s]"
)
EMAIL_LOCAL_RE = re.compile(r"[\w.+-]+$")
EMAIL_DOMAIN_RE = re.compile(r"@[\w-]+(?:\.[\w-]+)+")
URL_CHAR = "\ue000"
EMAIL_CHAR = "\ue001"
USER_CHAR = "\ue002"
_REPLACEMENTS = (("\u2019", "'"), ("\u2018", "'"), ("`", "'"), ("\u00b4", "'"), *((str(d), "0") for d in range(1, 10)))
_REDACTION_RE = re.compile(r"x{2,}(?:[/.\-]x{2,})*(?:[/.\-]\d+)?")
_HANDLE_RE = re.compile(r"@\w+")
_PUNCT = "!?.,;:-()[]{}\"/\\*&%$£€#+=<>|~^_'"


def _space_out(match: re.Match[str]) -> str:
    return " " + match.group() + " "


def _mask_emails(text: str) -> str:
    """Replace e-mail addresses by a mask character; cost grows with '@' count, not length."""
    if "@" not in text:
        return text
    out: list[str] = []
    last = 0
    pos = text.find("@")
    while pos != -1:
        domain = EMAIL_DOMAIN_RE.match(text, pos)
        local = EMAIL_LOCAL_RE.search(text, max(last, pos - 64), pos) if domain else None
        if local is not None and domain is not None:
            out.append(text[last : local.start()])
            out.append(f" {EMAIL_CHAR} ")
            last = domain.end()
        pos = text.find("@", max(pos + 1, last))
    out.append(text[last:])
    return "".join(out)


# Byte classes for the hashed tokenizer: 0 space, 1 word (letters, digits, _, ', any non-ASCII), 2 punctuation.
_BYTE_CLASS = np.asarray(
    [1 if b >= 0x80 or chr(b).isalnum() or chr(b) in "_'" else 0 if chr(b).isspace() else 2 for b in range(256)],
    dtype=np.int8,
)
_P = 1099511628211  # odd, so invertible modulo 2**64
_P_INV = pow(_P, -1, 1 << 64)


def prepare(text: str) -> str:
    """Mask URLs, e-mails and handles in normalised text (the string passes before byte tokenizing)."""
    return HANDLE_RE.sub(f" {USER_CHAR} ", _mask_emails(URL_RE.sub(f" {URL_CHAR} ", text)))


def _positions(items: list[int], value: int) -> Iterator[int]:
    """Indices of ``value`` in ``items``, found by list.index (a C scan) rather than a Python loop."""
    i = -1
    while True:
        try:
            i = items.index(value, i + 1)
        except ValueError:
            return
        yield i


def _encodes(text: str) -> bool:
    """True when the text is valid UTF-8 as it stands (no lone surrogates for the byte path to replace)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@lru_cache(maxsize=4)
def _power_table(base: int, size: int) -> np.ndarray:
    out = np.empty(size, dtype=np.uint64)
    out[0] = 1
    out[1:] = np.uint64(base)
    np.cumprod(out, out=out)  # wraps modulo 2**64, as intended
    out.flags.writeable = False
    return out


def _powers(base: int, n: int) -> np.ndarray:
    # Tables grow in powers of two and are reused across batches (read-only, thread-safe).
    size = 1 << max(n - 1, 1).bit_length()
    return _power_table(base, size)[:n]


def token_hashes(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, hash) of every token in a UTF-8 byte buffer, vectorised.

    A token is a maximal run of word bytes or a single punctuation byte. Its hash is
    sum(b_i * P**(i - start)) modulo 2**64, read off prefix sums, so it does not depend
    on where the token sits.
    """
    n = buf.size
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.uint64)
    cls = _BYTE_CLASS[buf]
    # A byte starts (ends) a token when its class differs from the byte before (after) it,
    # or when it is punctuation; both lists come out sorted, so no merge sort is needed.
    padded = np.zeros(n + 2, dtype=np.int8)
    padded[1:-1] = cls
    change = padded[1:] != padded[:-1]
    split = cls == 2
    in_token = cls != 0
    starts = np.flatnonzero((change[:-1] | split) & in_token)
    ends = np.flatnonzero((change[1:] | split) & in_token) + 1
    with np.errstate(over="ignore"):
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum((buf.astype(np.uint64) + np.uint64(1)) * _powers(_P, n), out=prefix[1:])
        hashes = (prefix[ends] - prefix[starts]) * _powers(_P_INV, n)[starts]
    return starts, ends, hashes


def _token_re() -> re.Pattern[str]:
    """The byte tokenizer's rule as a str regex: word runs (non-ASCII counts as word) or one other non-space."""
    word = "".join(re.escape(chr(b)) for b in range(128) if _BYTE_CLASS[b] == 1) + "\x80-\U0010ffff"
    space = "".join(re.escape(chr(b)) for b in range(128) if _BYTE_CLASS[b] == 0)
    return re.compile(f"[{word}]+|[^{word}{space}]")


def _split_punct_re() -> re.Pattern[str]:
    """One punctuation byte (of the byte tokenizer's classes) as a str regex, for spacing out."""
    keep = "".join(re.escape(chr(b)) for b in range(128) if _BYTE_CLASS[b] != 2) + "\\x80-\\U0010ffff"
    return re.compile(f"[^{keep}]")


TOKEN_RE = _token_re()
SPLIT_PUNCT_RE = _split_punct_re()
#: Non-ASCII characters str.split() treats as whitespace but the byte tokenizer keeps inside words.
UNICODE_SPACES = ("\x85", "\xa0", "\u1680", *map(chr, range(0x2000, 0x200B)), "\u2028", "\u2029", "\u202f", "\u205f", "\u3000")
#: Up to this many characters a batch is tokenized with one regex and dictionary lookups:
#: numpy's per-call costs outweigh its per-byte speed on short input.
SMALL_BATCH_CHARS = 2000
#: Unknown tokens whose finer split is remembered per table (the cache is emptied when full).
_PIECE_CACHE_SIZE = 50_000


class HashIndex:
    """uint64 keys to int64 values with vectorised lookups (open addressing, linear probing).

    A gather or two per query instead of a 17-step binary search: the table is 4x the keys,
    slots come from the high bits of a multiplicative mix.
    """

    _MIX = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        keys = np.asarray(keys).astype(np.uint64)
        bits = max(int(np.ceil(np.log2(max(keys.size, 1) * 4))), 4)
        self.shift = np.uint64(64 - bits)
        size = 1 << bits
        self.mask = np.int64(size - 1)
        self.slots = np.zeros(size, dtype=np.uint64)
        self.values = np.full(size, -1, dtype=np.int64)
        self.used = np.zeros(size, dtype=bool)
        pending = np.arange(keys.size)
        pos = self._slot(keys)
        while pending.size:
            p = pos[pending]
            free = ~self.used[p]
            slots, first = np.unique(p[free], return_index=True)
            winners = pending[free][first]
            self.used[slots] = True
            self.slots[slots] = keys[winners]
            self.values[slots] = values[winners]
            placed = np.zeros(keys.size, dtype=bool)
            placed[winners] = True
            pending = pending[~placed[pending]]
            pos[pending] = (pos[pending] + 1) & self.mask

    def _slot(self, keys: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return ((keys * self._MIX) >> self.shift).astype(np.int64)

    def get(self, queries: np.ndarray) -> np.ndarray:
        """Values of the queries; -1 where a query is not a key."""
        queries = np.asarray(queries).astype(np.uint64, copy=False)
        pos = self._slot(queries)
        # First probe for all queries at once; most keys sit in their home slot.
        occupied = self.used[pos]
        hit = occupied & (self.slots[pos] == queries)
        out = np.where(hit, self.values[pos], -1)
        todo = np.flatnonzero(occupied & ~hit)
        while todo.size:
            p = pos[todo] = (pos[todo] + 1) & self.mask
            occupied = self.used[p]
            hit = occupied & (self.slots[p] == queries[todo])
            out[todo[hit]] = self.values[p[hit]]
            todo = todo[occupied & ~hit]
        return out


def surface_hashes(surfaces: Sequence[str]) -> np.ndarray:
    """The hash token_hashes gives each surface string (as if it stood alone)."""
    mod = 1 << 64
    powers = [1]
    hashes = np.zeros(len(surfaces), dtype=np.uint64)
    for i, surface in enumerate(surfaces):
        data = surface.encode("utf-8")
        while len(powers) < len(data):
            powers.append(powers[-1] * _P % mod)
        hashes[i] = sum((b + 1) * powers[k] for k, b in enumerate(data)) % mod
    return hashes


def fast_split(text: str) -> list[str]:
    """First-pass tokens of an already normalised text (or a whole joined batch)."""
    return PUNCT_RE.sub(_space_out, prepare(text)).split()


def normalise(text: str, nfkc: bool = True) -> str:
    """Unicode-normalise (NFKC) and lower-case one text the same way the batch path does."""
    if nfkc and not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = text.lower()
    # str.replace runs at memory speed; translate() drops to a slow path on non-ASCII text.
    for old, new in _REPLACEMENTS:
        if old in text:
            text = text.replace(old, new)
    return text


def split_tokens(text: str) -> list[str]:
    """Surface tokens of one text with every token split to its finest form (tables, tests)."""
    out: list[str] = []
    for tok in fast_split(normalise(text)):
        if tok in _MASK_CHARS:
            out.append(tok)
        else:
            out.extend(FALLBACK_RE.findall(tok))
    return out


def mask_of(token: str) -> str | None:
    """The mask unit for a URL, e-mail, handle, number or redaction token; None for a word."""
    from spacy.lang.en.lex_attrs import like_num
    from spacy.lang.lex_attrs import like_email, like_url

    if token in _MASK_CHARS:
        return _MASK_CHARS[token]
    if _REDACTION_RE.fullmatch(token):
        return MASK_REDACTED
    if _HANDLE_RE.fullmatch(token):
        return MASK_USER
    if like_email(token):
        return MASK_EMAIL
    if token.startswith(("http://", "https://", "www.")) or (
        "." in token and not token[0].isdigit() and like_url(token)
    ):
        return MASK_URL
    if token[0].isdigit() or (token[0] in "+-.," and like_num(token)):  # type: ignore[no-untyped-call]
        return MASK_NUM
    return None


def build_nlp() -> spacy.language.Language:  # type: ignore[name-defined]  # noqa: F821
    """spaCy's blank English pipeline with the lookup lemmatizer (no model download)."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


def english_forms() -> list[str]:
    """Word forms of spaCy's English lemma lookup table (from ``spacy-lookups-data``)."""
    import gzip
    import json
    from importlib.resources import files

    path = files("spacy_lookups_data").joinpath("data", "en_lemma_lookup.json.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        table: dict[str, str] = json.load(fh)
    forms = {k.lower() for k in table} | {v.lower() for v in table.values()}
    from spacy.lang.en.stop_words import STOP_WORDS

    forms |= set(STOP_WORDS) | set(_PUNCT)
    forms |= {"x" * k for k in range(2, 13)} | {"0" * k for k in range(1, 13)}
    return sorted(f for f in forms if f and " " not in f)


@dataclass(frozen=True)
class TokenBatch:
    """A tokenized batch: per token its document index and surface id.

    Surface ids below ``n_known`` index the fitted table; ids from ``n_known`` on
    index ``extra``, the word forms first seen in this batch.
    """

    doc: np.ndarray
    sid: np.ndarray
    n_docs: int
    n_known: int
    extra: tuple[str, ...]


class TokenTable:
    """Maps surface tokens to lexical units, built with spaCy from the forms it is given."""

    def __init__(self, surfaces: Sequence[str], units: Sequence[str], ptr: np.ndarray, flat: np.ndarray):
        self.surfaces = list(surfaces)
        self.index = {s: i for i, s in enumerate(self.surfaces)}
        self.units = list(units)
        self.unit_index = {u: i for i, u in enumerate(self.units)}
        self.ptr = ptr
        self.flat = flat
        self.mask_sids = {m: self.index[m] for m in MASKS}
        self.hash_index = HashIndex(surface_hashes(self.surfaces), np.arange(len(self.surfaces), dtype=np.int64))
        self.unk_unit = self.unit_index[UNK]
        self.unit_negator = np.asarray([u in NEGATORS for u in self.units], dtype=bool)
        self.unit_boundary = np.asarray([u in SCOPE_ENDS or u == SEP for u in self.units], dtype=bool)
        self.surface_negator = np.asarray([x in NOMINAL_NEGATORS for x in self.surfaces], dtype=bool)
        self.surface_boundary = np.asarray([x in SCOPE_ENDS or x == SEP for x in self.surfaces], dtype=bool)
        self._piece_cache: dict[str, tuple[int | str, ...]] = {}
        # Lookups by surface id with one extra row at the end for words first seen in a batch
        # (one <unk> unit, never a negator or boundary), so inference needs no np.where per call.
        n_flat = int(flat.size)
        self._n_units_ext = np.append(np.diff(ptr), 1)
        self._start_ext = np.append(ptr[:-1], n_flat)
        self._flat_ext = np.append(flat, self.unk_unit)
        self._first_unit_ext = self._flat_ext[self._start_ext]
        self._no_empty_surface = bool((self._n_units_ext > 0).all())
        self._surface_negator_ext = np.append(self.surface_negator, False)
        self._surface_boundary_ext = np.append(self.surface_boundary, False)

    @classmethod
    def build(cls, forms: Iterable[str], batch_size: int = 2000) -> TokenTable:
        """Run spaCy once over every distinct form and keep its units (norm or lemma per token)."""
        nlp = build_nlp()
        words: set[str] = set()
        masked: dict[str, str] = {**_MASK_CHARS, **{m: m for m in MASKS}}
        for form in forms:
            if not form or form == SEP:
                continue
            mask = mask_of(form)
            if mask is None:
                words.add(form)
            else:
                masked[form] = mask
        word_list = sorted(words)
        mask_list = sorted(masked)
        surfaces = [SEP, *mask_list, *word_list]
        units: list[str] = [SEP, UNK, *MASKS]
        unit_index = {u: i for i, u in enumerate(units)}

        def unit_id(u: str) -> int:
            if u not in unit_index:
                unit_index[u] = len(units)
                units.append(u)
            return unit_index[u]

        per_surface: list[list[int]] = [[unit_index[SEP]], *[[unit_index[masked[m]]] for m in mask_list]]
        for doc in nlp.pipe(word_list, batch_size=batch_size):
            ids = []
            for tok in doc:
                # Tokenizer exceptions carry norms ("n't" -> not, "gon" -> going); else the lemma.
                text = tok.norm_ if tok.norm_ != tok.lower_ else (tok.lemma_ or tok.lower_).lower()
                if text.strip():
                    ids.append(unit_id(text))
            per_surface.append(ids or [unit_index[UNK]])
        lengths = np.fromiter((len(x) for x in per_surface), dtype=np.int64, count=len(per_surface))
        ptr = np.zeros(len(per_surface) + 1, dtype=np.int64)
        np.cumsum(lengths, out=ptr[1:])
        flat = np.fromiter((u for x in per_surface for u in x), dtype=np.int64, count=int(ptr[-1]))
        return cls(surfaces, units, ptr, flat)

    def __getstate__(self) -> dict[str, object]:
        return {"surfaces": self.surfaces, "units": self.units, "ptr": self.ptr, "flat": self.flat}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["surfaces"], state["units"], state["ptr"], state["flat"])  # type: ignore[misc]

    @property
    def n_units(self) -> int:
        """Number of distinct lexical units (lemmas, norms, masks, symbols)."""
        return len(self.units)

    def tokenize(self, texts: Sequence[str]) -> TokenBatch:
        """Tokenize a whole batch with byte-level numpy passes and one sorted-hash lookup.

        The joined, normalised and masked batch is encoded to UTF-8; runs of word bytes and
        single punctuation bytes are the tokens; each token's polynomial hash (computed from
        prefix sums) is looked up among the hashes of the fitted surfaces. Only tokens the
        table does not know are turned back into strings and split by the finer rules.
        Short batches apply the same token rule with str methods and dict lookups instead,
        which costs less than numpy's per-call overhead there; both give the same ids.
        """
        joined = " \x00 ".join(texts)
        if joined.count("\x00") != max(len(texts) - 1, 0):
            # A text holding the separator itself: blank it out so batch boundaries stay exact.
            texts = [t.replace("\x00", " ") for t in texts]
            joined = " \x00 ".join(texts)
        if not joined.isascii():
            # NFKC only where it can change something: most texts are plain ASCII.
            joined = " \x00 ".join(t if t.isascii() else unicodedata.normalize("NFKC", t) for t in texts)
        text = prepare(normalise(joined, nfkc=False))
        extra: list[str] = []
        if len(text) <= SMALL_BATCH_CHARS and _encodes(text):
            sid = self._lookup_tokens(text, extra)
        else:
            sid = self._hash_tokens(text, extra)
        is_sep = sid == 0
        doc = np.cumsum(is_sep)
        keep = ~is_sep
        return TokenBatch(doc[keep], sid[keep], len(texts), len(self.surfaces), tuple(extra))

    def _lookup_tokens(self, text: str, extra: list[str]) -> np.ndarray:
        """Surface ids of a short batch: the byte tokenizer's rule in str form, then dict lookups."""
        if text.isascii() or not any(c in text for c in UNICODE_SPACES):
            # Spacing out punctuation and splitting runs at C speed, unlike findall's per-match objects;
            # str.split() then splits exactly where the byte tokenizer does.
            tokens = SPLIT_PUNCT_RE.sub(_space_out, text).split()
        else:
            tokens = TOKEN_RE.findall(text)
        get = self.index.get
        ids = [get(t, -1) for t in tokens]
        if -1 in ids:
            resolve = self._resolver(extra)
            flat: list[int] = []
            last = 0
            for i in _positions(ids, -1):
                flat.extend(ids[last:i])
                flat.extend(resolve(tokens[i]))
                last = i + 1
            flat.extend(ids[last:])
            ids = flat
        return np.asarray(ids, dtype=np.int64)

    def _hash_tokens(self, text: str, extra: list[str]) -> np.ndarray:
        """Surface ids of a long batch: byte classes and polynomial hashes, all in numpy."""
        raw = text.encode("utf-8", errors="replace")
        buf = np.frombuffer(raw, dtype=np.uint8)
        starts, ends, hashes = token_hashes(buf)
        sid = self.hash_index.get(hashes)
        unknown = np.flatnonzero(sid < 0)
        if unknown.size:
            resolve = self._resolver(extra)
            pieces: list[np.ndarray] = []
            last = 0
            for i in unknown.tolist():
                pieces.append(sid[last:i])
                pieces.append(np.asarray(resolve(raw[starts[i] : ends[i]].decode("utf-8", errors="replace")), dtype=np.int64))
                last = i + 1
            pieces.append(sid[last:])
            sid = np.concatenate(pieces)
        return sid

    def _resolver(self, extra: list[str]) -> Callable[[str], list[int]]:
        """Surface ids for tokens the table does not know: split finer, mask, or new for this batch.

        New words are appended to ``extra`` and numbered after the fitted surfaces; a
        token seen twice in the batch resolves once.
        """
        n_known = len(self.surfaces)
        seen: dict[str, int] = {}
        resolved: dict[str, list[int]] = {}

        def resolve(token: str) -> list[int]:
            ids = resolved.get(token)
            if ids is None:
                ids = resolved[token] = []
                for piece in self._pieces(token):
                    if isinstance(piece, str):
                        known = seen.get(piece)
                        if known is None:
                            known = seen[piece] = n_known + len(extra)
                            extra.append(piece)
                        ids.append(known)
                    else:
                        ids.append(piece)
            return ids

        return resolve

    def _pieces(self, token: str) -> tuple[int | str, ...]:
        """An unknown token split by the finer rules: surface ids, or the words the table lacks.

        Depends only on the token and the table, so it is remembered (bounded): the same
        rare forms recur across requests, and masking them costs several regex passes.
        """
        pieces = self._piece_cache.get(token)
        if pieces is None:
            out: list[int | str] = []
            # URLs, e-mails and handles are already masked: the finer split is one regex.
            for piece in FALLBACK_RE.findall(token):
                known = self.index.get(piece)
                if known is None:
                    mask = mask_of(piece)
                    known = self.mask_sids[mask] if mask is not None else None
                out.append(piece if known is None else known)
            pieces = tuple(out)
            if len(self._piece_cache) >= _PIECE_CACHE_SIZE:
                self._piece_cache.clear()
            self._piece_cache[token] = pieces
        return pieces

    def units_of(self, batch: TokenBatch) -> tuple[np.ndarray, np.ndarray]:
        """Expand surface ids to lexical unit ids (ragged), returning (doc, unit) per unit."""
        doc, units, _ = self.units_with_tokens(batch)
        return doc, units

    def units_with_tokens(self, batch: TokenBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(doc, unit, index of the surface token it came from) per unit."""
        # Ids of batch-extra words clip to one past the table: that row stands for "one <unk> unit".
        sid = np.minimum(batch.sid, len(self.surfaces))
        lengths = self._n_units_ext[sid]
        total = int(lengths.sum())
        if total == sid.size and self._no_empty_surface:
            # Every token has exactly one unit (the common case): no ragged expansion needed.
            return batch.doc, self._first_unit_ext[sid], np.arange(sid.size)
        offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
        within = np.arange(total) - offsets
        units = self._flat_ext[np.repeat(self._start_ext[sid], lengths) + within]
        return np.repeat(batch.doc, lengths), units, np.repeat(np.arange(sid.size), lengths)

    def marked_units(self, batch: TokenBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like units_with_tokens, with units inside a negation scope shifted by n_units."""
        doc, units, tok = self.units_with_tokens(batch)
        trigger = self.unit_negator[units]
        if not trigger.any():
            return doc, units, tok
        neg = negation_scope(doc, trigger, self.unit_boundary[units])
        return doc, units + self.n_units * neg, tok

    def nominal_negated(self, batch: TokenBatch) -> np.ndarray:
        """Per surface token: inside the scope of "no", "without", ... (left out of the embedding)."""
        sid = np.minimum(batch.sid, len(self.surfaces))
        trig = self._surface_negator_ext[sid]
        if not trig.any():
            return np.zeros(sid.size, dtype=bool)
        return negation_scope(batch.doc, trig, self._surface_boundary_ext[sid])

    def surface_of(self, sid: int, extra: Sequence[str]) -> str:
        """The surface string of a surface id (fitted or batch-extra)."""
        n = len(self.surfaces)
        return self.surfaces[sid] if sid < n else extra[sid - n]


def reference_units(texts: Iterable[str]) -> list[list[str]]:
    """Lexical units of each text computed by running spaCy on the text itself (slow path).

    Used by tests to check that the vectorised path agrees with spaCy.
    """
    nlp = build_nlp()
    out: list[list[str]] = []
    for text in texts:
        units: list[str] = []
        for surface in split_tokens(text):
            mask = mask_of(surface)
            if mask is not None:
                units.append(mask)
                continue
            for tok in nlp(surface):
                u = tok.norm_ if tok.norm_ != tok.lower_ else (tok.lemma_ or tok.lower_).lower()
                if u.strip():
                    units.append(u)
        out.append(units)
    return out


#: Units that open a negation scope, and those that close it.
NEGATORS = frozenset({"not", "no", "never", "without", "nothing", "none", "nobody", "nor", "neither", "zero"})
#: Negators that deny a thing rather than an action ("no crashes"): the negated words then carry
#: no meaning for the embedding, while "not loading" still means something is wrong.
NOMINAL_NEGATORS = frozenset({"no", "without", "nothing", "none", "zero", "nobody"})
SCOPE_ENDS = frozenset({".", ",", "!", "?", ";", ":", "but", "however", "although", "though", "yet", "-", "(", ")"})


def negation_scope(doc: np.ndarray, trigger: np.ndarray, boundary: np.ndarray) -> np.ndarray:
    """True for tokens after a trigger and before the next boundary in the same text (vectorised)."""
    n = doc.size
    if n == 0:
        return np.zeros(0, dtype=bool)
    start = np.ones(n, dtype=bool)
    start[1:] = (doc[1:] != doc[:-1]) | boundary[1:] | boundary[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    before = np.cumsum(trigger) - trigger
    scope: np.ndarray = ((before - before[first]) > 0) & ~boundary & ~trigger
    return scope
