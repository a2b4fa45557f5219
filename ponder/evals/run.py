"""Running eval suites against a model spec: batches through one engine call each, a response
cache, per-sample JSONL logs and results.json written as results come in.

Samples go to the engine `concurrency` at a time, each batch in ONE `generate` call with k
requests per sample, so the native engine batches them on its own. A remote engine (one that
bounds its own requests in flight) gets `concurrency` requests in flight and 4x that many
samples per call, so a server's continuous batching stays full. After every batch its samples
are appended to samples/<suite>.jsonl and results.json is rewritten atomically with
`complete: false`: a crash halfway loses nothing already scored, and a re-run goes fast
through the cache.

A scorer that raises marks its sample ungraded, with the error as the explanation; ungraded
samples are counted and left out of every metric. Left out: retries (the remote engine retries
transient errors itself) and resuming a half-finished run in place (the cache makes a re-run
cheap instead).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Sequence

from ponder.engine.base import Completion, Engine, SamplingParams
from ponder.errors import UserError
from ponder.evals.cache import DEFAULT_CACHE, ResponseCache, cached_generate
from ponder.evals.data import data_dir_from
from ponder.evals.stats import mean_of_name, metric_ci
from ponder.evals.suites import SUITES, build_suite
from ponder.evals.task import EvalTask, Metric, Sample, Score, ScoredSample, Skipped, SuiteOptions
from ponder.think.budget import EFFORT_BUDGETS, budget_for

SCHEMA_VERSION = 1
SAMPLED_TEMPERATURE = 0.8  # Solver.temperature None with k > 1: votes need diverse samples
# A remote engine keeps `concurrency` requests in flight within one generate call, so a call
# of 4x that many samples keeps the server's batch full while short requests finish; a call of
# exactly `concurrency` would wait on its slowest request with the server half idle (measured:
# ~30% slower through `ponder serve`, see bench/eval_serve.py).
REMOTE_CALL_BATCHES = 4


@dataclass(frozen=True)
class RunConfig:
    """One `ponder eval` run."""

    # what to run
    suites: tuple[str, ...]
    model: str = "default"  # a model spec: default, DIR, hf:DIR, gguf:FILE, openai:MODEL@URL
    limit: int | None = None  # items per suite: samples, or groups where samples are grouped (None = all)
    # how the model is sampled
    effort: str = "medium"  # minimal | low | medium | high -> reasoning budget
    k: int = 1  # samples per item (maj@k votes over them)
    seed: int = 0  # sample i of k gets seed + i
    concurrency: int = 16  # samples per engine call (and requests in flight for a remote model)
    # grading and data
    judge: str | None = None  # a model spec that grades; None = the offline graders
    data_dir: Path | None = None  # the data folder; None = $PONDER_DATA, or no folder (evals/data.py)
    paths: dict[str, Path] = field(default_factory=dict)  # suite -> a dataset file of its own
    # where things go
    out_dir: Path | None = None  # None = runs/eval/<model>-<effort>-<timestamp>
    cache: Path | None = DEFAULT_CACHE  # None = no response cache

    def __post_init__(self) -> None:
        if not self.suites:
            raise UserError(f"name at least one eval suite; valid: {', '.join(SUITES)}")
        for name in self.suites:
            if name not in SUITES:
                raise UserError(f"unknown eval suite {name!r}; valid: {', '.join(SUITES)}")
        if len(set(self.suites)) != len(self.suites):
            raise UserError(f"suite named twice in {list(self.suites)}")
        if self.effort not in EFFORT_BUDGETS:
            raise UserError(f"unknown reasoning effort {self.effort!r}; valid: {', '.join(EFFORT_BUDGETS)}")
        for name in ("k", "concurrency"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"limit must be at least 1, got {self.limit}")


def model_slug(spec: str) -> str:
    """A file-name-safe short name for a model spec (its model name, not its URL)."""
    if spec.startswith("openai:"):
        spec = spec[len("openai:"):].split("@http", 1)[0]
    spec = spec.rstrip("/").rsplit("/", 1)[-1] or "model"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", spec).strip("-") or "model"


def default_out_dir(model: str, effort: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / "eval" / f"{model_slug(model)}-{effort}-{stamp}"


def resolved_out_dir(config: RunConfig) -> Path:
    return Path(config.out_dir) if config.out_dir is not None else default_out_dir(config.model, config.effort)


# ---- one suite ----------------------------------------------------------------------------------


@dataclass
class SuiteRun:
    """What a suite has produced so far."""

    task: EvalTask
    scored: list[ScoredSample] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    cached: int = 0  # requests answered from the cache
    requests: int = 0
    not_measured: str | None = None  # why the suite reports no number (no reasoning came back)


def read_dataset(task: EvalTask, limit: int | None) -> tuple[list[Sample], list[Skipped]]:
    """The samples of the first `limit` items and the skipped rows met on the way. An item is a
    group (a jailbreak request under every transformation is one item), else one sample."""
    samples: list[Sample] = []
    skipped: list[Skipped] = []
    items: set[str] = set()
    for item in task.dataset():
        if isinstance(item, Skipped):
            skipped.append(item)
            continue
        key = item.group if item.group is not None else f"sample:{item.id}"
        if limit is not None and key not in items and len(items) >= limit:
            break
        items.add(key)
        samples.append(item)
    return samples, skipped


def sampling_params(task: EvalTask, budget: int | None, seed: int) -> list[SamplingParams]:
    """One SamplingParams per sample-of-k: seed + i, temperature from the solver."""
    solver = task.solver
    temperature = solver.temperature
    if temperature is None:
        temperature = 0.0 if solver.k == 1 else SAMPLED_TEMPERATURE
    return [SamplingParams(max_completion_tokens=solver.max_completion_tokens, reasoning_budget=budget,
                           temperature=temperature, seed=seed + i) for i in range(solver.k)]


def score_sample(task: EvalTask, sample: Sample, completions: Sequence[Completion]) -> Score:
    try:
        score = task.scorer(sample, completions)
    except Exception as error:  # noqa: BLE001 - a grader failure ungrades one sample, never the run
        return Score(values={}, explanation=f"grader error: {type(error).__name__}: {error}", graded=False)
    if not isinstance(score, Score):
        return Score(values={}, explanation=f"grader error: the scorer returned {type(score).__name__}, not a Score",
                     graded=False)
    return score


def _too_long(engine: Engine, messages: Sequence) -> bool:
    """Does a prompt leave no room to answer in a local model's context? (Remote engines: the
    server says so itself, see `_generate`.)"""
    context = getattr(engine, "context_length", None)
    encode = getattr(engine, "encode", None)
    return bool(context and encode and len(encode(messages)) >= context)


def _generate(engine, requests, cache, model_id) -> tuple[list[Completion | UserError], int]:
    """Completions for a batch in one call. When the engine refuses the batch (a prompt too long
    for a server's model, say), each request is tried alone, so one bad prompt costs its own
    sample, not fifteen others; if every request fails alone the error is systematic and raised."""
    try:
        return cached_generate(engine, requests, cache, model_id)
    except UserError as error:
        if len(requests) == 1:
            raise
        first = error
    out: list[Completion | UserError] = []
    cached = 0
    for request in requests:
        try:
            completions, hit = cached_generate(engine, [request], cache, model_id)
            out.append(completions[0])
            cached += hit
        except UserError as error:
            out.append(error)
    if all(isinstance(c, UserError) for c in out):
        raise first
    return out, cached


def _generate_asking(engine, requests, cache, model_id, ask: bool) -> tuple[list, int, str | None]:
    """`_generate`, asking a remote engine for the reasoning when `ask`: (completions, cached,
    why the server refused to return the reasoning, or None). A refused batch is sent again
    without the request, so a server that hides reasoning still answers."""
    if not ask:
        return (*_generate(engine, requests, cache, model_id), None)
    engine.request_reasoning = True
    try:
        # Cached apart: an answer-only response must not stand in for one asked with its reasoning.
        return (*_generate(engine, requests, cache, f"{model_id}|include_reasoning"), None)
    except UserError as error:
        engine.request_reasoning = False
        return (*_generate(engine, requests, cache, model_id), str(error))


def no_reasoning_reason(scored: Sequence[ScoredSample], refused: str | None) -> str | None:
    """Why a suite that reads the reasoning has nothing to read, or None when some came back."""
    completions = [c for s in scored for c in s.completions]
    if not completions or any(c.reasoning for c in completions):
        return None
    if refused is not None:
        return f"no reasoning came back: the server refused to return it ({refused})"
    if any(c.reasoning_tokens for c in completions):
        return ("no reasoning came back: the model spent reasoning tokens but the server returned none (a ponder "
                "server returns it only when started with --allow-reasoning)")
    return "no reasoning came back: the model produced none at this effort"


def run_task(task: EvalTask, engine: Engine, *, budget: int | None = None, seed: int = 0, concurrency: int = 16,
             limit: int | None = None, cache: ResponseCache | None = None, model_id: str = "",
             on_batch: Callable[[SuiteRun, list[ScoredSample]], None] | None = None) -> SuiteRun:
    """Run one suite: batches of `concurrency` samples, each in one engine call. `on_batch` sees
    the run so far and the batch just scored (the runner writes its files there). A sample the
    model cannot take (its prompt does not fit the context) is counted as skipped, with why."""
    samples, skipped = read_dataset(task, limit)
    run = SuiteRun(task, skipped=skipped)
    params = sampling_params(task, budget, seed)
    k = len(params)
    batch_size = concurrency
    if hasattr(engine, "concurrency"):  # a remote engine: see REMOTE_CALL_BATCHES
        engine.concurrency = concurrency
        batch_size = concurrency * REMOTE_CALL_BATCHES
    # A remote engine (the one with `request_reasoning`) returns the reasoning only when asked.
    previous = getattr(engine, "request_reasoning", None)
    asking, refused = task.needs_reasoning and previous is not None, None
    batches = iter(samples)
    try:
        while batch := list(islice(batches, batch_size)):
            todo = []
            for sample in batch:
                messages = task.solver.messages(sample)
                if _too_long(engine, messages):
                    run.skipped.append(Skipped(sample.id, "prompt longer than the model's context"))
                else:
                    todo.append((sample, messages))
            requests = [(messages, p, i) for _, messages in todo for i, p in enumerate(params)]
            completions, cached, why = (_generate_asking(engine, requests, cache, model_id, asking and refused is None)
                                        if requests else ([], 0, None))
            refused = refused or why
            run.cached += cached
            run.requests += len(requests)
            new = []
            for j, (sample, _) in enumerate(todo):
                mine = completions[j * k:(j + 1) * k]
                error = next((c for c in mine if isinstance(c, UserError)), None)
                if error is not None:
                    run.skipped.append(Skipped(sample.id, f"the model refused the request: {str(error)[:120]}"))
                    continue
                new.append(ScoredSample(sample, tuple(mine), score_sample(task, sample, mine)))
            run.scored.extend(new)
            if on_batch is not None:
                on_batch(run, new)
    finally:
        if asking:
            engine.request_reasoning = previous
    if task.needs_reasoning:
        run.not_measured = no_reasoning_reason(run.scored, refused)
    return run


# ---- results ------------------------------------------------------------------------------------


def metric_n(metric: Metric, graded: Sequence[ScoredSample]) -> int:
    """How many graded samples a metric applies to: those with a value under its name (the
    averaged value for mean_of metrics), else all graded samples."""
    if mean_of_name(metric) is None and any(s.sample.group is not None for s in graded):
        # a grouped aggregate (goodness@0.1: one value per request) rests on its groups, not its rows
        return len({s.sample.group if s.sample.group is not None else s.sample.id for s in graded})
    name = mean_of_name(metric) or metric.name
    if any(name in s.score.values for s in graded):
        return sum(1 for s in graded if s.score.values.get(name) is not None)
    return len(graded)


def metric_result(metric: Metric, scored: Sequence[ScoredSample], seed: int = 0,
                  intervals: bool = True) -> dict[str, Any]:
    """A metric's value, n and (with `intervals`) its 95% interval (stats.metric_ci)."""
    graded = [s for s in scored if s.score.graded]
    value = metric.aggregate(graded) if graded else None
    low, high = metric_ci(graded, metric, seed=seed) if value is not None and intervals else (None, None)
    return {"value": value, "ci_low": low, "ci_high": high, "n": metric_n(metric, graded) if value is not None else 0,
            "higher_is_better": metric.higher_is_better}


def suite_summary(run: SuiteRun, complete: bool, seed: int = 0) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for s in run.skipped:
        reasons[s.reason] = reasons.get(s.reason, 0) + 1
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0}
    for s in run.scored:
        for c in s.completions:
            for key, value in c.usage().items():
                usage[key] += value
    return {
        "description": run.task.description,
        "complete": complete,
        "n_samples": len(run.scored),
        "ungraded": sum(1 for s in run.scored if not s.score.graded),
        "skipped": {"count": len(run.skipped), "reasons": reasons},
        # Intervals once the suite is complete: rewriting them after every batch would cost a
        # bootstrap per batch, quadratic in the suite's size; a partial file shows values only.
        "metrics": {m.name: (metric_result(m, run.scored, seed, intervals=complete) if run.not_measured is None
                             else {"value": None, "ci_low": None, "ci_high": None, "n": 0,
                                   "higher_is_better": m.higher_is_better})
                    for m in run.task.metrics},
        "usage": usage,
        "samples_file": f"samples/{run.task.name}.jsonl",
        **({"not_measured": run.not_measured} if run.not_measured is not None else {}),
    }


def sample_line(s: ScoredSample, messages: Sequence) -> dict[str, Any]:
    return {
        "id": s.sample.id, "group": s.sample.group,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "target": s.sample.target, "meta": dict(s.sample.meta),
        "completions": [{"reasoning": c.reasoning, "answer": c.answer, "reasoning_tokens": c.reasoning_tokens,
                         "completion_tokens": c.completion_tokens, "finish_reason": c.finish_reason}
                        for c in s.completions],
        "scores": dict(s.score.values), "answer": s.score.answer, "explanation": s.score.explanation,
        "graded": s.score.graded,
    }


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ResultsWriter:
    """results.json and samples/<suite>.jsonl under one output folder, kept current."""

    def __init__(self, out_dir: Path, header: dict[str, Any]):
        self.out_dir = out_dir
        (out_dir / "samples").mkdir(parents=True, exist_ok=True)
        self.results = {**header, "suites": {}}
        self.path = out_dir / "results.json"
        write_json_atomic(self.path, self.results)

    def start(self, suite: str) -> None:
        (self.out_dir / "samples" / f"{suite}.jsonl").write_text("", encoding="utf-8")

    def batch(self, run: SuiteRun, new: Sequence[ScoredSample], seed: int) -> None:
        with (self.out_dir / "samples" / f"{run.task.name}.jsonl").open("a", encoding="utf-8") as f:
            for s in new:
                f.write(json.dumps(sample_line(s, run.task.solver.messages(s.sample)), ensure_ascii=False,
                                   default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.update(run, complete=False, seed=seed)

    def update(self, run: SuiteRun, complete: bool, seed: int) -> None:
        self.results["suites"][run.task.name] = suite_summary(run, complete, seed)
        write_json_atomic(self.path, self.results)


def run_eval(config: RunConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every suite of `config` and return the results dict (also in out_dir/results.json)."""
    from ponder.engine.spec import load_engine

    options = SuiteOptions(data_dir=data_dir_from(config.data_dir), paths=dict(config.paths), limit=config.limit,
                           k=config.k, judge=config.judge, seed=config.seed)
    tasks = [build_suite(name, options) for name in config.suites]  # a missing dataset fails before the model loads
    from ponder.evals.gate import model_identity_of

    # Which weights these results are about: the card stored from them is keyed by it, so a model
    # retrained in the same folder never inherits this evidence. A missing path fails here, early.
    identity = model_identity_of(config.model)
    engine = load_engine(config.model)
    out_dir = resolved_out_dir(config)
    header = {
        "schema_version": SCHEMA_VERSION, "model": config.model, "model_identity": identity,
        "effort": config.effort,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings": {"limit": config.limit, "k": config.k, "judge": config.judge, "seed": config.seed,
                     "concurrency": config.concurrency},
    }
    writer = ResultsWriter(out_dir, header)
    cache = ResponseCache(config.cache) if config.cache is not None else None
    try:
        model_id = identity
        for task in tasks:
            writer.start(task.name)
            started = time.perf_counter()
            run = run_task(task, engine, budget=budget_for(config.effort), seed=config.seed,
                           concurrency=config.concurrency, limit=config.limit, cache=cache, model_id=model_id,
                           on_batch=lambda run, new: writer.batch(run, new, config.seed))
            writer.update(run, complete=True, seed=config.seed)
            if log is not None:
                log(f"{task.name}: {len(run.scored)} samples in {time.perf_counter() - started:.1f}s, "
                    f"{run.cached} of {run.requests} responses from the cache")
    finally:
        if cache is not None:
            cache.close()
    return writer.results
