"""PRM-guided beam search and the `prm` scorer, on the bundled model with an (untrained) PRM made from it.

An untrained PRM ranks candidates arbitrarily, which is all these tests need: they check the
search's bookkeeping (tokens, seeds, engine calls, the answer it returns), not its accuracy.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from ponder.engine.base import Completion, SamplingParams
from ponder.engine.spec import BUNDLED, load_engine
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.prm.model import init_prm, save_prm
from ponder.prm.scorer import ENV_VAR, resolve_prm_dir, score
from ponder.think.base import ThinkResult
from ponder.think.beam import BeamSearch, Candidate, aggregate, weighted_choice

PARAMS = SamplingParams(max_completion_tokens=400)
PROMPTS = [[Message("user", "What is 347 * 29?")], [Message("user", "What is 58 + 67?")]]


@pytest.fixture(scope="module")
def engine():
    return load_engine("default")


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory):
    return save_prm(init_prm(BUNDLED), tmp_path_factory.mktemp("prm") / "final")


class Spy:
    """The real engine, with every generate_ids call's requests and completions recorded."""

    def __init__(self, engine):
        self.engine, self.name, self.calls = engine, engine.name, []
        self.tok, self.context_length, self.encode = engine.tok, engine.context_length, engine.encode

    def generate_ids(self, prompt_ids, params):
        out = self.engine.generate_ids(prompt_ids, params)
        self.calls.append((list(prompt_ids), list(params), out))
        return out


def test_aggregates():
    assert aggregate([0.9, 0.5, 0.8], "min") == 0.5
    assert aggregate([0.9, 0.5, 0.8], "last") == 0.8
    assert aggregate([0.5, 0.5], "prod") == 0.25
    assert aggregate([], "min") == 0.0


def finished(answer: str, score: float, ids: tuple[int, ...]) -> Candidate:
    step = Completion("r", answer, 5, 3, max(len(answer), 1), "stop")
    return Candidate(ids=ids, pieces=(step,), done=True, score=score)


def test_vote_selection_adds_up_distinct_paths_to_one_answer():
    pool = [finished("12", 0.9, (1,)), finished("13", 0.5, (2,)), finished(" 13.", 0.6, (3,)),
            finished("", 0.99, (4,))]
    assert weighted_choice(pool).ids == (3,)  # 13 has 1.1 behind it; its best-scored path speaks for it
    assert weighted_choice([Candidate(ids=(1,), pieces=(), done=False)]) is None


def test_mass_selection_lets_the_samples_behind_a_path_outvote_distinct_slips():
    agreed = dataclasses.replace(finished("12", 0.9, (1,)), mass=0.9)
    slips = [dataclasses.replace(finished("13", 0.8, (2,)), mass=0.05),
             dataclasses.replace(finished("13", 0.7, (3,)), mass=0.05)]
    assert weighted_choice([agreed, *slips]).ids == (2,)  # by PRM score alone the two slips add up to more
    assert weighted_choice([agreed, *slips], by_mass=True).ids == (1,)


def test_copies_add_their_mass_and_a_greedy_search_has_all_of_it(engine, prm_dir):
    greedy = BeamSearch(beams=2, expansions=3, temperature=0, max_steps=40, select="mass", prm=str(prm_dir))
    for r in greedy.run(engine, PROMPTS, PARAMS):  # every sample is the same step: one candidate, all the mass
        assert r.meta["mass"] == 1.0
    hot = BeamSearch(beams=2, expansions=4, temperature=3.0, max_steps=3, select="mass", prm=str(prm_dir))
    masses = [r.meta["mass"] for r in hot.run(engine, PROMPTS, PARAMS)]
    assert all(0 < m <= 1 for m in masses) and min(masses) < 1, masses  # hot steps differ: the mass splits


def test_results_are_valid_and_totals_count_every_generated_token(engine, prm_dir):
    spy = Spy(engine)
    strategy = BeamSearch(beams=2, expansions=2, max_steps=6, prm=str(prm_dir))
    results = strategy.run(spy, PROMPTS, PARAMS)
    completions = [c for _, _, out in spy.calls for c in out]
    # Counted independently: from what the engine returned and what it was sent.
    assert sum(r.completion_tokens for r in results) == sum(c.completion_tokens for c in completions)
    assert sum(r.reasoning_tokens for r in results) == sum(c.reasoning_tokens for c in completions)
    assert sum(r.prompt_tokens for r in results) == sum(len(ids) for ids, _, _ in spy.calls for ids in ids)
    assert sum(len(r.samples) for r in results) == len(completions)
    for r, prompt in zip(results, PROMPTS):
        assert isinstance(r, ThinkResult) and r.answer == r.chosen.answer and r.answer
        assert r.chosen.prompt_tokens == len(engine.encode(prompt))
        assert r.chosen.completion_tokens == len(r.chosen.token_ids) <= PARAMS.max_completion_tokens
        assert r.chosen.finish_reason == "stop" and r.chosen.reasoning
        assert r.completion_tokens >= r.chosen.completion_tokens
        assert 0 <= r.meta["prm_score"] <= 1 and len(r.meta["step_scores"]) == r.meta["steps"]
        json.dumps(r.meta)
        # The chosen path, as the engine would have written it in one go.
        text = engine.tok.decode(t for t in r.chosen.token_ids if t != engine.tok.special.think_close)
        assert text.startswith(r.chosen.reasoning)


def test_one_engine_call_per_round_for_all_prompts_with_distinct_seeds(engine, prm_dir):
    spy = Spy(engine)
    BeamSearch(beams=2, expansions=3, max_steps=3, prm=str(prm_dir)).run(spy, PROMPTS, PARAMS)
    assert 1 <= len(spy.calls) <= 3 + 1  # the rounds, and at most one call that completes unanswered prompts
    first_ids, first_params, _ = spy.calls[0]
    assert len(first_ids) == 2 * 2 * 3  # round one: beams * expansions first steps per prompt
    for prompt in PROMPTS:
        ids = engine.encode(prompt)
        seeds = [p.seed for sent, params, _ in spy.calls for r, p in zip(sent, params) if r[: len(ids)] == ids]
        assert len(seeds) == len(set(seeds))
    assert all(p.stop_in_reasoning == ("\n",) and p.temperature == 0.8 for p in first_params)


def test_one_beam_one_expansion_at_temperature_zero_is_greedy_decoding(engine, prm_dir):
    prompts = PROMPTS + [[Message("user", "Make 24 from 3, 8, 1. Use + - * /, each number at most once.")]]
    greedy = engine.generate(prompts, PARAMS)
    beam = BeamSearch(beams=1, expansions=1, temperature=0, max_steps=40, prm=str(prm_dir)).run(engine, prompts, PARAMS)
    for g, b in zip(greedy, beam):
        assert b.answer == g.answer
        assert b.chosen.token_ids == g.token_ids and b.chosen.reasoning == g.reasoning
        assert b.completion_tokens == g.completion_tokens  # one expansion: nothing discarded


def test_a_search_cut_off_by_max_steps_still_answers(engine, prm_dir):
    spy = Spy(engine)
    (result,) = BeamSearch(beams=2, expansions=2, max_steps=1, prm=str(prm_dir)).run(spy, PROMPTS[:1], PARAMS)
    assert result.answer and result.chosen.finish_reason == "stop"
    assert spy.calls[-1][1][0].stop_in_reasoning == ()  # the last call ran the kept prefixes to the end


def test_bad_parameters_and_engines_are_user_errors(engine, prm_dir, tmp_path):
    with pytest.raises(UserError, match="aggregate"):
        BeamSearch(aggregate="mean", prm=str(prm_dir))
    with pytest.raises(UserError, match="select"):
        BeamSearch(select="first", prm=str(prm_dir))
    with pytest.raises(UserError, match="beams"):
        BeamSearch(beams=0, prm=str(prm_dir))
    with pytest.raises(UserError, match="no PRM at"):
        BeamSearch(prm=str(tmp_path))

    class Remote:
        name = "openai:gpt"

        def generate(self, prompts, params):
            return [Completion("", "5", 3, 0, 1, "stop")]

    with pytest.raises(UserError, match="token ids"):
        BeamSearch(prm=str(prm_dir)).run(Remote(), PROMPTS[:1], PARAMS)


def test_the_prm_scorer_finds_its_prm_through_the_environment(engine, prm_dir, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(prm_dir))
    assert resolve_prm_dir() == prm_dir
    (c,) = engine.generate(PROMPTS[:1], PARAMS)
    value = score(PROMPTS[0], c)
    assert 0 < value < 1
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(UserError, match=ENV_VAR):
        resolve_prm_dir()


def test_lazy_expansion_that_accepts_every_step_is_one_expansion(engine, prm_dir):
    eager = BeamSearch(beams=2, expansions=1, max_steps=6, prm=str(prm_dir)).run(engine, PROMPTS, PARAMS)
    spy = Spy(engine)
    lazy = BeamSearch(beams=2, expansions=3, accept=0.0, max_steps=6, prm=str(prm_dir)).run(spy, PROMPTS, PARAMS)
    for e, z in zip(eager, lazy):  # same seeds, same steps: no alternative was ever sampled
        assert z.chosen.token_ids == e.chosen.token_ids and z.completion_tokens == e.completion_tokens
    assert len(spy.calls[0][0]) == 2 * len(PROMPTS)  # round one: one first step per beam slot


def test_lazy_expansion_samples_the_other_expansions_for_a_doubted_step(engine, prm_dir):
    spy = Spy(engine)
    # An untrained PRM's scores sit near 0.5, so with accept=1 every step is doubted.
    BeamSearch(beams=2, expansions=3, accept=1.0, max_steps=2, prm=str(prm_dir)).run(spy, PROMPTS, PARAMS)
    first, retry = spy.calls[0], spy.calls[1]
    assert len(first[0]) == 2 * len(PROMPTS) and len(retry[0]) == 2 * 2 * len(PROMPTS)
    for prompt in PROMPTS:  # each prompt's six first steps have their own seeds, 0..5
        ids = engine.encode(prompt)
        seeds = [p.seed for sent, params, _ in spy.calls[:2] for r, p in zip(sent, params) if r[: len(ids)] == ids]
        assert sorted(seeds) == list(range(6))
    with pytest.raises(UserError, match="accept"):
        BeamSearch(accept=1.5, prm=str(prm_dir))
