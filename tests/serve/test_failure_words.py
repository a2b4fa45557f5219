"""A generation that fails says so by request id only: an exception's words (which can quote the
prompt or the hidden reasoning) reach neither the client nor the log."""

from __future__ import annotations

import logging

import httpx2 as httpx
import pytest

from ponder.serve.settings import ServeConfig

from tests.serve.conftest import MODEL, running_server

SECRET = "hidden reasoning 4f9c"


def leaky(prompt, completion) -> float:
    """An operator's scorer with a bug that puts private text in its exception."""
    raise ValueError(f"{SECRET}: {completion.reasoning[:40]} <object at 0x7f00>")


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    cfg = ServeConfig(db=str(tmp_path_factory.mktemp("words") / "s.db"),
                      api_scorers=("leaky=tests.serve.test_failure_words:leaky",))
    with running_server(cfg) as (base, _):
        yield base


BODY = {"model": MODEL, "messages": [{"role": "user", "content": "What is 347 * 29?"}], "max_completion_tokens": 32,
        "strategy": "best_of_n", "strategy_params": {"n": 2, "scorer": "leaky"}}


@pytest.mark.parametrize("path, stream", [("/v1/chat/completions", False), ("/v1/chat/completions", True),
                                          ("/v1/responses", False), ("/v1/responses", True)])
def test_a_failed_generation_names_no_private_text(url, path, stream, caplog):
    body = dict(BODY, stream=stream)
    if path == "/v1/responses":
        body = {k: v for k, v in body.items() if k not in ("messages", "max_completion_tokens")}
        body.update(input="What is 347 * 29?", max_output_tokens=32)
    with caplog.at_level(logging.INFO):
        r = httpx.post(url + path, json=body, timeout=60)
    text = r.text
    assert ("Generation failed" in text or "had an error" in text), text
    for private in (SECRET, "object at 0x", "ValueError("):
        assert private not in text and private not in caplog.text
    assert "ValueError at " in caplog.text  # the operator still learns what failed and where
