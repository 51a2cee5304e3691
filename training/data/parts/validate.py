"""Quick validator for corpus part files (helper use). Usage: python3 validate.py FILE"""
import json, sys, collections
TOPICS = {
    "ux": {"crash_error", "performance", "layout_design", "navigation_usability", "checkout_payment_flow", "login_account_access"},
    "cx": {"product_quality", "delivery_fulfilment", "customer_service", "billing_refund", "returns_warranty", "pricing_policy"},
    "other": {"praise", "feature_request", "none"},
}
path = sys.argv[1]
ok = 0; bad = 0; ids = set(); texts = set()
lab = collections.Counter(); top = collections.Counter(); src = collections.Counter(); both = 0
for n, line in enumerate(open(path, encoding="utf-8"), 1):
    if not line.strip():
        continue
    try:
        r = json.loads(line)
        assert set(r) == {"id", "text", "label", "labels", "topic", "source"}, f"fields {sorted(r)}"
        assert isinstance(r["text"], str) and r["text"].strip(), "empty text"
        assert r["label"] in TOPICS, f"label {r['label']}"
        assert r["topic"] in TOPICS[r["label"]], f"topic {r['topic']} not under {r['label']}"
        assert r["label"] in r["labels"], "label not in labels"
        assert set(r["labels"]) <= {"ux", "cx", "other"} and len(set(r["labels"])) == len(r["labels"]), "labels"
        assert not ("other" in r["labels"] and len(r["labels"]) > 1), "other beside ux/cx"
        assert r["id"] not in ids, f"duplicate id {r['id']}"
        key = " ".join(r["text"].lower().split())
        assert key not in texts, "duplicate text"
        ids.add(r["id"]); texts.add(key)
        ok += 1; lab[r["label"]] += 1; top[r["topic"]] += 1; src[r["source"]] += 1; both += len(r["labels"]) == 2
    except Exception as e:  # noqa
        bad += 1; print(f"line {n}: {e}: {line[:80]!r}")
print(f"ok={ok} bad={bad} both={both} ({both/max(ok,1):.1%})")
print("labels", dict(lab)); print("topics", dict(sorted(top.items()))); print("sources", dict(src))
