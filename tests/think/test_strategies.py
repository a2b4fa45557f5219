"""Test-time strategies: voting, scoring, sampling plumbing, the registry and `ponder ask --strategy`.

The bundled model runs everywhere the engine matters (seeds, totals, adaptive stopping, budget
forcing). A scripted stub engine appears only where a test must control the answers to check
vote, tie or score logic.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.cli import main
from ponder.engine.base import Completion, SamplingParams
from ponder.engine.spec import load_engine
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.tasks import TASKS, expressions
from ponder.think.base import DEFAULT_SAMPLE_TEMPERATURE, ThinkResult
from ponder.think.scorers import LAZY_SCORERS, NOT_COUNTDOWN, countdown, countdown_instance, resolve_scorer
from ponder.think.self_consistency import SelfConsistency
from ponder.think.strategy import STRATEGIES, describe_params, make_strategy, parse_param_pairs
from ponder.think.voting import answer_key, majority_vote
from ponder.think.weighted_best_of_n import weighted_vote

# A short reasoning budget keeps the tests fast: "2 + 3" needs 6 reasoning tokens, while the hard
# product is cut off mid-thought, so its sampled answers are guesses that disagree.
PARAMS = SamplingParams(max_completion_tokens=48, reasoning_budget=32)
EASY = [Message("user", "What is 2 + 3?")]
# A countdown instance no small model here solves within 32 reasoning tokens: its samples
# scatter under any of the warm starts tried (a long multiplication did not: a model that knows
# longhand well writes the same steps every time).
HARD = [Message("user", "Using the numbers 3, 7, 25, 50, 8 and 4, make 917. You may use + - * / and each "
                        "number at most once.")]


@pytest.fixture(scope="module")
def engine():
    return load_engine("default")


class Spy:
    """The real engine, with every generate call's prompts and params recorded."""

    def __init__(self, engine):
        self.engine, self.name, self.calls = engine, engine.name, []

    def generate(self, prompts, params):
        self.calls.append((list(prompts), params))
        return self.engine.generate(prompts, params)


def fake(answer: str, reasoning_tokens: int = 3, answer_tokens: int = 1) -> Completion:
    return Completion("r", answer, prompt_tokens=5, reasoning_tokens=reasoning_tokens,
                      answer_tokens=answer_tokens, finish_reason="stop")


class Scripted:
    """A stub engine that answers each request with the next scripted answer (vote logic only)."""

    name = "scripted"

    def __init__(self, answers):
        self.answers = list(answers)

    def generate(self, prompts, params):
        return [fake(self.answers.pop(0)) for _ in prompts]


# Scorers for module:function tests; they must be importable by path.
def answer_length(prompt, completion) -> float:
    return float(len(completion.answer))


def constant(prompt, completion) -> float:
    return 1.0


SCRIPTED_SCORES = {"5": 0.9, "6": 0.3, "7": 0.95}


def scripted_score(prompt, completion) -> float:
    return SCRIPTED_SCORES[completion.answer.strip()]


# ---- voting -----------------------------------------------------------------------------------

@pytest.mark.parametrize("same", [
    ["10063", " 10063.", "10,063", "$10,063", "10063 apples", "The answer is 10063."],
    ["2.50", "2.5", "5/2", "$2.50"],
    ["-332", " -332.", "\u2212332"],
    ["7+(5+1)", "1 + 5 + 7", "Answer: 5+1+7 = 13", "(7+5)+1", "13 = 7+5+1"],
    ["(25-5)*4+3", "3+4*(25-5)", "4 * (25 - 5) + 3"],
    ["Yes.", "yes", "  YES  "],
])
def test_answers_written_differently_vote_together(same):
    assert len({answer_key(a) for a in same}) == 1


@pytest.mark.parametrize("a, b", [("10-3", "3-10"), ("(1+2)*3", "1+2*3"), ("8/2/2", "8/(2/2)"), ("12", "21"),
                                  ("5", "5+0")])
def test_different_answers_do_not_merge(a, b):
    assert answer_key(a) != answer_key(b)


def test_empty_answers_abstain():
    assert answer_key("") is None and answer_key("   ") is None
    winner, votes = majority_vote([fake(""), fake("7"), fake("")])
    assert (winner, votes) == (1, {"7": 1})
    assert majority_vote([fake(""), fake("")]) == (0, {})  # nobody answered: the first sample stands


@given(st.integers(min_value=-10**9, max_value=10**9))
def test_thousands_separators_and_trailing_text_do_not_change_a_vote(n):
    assert answer_key(f"{n:,}") == answer_key(f" {n}.") == answer_key(str(n)) == str(n)


trees = st.recursive(st.integers(0, 30), lambda sub: st.tuples(st.sampled_from("+-*/"), sub, sub), max_leaves=6)


@given(trees, trees)
def test_expressions_that_share_a_key_have_the_same_value(a, b):
    # The canonical form only merges reorderings of + and *, never two different values.
    ka, kb = answer_key(expressions.render(a)), answer_key(expressions.render(b))
    if ka == kb and not isinstance(a, int) and not isinstance(b, int):
        try:
            va, vb = expressions.evaluate(a), expressions.evaluate(b)
        except ZeroDivisionError:
            return
        assert va == vb


def test_a_tie_goes_to_the_answer_sampled_first():
    winner, votes = majority_vote([fake("6"), fake("5"), fake("5."), fake("6,")])
    assert votes == {"6": 2, "5": 2} and winner == 0
    winner, _ = majority_vote([fake("9"), fake("5"), fake("6"), fake("6"), fake("5")])
    assert winner == 1  # 5 and 6 tie at two votes; 5 came first


def test_self_consistency_returns_the_majority_and_its_first_sample():
    results = SelfConsistency(k=5).run(Scripted(["12", " 7.", "7", "12", "7"]), [EASY], PARAMS)
    (result,) = results
    assert result.answer == " 7." and result.chosen is result.samples[1]
    assert result.meta["votes"] == {"12": 2, "7": 3}


# ---- sampling, seeds and totals on the real model ----------------------------------------------

def test_each_sample_has_its_own_seed_and_all_go_in_one_engine_call(engine):
    spy = Spy(engine)
    results = make_strategy("self_consistency", {"k": 6}).run(spy, [EASY, HARD], PARAMS)
    assert len(spy.calls) == 1
    prompts, params = spy.calls[0]
    assert len(prompts) == 12 and prompts[:6] == [EASY] * 6
    assert [p.seed for p in params] == list(range(6)) * 2  # seed + i, no seed given = base 0
    assert {p.temperature for p in params} == {DEFAULT_SAMPLE_TEMPERATURE}  # greedy base -> 0.8
    assert {p.reasoning_budget for p in params} == {32}
    assert len({s.token_ids for s in results[1].samples}) > 1  # the samples really differ


def test_a_given_seed_shifts_every_sample_and_is_reproducible(engine):
    spy = Spy(engine)
    strategy = make_strategy("self_consistency", {"k": 3, "temperature": 1.0})
    seeded = SamplingParams(max_completion_tokens=48, reasoning_budget=32, seed=40)
    first, again = strategy.run(spy, [HARD], seeded), strategy.run(spy, [HARD], seeded)
    assert [p.seed for p in spy.calls[0][1]] == [40, 41, 42]
    assert {p.temperature for p in spy.calls[0][1]} == {1.0}
    assert [s.token_ids for s in first[0].samples] == [s.token_ids for s in again[0].samples]


@pytest.mark.parametrize("name, params", [
    ("single", {}), ("self_consistency", {"k": 4}), ("best_of_n", {"n": 3}),
    ("weighted_best_of_n", {"n": 3, "scorer": "countdown"}), ("budget_forcing", {"min_tokens": 10}),
    ("adaptive", {"max_k": 6, "initial": 2, "step": 2, "give_up": 0}),
])
def test_totals_are_sums_over_every_sample(engine, name, params):
    results = make_strategy(name, params).run(engine, [EASY, HARD], PARAMS)
    assert len(results) == 2
    for r in results:
        assert isinstance(r, ThinkResult) and r.chosen in r.samples and r.answer == r.chosen.answer
        assert r.prompt_tokens == sum(s.prompt_tokens for s in r.samples)
        assert r.reasoning_tokens == sum(s.reasoning_tokens for s in r.samples)
        assert r.completion_tokens == sum(s.completion_tokens for s in r.samples)
        assert r.usage() == {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                             "reasoning_tokens": r.reasoning_tokens}
        json.dumps(r.meta)  # meta goes into --json output and API bodies


def test_single_is_one_call_with_the_callers_settings_unchanged(engine):
    # What `ponder ask` did before strategies: one engine call, greedy staying greedy and an unset
    # seed staying unset (a strategy that drew samples would set a temperature and seeds).
    spy = Spy(engine)
    (result,) = make_strategy("single", {}).run(spy, [HARD], PARAMS)
    assert spy.calls == [([HARD], PARAMS)]
    assert PARAMS.temperature == 0 and PARAMS.seed is None
    assert len(result.samples) == 1 and result.chosen is result.samples[0]
    assert result.usage() == result.chosen.usage()  # billed for that one sample, nothing else


def test_no_prompts_no_engine_call(engine):
    spy = Spy(engine)
    for name, params in [("single", {}), ("self_consistency", {}), ("adaptive", {})]:
        assert make_strategy(name, params).run(spy, [], PARAMS) == []
    assert spy.calls == []


# ---- adaptive ----------------------------------------------------------------------------------

def test_adaptive_stops_early_on_easy_prompts_and_spends_max_k_on_disagreeing_ones(engine):
    spy = Spy(engine)
    easy, hard = make_strategy("adaptive", {"max_k": 12, "initial": 4, "step": 4, "agreement": 0.75,
                                            "give_up": 0, "temperature": 1.5}).run(spy, [EASY, HARD], PARAMS)
    assert easy.meta["k"] == 4 and easy.meta["rounds"] == 1 and easy.answer.strip() == "5"
    assert easy.meta["stopped"] == "agreed"
    assert hard.meta["k"] == 12 and hard.meta["rounds"] == 3 and hard.meta["agreement"] < 0.75
    assert hard.meta["stopped"] == "max_k"
    # One engine call per round, holding only the prompts still open, at seeds that continue.
    assert [len(prompts) for prompts, _ in spy.calls] == [8, 4, 4]
    assert all(p == HARD for prompts, _ in spy.calls[1:] for p in prompts)
    assert [p.seed for p in spy.calls[1][1]] == [4, 5, 6, 7]
    assert len(easy.samples) == 4 and len(hard.samples) == 12


def test_adaptive_gives_up_when_answers_scatter(engine):
    adaptive = make_strategy("adaptive", {"max_k": 12, "temperature": 1.5})  # default give_up 0.3
    easy, hard = adaptive.run(engine, [EASY, HARD], PARAMS)
    assert easy.meta["stopped"] == "agreed" and easy.meta["k"] == 4
    assert hard.meta["stopped"] == "gave_up" and hard.meta["k"] == 4
    assert hard.meta["initial_agreement"] < 0.3 and len(hard.meta["votes"]) >= 3


def test_adaptive_samples_are_the_first_k_that_self_consistency_draws(engine):
    (adaptive,) = make_strategy("adaptive", {"max_k": 8, "initial": 2, "step": 3}).run(engine, [HARD], PARAMS)
    (full,) = make_strategy("self_consistency", {"k": adaptive.meta["k"]}).run(engine, [HARD], PARAMS)
    assert [s.token_ids for s in adaptive.samples] == [s.token_ids for s in full.samples]
    assert adaptive.answer == full.answer


# ---- scorers and best-of-n ---------------------------------------------------------------------

def test_best_of_n_picks_the_highest_score(engine):
    (result,) = make_strategy("best_of_n", {"n": 6, "scorer": f"{__name__}:answer_length",
                                            "temperature": 1.5}).run(engine, [HARD], PARAMS)
    lengths = [len(s.answer) for s in result.samples]
    assert result.meta["scores"] == [float(n) for n in lengths]
    assert result.chosen is result.samples[lengths.index(max(lengths))]  # the earliest of the longest


def test_best_of_n_ties_go_to_the_first_sample(engine):
    (result,) = make_strategy("best_of_n", {"n": 4, "scorer": f"{__name__}:constant"}).run(engine, [HARD], PARAMS)
    assert result.chosen is result.samples[0] and result.meta["chosen_index"] == 0


def test_confidence_asks_for_logprobs_and_scores_in_0_1(engine):
    spy = Spy(engine)
    (result,) = make_strategy("best_of_n", {"n": 3}).run(spy, [HARD], PARAMS)
    assert all(p.logprobs for p in spy.calls[0][1])
    assert all(0 < s <= 1 for s in result.meta["scores"])
    assert result.meta["scores"][result.meta["chosen_index"]] == max(result.meta["scores"])


def test_weighted_best_of_n_sums_scores_per_answer():
    answers = ["5", "6", "6.", "5", "7"]  # by count 5 and 6 tie; 7 alone has the best score
    samples = [fake(a) for a in answers]
    scores = [SCRIPTED_SCORES[a.rstrip(".")] for a in answers]
    chosen, weights = weighted_vote(samples, scores)
    assert weights == pytest.approx({"5": 1.8, "6": 0.6, "7": 0.95}) and chosen == 0
    (result,) = make_strategy("weighted_best_of_n", {"n": 5, "scorer": f"{__name__}:scripted_score"}).run(
        Scripted(["6", "5", "7", "5", "6"]), [EASY], PARAMS)
    assert result.answer == "5" and result.chosen is result.samples[1]  # best-scored sample of the winner
    (result,) = make_strategy("best_of_n", {"n": 5, "scorer": f"{__name__}:scripted_score"}).run(
        Scripted(["6", "5", "7", "5", "6"]), [EASY], PARAMS)
    assert result.answer == "7"  # plain best-of-n would take the single best sample instead


def countdown_problems(count: int = 60):
    return [TASKS["countdown"].sample(10**9 + seed, 1 + seed % 5) for seed in range(count)]


def test_countdown_verifier_reads_real_prompts():
    problems = countdown_problems()
    assert len({p.prompt.split()[0] for p in problems}) == 4  # every phrasing the generator uses
    for p in problems:
        numbers, target = countdown_instance(p.prompt)
        assert target == expressions.evaluate(expressions.parse(p.answer))
        prompt = [Message("user", p.prompt)]
        assert countdown(prompt, fake(p.answer)) == 1.0
        assert countdown(prompt, fake(f"Answer: {p.answer}")) == 1.0
        assert countdown(prompt, fake(f"{p.answer}+1")) == 0.0  # wrong value (and maybe a new number)
        assert countdown(prompt, fake(f"{p.answer}-{max(numbers) + 1}+{max(numbers) + 1}")) == 0.0  # not given
        assert countdown(prompt, fake("")) == 0.0


def test_countdown_verifier_agrees_with_the_task_on_model_answers(engine):
    problems = countdown_problems(10)
    prompts = [[Message("user", p.prompt)] for p in problems]
    params = SamplingParams(max_completion_tokens=96, reasoning_budget=64)
    results = make_strategy("best_of_n", {"n": 2, "scorer": "countdown"}).run(engine, prompts, params)
    assert 0 < sum(result.meta["scores"].count(1.0) for result in results) < 20  # some right, some wrong
    for problem, result in zip(problems, results):
        for sample, score in zip(result.samples, result.meta["scores"]):
            assert score == problem.verify(sample.answer)


def test_countdown_verifier_has_no_opinion_on_other_prompts():
    for prompt in ["What is 2 + 3?", "Make 5 apples.", TASKS["word_problems"].sample(10**9, 3).prompt]:
        assert countdown([Message("user", prompt)], fake("5")) == NOT_COUNTDOWN


def test_scorer_paths():
    assert resolve_scorer(f"{__name__}:constant") is constant
    with pytest.raises(UserError, match="valid scorers: confidence, countdown"):
        resolve_scorer("nope")
    with pytest.raises(UserError, match="no function 'missing'"):
        resolve_scorer(f"{__name__}:missing")
    with pytest.raises(UserError, match="no module named 'no_such_module'"):
        resolve_scorer("no_such_module:score")


def test_lazy_scorers_are_the_prm_extension_point(monkeypatch):
    assert LAZY_SCORERS["prm"] == "ponder.prm.scorer:score"  # imported on first use only
    monkeypatch.setitem(LAZY_SCORERS, "later", f"{__name__}:answer_length")
    monkeypatch.setitem(LAZY_SCORERS, "missing", "no_such_module:score")
    assert resolve_scorer("later") is answer_length
    with pytest.raises(UserError, match="'missing' is not available in this install"):
        resolve_scorer("missing")
    with pytest.raises(UserError) as error:
        resolve_scorer("nope")
    assert "missing" not in str(error.value)  # a lazy scorer that is not installed is not offered


# ---- budget forcing ----------------------------------------------------------------------------

def test_budget_forcing_sets_the_engine_fields_and_thinks_longer(engine):
    spy = Spy(engine)
    (plain,) = make_strategy("single", {}).run(engine, [EASY], PARAMS)
    (forced,) = make_strategy("budget_forcing", {"min_tokens": 20, "max_tokens": 40}).run(spy, [EASY], PARAMS)
    params = spy.calls[0][1]
    assert params.min_reasoning_tokens == 20 and params.reasoning_budget == 40 and params.temperature == 0
    assert plain.reasoning_tokens < 20 <= forced.reasoning_tokens <= 40


def test_budget_forcing_keeps_the_base_budget_and_checks_it(engine):
    spy = Spy(engine)
    make_strategy("budget_forcing", {"min_tokens": 10}).run(spy, [EASY], PARAMS)
    assert spy.calls[0][1].reasoning_budget == 32
    with pytest.raises(UserError, match="below the reasoning budget .32.*max_tokens"):
        make_strategy("budget_forcing", {"min_tokens": 32}).run(engine, [EASY], PARAMS)


# ---- registry ----------------------------------------------------------------------------------

def test_registry_names_and_param_text_conversion():
    assert set(STRATEGIES) >= {"single", "self_consistency", "best_of_n", "weighted_best_of_n",
                               "budget_forcing", "adaptive"}
    assert make_strategy("self_consistency", {"k": "16"}).k == 16
    adaptive = make_strategy("adaptive", {"agreement": "0.6", "max_k": 8.0})
    assert (adaptive.agreement, adaptive.max_k, adaptive.initial) == (0.6, 8, 4)
    assert any(line.startswith("k: int in [1, 256], default 8") for line in describe_params("self_consistency"))
    assert parse_param_pairs(["k=16", " scorer = countdown "]) == {"k": "16", "scorer": "countdown"}


@pytest.mark.parametrize("name, params, message", [
    ("vote", {}, "unknown strategy 'vote'; valid strategies: single, self_consistency"),
    ("self_consistency", {"n": 3}, "has no parameter 'n'; valid parameters: k: int in [1, 256]"),
    ("single", {"k": 3}, "it takes no parameters"),
    ("self_consistency", {"k": "0"}, "'k': 0 is out of range; valid range [1, 256]"),
    ("self_consistency", {"k": "many"}, "expected a whole number, got 'many'"),
    ("self_consistency", {"k": 2.5}, "expected a whole number"),
    ("self_consistency", {"temperature": "0"}, "valid range (0, 5]"),
    ("adaptive", {"agreement": "1.5"}, "'agreement': 1.5 is out of range; valid range (0, 1]"),
    ("adaptive", {"initial": 20}, "initial (20) must be at most max_k (16)"),
    ("adaptive", {"give_up": 0.8}, "give_up (0.8) must be below agreement (0.75)"),
    ("best_of_n", {"scorer": "vibes"}, "unknown scorer 'vibes'; valid scorers: confidence, countdown"),
    ("budget_forcing", {}, "needs min_tokens"),
    ("budget_forcing", {"min_tokens": 50, "max_tokens": 50}, "must be below max_tokens"),
])
def test_registry_errors_name_what_is_valid(name, params, message):
    with pytest.raises(UserError, match=re.escape(message)):
        make_strategy(name, params)


def test_malformed_param_pairs():
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        parse_param_pairs(["k"])
    with pytest.raises(UserError, match="given twice"):
        parse_param_pairs(["k=1", "k=2"])


# ---- ponder ask --strategy ---------------------------------------------------------------------

def ask(capsys, *argv):
    code = main(["ask", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_ask_with_a_strategy_reports_totals(capsys):
    code, out, _ = ask(capsys, "What is 2 + 3?", "--strategy", "self_consistency", "--param", "k=3", "--json",
                       "--budget", "32")
    data = json.loads(out)
    assert code == 0 and data["strategy"] == "self_consistency" and data["samples"] == 3
    assert data["answer"].strip() == "5" and data["finish_reason"] == "stop"
    assert data["meta"]["votes"] == {"5": 3}
    one = json.loads(ask(capsys, "What is 2 + 3?", "--json", "--budget", "32")[1])
    assert one["strategy"] == "single" and one["samples"] == 1
    assert set(one["usage"]) == {"prompt_tokens", "completion_tokens", "reasoning_tokens"}
    assert data["usage"]["prompt_tokens"] == 3 * one["usage"]["prompt_tokens"]
    assert data["usage"]["completion_tokens"] >= data["usage"]["reasoning_tokens"] >= 3


def test_ask_strategy_text_output_and_effort(capsys):
    code, out, err = ask(capsys, "What is 2 + 3?", "--strategy", "adaptive", "--param", "max_k=4",
                         "--effort", "low")
    assert code == 0 and out.strip() == "5"
    assert "adaptive, 4 samples:" in err and "reasoning +" in err


@pytest.mark.parametrize("argv, message", [
    (["--strategy", "vote"], "valid strategies: single, self_consistency"),
    (["--strategy", "self_consistency", "--param", "k=0"], "valid range [1, 256]"),
    (["--strategy", "self_consistency", "--param", "n=3"], "valid parameters: k"),
    (["--strategy", "self_consistency", "--param", "k"], "expected KEY=VALUE"),
    (["--strategy", "best_of_n", "--param", "scorer=vibes"], "valid scorers"),
    (["--param", "k=2"], "it takes no parameters"),
])
def test_ask_bad_strategy_or_param_exits_2_with_one_line(capsys, argv, message):
    code, out, err = ask(capsys, "hi", *argv)
    assert code == 2 and out == ""
    assert err.startswith("ponder ask: error:") and message in err and len(err.strip().splitlines()) == 1
