"""Sealed reasoning through the Responses API opens only for the account and the model it was
sealed for: a blob one key received is a 400 in another account's request, and under another
model served from the same data (and so the same sealing key). Failed before the binding."""

from __future__ import annotations

from dataclasses import replace

import openai
import pytest

from ponder.serve.settings import ServeConfig

from tests.serve.conftest import running_server

PROMPT = "What is 347 * 29?"


def first_turn(api: openai.OpenAI, model: str):
    return api.responses.create(model=model, input=PROMPT, include=["reasoning.encrypted_content"], store=False,
                                temperature=0, max_output_tokens=300)


def hand_back(api: openai.OpenAI, model: str, earlier, with_reasoning: bool = True):
    reasoning, message = earlier.output
    blob = [{"type": "reasoning", "id": reasoning.id, "summary": [], "encrypted_content": reasoning.encrypted_content}]
    return api.responses.create(model=model, store=False, max_output_tokens=8, input=[
        {"role": "user", "content": PROMPT},
        *(blob if with_reasoning else []),
        {"role": "assistant", "content": message.content[0].text},
        {"role": "user", "content": "And 58 * 73?"},
    ])


@pytest.fixture(scope="module")
def accounts(tmp_path_factory):
    cfg = ServeConfig(db=str(tmp_path_factory.mktemp("sealed") / "serve.db"))
    with running_server(cfg) as (url, services):
        a, _ = services.keys.create("alice")
        b, _ = services.keys.create("bob")
        yield cfg, url, {name: openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0)
                         for name, secret in (("alice", a), ("bob", b))}


def test_a_blob_works_for_its_owner(accounts):
    _, _, api = accounts
    earlier = first_turn(api["alice"], "ponder-default")
    # The hidden reasoning went back into the prompt: more input than the visible turns alone.
    with_blob = hand_back(api["alice"], "ponder-default", earlier).usage.input_tokens
    without = hand_back(api["alice"], "ponder-default", earlier, with_reasoning=False).usage.input_tokens
    assert with_blob > without


def test_another_account_cannot_replay_a_blob(accounts):
    _, _, api = accounts
    earlier = first_turn(api["alice"], "ponder-default")
    with pytest.raises(openai.BadRequestError) as err:
        hand_back(api["bob"], "ponder-default", earlier)
    assert err.value.body["code"] == "invalid_encrypted_content"
    assert "another account, model" in err.value.body["message"]


def test_another_model_cannot_open_a_blob(accounts):
    cfg, _, api = accounts
    earlier = first_turn(api["alice"], "ponder-default")
    # The same database, so the same sealing key and the same keys; only the model differs.
    with running_server(replace(cfg, served_model_name="ponder-other")) as (url, _):
        alice = openai.OpenAI(base_url=f"{url}/v1", api_key=api["alice"].api_key, max_retries=0)
        with pytest.raises(openai.BadRequestError) as err:
            hand_back(alice, "ponder-other", earlier)
    assert err.value.body["code"] == "invalid_encrypted_content"
