"""Math-Shepherd labelling: pure pieces on made-up ids, the pipeline on the bundled model."""

from __future__ import annotations

import pytest

from ponder.engine.spec import load_engine
from ponder.errors import UserError
from ponder.prm.labels import (
    LabelledTrace,
    assemble,
    complete_prefixes,
    label_problems,
    load_labels,
    prefixes,
    prompt_of,
    sample_traces,
    save_labels,
    training_problems,
)
from ponder.prm.model import step_ends
from ponder.tasks import TASKS
from ponder.tasks.mix import HELD_OUT_BASE

NL, CLOSE, END = 7, 9, 2
STEP_IDS = frozenset({NL})


@pytest.fixture(scope="module")
def engine():
    return load_engine("default")


def test_step_ends_are_separators_in_the_reasoning_then_the_last_token():
    ids = [5, 5, NL, 6, NL, 6, 6, CLOSE, 4, NL, 4, END]  # a separator in the answer is no step
    assert step_ends(ids, STEP_IDS, CLOSE, finished=True) == [2, 4, 11]
    assert step_ends(ids[:5], STEP_IDS, CLOSE, finished=False) == [2, 4]
    assert step_ends(ids[:5], STEP_IDS, CLOSE, finished=True) == [2, 4]  # no step counted twice
    assert step_ends([], STEP_IDS, CLOSE, finished=True) == []


def test_prefixes_stop_before_the_last_step_and_labels_line_up():
    prompt, completion = [1, 1], [5, NL, 6, NL, 6, CLOSE, 4, END]
    ends = step_ends(completion, STEP_IDS, CLOSE, finished=True)
    assert prefixes(prompt, completion, ends) == [(1, 1, 5, NL), (1, 1, 5, NL, 6, NL)]
    problem = TASKS["arithmetic"].sample(0, 1)
    trace = assemble(problem, prompt, completion, ends, [[True, False, False, True], [False] * 4], final_correct=False)
    assert trace.ends == (3, 5, 9) and trace.tokens[trace.ends[-1]] == END
    assert trace.soft == (0.5, 0.0, 0.0) and trace.hard == (1.0, 0.0, 0.0) and not trace.correct


def test_training_problems_use_training_seeds_and_take_levels_in_turn():
    levels = ("arithmetic:2", "word_problems:5")
    problems = training_problems(6, seed=3, levels=levels)
    assert all(p.seed < HELD_OUT_BASE for p in problems)
    assert [(p.task, p.difficulty) for p in problems] == [("arithmetic", 2), ("word_problems", 5)] * 3
    assert problems == training_problems(6, seed=3, levels=levels)
    assert problems != training_problems(6, seed=4, levels=levels)
    for bad in ("arithmetic", "arithmetic:9", "chess:1", "countdown:x"):
        with pytest.raises(UserError, match="family:difficulty"):
            training_problems(2, 0, (bad,))
    with pytest.raises(UserError, match="at least one"):
        training_problems(2, 0, ())


def test_labels_round_trip_through_jsonl(tmp_path):
    trace = LabelledTrace((1, 2, 3), 1, (1, 2), (0.25, 1.0), (1.0, 1.0), "arithmetic", 3, 17)
    save_labels([trace, trace], tmp_path / "labels.jsonl")
    assert load_labels(tmp_path) == [trace, trace]
    with pytest.raises(UserError, match="no step labels"):
        load_labels(tmp_path / "missing")


def test_real_labels_are_fractions_and_the_last_one_is_the_trace_verdict(engine):
    problems = [TASKS["arithmetic"].sample(11, 4), TASKS["word_problems"].sample(12, 3),
                TASKS["countdown"].sample(13, 1)]
    traces, k, seed = 2, 3, 5
    labelled = label_problems(engine, problems, traces, k, temperature=0.8, max_tokens=400, seed=seed)
    sampled = sample_traces(engine, problems, traces, 0.8, 400, seed)  # the same seeds: the same traces
    assert len(labelled) == len(problems) * traces
    for trace, (problem, completion) in zip(labelled, [(p, c) for p, cs in zip(problems, sampled) for c in cs]):
        assert trace.tokens[trace.prompt_len :] == completion.token_ids
        assert len(trace.soft) == len(trace.hard) == len(trace.ends) >= 1
        assert all(0 <= y <= 1 and y * k == round(y * k) for y in trace.soft[:-1])  # a share of k completions
        assert all(h == float(s > 0) for s, h in zip(trace.soft[:-1], trace.hard[:-1]))
        assert trace.soft[-1] == trace.hard[-1] == float(problem.verify(completion.answer) >= 1)
        assert trace.ends[-1] == len(trace.tokens) - 1


def test_a_reference_prefix_is_labelled_good_and_a_broken_one_bad(engine):
    # A product with two partial products, so the first line is a real intermediate step.
    problem = next(p for p in (TASKS["arithmetic"].sample(s, 4) for s in range(20, 60)) if "*" in p.prompt
                   and p.reference.count("\n") >= 2)
    first = problem.reference.partition("\n")[0]
    prompt = engine.encode(prompt_of(problem))
    good = tuple(prompt + engine.tok.encode(first + "\n"))
    # The first partial product with its last digit changed: everything after it is wrong.
    head, arrow, value = first.rpartition("=> ")
    broken = tuple(prompt + engine.tok.encode(f"{head}{arrow}{int(value) + 1}\n"))
    outcomes = complete_prefixes(engine, {good: (problem, len(good) - len(prompt)),
                                          broken: (problem, len(broken) - len(prompt))},
                                 k=4, temperature=0.8, max_tokens=400, seed=0)
    assert sum(outcomes[good]) >= 3
    assert sum(outcomes[broken]) <= 1


class CountingEngine:
    """The real engine, counting the rollouts (generate_ids requests) it is asked for."""

    def __init__(self, engine):
        self.engine, self.tok, self.rollouts = engine, engine.tok, 0
        self.encode, self.generate = engine.encode, engine.generate

    def generate_ids(self, prompt_ids, params):
        self.rollouts += len(prompt_ids)
        return self.engine.generate_ids(prompt_ids, params)


def test_references_are_labelled_and_correct_traces_can_skip_rollouts(engine):
    from ponder.model.chat import encode_completion

    problem = TASKS["arithmetic"].sample(5, 2)  # easy: the policy gets it right every time
    counting = CountingEngine(engine)
    labelled = label_problems(counting, [problem], traces=2, completions=3, temperature=0.8, max_tokens=200,
                              seed=0, rollouts_on_correct=False, references=True)
    assert counting.rollouts == 0  # every trace verified, so no step needed completions
    assert [t.reference for t in labelled] == [False, False, True]
    ref = labelled[-1]
    assert ref.tokens[ref.prompt_len :] == tuple(encode_completion(engine.tok, problem.reference, problem.answer))
    assert all(t.correct and set(t.soft) == {1.0} for t in labelled)
