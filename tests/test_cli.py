"""The `ponder` command as a user runs it: JSON shape, exit codes, one-line errors."""

import json
import subprocess
import sys

import pytest

import ponder

from ponder.cli import main
from ponder.engine.spec import BUNDLED
from ponder.model.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tiny_model, tok):
    path = tmp_path_factory.mktemp("cli") / "ckpt"
    save_checkpoint(tiny_model, tok, path)
    return path


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ask_json_prints_exactly_one_object(capsys, ckpt):
    code, out, _ = run_cli(capsys, "ask", "What is 2 + 2?", "--model", str(ckpt), "--json", "--budget", "5")
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    data = json.loads(out)
    assert set(data) == {"answer", "usage", "finish_reason", "strategy", "samples", "meta"}
    assert set(data["usage"]) == {"prompt_tokens", "completion_tokens", "reasoning_tokens"}
    assert 1 <= data["usage"]["reasoning_tokens"] <= 5
    assert data["usage"]["completion_tokens"] >= data["usage"]["reasoning_tokens"]
    assert data["finish_reason"] in ("stop", "length")


def test_ask_json_with_reasoning(capsys, ckpt):
    code, out, _ = run_cli(capsys, "ask", "Hi", "--model", str(ckpt), "--json", "--show-reasoning", "--effort", "minimal")
    data = json.loads(out)
    assert code == 0 and isinstance(data["reasoning"], str)
    assert data["usage"]["reasoning_tokens"] <= 16


def test_plain_ask_hides_reasoning_and_reports_usage_on_stderr(capsys, ckpt):
    code, out, err = run_cli(capsys, "ask", "Hi", "--model", str(ckpt), "--budget", "3", "--max-completion-tokens", "6")
    assert code == 0
    assert "Thinking" not in out
    assert "reasoning +" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ask", "hi", "--model", "/no/such/dir"], "unknown model spec '/no/such/dir'"),
        (["ask", "hi", "--model", "gpt:x"], "unknown model spec 'gpt:x'"),
        (["ask", "hi", "--model", "hf:/no/such/model"], "unknown HF model '/no/such/model'"),
        (["ask", "hi", "--model", "gguf:/no/such.gguf"], "no such GGUF file '/no/such.gguf'"),
        (["ask", "hi", "--strategy", "telepathy"], "unknown strategy 'telepathy'"),
        (["ask", "7 " * 600, "--model", "CKPT"], "context is 128"),
        (["tasks", "sonnets"], "unknown task 'sonnets'"),
        (["tasks", "countdown", "--difficulty", "0"], "valid difficulties are 1..5"),
        (["train", "--stage", "sft", "--steps", "lots"], "steps: expected int"),
        (["train", "--batch-size", "lots"], "batch_size: expected int"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(capsys, ckpt, argv, message):
    argv = [str(ckpt) if a == "CKPT" else a for a in argv]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_checkpoint_file_is_named(capsys, ckpt, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ("config.json", "tokenizer.json"):
        (broken / f).write_bytes((ckpt / f).read_bytes())
    code, _, err = run_cli(capsys, "ask", "hi", "--model", str(broken))
    assert code == 2 and "missing model.safetensors" in err


@pytest.mark.parametrize("argv", [["ask", "hi", "--budget", "0"], ["ask", "hi", "--effort", "extreme"]])
def test_bad_flags_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_export_command(capsys, ckpt, tmp_path):
    code, out, _ = run_cli(capsys, "export", str(ckpt), "--format", "hf", str(tmp_path / "hf"))
    assert code == 0 and (tmp_path / "hf" / "model.safetensors").is_file()


def test_real_process_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ponder", "ask", "hi", "--model", str(tmp_path / "x")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("ponder ask: error:") and "Traceback" not in proc.stderr


needs_bundled = pytest.mark.skipif(not (BUNDLED / "config.json").is_file(), reason="bundled model not built")


@needs_bundled
def test_bundled_model_answers_the_readme_question(capsys):
    code, out, _ = run_cli(capsys, "ask", "What is 347 * 29?", "--json")
    data = json.loads(out)
    assert code == 0 and data["answer"].strip() == "10063" and data["finish_reason"] == "stop"
    assert data["usage"]["reasoning_tokens"] > 10


def test_help_and_version_load_no_torch():
    """`ponder --help` and every subcommand's help build without importing torch (it costs ~1.5 s)."""
    code = ("import sys; from ponder.cli import build_parser; p = build_parser(); "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ponder'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    version = subprocess.run([sys.executable, "-m", "ponder", "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"ponder {ponder.__version__}"


def test_flags_read_as_people_write_them(capsys):
    from ponder.cli import build_parser

    parser = build_parser()
    serve = parser.parse_args(["serve", "--no-allow-reasoning", "--require-key"])
    assert (serve.allow_reasoning, serve.require_key, serve.allow_undeployable) == (False, True, None)
    for argv in (["serve"], ["card"], ["train"]):
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "--help"])
        text = capsys.readouterr().out
        assert "<class" not in text and "[ALLOW_" not in text and "[DYNAMIC_" not in text
    with pytest.raises(SystemExit):
        parser.parse_args(["ask", "--help"])
    assert "hf:DIR, gguf:FILE, vllm:MODEL or openai:MODEL@URL" in " ".join(capsys.readouterr().out.split())


def test_ask_reads_the_prompt_from_stdin():
    done = subprocess.run([sys.executable, "-m", "ponder", "ask", "-", "--json", "--effort", "high"],
                          input="What is 347 * 29?\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"] == "10063"
    empty = subprocess.run([sys.executable, "-m", "ponder", "ask", "-"], input="  \n", capture_output=True,
                           text=True, timeout=120)
    assert empty.returncode == 2 and "the prompt is empty" in empty.stderr


def test_a_backend_is_one_registry_entry():
    from ponder.engine import spec

    seen = []
    spec.register_backend("echo:", lambda rest: seen.append(rest) or "an engine")
    try:
        assert spec.load_engine("echo:some/model@v2") == "an engine" and seen == ["some/model@v2"]
    finally:
        del spec.BACKENDS["echo:"]
    with pytest.raises(ValueError, match="a name and a colon"):
        spec.register_backend("echo", lambda rest: None)
