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


class Collect(logging.Handler):
    """Every record of the server's loggers, uvicorn's own included (they do not propagate)."""

    LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "ponder.serve")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record):
        self.lines.append(self.format(record))  # with any traceback the record carries

    def __enter__(self):
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc):
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.mark.parametrize("path, stream", [("/v1/chat/completions", False), ("/v1/chat/completions", True),
                                          ("/v1/responses", False), ("/v1/responses", True)])
def test_a_failed_generation_names_no_private_text(url, path, stream):
    body = dict(BODY, stream=stream)
    if path == "/v1/responses":
        body = {k: v for k, v in body.items() if k not in ("messages", "max_completion_tokens")}
        body.update(input="What is 347 * 29?", max_output_tokens=32)
    with Collect() as log:
        r = httpx.post(url + path, json=body, timeout=60)
    assert "Generation failed for request" in r.text, r.text
    for private in (SECRET, "object at 0x", "ValueError(", "Traceback"):
        assert private not in r.text and private not in log.text, log.text
    assert "ValueError at " in log.text  # the operator still learns what failed and where
