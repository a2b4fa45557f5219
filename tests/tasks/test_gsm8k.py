import json
from pathlib import Path

import pytest

from ponder.errors import UserError
from ponder.tasks import get_task
from ponder.tasks.gsm8k import GSM8KTask, load_gsm8k

# The real test split lives outside the repo (../shared relative to the repo root); it is
# never copied in.
REAL = Path(__file__).resolve().parents[3] / "shared/data/gsm8k/test.jsonl"
needs_real = pytest.mark.skipif(not REAL.is_file(), reason=f"GSM8K test split not found at {REAL}")

ROW = {"question": "Tom has 3 bags of 4 apples. How many apples?",
       "answer": "He has 3*4=<<3*4=12>>12 apples.\nThat is 1,000 - 988 = <<1000-988=12>>12.\n"
                 "#### 1,012"}


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def real():
    return load_gsm8k(REAL)


@needs_real
def test_real_file_loads(real):
    assert len(real) == 1319
    first = real[0]
    assert first.prompt.startswith("Janet") and first.answer == "18"
    assert first.reference.splitlines()[-1].endswith("$18 every day at the farmer\u2019s market.")
    for p in real:
        assert "<<" not in p.reference and "####" not in p.reference and p.reference
        assert "," not in p.answer and p.verify(p.answer) == 1.0
        assert p.verify(str(int(p.answer) + 1)) == 0.0
        assert (p.task, p.difficulty) == ("gsm8k", 1)


@needs_real
def test_task_picks_rows_by_seed(real):
    task = get_task("gsm8k", path=REAL)
    assert task.max_difficulty == 1
    assert task.sample(5, 1) == task.sample(5, 1)
    assert task.sample(5, 1).prompt == real[5].prompt
    assert task.sample(5 + 1319, 1).prompt == real[5].prompt  # seed wraps around the rows
    assert task.sample(5 + 1319, 1).seed == 5 + 1319
    assert {task.sample(s, 1).prompt for s in range(1319)} == {p.prompt for p in real}


def test_parses_a_row(tmp_path):
    (p,) = load_gsm8k(write(tmp_path, [json.dumps(ROW)]))
    assert p.answer == "1012"
    assert p.reference == "He has 3*4=12 apples.\nThat is 1,000 - 988 = 12."
    assert p.verify("The answer is 1,012.") == 1.0
    assert GSM8KTask(tmp_path / "gsm8k.jsonl").sample(99, 1).prompt == ROW["question"]


def test_skips_blank_lines_and_counts_lines_from_one(tmp_path):
    path = write(tmp_path, [json.dumps(ROW), "", json.dumps(ROW), "{oops"])
    with pytest.raises(UserError, match=r"line 4: not valid JSON"):
        load_gsm8k(path)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(UserError, match="nope.jsonl"):
        load_gsm8k(missing)
    with pytest.raises(UserError, match="nope.jsonl"):
        get_task("gsm8k", path=missing)


@pytest.mark.parametrize("line, problem", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"question": "q"}), "'answer'"),
    (json.dumps({"question": 3, "answer": "#### 3"}), "'question'"),
    (json.dumps({"question": "q", "answer": "no final line"}), "no '#### <number>' line"),
    (json.dumps({"question": "q", "answer": "x\n#### lots"}), "holds no number"),
])
def test_malformed_line_names_path_line_and_problem(tmp_path, line, problem):
    path = write(tmp_path, [json.dumps(ROW), line])
    with pytest.raises(UserError) as err:
        load_gsm8k(path)
    message = str(err.value)
    assert str(path) in message and "line 2" in message and problem in message


def test_empty_file(tmp_path):
    with pytest.raises(UserError, match="holds no problems"):
        load_gsm8k(write(tmp_path, [""]))
