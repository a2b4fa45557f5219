"""Engine behaviour on a tiny random model: every property here holds whatever the weights are."""

import pytest
import torch

from ponder.engine.base import SamplingParams
from ponder.devices import autocast
from ponder.engine.native import CACHE_GROWTH, NativeEngine
from ponder.errors import UserError
from ponder.model.chat import Message, encode_prompt
from ponder.model.gpt import cache_dtype

PROMPTS = [
    "What is 347 * 29?",
    "Compute 12 + 7.",
    "Maya has 12 apples. She buys 3 bags with 15 apples each. How many apples does she have?",
    "Countdown: numbers 3 7 25 4, target 103.",
    "Hi",
    "What is 45 - 18? Answer with just the number, please, and think it through first.",
]


@pytest.fixture(scope="module")
def engine(tiny_model, tok):
    return NativeEngine(tiny_model, tok)


def ask(engine, prompts, **params):
    return engine.generate([[Message("user", p)] for p in prompts], SamplingParams(**params))


@pytest.mark.parametrize("budget", [1, 2, 5, 17])
def test_reasoning_never_exceeds_its_budget_and_is_closed_by_the_engine(engine, tok, budget):
    for c in ask(engine, PROMPTS, reasoning_budget=budget, max_completion_tokens=40):
        assert c.reasoning_tokens <= budget
        assert tok.special.think_close in c.token_ids[: c.reasoning_tokens]
        assert c.token_ids.count(tok.special.think_close) == 1
        assert c.answer_tokens == len(c.token_ids) - c.reasoning_tokens
        assert c.completion_tokens <= 40


def test_budget_zero_answers_without_reasoning(engine):
    with_budget = ask(engine, ["Hi"], reasoning_budget=0, max_completion_tokens=10)[0]
    unlimited = ask(engine, ["Hi"], max_completion_tokens=10)[0]
    assert with_budget.reasoning_tokens == 0 and with_budget.reasoning == ""
    assert with_budget.prompt_tokens == unlimited.prompt_tokens + 1  # the closed <think></think> is prompt


def test_max_completion_tokens_counts_reasoning_and_answer(engine):
    # A random model rarely closes its reasoning: the whole allowance goes to thinking.
    for c in ask(engine, PROMPTS, max_completion_tokens=7):
        assert c.completion_tokens == 7
        assert c.finish_reason == "length"
        if c.reasoning_tokens == 7:
            assert c.answer == ""


def test_stop_token_ends_the_answer(engine, tok):
    free = ask(engine, ["Hi"], reasoning_budget=3, max_completion_tokens=30)[0]
    answer_ids = list(free.token_ids[free.reasoning_tokens :])
    stop_id = answer_ids[2]
    first = answer_ids.index(stop_id)
    stopped = ask(engine, ["Hi"], reasoning_budget=3, max_completion_tokens=30, stop_token_ids=(stop_id,))[0]
    assert stopped.finish_reason == "stop"
    assert stopped.answer_tokens == first + 1
    assert stopped.answer == tok.decode(answer_ids[:first])


def test_stop_string_truncates_the_answer(engine):
    free = ask(engine, ["Hi"], reasoning_budget=3, max_completion_tokens=30)[0]
    cut = free.answer[3:6]
    stopped = ask(engine, ["Hi"], reasoning_budget=3, max_completion_tokens=30, stop=(cut,))[0]
    assert stopped.finish_reason == "stop"
    assert stopped.answer == free.answer[: free.answer.index(cut)]


def test_batched_and_unbatched_greedy_decoding_give_the_same_tokens(engine):
    # Varied lengths pad the batch; varied limits finish rows early and trigger compaction.
    messages = [[Message("user", p)] for p in PROMPTS * 2]
    params = [SamplingParams(max_completion_tokens=8 + 5 * i, reasoning_budget=None if i % 3 else 6) for i in range(12)]
    batched = engine.generate(messages, params)
    alone = [engine.generate([m], p)[0] for m, p in zip(messages, params)]
    assert [c.token_ids for c in batched] == [c.token_ids for c in alone]
    assert [c.finish_reason for c in batched] == [c.finish_reason for c in alone]


@pytest.mark.parametrize("repeats", [1, 3])
def test_prompts_computed_once_decode_as_if_each_row_had_its_own(engine, repeats):
    """Equal prompts share one prefill (an RL group, a vote); unique ones of varied lengths do not.
    Either way each row's seeded samples are the ones it draws alone."""
    prompts = [p for p in PROMPTS for _ in range(repeats)]
    params = [SamplingParams(temperature=1.0, seed=7 + i, max_completion_tokens=12 + i % 5) for i in range(len(prompts))]
    batched = engine.generate([[Message("user", p)] for p in prompts], params)
    alone = [engine.generate([[Message("user", p)]], q)[0] for p, q in zip(prompts, params)]
    assert [c.token_ids for c in batched] == [c.token_ids for c in alone]
    if repeats > 1:  # the group's samples still differ from one another
        assert len({c.token_ids for c in batched[:repeats]}) > 1


def test_seeded_sampling_is_reproducible_and_independent_of_the_batch(engine):
    params = dict(temperature=1.0, top_p=0.9, top_k=50, seed=1234, max_completion_tokens=20)
    alone = ask(engine, ["Hi"], **params)[0]
    again = ask(engine, ["Hi"], **params)[0]
    crowd = engine.generate(
        [[Message("user", p)] for p in PROMPTS + ["Hi"]],
        [SamplingParams(temperature=1.0, max_completion_tokens=25)] * len(PROMPTS) + [SamplingParams(**params)],
    )[-1]
    assert alone.token_ids == again.token_ids == crowd.token_ids
    other_seed = ask(engine, ["Hi"], **{**params, "seed": 99})[0]
    assert other_seed.token_ids != alone.token_ids


def test_logprobs_are_the_models_own(engine, tiny_model, tok):
    c = ask(engine, ["Compute 12 + 7."], reasoning_budget=4, max_completion_tokens=12, logprobs=True)[0]
    prompt = encode_prompt(tok, [Message("user", "Compute 12 + 7.")])
    ids = torch.tensor([prompt + list(c.token_ids)])
    with torch.no_grad():
        logp = tiny_model(ids).log_softmax(-1)[0, len(prompt) - 1 : -1]
    expected = logp.gather(1, torch.tensor(c.token_ids)[:, None]).squeeze(1)
    torch.testing.assert_close(torch.tensor(c.logprobs), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_logprobs_stay_the_models_own_as_the_cache_grows(engine, tiny_model, tok, precision):
    """80 tokens make the KV cache grow past its first allocation twice (it grows by
    CACHE_GROWTH slots, attending over the whole of it with the unwritten slots masked). Under
    bf16 autocast the cache holds bf16, and the full forward is bf16 too, so the tolerance is bf16's."""
    assert 80 > 2 * CACHE_GROWTH
    prompt = encode_prompt(tok, [Message("user", "Compute 12 + 7.")])
    with autocast(torch.device("cpu"), precision):
        c = ask(engine, ["Compute 12 + 7."], ignore_eos=True, max_completion_tokens=80, logprobs=True,
                temperature=1.0, seed=3)[0]
        with torch.no_grad():
            logp = tiny_model(torch.tensor([prompt + list(c.token_ids)])).float().log_softmax(-1)[0, len(prompt) - 1 : -1]
    assert c.completion_tokens == 80
    expected = logp.gather(1, torch.tensor(c.token_ids)[:, None]).squeeze(1)
    tolerance = 1e-4 if precision == "fp32" else 0.1
    torch.testing.assert_close(torch.tensor(c.logprobs), expected, atol=tolerance, rtol=tolerance)


def test_the_kv_cache_takes_autocasts_dtype(tiny_model):
    cpu = torch.device("cpu")
    assert cache_dtype(tiny_model, cpu) == torch.float32
    with autocast(cpu, "bf16"):
        assert cache_dtype(tiny_model, cpu) == torch.bfloat16


def test_control_tokens_never_appear_in_completions(engine, tok):
    banned = {tok.special.pad, tok.special.bos, tok.special.think_open, *tok.special.roles.values()}
    for c in ask(engine, PROMPTS, temperature=1.5, seed=7, max_completion_tokens=30):
        assert not banned & set(c.token_ids)


def test_ignore_eos_runs_to_the_limit(engine):
    for c in ask(engine, PROMPTS, reasoning_budget=2, ignore_eos=True, max_completion_tokens=15):
        assert c.completion_tokens == 15
        assert c.finish_reason == "length"  # even if the last token happened to be the end token


def test_prompt_longer_than_the_context_is_a_user_error(engine):
    with pytest.raises(UserError, match="context is 128"):
        ask(engine, ["7 " * 200])


@pytest.mark.parametrize(
    "bad",
    [dict(max_completion_tokens=0), dict(reasoning_budget=-1), dict(temperature=-0.1), dict(top_p=0.0),
     dict(top_k=-2), dict(stop="x"), dict(temperature=float("inf"))],
)
def test_invalid_sampling_params(bad):
    with pytest.raises(UserError):
        SamplingParams(**bad)


def test_generation_stops_at_the_context_edge(engine, tok):
    prompt = "7 " * 55  # ~110 tokens of a 128-token context
    c = ask(engine, [prompt], max_completion_tokens=100)[0]
    assert c.prompt_tokens + c.completion_tokens == 128
    assert c.finish_reason == "length"


def test_a_message_without_a_role_is_a_user_error(engine):
    with pytest.raises(UserError, match="needs a role and a content"):
        engine.generate([[{"content": "hi"}]], SamplingParams())


@pytest.mark.parametrize("minimum, budget", [(12, None), (20, 26)])
def test_budget_forcing_keeps_the_reasoning_open_until_its_minimum(engine, tok, minimum, budget):
    params = SamplingParams(max_completion_tokens=60, min_reasoning_tokens=minimum, reasoning_budget=budget, extend_with=" Wait,")
    wait = tok.encode(" Wait,")
    for c in engine.generate([[Message("user", p)] for p in PROMPTS], params):
        closed = tok.special.think_close in c.token_ids
        assert not closed or c.reasoning_tokens > minimum  # the close tag itself comes after the minimum
        if budget is not None:
            assert c.reasoning_tokens <= budget
        # Whenever the model tried to close early, the whole " Wait," was written in its place.
        ids = list(c.token_ids[: c.reasoning_tokens])
        starts = [i for i in range(len(ids)) if ids[i : i + 1] == wait[:1]]
        for i in starts:
            assert ids[i : i + len(wait)] == wait[: len(ids) - i]


def test_budget_forcing_changes_nothing_when_the_model_thinks_long_enough(engine):
    plain = ask(engine, PROMPTS, max_completion_tokens=40)
    forced = ask(engine, PROMPTS, max_completion_tokens=40, min_reasoning_tokens=1)
    assert [c.token_ids for c in plain] == [c.token_ids for c in forced]


def test_min_reasoning_must_be_below_the_budget():
    with pytest.raises(UserError, match="below the reasoning budget"):
        SamplingParams(min_reasoning_tokens=10, reasoning_budget=10)


def test_stop_in_reasoning_ends_generation_after_one_step(engine, tok):
    # Stop strings are taken from what the model writes unstopped (the first visible character of
    # each reasoning), so the test does not hang on which tokens a random model happens to repeat.
    plain = ask(engine, PROMPTS, max_completion_tokens=60)
    visible = [[ch for ch in c.reasoning if ch.isprintable() and not ch.isspace() and ch != "\ufffd"] for c in plain]
    stops = tuple(sorted({chars[0] for chars in visible if chars}))
    assert len(stops) >= 2
    expected = sum(any(s in c.reasoning for s in stops) for c in plain)
    stopped = 0
    for c in ask(engine, PROMPTS, max_completion_tokens=60, stop_in_reasoning=stops):
        if c.finish_reason == "stop" and not c.answer_tokens:
            assert any(s in c.reasoning for s in stops)
            # It stopped at the first token that completed a stop string, not later.
            before = tok.decode(list(c.token_ids[:-1]))
            assert not any(s in before for s in stops)
            stopped += 1
    assert expected >= 2 and stopped == expected  # greedy: every reasoning that would have reached a stop string stops there
