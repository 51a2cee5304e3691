"""Text processing: the fast batch path masks, splits and lemmatises like spaCy does."""

import random

from classifier.text import (
    MASK_EMAIL,
    MASK_NUM,
    MASK_REDACTED,
    MASK_URL,
    MASK_USER,
    TokenTable,
    english_forms,
    reference_units,
    split_tokens,
)
from training.data import TRAIN_FILE, load


def _units(table, texts):
    batch = table.tokenize(texts)
    doc, units = table.units_of(batch)
    out = [[] for _ in texts]
    for d, u in zip(doc.tolist(), units.tolist()):
        out[d].append(table.units[u])
    return out


def test_masks_urls_emails_handles_numbers_and_redactions():
    table = TokenTable.build(english_forms())
    text = "@SkyJet mail a.b@c.com or see https://x.co/a?b=1, order 12345 on XX/XX/2019 by XXXX"
    units = _units(table, [text])[0]
    for mask in (MASK_USER, MASK_EMAIL, MASK_URL, MASK_NUM, MASK_REDACTED):
        assert mask in units, mask
    joined = " ".join(units)
    assert "skyjet" not in joined and "a.b" not in joined and "x.co" not in joined


def test_contractions_and_inflections_become_lemmas():
    table = TokenTable.build(english_forms() + ["can't", "dont", "crashes"])
    assert _units(table, ["I can't log in, it crashes"])[0][:3] == ["i", "can", "not"]
    assert "crash" in _units(table, ["it crashes"])[0]
    assert _units(table, ["dont"])[0] == ["do", "not"]


def test_batch_boundaries_and_empty_texts():
    table = TokenTable.build(english_forms())
    units = _units(table, ["good text", "", "  ", "other day", "a\x00b"])
    assert units[:4] == [["good", "text"], [], [], ["other", "day"]]
    assert units[4] == ["a", "b"]


def test_fast_path_agrees_with_spacy_on_the_corpus():
    records = load([TRAIN_FILE]).records
    sample = [r.text for r in random.Random(0).sample(records, 300)]
    forms = set(english_forms())
    for text in sample:
        forms.update(split_tokens(text))
    table = TokenTable.build(forms)
    fast = _units(table, sample)
    slow = reference_units(sample)
    same = sum(a == b for a, b in zip(fast, slow))
    assert same / len(sample) >= 0.97, [(a, b) for a, b in zip(fast, slow) if a != b][:3]


def test_hash_index_finds_keys_and_only_keys():
    import numpy as np

    from classifier.text import HashIndex

    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(0, 2**63, 20000, dtype=np.int64)).astype(np.uint64)
    index = HashIndex(keys, np.arange(keys.size) * 3)
    assert (index.get(keys) == np.arange(keys.size) * 3).all()
    misses = rng.integers(0, 2**63, 5000, dtype=np.int64).astype(np.uint64)
    misses = misses[~np.isin(misses, keys)]
    assert (index.get(misses) == -1).all()
    # Clustered keys (consecutive integers, as bigram keys are) still resolve.
    dense = np.arange(1000, 4000, dtype=np.uint64)
    assert (HashIndex(dense, np.arange(3000)).get(dense[::-1]) == np.arange(3000)[::-1]).all()


def test_token_hashes_match_surface_hashes():
    import numpy as np

    from classifier.text import surface_hashes, token_hashes

    text = "the app crashes! naïve café 😡 x"
    starts, ends, hashes = token_hashes(np.frombuffer(text.encode(), dtype=np.uint8))
    raw = text.encode()
    tokens = [raw[s:e].decode() for s, e in zip(starts.tolist(), ends.tolist())]
    assert tokens == ["the", "app", "crashes", "!", "naïve", "café", "😡", "x"]
    assert (hashes == surface_hashes(tokens)).all()


def test_short_and_long_batches_tokenize_alike(monkeypatch):
    """Short batches use str split + dict lookups, long ones byte hashes: same ids either way."""
    import numpy as np

    import classifier.text as text_module

    table = TokenTable.build(english_forms()[:3000] + ["café", "naïve", "can't", "crashes", "app", "screen"])
    texts = [
        "the app crashes, can't log in!!",
        "naïve café\u2028line\u00a0nbsp\u3000wide",
        "tab\there\x1cfs and \x85 next",
        "@someone mail a.b@c.com https://x.co/a?b=1 order 12345 XXXX",
        "zzqx flurble 'quoted' £0 00th",
        "",
        "a\x00b",
        "bad \ud800 surrogate",
    ]
    for batch in ([t] for t in texts):
        short = table.tokenize(batch)
        monkeypatch.setattr(text_module, "SMALL_BATCH_CHARS", -1)
        long = table.tokenize(batch)
        monkeypatch.undo()
        assert np.array_equal(short.doc, long.doc) and np.array_equal(short.sid, long.sid), batch
        assert short.extra == long.extra
    whole = table.tokenize(texts)
    monkeypatch.setattr(text_module, "SMALL_BATCH_CHARS", -1)
    assert np.array_equal(whole.sid, table.tokenize(texts).sid)


def test_unicode_spaces_are_what_str_split_splits_on():
    from classifier.text import UNICODE_SPACES

    assert set(UNICODE_SPACES) == {chr(c) for c in range(128, 0x110000) if chr(c).isspace()}
