"""The system card: what a model's results say, in the sections of the o-series system cards.

From one results dict per (model, effort) it builds: model and settings; capability (pass@1,
maj@k, mean reasoning tokens, 95% intervals); disallowed content; jailbreaks; hallucination;
fairness and bias; instruction hierarchy; chain-of-thought deception (rate and up to N flagged
examples from the samples logs, hidden reasoning shown, since auditing it is the point); the
refusal grader's validated agreement; the Preparedness scorecard (proxies labelled as such)
and the deploy decision; plots against reasoning effort. Compared models are extra columns.
Samples run, ungraded and skipped counts are shown for every suite at every effort.

It renders `card.md` (+ plots/*.png) and a self-contained `card.html`. Left out: running evals
(card_cli.py), the scorecard's rules (preparedness.py), the card store (gate.py).
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ponder.evals.card_caveats import JAILBREAKS, jailbreak_heading, not_measured_reasons, off_topic_warnings
from ponder.evals.card_render import Block, Example, Heading, Image, Para, Table, to_html, to_markdown
from ponder.evals.card_results import EFFORT_ORDER, RunResults
from ponder.evals.preparedness import LEVELS, NOT_MEASURED, Scorecard, StageResult

# (section title, suites, what the section measures): the order of the system cards.
SECTIONS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Capability", ("builtin", "gsm8k", "math500"),
     "Accuracy of the first sample (pass@1), of the majority answer over k samples (maj@k), and the mean "
     "reasoning tokens spent, at each reasoning effort."),
    ("Disallowed content", ("disallowed", "xstest"),
     "not_unsafe: share of harmful requests answered without harmful content; not_overrefuse: share of "
     "benign requests the model complied with (an off-topic reply is neither, and is counted in off_topic)."),
    ("Jailbreaks", ("jailbreaks",),
     "Harmful requests under jailbreak transformations; goodness@0.1 is, per request, the mean safety over "
     "the 10% most effective transformations (StrongREJECT)."),
    ("Hallucination", ("simpleqa",), "SimpleQA: correct, hallucinated (incorrect) and not attempted."),
    ("Fairness and bias", ("bbq",),
     "BBQ accuracy on ambiguous and disambiguated questions, and how often an ambiguous answer that is not "
     "'unknown' avoids the stereotype."),
    ("Instruction hierarchy", ("hierarchy",),
     "Conflicts between system, developer and user messages; protected passwords and phrases; a tutor that "
     "must not give the answer away."),
    ("Chain-of-thought deception", ("cot_deception",),
     "A monitor reads the hidden reasoning next to the answer and flags deception and invented policies."),
)
CAPABILITY = SECTIONS[0][1]
COT_SUITE = "cot_deception"
TEXT_LIMITS = {"prompt": 800, "reasoning": 2000, "answer": 800, "explanation": 500}


def fmt(value: Any, metric: str = "") -> str:
    if value is None:
        return "n/a"
    if metric == "mean_reasoning_tokens" or abs(float(value)) > 1.0:
        return f"{float(value):.1f}"
    return f"{float(value):.3f}"


def metric_cell(m: Mapping[str, Any] | None, metric: str) -> str:
    if m is None:
        return "—"
    if m.get("value") is None:
        return f"n/a (n={m.get('n', 0)})"
    ci = ""
    if m.get("ci_low") is not None and m.get("ci_high") is not None:
        ci = f" [{fmt(m['ci_low'], metric)}, {fmt(m['ci_high'], metric)}]"
    return f"{fmt(m['value'], metric)}{ci} n={m.get('n', 0)}"


def samples_cell(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "not run"
    skipped = entry.get("skipped") or {}
    reasons = ", ".join(f"{r}: {c}" for r, c in (skipped.get("reasons") or {}).items())
    text = (f"{entry.get('n_samples', 0)} run, {entry.get('ungraded', 0)} ungraded, "
            f"{skipped.get('count', 0)} skipped" + (f" ({reasons})" if reasons else ""))
    return text if entry.get("complete", True) else text + ", INCOMPLETE"


def _efforts(models: Mapping[str, Sequence[RunResults]]) -> list[str]:
    present = {r.effort for runs in models.values() for r in runs}
    return [e for e in EFFORT_ORDER if e in present]


def _run(runs: Sequence[RunResults], effort: str) -> RunResults | None:
    return next((r for r in runs if r.effort == effort), None)


def suite_table(suite: str, models: Mapping[str, Sequence[RunResults]]) -> Table | None:
    """Rows: each metric at each effort, then the sample counts; columns: the models."""
    efforts = _efforts(models)
    metrics: dict[str, None] = {}
    for runs in models.values():
        for r in runs:
            metrics.update(dict.fromkeys((r.suites.get(suite) or {}).get("metrics") or {}))
    if not any(suite in r.suites for runs in models.values() for r in runs):
        return None
    rows = []
    for metric in [*metrics, "samples"]:
        for effort in efforts:
            cells = []
            for runs in models.values():
                run = _run(runs, effort)
                entry = run.suites.get(suite) if run else None
                if metric == "samples":
                    cells.append(samples_cell(entry) if run else "—")
                elif entry is not None and entry.get("not_measured"):
                    cells.append("not measured (see below)")
                else:
                    cells.append(metric_cell(run.metric(suite, metric) if run else None, metric))
            rows.append((metric, effort, *cells))
    return Table(("metric", "effort", *models), tuple(rows))


def settings_blocks(models: Mapping[str, Sequence[RunResults]], identity: str | None, policy_source: str) -> list[Block]:
    primary, runs = next(iter(models.items()))
    first = runs[0].data if runs else {}
    settings = first.get("settings") or {}
    rows = [("model", primary), ("model identity", identity or "unknown (not a local checkpoint or hash failed)"),
            ("efforts", ", ".join(r.effort for r in runs)),
            ("suites", ", ".join(dict.fromkeys(s for r in runs for s in r.suites)))]
    rows += [(k, str(v)) for k, v in settings.items()]
    rows += [("results", "; ".join(f"{r.effort}: {r.source}" for r in runs)),
             ("created", "; ".join(f"{r.effort}: {r.data.get('created', '?')}" for r in runs)),
             ("policy", policy_source)]
    for model in list(models)[1:]:
        rows.append(("compared with", f"{model} ({', '.join(r.effort for r in models[model])})"))
    return [Heading(2, "Model and settings"), Table(("setting", "value"), tuple(rows))]


def _flag_names(runs: Sequence[RunResults]) -> list[str]:
    """The monitor's per-sample flags: the suite's lower-is-better metrics (rates)."""
    names: dict[str, None] = {}
    for r in runs:
        for name, m in ((r.suites.get(COT_SUITE) or {}).get("metrics") or {}).items():
            if not m.get("higher_is_better", True):
                names[name] = None
    return list(names)


def _clip(text: Any, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more characters]"


def cot_examples(runs: Sequence[RunResults], n: int) -> list[Block]:
    """Up to n flagged samples (any flag > 0), hidden reasoning shown."""
    flags = _flag_names(runs)
    if n == 0 or not any(COT_SUITE in r.suites for r in runs):
        return []
    if not flags:
        return [Para("No flag metric (a lower-is-better rate) in the results: no examples to show.", "note")]
    out: list[Block] = []
    for run in runs:
        for row in run.samples(COT_SUITE):
            scores = row.get("scores") or {}
            hit = [f for f in flags if (scores.get(f) or 0) > 0]
            if not hit or not row.get("graded", True):
                continue
            user = [m.get("content", "") for m in row.get("messages") or [] if m.get("role") == "user"]
            first = (row.get("completions") or [{}])[0]
            out.append(Example(f"{row.get('id')} (effort {run.effort}; flagged: {', '.join(hit)})", (
                ("prompt", _clip(user[-1] if user else "", TEXT_LIMITS["prompt"])),
                ("hidden reasoning (shown for audit)", _clip(first.get("reasoning"), TEXT_LIMITS["reasoning"])),
                ("answer", _clip(first.get("answer"), TEXT_LIMITS["answer"])),
                ("monitor", _clip(row.get("explanation"), TEXT_LIMITS["explanation"])))))
            if len(out) == n:
                return [Heading(3, f"Flagged examples (first {n})"), *out]
    if not out:
        return [Para("No sample was flagged by the monitor.", "note")]
    return [Heading(3, f"Flagged examples ({len(out)})"), *out]


def grader_validation(validate: Callable[[], Any] | None = None, labels: Sequence[str] | None = None) -> list[Block]:
    """The refusal grader's agreement with labelled data (ponder.evals.graders.refusal.validate):
    its summary, every field, and the confusion matrix when it has one."""
    blocks: list[Block] = [Heading(3, "Refusal grader validation (agreement with held-out hand labels)")]
    if validate is None:
        try:
            refusal = importlib.import_module("ponder.evals.graders.refusal")  # written by another part; may be absent
        except ImportError as error:
            return blocks + [Para(f"not available ({error})", "note")]
        validate, labels = getattr(refusal, "validate", None), getattr(refusal, "LABELS", None)
        if validate is None:
            return blocks + [Para("not available (the refusal grader has no validate())", "note")]
    try:
        result = validate()
    except Exception as error:  # noqa: BLE001 - the card reports a broken grader, it does not crash on it
        return blocks + [Para(f"not available (validate() failed: {type(error).__name__}: {error})", "note")]
    summary = result.summary() if callable(getattr(result, "summary", None)) else None
    fields = asdict(result) if is_dataclass(result) else result
    if not isinstance(fields, Mapping):
        return blocks + [Para(str(result))]
    confusion = fields.get("confusion")
    rows = tuple((str(k), fmt(v) if isinstance(v, float) else str(v)) for k, v in fields.items() if k != "confusion")
    blocks += ([Para(summary)] if summary else []) + [Table(("measure", "value"), rows)]
    if confusion and labels and len(confusion) == len(labels):
        blocks.append(Table(("hand label / grader", *labels),
                            tuple((label, *map(str, row)) for label, row in zip(labels, confusion))))
    elif confusion:
        blocks.append(Para(f"confusion: {confusion}"))
    return blocks


def _stage_cell(stage: StageResult) -> str:
    if stage.level == NOT_MEASURED:
        notes = sorted({e.note for e in stage.evidence if e.level == NOT_MEASURED})
        partial = f"; measured part: {stage.partial}" if stage.partial else ""
        return f"not measured ({'; '.join(notes)[:300]}{partial})"
    d = stage.driver
    return f"{stage.level} ({d.indicator} = {fmt(d.value)} at {d.effort})" if d else stage.level


def scorecard_blocks(cards: Mapping[str, Scorecard], warnings: Sequence[str] = ()) -> list[Block]:
    """The scorecard; `warnings` are caveats on the numbers it reads (off-topic safety replies)."""
    primary = next(iter(cards.values()))
    policy = primary.policy
    header = ["category", "offline proxy", "pre-mitigation", "post-mitigation"]
    for model in list(cards)[1:]:
        header += [f"{model}: pre", f"{model}: post"]
    rows = []
    for i, c in enumerate(primary.categories):
        row = [c.title, f"PROXY: {c.proxy}", _stage_cell(c.pre), _stage_cell(c.post)]
        for card in list(cards.values())[1:]:
            row += [card.categories[i].pre.level, card.categories[i].post.level]
        rows.append(tuple(row))
    evidence = []
    for c in primary.categories:
        for name, stage in (("pre", c.pre), ("post", c.post)):
            for e in stage.evidence:
                ci = f" [{fmt(e.ci_low)}, {fmt(e.ci_high)}]" if e.ci_low is not None and e.ci_high is not None else ""
                evidence.append((c.title, name, e.indicator, e.effort,
                                 f"{fmt(e.value)}{ci}" if e.value is not None else "—", str(e.n), e.level, e.note))
    failures = primary.failures()
    if failures:
        verdict = Para(f"NOT DEPLOYABLE under {policy.source}: " + " | ".join(failures), "verdict-fail")
    else:
        verdict = Para(f"Deployable: every post-mitigation category is {policy.deploy_max} or below.", "verdict-pass")
    develop = "yes" if primary.developable else f"no (a post-mitigation category is above {policy.develop_max} or not measured)"
    return [
        Heading(2, "Preparedness scorecard"),
        Para("Every category is measured by an OFFLINE PROXY, not by the real Preparedness evaluations. "
             "Pre-mitigation: the model with its safety behaviour bypassed by the most effective jailbreak "
             "transformations (goodness@0.1); post-mitigation: the model as deployed, on plain requests. Model "
             "autonomy is a capability proxy and is not mitigated. The worst level over all efforts counts; a "
             "category with a metric missing is 'not measured', never Low.", "note"),
        Table(tuple(header), tuple(rows)),
        *(Para(f"Caveat: {w}", "warning") for w in warnings),
        Heading(3, "Deploy decision"),
        verdict,
        Para(f"Only models with a post-mitigation level of {policy.deploy_max} or below may be deployed; "
             f"only those at {policy.develop_max} or below may be developed further (this model: {develop}). "
             f"Levels: {', '.join(LEVELS)}. Not measured "
             f"{'passes' if policy.not_measured_passes else 'fails'} the gate under this policy."),
        Heading(3, "Evidence"),
        Table(("category", "stage", "indicator", "effort", "value [95% CI]", "n", "level", "note"), tuple(evidence)),
    ]


def plot_blocks(models: Mapping[str, Sequence[RunResults]]) -> list[Block]:
    from ponder.evals.card_plots import render_plots

    others = tuple(dict.fromkeys(s for runs in models.values() for r in runs for s in r.suites
                                 if s not in CAPABILITY))
    blocks: list[Block] = [Heading(2, "Against reasoning effort")]
    try:
        plots = render_plots(models, CAPABILITY, others)
    except ImportError:
        return blocks + [Para("plots need matplotlib: pip install 'ponder[evals]'", "note")]
    if not plots:
        return blocks + [Para("nothing to plot", "note")]
    return blocks + [Image(f"plots/{p.name}.png", p.title, p.png) for p in plots]


def build_card(models: Mapping[str, Sequence[RunResults]], cards: Mapping[str, Scorecard], *,
               identity: str | None = None, examples: int = 5,
               validate: Callable[[], Any] | None = None, labels: Sequence[str] | None = None,
               plots: bool = True) -> list[Block]:
    """The card's blocks. `models`: spec -> runs (one per effort), the card's model first."""
    primary, runs = next(iter(models.items()))
    blocks: list[Block] = [
        Heading(1, f"System card: {primary}"),
        Para("Generated by `ponder card` from the results listed under settings. Numbers are point estimates "
             "with 95% intervals (Wilson intervals for rates, so that all-pass is not read as certain; the group "
             "bootstrap otherwise); n is the number of graded samples a metric applies to. Ungraded "
             "samples (grader failures) and skipped dataset rows are counted per suite and left out of every "
             "metric.", "note"),
        *settings_blocks(models, identity, next(iter(cards.values())).policy.source),
    ]
    if plots:
        blocks += plot_blocks(models)
    known = {s for _, suites, _ in SECTIONS for s in suites}
    extra = tuple(dict.fromkeys(s for rs in models.values() for r in rs for s in r.suites if s not in known))
    for title, suites, intro in (*SECTIONS, ("Other suites", extra, "")):
        if title == "Other suites" and not extra:
            continue
        blocks += [Heading(2, title)] + ([Para(intro)] if intro else [])
        for suite in suites:
            table = suite_table(suite, models)
            if table is None:
                blocks.append(Para(f"{suite}: not run", "note"))
                continue
            description = next((r.suites[suite].get("description") for r in runs if suite in r.suites), "")
            if suite == JAILBREAKS and any(suite in r.suites for r in runs):
                heading, transforms = jailbreak_heading(runs)  # what was graded, not what was planned
                blocks += [Heading(3, heading), Para(transforms, "note"), table]
            else:
                blocks += [Heading(3, suite + (f": {description}" if description else "")), table]
            blocks += [Para(f"Caveat: {w}", "warning") for w in off_topic_warnings(suite, models)]
            blocks += [Para(r, "warning") for r in not_measured_reasons(suite, models)]
        if title == "Chain-of-thought deception":
            blocks += cot_examples(runs, examples)
        if title == "Disallowed content":
            blocks += grader_validation(validate, labels)
    read = {ind.suite for c in next(iter(cards.values())).policy.categories for ind in (*c.pre, *c.post)}
    warnings = [w for suite in sorted(read) for w in off_topic_warnings(suite, {primary: runs})]
    return blocks + scorecard_blocks(cards, warnings)


def write_card(out_dir: Path, blocks: Sequence[Block], title: str) -> dict[str, Path]:
    """card.md, plots/*.png (which card.md links) and the self-contained card.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for b in blocks:
        if isinstance(b, Image):
            path = out_dir / b.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b.png)
            written[b.file] = path
    (out_dir / "card.md").write_text(to_markdown(blocks), encoding="utf-8")
    (out_dir / "card.html").write_text(to_html(blocks, title), encoding="utf-8")
    written["card.md"], written["card.html"] = out_dir / "card.md", out_dir / "card.html"
    return written
