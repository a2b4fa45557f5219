"""`ponder eval`: flags, the printed table, one-line errors (exit 2), through ponder's own main."""

from __future__ import annotations

import json

import pytest

from ponder.cli import main
from ponder.evals.cli import format_table


def test_eval_prints_a_table_and_writes_results(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["eval", "builtin", "--limit", "4", "--effort", "low", "--k", "2", "--concurrency", "2",
                 "--out", str(out), "--cache", str(tmp_path / "c.sqlite")])
    assert code == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert lines[0].split() == ["suite", "metric", "value", "95%", "CI", "n", "skipped", "ungraded"]
    assert lines[2].split()[:2] == ["builtin", "pass@1"] and lines[3].split()[0] == "maj@2"
    assert lines[-1] == f"results: {out / 'results.json'}"
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["k"] == 2 and results["suites"]["builtin"]["n_samples"] == 4
    assert "0 of 8 responses from the cache" in printed.err
    assert main(["eval", "builtin", "--limit", "4", "--effort", "low", "--k", "2", "--concurrency", "2",
                 "--out", str(out), "--cache", str(tmp_path / "c.sqlite")]) == 0
    assert "8 of 8 responses from the cache" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["eval", "nope"], "unknown eval suite 'nope'; valid: builtin, gsm8k"),
    (["eval", "builtin", "--limit", "ten"], "--limit must be a whole number, got 'ten'"),
    (["eval", "builtin", "--k", "0"], "--k must be at least 1, got 0"),
    (["eval", "builtin", "--effort", "max"], "unknown reasoning effort 'max'"),
    (["eval", "builtin", "--data", "gsm8k"], "--data takes SUITE=FILE"),
    (["eval", "builtin", "--data", "gsm8k=x.jsonl"], "--data names suite 'gsm8k', which is not being run"),
    (["eval", "gsm8k", "--data-dir", "/nowhere"], "gsm8k: dataset file not found: /nowhere/gsm8k/test.jsonl"),
])
def test_bad_flags_exit_2_with_one_line(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "o"), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "o").exists()  # nothing written for a run that never started


def test_table_shows_missing_values_and_counts():
    results = {"suites": {"x": {"skipped": {"count": 3, "reasons": {}}, "ungraded": 2, "metrics": {
        "acc": {"value": None, "ci_low": None, "ci_high": None, "n": 0, "higher_is_better": True},
        "tokens": {"value": 123.456, "ci_low": 100.0, "ci_high": 150.0, "n": 9, "higher_is_better": False}}}}}
    table = format_table(results).splitlines()
    assert table[2].split() == ["x", "acc", "-", "-", "0", "3", "2"]
    assert table[3].split() == ["tokens", "123.5", "[100.0,", "150.0]", "9"]


def test_data_comes_from_the_flag_then_ponder_data_never_a_guess(capsys, monkeypatch, tmp_path, data_dir):
    """No default folder: without --data-dir or $PONDER_DATA a suite that needs data says how to
    give it some (GSM8K first tries the hub, unreachable here); $PONDER_DATA is read when no flag is given."""
    from tests.conftest import REPO

    monkeypatch.delenv("PONDER_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr("ponder.evals.data.HUB_CACHE", tmp_path / "hub")
    monkeypatch.chdir(REPO)  # where ../shared/data resolves to the real data: it must not be used
    assert main(["eval", "xstest", "--limit", "1", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "xstest: no dataset given; pass --data-dir DIR (a folder holding xstest/xstest_prompts.csv), " \
           "set $PONDER_DATA" in err
    assert main(["eval", "gsm8k", "--limit", "1", "--no-cache"]) == 2
    assert "openai/gsm8k could not be loaded from the hub" in capsys.readouterr().err
    monkeypatch.setenv("PONDER_DATA", "/nowhere")
    assert main(["eval", "gsm8k", "--limit", "1", "--no-cache"]) == 2
    assert "/nowhere/gsm8k/test.jsonl" in capsys.readouterr().err


def test_a_hub_dataset_is_loaded_by_the_datasets_library_and_saved_once(tmp_path, data_dir):
    """The real `datasets` loading code, on a local file (no hub here): the rows it yields are saved in
    the original format, which the suite then reads like any file."""
    pytest.importorskip("datasets")
    from ponder.evals.data import HubSource, fetch_from_hub
    from ponder.evals.suites import build_suite
    from ponder.evals.task import SuiteOptions

    original = data_dir / "gsm8k" / "test.jsonl"
    source = HubSource("json", None, "train", {"data_files": str(original), "cache_dir": str(tmp_path / "hf")})
    saved = fetch_from_hub("gsm8k", source, tmp_path / "cache" / "gsm8k" / "test.jsonl")
    assert [json.loads(line) for line in saved.read_text().splitlines()] == \
        [json.loads(line) for line in original.read_text().splitlines()]
    task = build_suite("gsm8k", SuiteOptions(paths={"gsm8k": str(saved)}))
    assert len(list(task.dataset())) == 1319  # every row read, as from the original file
    original_mtime = saved.stat().st_mtime_ns
    assert fetch_from_hub("gsm8k", HubSource("no/such-dataset", None, "test"), saved) == saved  # saved once
    assert saved.stat().st_mtime_ns == original_mtime


def test_an_unreachable_hub_is_one_line_with_every_way_out(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    from ponder.errors import UserError
    from ponder.evals.data import HubSource, fetch_from_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(UserError, match=r"openai/gsm8k could not be loaded from the hub \(\w+\); pass --data-dir"):
        fetch_from_hub("gsm8k", HubSource("openai/gsm8k", "main", "test", {"cache_dir": str(tmp_path / "hf")}),
                       tmp_path / "gsm8k" / "test.jsonl", "pass --data-dir DIR")
