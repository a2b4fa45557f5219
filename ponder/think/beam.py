"""PRM-guided beam search over reasoning steps (as in Snell et al., 2024, with a Math-Shepherd PRM).

Per prompt it keeps `beams` reasoning prefixes. Each round every kept prefix gets `expansions`
sampled next steps (one reasoning line: the engine stops right after the newline), for all
prefixes of all prompts in ONE engine call, each with its own seed (the prompt's seed + i for
its i-th step sample); the PRM (`ponder.prm`) scores every extended prefix in one batch and the
best `beams` survive. The first round draws `beams * expansions` first steps from the bare
prompt. Equal candidates count once: a confident policy samples the same step again and again,
and copies would crowd the beam down to one path (fewer distinct prefixes then cost fewer
expansions). A candidate that closed its reasoning and answered is finished and keeps its slot;
a prompt is done when `beams` of its kept candidates have finished or nothing is left to
expand, and the search stops after `max_steps` rounds. The answer is chosen among the finished
candidates (kept or not): by default (`select="mass"`, below) the answer with the most PRM score
x mass behind it; `select="best"` takes the one the PRM rates highest, `select="vote"` the
answer with the most PRM score behind it over distinct candidates. A prompt with no answered
candidate by then has its kept prefixes run to the end without step stops, in one more engine
call.

Mass (`select="mass"`): folding copies into one candidate throws away what the copies say,
that the policy itself keeps choosing this path. So each candidate carries the share of the
samples drawn that led to it: a parent's mass is split evenly over the steps sampled from it,
and copies add theirs up (a Monte-Carlo estimate of the path's probability under the policy,
within what the beam kept). Without it a slipped step, which is always distinct, weighs as
much as a step that most of the samples agreed on. `mass` votes over the finished
candidates' answers with weight PRM score x mass: majority vote's evidence and the PRM's at once.

Lazy expansion (`accept`): each kept prefix first gets one next step per beam slot it fills, and
only the slots whose step the PRM scores below `accept` get the other `expansions - 1` samples,
in one more engine call per round. A policy's mistakes are mostly isolated slips, so the search
spends its alternatives on the steps the PRM doubts, not on every step.

Tokens: every step sampled is a sample, kept or discarded, and the result's totals are summed
over them (what a server bills). Each step's prompt is the prompt plus its prefix, and is counted
as such: an engine without prefix caching reads the prefix again. PRM forward passes are
compute the totals do not show, as a best-of-n scorer's are. `chosen` is the winning path
stitched into one Completion, as if generated in one go; it is not itself one of `samples`.

Needs an engine that continues from token ids (`generate_ids`, `tok`: ponder's native or
continuous engine) whose tokenizer is the PRM's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

from ponder.engine.base import Completion, Engine, SamplingParams
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.think.base import ThinkResult, check_bounds, param, sample_temperature
from ponder.think.voting import answer_key

AGGREGATES = ("min", "last", "prod")
SELECTIONS = ("best", "vote", "mass")


def aggregate(scores: Sequence[float], how: str) -> float:
    """One number for a candidate's step scores: its worst step, its latest, or their product."""
    if not scores:
        return 0.0
    if how == "min":
        return min(scores)
    if how == "last":
        return scores[-1]
    return math.prod(scores)


@dataclass(frozen=True)
class Candidate:
    """One search candidate: the tokens generated after the prompt, and the steps that made them."""

    ids: tuple[int, ...] = ()
    pieces: tuple[Completion, ...] = ()  # the step completions along this path, in order
    done: bool = False  # answered, or out of room: cannot be continued
    steps: tuple[float, ...] = ()  # PRM P(+) per step end
    score: float = 0.0
    mass: float = 1.0  # share of the samples drawn that followed this path (see the module doc)

    @property
    def answered(self) -> bool:
        return self.done and bool(self.pieces) and self.pieces[-1].answer_tokens > 0


@dataclass
class _Search:
    """One prompt's state between rounds."""

    prompt: list[int]
    active: list[Candidate]
    kept: list[Candidate] = field(default_factory=list)  # finished candidates that won a slot
    finished: list[Candidate] = field(default_factory=list)  # every finished candidate
    samples: list[Completion] = field(default_factory=list)  # every step generated
    drawn: int = 0  # samples drawn so far: the next one's seed offset

    def over(self, beams: int) -> bool:
        return len(self.kept) >= beams or not self.active


@dataclass(frozen=True)
class BeamSearch:
    name: ClassVar[str] = "beam"
    beams: int = param(4, "prefixes kept per prompt (and finished answers to collect)", low=1, high=64)
    expansions: int = param(4, "next steps sampled per kept prefix each round", low=1, high=64)
    max_steps: int = param(12, "rounds of expansion (reasoning steps) before the search stops", low=1, high=256)
    prm: str | None = param(None, "PRM directory (default: $PONDER_PRM, else runs/prm/final)", api="operator")
    temperature: float | None = param(None, "sampling temperature of steps (default: the caller's, or 0.8 when "
                                      "it is greedy; 0 = greedy steps)", low=0, high=5)
    aggregate: str = param("min", "how a candidate's step scores become one: min, last or prod")
    accept: float | None = param(None, "lazy expansion: each kept prefix first gets one next step, and only one "
                                 "the PRM scores below this gets the other expansions (default: all at once)",
                                 low=0, high=1)
    # mass by default: at 4 beams x 4 expansions on difficulty 5 it scored 70.0% where best scored
    # 66.0% at the same spend (docs/guides/think.md, "Process reward model"); at 2 x 2 they were one problem apart.
    select: str = param("mass", "the answer: best (the finished candidate the PRM rates highest), vote "
                        "(answers of the distinct finished candidates, weighted by their PRM scores) or mass "
                        "(weighted by PRM score x the share of samples that followed each path)")

    def __post_init__(self) -> None:
        check_bounds(self)
        for name, valid in (("aggregate", AGGREGATES), ("select", SELECTIONS)):
            if getattr(self, name) not in valid:
                raise UserError(f"strategy 'beam', parameter {name!r}: {getattr(self, name)!r} is not one of "
                                f"{', '.join(valid)}")
        from ponder.prm.scorer import resolve_prm_dir

        resolve_prm_dir(self.prm)  # a missing PRM fails when the strategy is made, not mid-run

    @property
    def max_samples(self) -> int:
        # Every round samples `expansions` next steps of each kept prefix; then each kept prefix
        # still unfinished may be completed by one more sample.
        return self.beams * self.expansions * self.max_steps + self.beams

    def run(self, engine: Engine, prompts: list[list[Message]], params: SamplingParams) -> list[ThinkResult]:
        from ponder.prm.scorer import prm_for

        if not prompts:
            return []
        prm = prm_for(self.prm)
        _check_engine(engine, prm)
        temperature = sample_temperature(params, self.temperature)
        searches = [_Search(engine.encode(p), [Candidate()]) for p in prompts]  # type: ignore[attr-defined]
        for _ in range(self.max_steps):
            live = [s for s in searches if not s.over(self.beams)]
            if not live:
                break
            self._round(engine, prm, live, params, temperature)
        unanswered = [s for s in searches if s.active and not any(p.answered for p in s.finished)]
        if unanswered:
            self._complete(engine, prm, unanswered, params, temperature)
        return [self._result(engine, s) for s in searches]

    # --- one round: expand, score, select -----------------------------------------------------

    def _round(self, engine, prm, live: list[_Search], params: SamplingParams, temperature: float) -> None:
        stop = (prm.spec.separator,)
        lazy = self.accept is not None and self.expansions > 1
        first = 1 if lazy else self.expansions
        jobs = [(s, parent) for s in live for parent in s.active for _ in range(first * self._slots(parent))]
        candidates = self._expand(engine, prm, jobs, params, temperature, stop)
        if lazy:
            # A prefix whose next steps the PRM accepts needs no alternatives; only the others
            # get the rest of their expansions, in one more engine call for all of them.
            retry = [(s, parent) for s, parent, unfilled in _doubted(jobs, candidates, self.accept, self._slots)
                     for _ in range((self.expansions - 1) * unfilled)]
            if retry:
                jobs, candidates = jobs + retry, candidates + self._expand(engine, prm, retry, params,
                                                                           temperature, stop)
        drawn: dict[int, int] = {}  # steps sampled from each parent, retries included
        for _, parent in jobs:
            drawn[id(parent)] = drawn.get(id(parent), 0) + 1
        by_search: dict[int, list[Candidate]] = {}
        for (s, parent), p in zip(jobs, candidates):
            by_search.setdefault(id(s), []).append(dataclasses.replace(p, mass=parent.mass / drawn[id(parent)]))
        for s in live:
            # Equal candidates are one hypothesis: a confident policy samples the same step again
            # and again, and copies would crowd the beam down to a single path. Their masses add up.
            distinct: dict[tuple[int, ...], Candidate] = {}
            for p in by_search[id(s)]:
                seen = distinct.get(p.ids)
                distinct[p.ids] = p if seen is None else dataclasses.replace(seen, mass=seen.mass + p.mass)
            ranked = sorted(distinct.values(), key=lambda p: -p.score)  # stable: ties keep sampling order
            ranked = ranked[: self.beams - len(s.kept)]
            s.kept += [p for p in ranked if p.done]
            s.active = [p for p in ranked if not p.done]
            s.finished += [p for p in distinct.values() if p.done]

    def _slots(self, parent: Candidate) -> int:
        """Beam slots a parent's children compete for: all of them from the bare prompt, else one."""
        return self.beams if not parent.ids else 1

    def _complete(self, engine, prm, searches: list[_Search], params: SamplingParams, temperature: float) -> None:
        """Run the kept prefixes of prompts that have no answer to the end, without step stops."""
        jobs = [(s, parent) for s in searches for parent in s.active]
        for (s, parent), p in zip(jobs, self._expand(engine, prm, jobs, params, temperature, ())):
            s.finished.append(dataclasses.replace(p, mass=parent.mass))
        for s in searches:
            s.active = []

    def _expand(self, engine, prm, jobs: list[tuple[_Search, Candidate]], params: SamplingParams, temperature: float,
                stop: tuple[str, ...]) -> list[Candidate]:
        """One continuation per (search, parent) job, all in ONE engine call, then PRM-scored in
        one batch; the candidates come back in job order."""
        base = params.seed if params.seed is not None else 0
        step_params = []
        for s, parent in jobs:
            step_params.append(_step_params(params, parent, temperature, base + s.drawn, stop))
            s.drawn += 1
        completions = engine.generate_ids([s.prompt + list(parent.ids) for s, parent in jobs], step_params)
        close = engine.tok.special.think_close
        candidates = []
        for (s, parent), c in zip(jobs, completions):
            s.samples.append(c)
            candidates.append(_extend(s, parent, c, params, close, engine.context_length))
        return _score(prm, [s.prompt for s, _ in jobs], candidates, self.aggregate)

    # --- the answer ---------------------------------------------------------------------------

    def _result(self, engine, s: _Search) -> ThinkResult:
        pool = s.finished or s.active
        best = max(pool, key=lambda p: (p.answered, p.score))  # max keeps the first of equals
        if self.select in ("vote", "mass"):
            best = weighted_choice(pool, by_mass=self.select == "mass") or best
        chosen = stitch(engine.tok, len(s.prompt), best)  # type: ignore[attr-defined]
        return ThinkResult(
            answer=chosen.answer, chosen=chosen, samples=tuple(s.samples),
            prompt_tokens=sum(c.prompt_tokens for c in s.samples),
            reasoning_tokens=sum(c.reasoning_tokens for c in s.samples),
            completion_tokens=sum(c.completion_tokens for c in s.samples),
            meta={"beams": self.beams, "expansions": self.expansions, "aggregate": self.aggregate,
                  "select": self.select, "accept": self.accept, "steps": len(best.steps), "prm_score": round(best.score, 4), "mass": round(best.mass, 4),
                  "step_scores": [round(x, 4) for x in best.steps], "finished": len(s.finished),
                  "kept_finished": len(s.kept)},
        )


def _doubted(jobs: Sequence[tuple[_Search, Candidate]], children: Sequence[Candidate], accept: float,
             slots) -> list[tuple[_Search, Candidate, int]]:
    """(search, parent, unfilled slots) for each parent, in job order, whose children the PRM
    scored at least `accept` fill fewer than its `slots(parent)` beam slots."""
    accepted: dict[int, int] = {}
    pairs: dict[int, tuple[_Search, Candidate]] = {}
    for (s, parent), child in zip(jobs, children):
        pairs.setdefault(id(parent), (s, parent))
        accepted[id(parent)] = accepted.get(id(parent), 0) + (child.score >= accept)
    return [(s, parent, slots(parent) - accepted[key]) for key, (s, parent) in pairs.items()
            if accepted[key] < slots(parent)]


def weighted_choice(pool: Sequence[Candidate], by_mass: bool = False) -> Candidate | None:
    """The best-scored candidate of the answer with the most PRM score behind it (ties: the
    answer seen first); None when no candidate answered. Distinct paths to one answer add up.
    `by_mass`: each candidate's score counts times its mass (the share of samples behind it)."""
    weight: dict[str, float] = {}
    best: dict[str, Candidate] = {}
    for p in pool:
        key = answer_key(p.pieces[-1].answer) if p.answered else None
        if key is None:
            continue
        weight[key] = weight.get(key, 0.0) + p.score * (p.mass if by_mass else 1.0)
        if key not in best or p.score > best[key].score:
            best[key] = p
    return best[max(weight, key=lambda k: weight[k])] if weight else None


def _check_engine(engine, prm) -> None:
    if not all(hasattr(engine, a) for a in ("generate_ids", "tok", "encode", "context_length")):
        raise UserError(f"strategy 'beam' continues reasoning from token ids, which engine {engine.name!r} "
                        "cannot do; use ponder's own engine (--model default or a checkpoint directory)")
    if engine.tok.backend.get_vocab() != prm.tok.backend.get_vocab():
        raise UserError(f"strategy 'beam': the PRM was trained for another tokenizer than model {engine.name!r}'s; "
                        "train a PRM on this model (ponder train --stage prm --policy DIR)")


def _step_params(params: SamplingParams, parent: Candidate, temperature: float, seed: int,
                 stop: tuple[str, ...]) -> SamplingParams:
    """The caller's limits, less what the prefix already spent."""
    reasoning = sum(c.reasoning_tokens for c in parent.pieces)
    budget = None if params.reasoning_budget is None else max(params.reasoning_budget - reasoning, 0)
    return dataclasses.replace(
        params, temperature=temperature, seed=seed, stop_in_reasoning=stop,
        max_completion_tokens=max(params.max_completion_tokens - len(parent.ids), 1), reasoning_budget=budget,
        min_reasoning_tokens=max(params.min_reasoning_tokens - reasoning, 0),
    )


def stepped(c: Completion, think_close: int) -> bool:
    """Whether a step ended at a separator while still reasoning (so it can be continued)."""
    return c.finish_reason == "stop" and c.answer_tokens == 0 and think_close not in c.token_ids


def _extend(s: _Search, parent: Candidate, c: Completion, params: SamplingParams, think_close: int,
            context: int) -> Candidate:
    ids = parent.ids + c.token_ids
    # Anything but a step boundary (an answer, a length cut) leaves nothing to continue, and so
    # does a prefix that filled the caller's token limit or the context.
    full = len(ids) >= params.max_completion_tokens or len(s.prompt) + len(ids) >= context - 1
    return Candidate(ids, parent.pieces + (c,), done=not stepped(c, think_close) or full)


def _score(prm, prompts: Sequence[list[int]], paths: Sequence[Candidate], how: str) -> list[Candidate]:
    from ponder.prm.model import score_sequences, step_ends

    close = prm.tok.special.think_close
    items = [(prompt + list(p.ids), [len(prompt) + e for e in step_ends(p.ids, prm.step_ids, close, p.done)])
             for prompt, p in zip(prompts, paths)]
    return [dataclasses.replace(p, steps=tuple(scores), score=aggregate(scores, how))
            for p, scores in zip(paths, score_sequences(prm, items))]


def stitch(tok, prompt_tokens: int, path: Candidate) -> Completion:
    """One Completion for a whole path, as if it had been generated in one go."""
    reasoning_tokens = sum(c.reasoning_tokens for c in path.pieces)
    last = path.pieces[-1]
    # A last step that stopped at a separator said "stop", but the path as a whole ran out of room.
    finish = "length" if stepped(last, tok.special.think_close) else last.finish_reason
    logprobs = None
    if all(c.logprobs is not None for c in path.pieces):
        logprobs = tuple(x for c in path.pieces for x in c.logprobs)  # type: ignore[union-attr]
    return Completion(
        reasoning=tok.decode(t for t in path.ids[:reasoning_tokens] if t != tok.special.think_close),
        answer=last.answer if path.answered else "",
        prompt_tokens=prompt_tokens,
        reasoning_tokens=reasoning_tokens,
        answer_tokens=sum(c.answer_tokens for c in path.pieces),
        finish_reason=finish,
        token_ids=path.ids,
        logprobs=logprobs,
    )
