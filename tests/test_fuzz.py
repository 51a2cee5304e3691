"""API fuzzing: schemathesis drives a real uvicorn process from its own OpenAPI schema, keys supplied.

No answer may be a 5xx, and every answer must match the schema (status code, content type, body).
CI runs a bounded, seeded number of examples per operation; `make fuzz` runs many more.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.test_reload import _ready_version
from tests.test_service import _free_port

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path, shipped):
    import time

    port = _free_port()
    env = {**os.environ, "UXCX_MODELS_DIR": str(ROOT / "models"), "UXCX_DATA_DIR": str(tmp_path / "var"),
           "UXCX_API_KEYS": "fuzz-key", "UXCX_STORE_TEXT": "true", "UXCX_RATE_LIMIT": ""}
    env.pop("UXCX_DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while _ready_version(port) is None:
            assert time.time() < deadline and server.poll() is None, "the server did not start"
            time.sleep(0.3)
        examples = os.environ.get("UXCX_FUZZ_EXAMPLES", "15")
        out = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run", f"http://127.0.0.1:{port}/openapi.json",
             "-H", "X-API-Key: fuzz-key", "--checks", CHECKS, "--max-examples", examples, "--seed", "1",
             "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=900,
        )
        assert out.returncode == 0, out.stdout[-6000:]
        assert "8 / 8" in out.stdout or "Tested: 8" in out.stdout
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode(errors="replace")[-3000:]
