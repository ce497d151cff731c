"""schemathesis against the running service: no 5xx, and every answer (status,
content type, headers, body) is the one /openapi.json documents.

Examples are bounded (``MAX_EXAMPLES`` per operation, fixed seed) to keep the run
short; ``/admin/reload`` is driven by tests/models/test_model_trust.py instead (each call
loads and warms the models again).
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from movierec.serving.app import create_app
from movierec.serving.server import uvicorn_config
from movierec.testing import free_port

KEY = "contract-test-key-0123456789"
MAX_EXAMPLES = int(os.environ.get("MOVIEREC_CONTRACT_EXAMPLES", "10"))  # more for a deeper run
CONFIG = """
seed = 11
[checks.positive_data_acceptance]
# documented limits a schema-valid request can still meet: 1,000 long ids exceed 64 KiB
expected-statuses = ["2xx", "401", "404", "409", "413"]
"""


@pytest.fixture(scope="module")
def api_schema(example_models, tmp_path_factory):
    _, recommender = example_models
    db = tmp_path_factory.mktemp("contract") / "ratings.sqlite3"
    app = create_app(
        db_url=f"sqlite:///{db}",
        recommender=recommender,
        api_keys=[KEY],
        allowed_hosts=["127.0.0.1"],
    )
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, header_timeout=10))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    config = SchemathesisConfig.from_str(CONFIG)
    yield schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json", config=config)
    server.should_exit = True
    thread.join(timeout=10)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.exclude(path="/admin/reload").parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_matches_its_openapi_document(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
