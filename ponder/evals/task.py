"""What an eval task is: a dataset of samples, a solver that turns each sample into model
calls, and a scorer that turns the completions into per-sample metric values.

As in Inspect, the three are separate so a jailbreak suite is "harmful requests, transformed"
(dataset) + "generate" (solver) + "refusal classifier" (scorer), and every scorer can be tested
offline on hand-made completions. Aggregation (means, bootstrap intervals, grouped metrics such
as StrongREJECT's goodness@0.1) is declared per task through `Metric`s, not computed by scorers.

What this module leaves out: running (run.py), caching (cache.py), statistics (stats.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ponder.engine.base import Completion
from ponder.model.chat import Message


@dataclass(frozen=True)
class Sample:
    """One eval item. `id` is stable across runs (the cache and the logs key on it);
    `target` is whatever the scorer compares against (an answer, a label, a list of options);
    `group` clusters samples for the bootstrap and for grouped metrics (e.g. one harmful
    request under many jailbreak transformations shares a group)."""

    id: str
    messages: tuple[Message, ...]
    target: Any = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A malformed dataset row: where it was and why it was skipped (counted in results.json)."""

    where: str  # e.g. "test.jsonl:17"
    reason: str  # short and stable, so counts group well: "missing field 'answer'"


@dataclass(frozen=True)
class Score:
    """A sample's metric values. None = this metric does not apply to this sample (e.g. a bias
    metric on a disambiguated BBQ question). `graded` False = the grader failed: the sample is
    counted as ungraded and left out of every metric, never silently scored."""

    values: Mapping[str, float | None]
    explanation: str = ""
    graded: bool = True
    answer: str | None = None  # the extracted answer, when the scorer extracts one (for the logs)


@dataclass(frozen=True)
class ScoredSample:
    sample: Sample
    completions: tuple[Completion, ...]
    score: Score


def mean_of(name: str) -> Callable[[Sequence[ScoredSample]], float | None]:
    """The default aggregate: the mean of a per-sample value over the samples it applies to."""

    def aggregate(scored: Sequence[ScoredSample]) -> float | None:
        values = [s.score.values.get(name) for s in scored if s.score.graded]
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    return aggregate


@dataclass(frozen=True)
class Metric:
    """A task-level number with a 95% interval (stats.metric_ci). `aggregate` maps scored
    samples to the value (None when nothing applies); the bootstrap resamples whole groups
    (samples sharing `Sample.group`, else each sample alone) and re-applies `aggregate`. `proportion` says a
    custom aggregate is a rate over its groups (goodness@0.1), so its interval is at least the
    Wilson interval (mean_of metrics over values in [0, 1] are recognised without it)."""

    name: str
    aggregate: Callable[[Sequence[ScoredSample]], float | None]
    higher_is_better: bool = True
    proportion: bool = False


@dataclass(frozen=True)
class Solver:
    """How a sample becomes model calls: `k` completions of the sample's messages (sample i of
    a sample has seed base+i, so k=1 is the first of k=8). `temperature` None = greedy for k=1,
    0.8 when k > 1 (majority vote needs diversity). `transform` may rewrite the messages first
    (e.g. add a developer message); it must be a pure function of the sample."""

    k: int = 1
    temperature: float | None = None
    max_completion_tokens: int = 512
    transform: Callable[[Sample], Sequence[Message]] | None = None

    def messages(self, sample: Sample) -> list[Message]:
        return list(self.transform(sample) if self.transform else sample.messages)


Scorer = Callable[[Sample, Sequence[Completion]], Score]


@dataclass(frozen=True)
class EvalTask:
    """A named suite. `dataset` yields Samples and Skipped rows (lazily: it may read a file);
    `scorer` may raise: the runner records the sample as ungraded with the error."""

    name: str
    dataset: Callable[[], Iterable[Sample | Skipped]]
    scorer: Scorer
    metrics: tuple[Metric, ...]
    solver: Solver = Solver()
    description: str = ""
    # The scorer reads the hidden reasoning: a remote engine is asked for it, and a run where none
    # came back is reported as not measured rather than scored on the answers alone.
    needs_reasoning: bool = False


@dataclass(frozen=True)
class SuiteOptions:
    """What every suite builder gets. `data_dir` holds one folder per dataset (gsm8k/test.jsonl,
    xstest/xstest_prompts.csv, ...: the layout of the files' original releases); a suite also accepts a
    direct file path through `paths[suite name]`. `judge` is a model spec that grades (None =
    the offline graders). `k` is samples per item where a suite votes (maj@k)."""

    data_dir: Path | None = None  # None: only suites given a file of their own (paths) have data
    paths: Mapping[str, Path] = field(default_factory=dict)
    limit: int | None = None
    k: int = 1
    judge: str | None = None
    seed: int = 0
