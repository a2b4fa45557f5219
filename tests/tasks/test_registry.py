import pytest

from ponder.errors import UserError
from ponder.tasks import TASKS, get_task


def test_get_task_returns_the_registered_task():
    for name, task in TASKS.items():
        assert get_task(name) is task


def test_unknown_task_names_it_and_lists_the_valid_ones():
    with pytest.raises(UserError) as err:
        get_task("chess")
    message = str(err.value)
    assert "'chess'" in message
    for name in ("arithmetic", "countdown", "word_problems", "gsm8k"):
        assert name in message


def test_gsm8k_needs_a_path():
    with pytest.raises(UserError, match="path"):
        get_task("gsm8k")


def test_generated_tasks_take_no_path(tmp_path):
    with pytest.raises(UserError, match="no path"):
        get_task("arithmetic", path=tmp_path)
