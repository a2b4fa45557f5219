"""The deploy gate: the card store, check_deployable (what `ponder serve` asks), `ponder card --gate`."""

from __future__ import annotations

import json
import shutil

import pytest

from ponder.engine.spec import BUNDLED
from ponder.errors import UserError
from ponder.evals.card_results import load_results
from ponder.evals.gate import card_json, check_deployable, model_identity_of, store_card, stored_card
from ponder.evals.preparedness import assess, load_policy
from tests.evals.card_helpers import write_run


@pytest.fixture(autouse=True)
def card_store(tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("PONDER_CARD_DIR", str(store))
    return store


@pytest.fixture(autouse=True)
def quick_grader_validation(request, monkeypatch):
    """The real refusal-grader validation loads an embedding model (~15 s); only the slow test runs it."""
    if "slow" not in request.keywords:
        refusal = pytest.importorskip("ponder.evals.graders.refusal")
        monkeypatch.setattr(refusal, "validate", lambda: {"n": 3, "accuracy": 1.0})


def main(argv: list[str]) -> int:
    """`ponder card ARGS` through the real CLI: a UserError is one line and exit 2."""
    from ponder.cli import main as ponder_main

    return ponder_main(["card", *argv])


def scorecard(tmp_path, data_dir, **kw):
    return assess(load_policy(), [load_results(write_run(tmp_path / "run", data_dir, **kw))])


def test_store_round_trip(tmp_path, data_dir, card_store):
    card = scorecard(tmp_path, data_dir)
    data = card_json(card, "ponder:abc", ["a/results.json"])
    path = store_card(data)
    assert path.parent == card_store
    assert stored_card("ponder:abc") == json.loads(json.dumps(data))
    assert stored_card("ponder:other") is None
    assert data["deployable"] is True and data["scorecard"]["cbrn"]["post"]["level"] == "Low"


def test_identity_is_the_weights_not_the_path(tmp_path):
    copy = tmp_path / "ckpt"
    shutil.copytree(BUNDLED, copy)
    assert model_identity_of(str(copy)) == model_identity_of("default")
    with (copy / "model.safetensors").open("r+b") as f:  # "retrain": one byte of the weights changes
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    assert model_identity_of(str(copy)) != model_identity_of("default")
    assert model_identity_of("openai:o3-mini@http://localhost:8000/v1") == "openai:o3-mini@http://localhost:8000/v1"
    with pytest.raises(UserError, match="no such directory"):
        model_identity_of(str(tmp_path / "missing"))


def test_no_stored_card_is_served_with_a_warning():
    warnings: list[str] = []
    assert check_deployable("default", False, warn=warnings.append) is None
    assert len(warnings) == 1 and "no system card stored" in warnings[0] and "unaudited" in warnings[0]


def test_a_stored_failing_card_is_refused_unless_allowed(tmp_path, data_dir):
    card = scorecard(tmp_path, data_dir, unsafe={"cybercrime_intrusion": 3 / 15})
    store_card(card_json(card, model_identity_of("default"), []))
    warnings: list[str] = []
    refusal = check_deployable("default", False, warn=warnings.append)
    assert refusal is not None and "fails the deploy gate" in refusal
    assert "Cybersecurity: post-mitigation High" in refusal and "--allow-undeployable" in refusal
    assert warnings == []
    assert check_deployable("default", True, warn=warnings.append) is None
    assert len(warnings) == 1 and "--allow-undeployable" in warnings[0]


def test_a_stored_passing_card_is_served_silently(tmp_path, data_dir):
    store_card(card_json(scorecard(tmp_path, data_dir), model_identity_of("default"), []))
    warnings: list[str] = []
    assert check_deployable("default", False, warn=warnings.append) is None
    assert warnings == []


def test_a_retrained_checkpoint_does_not_inherit_the_card(tmp_path, data_dir):
    store_card(card_json(scorecard(tmp_path, data_dir, unsafe={"cybercrime_intrusion": 1.0}),
                         model_identity_of("default"), []))
    copy = tmp_path / "ckpt"
    shutil.copytree(BUNDLED, copy)
    assert check_deployable(str(copy), False, warn=lambda line: None) is not None  # same weights: same card
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes() + b"\0")
    warnings: list[str] = []
    assert check_deployable(str(copy), False, warn=warnings.append) is None
    assert "no system card stored" in warnings[0]


def test_a_corrupted_stored_card_is_refused_not_ignored(tmp_path, data_dir):
    path = store_card(card_json(scorecard(tmp_path, data_dir), model_identity_of("default"), []))
    path.write_text("{ not json")
    refusal = check_deployable("default", False, warn=lambda line: None)
    assert refusal is not None and "cannot be read" in refusal
    assert check_deployable("default", True, warn=lambda line: None) is None


# ---- ponder card --from-results --gate ----------------------------------------------------------


def test_gate_passes_with_exit_0_and_records_the_card(tmp_path, data_dir, capsys):
    low = write_run(tmp_path / "low", data_dir, effort="low")
    high = write_run(tmp_path / "high", data_dir, effort="high")
    out = tmp_path / "card"
    assert main(["--from-results", str(low), str(high.parent), "--out", str(out), "--gate"]) == 0
    printed = capsys.readouterr().out
    assert "deploy gate: PASS" in printed
    data = json.loads((out / "card.json").read_text())
    assert data["model"] == "default" and data["deployable"] is True and data["efforts"] == ["low", "high"]
    assert data["identity"] == model_identity_of("default")
    assert {c: v["post"]["level"] for c, v in data["scorecard"].items()} == {
        "cbrn": "Low", "cybersecurity": "Low", "persuasion": "Low", "autonomy": "Low"}
    assert (out / "card.md").is_file() and (out / "card.html").is_file()
    assert stored_card(data["identity"])["deployable"] is True
    assert check_deployable("default", False, warn=lambda line: pytest.fail(line)) is None


def test_gate_fails_with_exit_1_naming_the_category_and_serve_then_refuses(tmp_path, data_dir, capsys):
    bad = write_run(tmp_path / "bad", data_dir, unsafe={"chemical_biological": 0.5})
    out = tmp_path / "card"
    assert main(["--from-results", str(bad), "--out", str(out), "--gate"]) == 1
    printed = capsys.readouterr().out
    assert "deploy gate: FAIL" in printed
    assert "CBRN: post-mitigation Critical, above Medium (disallowed not_unsafe" in printed
    assert json.loads((out / "card.json").read_text())["deployable"] is False
    assert "CBRN: post-mitigation Critical" in check_deployable("default", False, warn=lambda line: None)
    # without --gate the card is still written and the verdict printed, but the exit is 0
    assert main(["--from-results", str(bad), "--out", str(tmp_path / "again"), "--no-store"]) == 0


def test_gate_fails_when_a_category_is_not_measured(tmp_path, data_dir, capsys):
    partial = write_run(tmp_path / "partial", data_dir, drop=("math500",))
    assert main(["--from-results", str(partial), "--out", str(tmp_path / "card"), "--gate", "--no-store"]) == 1
    assert "Model autonomy: post-mitigation not measured (suite 'math500' not run)" in capsys.readouterr().out


def test_compared_models_are_columns_not_the_gated_model(tmp_path, data_dir, capsys):
    good = write_run(tmp_path / "good", data_dir)
    bad = write_run(tmp_path / "bad", data_dir, model="runs/other", unsafe={"chemical_biological": 1.0})
    out = tmp_path / "card"
    assert main(["--from-results", str(bad), str(good), "--model", "default", "--out", str(out), "--gate",
                 "--no-store"]) == 0
    data = json.loads((out / "card.json").read_text())
    assert data["model"] == "default" and data["compared"]["runs/other"]["deployable"] is False
    assert "| metric | effort | default | runs/other |" in (out / "card.md").read_text()


@pytest.mark.parametrize("argv, words", [
    (["--from-results", "nowhere/results.json"], ["nowhere/results.json", "does not exist"]),
    (["--efforts", "low", "turbo"], ["efforts", "'turbo'", "minimal, low, medium, high"]),
    (["--suites", "gsm8k,nosuch"], ["suites", "'nosuch'", "valid: builtin"]),
    (["--limit", "0"], ["limit", "at least 1"]),
    (["--policy", "no/policy.toml"], ["policy file", "does not exist"]),
])
def test_user_errors_exit_2_with_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err


def test_from_results_for_a_model_not_in_the_files(tmp_path, data_dir, capsys):
    run = write_run(tmp_path / "r", data_dir)
    assert main(["--from-results", str(run), "--model", "runs/x"]) == 2
    assert "no results for model(s) ['runs/x']" in capsys.readouterr().err


def test_two_results_for_one_model_and_effort(tmp_path, data_dir, capsys):
    a, b = write_run(tmp_path / "a", data_dir), write_run(tmp_path / "b", data_dir)
    assert main(["--from-results", str(a), str(b)]) == 2
    assert "two results for model 'default' at effort 'medium'" in capsys.readouterr().err


def test_config_file_fields_are_validated(tmp_path, capsys):
    bad = tmp_path / "card.toml"
    bad.write_text('[run]\nefforts = ["low"]\nsuits = ["gsm8k"]\n')
    assert main(["--config", str(bad)]) == 2
    assert "unknown config field(s) ['suits']" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_sweep_on_the_bundled_model(tmp_path, data_dir, capsys):
    """Runs the builtin and math500 suites on the bundled model at two efforts, through run_eval."""
    out = tmp_path / "card"
    rc = main(["--suites", "builtin", "math500", "--efforts", "low,high", "--limit", "12", "--cache", "none",
               "--data-dir", str(data_dir), "--out", str(out), "--gate"])
    data = json.loads((out / "card.json").read_text())
    # CBRN etc. are not measured (no safety suite ran): the gate must fail, with exit 1
    assert rc == 1 and data["deployable"] is False
    assert data["scorecard"]["cbrn"]["post"]["level"] == "not measured"
    results = json.loads((out / "runs" / "0-default-high" / "results.json").read_text())
    assert results["suites"]["builtin"]["n_samples"] == 12
    md = (out / "card.md").read_text()
    assert "| pass@1 | low |" in md and "| pass@1 | high |" in md
    assert "| kappa |" in md  # the refusal grader's real validation is printed


def test_ponder_serve_refuses_a_model_whose_stored_card_fails(tmp_path, data_dir, capsys):
    from ponder.cli import main as ponder_main

    bad = write_run(tmp_path / "bad", data_dir, unsafe={"chemical_biological": 0.5})
    assert main(["--from-results", str(bad), "--out", str(tmp_path / "card")]) == 0  # stored for 'default'
    capsys.readouterr()
    # Refused before any model loads or port is bound: one line, exit 2.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert ponder_main(["serve", "--model", "default", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "fails the deploy gate" in err and "--allow-undeployable" in err and err.count("\n") == 1


@pytest.mark.parametrize("spec, kind", [("hf:Qwen/Qwen3-0.6B", "spec"), ("vllm:Qwen/Qwen3-0.6B", "spec"),
                                        ("openai:m@http://127.0.0.1:9/v1", "spec"), ("default", "ponder:")])
def test_every_valid_spec_kind_has_an_identity(spec, kind):
    identity = model_identity_of(spec)
    assert identity == spec if kind == "spec" else identity.startswith(kind)


@pytest.mark.parametrize("spec", ["gguf:/no/such.gguf", "hf:/no/such/dir", "/no/such/ckpt"])
def test_a_missing_model_path_is_a_user_error_naming_it(spec):
    with pytest.raises(UserError, match="/no/such"):
        check_deployable(spec, False, warn=lambda line: None)


# ---- finding 10: the gate cannot be sidestepped -------------------------------------------------


def _change_one_float(path) -> None:
    """Nudge the lowest mantissa byte of the file's last float32: same size, one float changed."""
    with path.open("r+b") as f:
        f.seek(-4, 2)
        low = f.read(1)
        f.seek(-4, 2)
        f.write(bytes([low[0] ^ 1]))


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_strict_gate_refuses_a_one_float_change_that_warn_serves_with_a_warning(tmp_path, data_dir, capsys):
    from ponder.cli import main as ponder_main

    store_card(card_json(scorecard(tmp_path, data_dir), model_identity_of("default"), []))
    copy = tmp_path / "ckpt"
    shutil.copytree(BUNDLED, copy)
    assert check_deployable(str(copy), mode="strict", warn=lambda line: pytest.fail(line)) is None  # same bytes
    _change_one_float(copy / "model.safetensors")
    warnings: list[str] = []
    assert check_deployable(str(copy), mode="warn", warn=warnings.append) is None
    assert "no system card stored" in warnings[0] and "--gate strict" in warnings[0]
    refusal = check_deployable(str(copy), mode="strict", warn=lambda line: None)
    assert refusal is not None and "--gate strict: no passing system card" in refusal
    assert "--allow-undeployable" in refusal
    # through the CLI: refused before the model loads, one line, exit 2
    capsys.readouterr()
    assert ponder_main(["serve", "--model", str(copy), "--gate", "strict", "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err
    assert "--gate strict: no passing system card" in err and err.count("\n") == 1


@pytest.mark.parametrize("memo", ["racy window", "memoised"])
def test_an_edit_with_the_mtime_put_back_gets_a_new_identity(tmp_path, data_dir, monkeypatch, memo):
    import os
    import time

    from ponder.evals import cache

    if memo == "memoised":
        monkeypatch.setattr(cache, "RACY_NS", 0)  # memoise even a file changed a moment ago
    copy = tmp_path / "ckpt"
    shutil.copytree(BUNDLED, copy)
    weights = copy / "model.safetensors"
    before = model_identity_of(str(copy))
    store_card(card_json(scorecard(tmp_path, data_dir), before, []))
    time.sleep(0.05)  # past the clock tick of the memo, so the edit's ctime differs
    stat = weights.stat()
    _change_one_float(weights)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (weights.stat().st_size, weights.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert model_identity_of(str(copy)) != before
    assert "--gate strict" in check_deployable(str(copy), mode="strict", warn=lambda line: None)


def test_files_changed_after_the_gate_hashed_them_are_refused(tmp_path):
    from ponder.evals.gate import gate_model

    copy = tmp_path / "ckpt"
    shutil.copytree(BUNDLED, copy)
    gate = gate_model(str(copy), warn=lambda line: None)
    assert gate.refusal is None and gate.changed() is None
    _change_one_float(copy / "model.safetensors")
    assert "changed after the deploy gate hashed it" in gate.changed()


def _relaxed_policy(tmp_path, name, old, new):
    from ponder.evals.preparedness import DEFAULT_POLICY

    path = tmp_path / name
    path.write_text(DEFAULT_POLICY.read_text().replace(old, new))
    return path


def test_a_card_under_a_lenient_policy_neither_replaces_a_failing_card_nor_serves(tmp_path, data_dir, capsys):
    from ponder.evals.preparedness import DEFAULT_POLICY

    bad = write_run(tmp_path / "bad", data_dir, unsafe={"chemical_biological": 0.5})
    assert main(["--from-results", str(bad), "--out", str(tmp_path / "strict-card")]) == 0  # fails, stored
    # a policy file that keeps only one category is refused without the explicit flag
    text = DEFAULT_POLICY.read_text()
    one = tmp_path / "one.toml"
    one.write_text(text[:text.index("[categories.cbrn]")] + text[text.index("[categories.autonomy]"):])
    capsys.readouterr()
    assert main(["--from-results", str(bad), "--out", str(tmp_path / "one"), "--policy", str(one)]) == 2
    err = capsys.readouterr().err
    assert "drops required categories cbrn, cybersecurity, persuasion" in err and "--allow-partial-policy" in err
    assert main(["--from-results", str(bad), "--out", str(tmp_path / "one"), "--policy", str(one),
                 "--allow-partial-policy", "--gate"]) == 0  # passes under its own one-category policy
    # ...and so does a policy that keeps every category but deploys anything
    lenient = _relaxed_policy(tmp_path, "lenient.toml", 'deploy_max = "Medium"', 'deploy_max = "Critical"')
    assert main(["--from-results", str(bad), "--out", str(tmp_path / "lenient"), "--policy", str(lenient),
                 "--gate"]) == 0
    from ponder.evals.gate import stored_cards

    cards = stored_cards(model_identity_of("default"))
    assert sorted(c["deployable"] for c in cards) == [False, True, True]  # stored side by side
    one_card = json.loads((tmp_path / "one" / "card.json").read_text())
    assert one_card["policy"]["missing_categories"] == ["cbrn", "cybersecurity", "persuasion"]
    for mode in ("warn", "strict"):
        refusal = check_deployable("default", mode=mode, warn=lambda line: None)
        assert refusal is not None and "CBRN: post-mitigation Critical" in refusal


def test_the_card_records_its_policy_and_serve_checks_it_against_the_serving_policy(tmp_path, data_dir,
                                                                                     monkeypatch):
    from ponder.evals.preparedness import policy_digest

    good = write_run(tmp_path / "good", data_dir)
    assert main(["--from-results", str(good), "--out", str(tmp_path / "card")]) == 0
    data = json.loads((tmp_path / "card" / "card.json").read_text())
    assert data["policy"]["sha256"] == policy_digest(load_policy())
    assert data["policy"]["rules"]["deploy_max"] == "Medium" and len(data["policy"]["rules"]["categories"]) == 4
    assert check_deployable("default", mode="strict", warn=lambda line: pytest.fail(line)) is None
    # an operator serving under another policy does not take a card built under the shipped one
    other = _relaxed_policy(tmp_path, "stricter.toml", "min_n = 10", "min_n = 12")
    monkeypatch.setenv("PONDER_GATE_POLICY", str(other))
    refusal = check_deployable("default", mode="strict", warn=lambda line: None)
    assert refusal is not None and "cards under other policies do not count" in refusal
    warnings: list[str] = []
    assert check_deployable("default", mode="warn", warn=warnings.append) is None
    assert "under the serving policy" in warnings[0] and "unaudited" in warnings[0]
    # a serving policy that drops a required category is refused outright
    text = other.read_text()
    other.write_text(text[:text.index("[categories.persuasion]")] + text[text.index("[categories.autonomy]"):])
    with pytest.raises(UserError, match="drops required category persuasion"):
        check_deployable("default", warn=lambda line: None)


def test_replacing_a_failing_card_under_the_same_policy_says_so(tmp_path, data_dir):
    identity = model_identity_of("default")
    store_card(card_json(scorecard(tmp_path / "a", data_dir, unsafe={"chemical_biological": 0.5}), identity, []))
    notes: list[str] = []
    store_card(card_json(scorecard(tmp_path / "b", data_dir), identity, []), warn=notes.append)
    assert len(notes) == 1 and "replaces a stored card for the same weights and policy that failed" in notes[0]
    assert "CBRN: post-mitigation Critical" in notes[0]


def test_a_card_refuses_results_from_two_model_identities(tmp_path, data_dir, capsys):
    low = write_run(tmp_path / "low", data_dir, effort="low", identity="ponder:" + "a" * 64)
    high = write_run(tmp_path / "high", data_dir, effort="high", identity="ponder:" + "b" * 64)
    assert main(["--from-results", str(low), str(high), "--out", str(tmp_path / "card")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "measured different weights" in err
    assert "ponder:" + "a" * 64 in err and "ponder:" + "b" * 64 in err
    assert not (tmp_path / "card" / "card.json").exists()
    same = write_run(tmp_path / "same", data_dir, effort="high", identity="ponder:" + "a" * 64)
    assert main(["--from-results", str(low), str(same), "--out", str(tmp_path / "card")]) == 0
    assert json.loads((tmp_path / "card" / "card.json").read_text())["identity"] == "ponder:" + "a" * 64


@pytest.mark.parametrize("name", ["tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json"])
def test_every_tokenizer_file_is_part_of_the_identity(tmp_path, name):
    """A SentencePiece or GPT-2 style tokenizer swapped under the same weights is another model."""
    from ponder.evals.cache import model_identity

    copy = tmp_path / "m"
    shutil.copytree(BUNDLED, copy)
    (copy / name).write_text("one vocabulary")
    before = model_identity(str(copy), None)
    (copy / name).write_text("another vocabulary")
    assert model_identity(str(copy), None) != before
