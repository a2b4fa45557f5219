"""/v1/responses through the official openai client: reasoning items, summaries, sealed
reasoning, stateful and stateless multi-turn, streaming events, incomplete responses."""

import openai
import pytest

from ponder.serve.summary import leaks

from tests.serve.conftest import MODEL

Q = "What is 347 * 29?"


def create(client, **kw):
    return client.responses.create(**{"model": MODEL, "input": Q, "temperature": 0, **kw})


def hidden_reasoning(services, turns):
    """What the engine reasons for this conversation (the server never shows it)."""
    from ponder.engine.base import SamplingParams
    from ponder.model.chat import Message

    engine = services.backend.engine
    messages = [Message(role, content, reasoning) for role, content, reasoning in turns]
    return engine.generate([messages], SamplingParams(max_completion_tokens=400, reasoning_budget=160))[0]


def test_output_has_a_reasoning_item_then_the_message(client, server):
    r = create(client, reasoning={"effort": "medium", "summary": "detailed"})
    assert r.status == "completed" and r.output_text == "10063"
    kinds = [item.type for item in r.output]
    assert kinds == ["reasoning", "message"]
    summary = r.output[0].summary[0].text
    reasoning = hidden_reasoning(server[1], [("user", Q, "")]).reasoning
    assert summary and not leaks(summary, reasoning)
    assert r.usage.output_tokens_details.reasoning_tokens > 0
    assert r.usage.output_tokens == r.usage.output_tokens_details.reasoning_tokens + 6  # 5 digit tokens + end
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_no_summary_unless_asked(client):
    assert create(client).output[0].summary == []


def test_stateless_and_stateful_multi_turn_build_the_same_prompt(client):
    first = create(client, include=["reasoning.encrypted_content"])
    blob = first.output[0].encrypted_content
    assert blob.startswith("ponder1:")
    follow = {"role": "user", "content": "What is 2 + 2?"}
    stateless = create(client, input=[{"role": "user", "content": Q}, *first.output, follow], store=False)
    stateful = create(client, previous_response_id=first.id, input=[follow])
    assert stateless.usage.input_tokens == stateful.usage.input_tokens
    assert stateless.output_text == stateful.output_text
    # The earlier turn's reasoning is really in the context: without it the prompt is shorter.
    bare = create(client, input=[{"role": "user", "content": Q}, first.output[1], follow], store=False)
    assert bare.usage.input_tokens < stateless.usage.input_tokens


def test_tampered_encrypted_reasoning_is_refused(client):
    first = create(client, include=["reasoning.encrypted_content"])
    item = first.output[0].model_dump(exclude_none=True)
    blob = item["encrypted_content"]
    item["encrypted_content"] = blob[:-3] + ("A" if blob[-3] != "A" else "B") + blob[-2:]
    with pytest.raises(openai.BadRequestError) as err:
        create(client, input=[{"role": "user", "content": Q}, item, first.output[1], {"role": "user", "content": "Again?"}])
    assert err.value.code == "invalid_encrypted_content"


def test_store_false_cannot_be_continued_or_fetched(client):
    r = create(client, store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        create(client, previous_response_id=r.id, input="And?")


def test_stored_responses_can_be_fetched_and_deleted(client):
    r = create(client)
    assert client.responses.retrieve(r.id).output_text == r.output_text
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_instructions_are_not_carried_to_the_next_turn(client):
    first = create(client, instructions="Answer with the number only.")
    plain = create(client)
    assert first.usage.input_tokens > plain.usage.input_tokens
    second = create(client, previous_response_id=first.id, input="And 2 + 2?")
    again = create(client, previous_response_id=plain.id, input="And 2 + 2?")
    assert second.usage.input_tokens == again.usage.input_tokens


def test_max_output_tokens_spent_thinking_is_incomplete(client):
    r = create(client, max_output_tokens=16, reasoning={"effort": "high"})
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert [item.type for item in r.output] == ["reasoning"]
    assert r.usage.output_tokens == 16 == r.usage.output_tokens_details.reasoning_tokens


def test_effort_none_spends_no_reasoning(client):
    r = create(client, reasoning={"effort": "none"})
    assert r.usage.output_tokens_details.reasoning_tokens == 0


def test_streaming_events_in_order_with_summary_and_usage(client):
    plain = create(client, reasoning={"summary": "concise"})
    with client.responses.stream(model=MODEL, input=Q, temperature=0, reasoning={"summary": "concise"},
                                 include=["reasoning.encrypted_content"]) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    summary_at = kinds.index("response.reasoning_summary_text.delta")
    first_text = kinds.index("response.output_text.delta")
    assert summary_at < kinds.index("response.output_item.done") < first_text  # reasoning item closes first
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert text == final.output_text == plain.output_text
    assert events[summary_at].delta == plain.output[0].summary[0].text
    assert final.usage.output_tokens_details.reasoning_tokens == plain.usage.output_tokens_details.reasoning_tokens
    assert final.output[0].encrypted_content.startswith("ponder1:")
    # The streamed response was stored like any other.
    assert client.responses.retrieve(final.id).output_text == text


def test_streamed_incomplete_response(client):
    with client.responses.stream(model=MODEL, input=Q, max_output_tokens=16, reasoning={"effort": "high"}) as stream:
        events = list(stream)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
