import json

import pytest
import torch

from ponder.errors import UserError
from ponder.model.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture()
def ckpt(tmp_path, tiny_model, tok):
    save_checkpoint(tiny_model, tok, tmp_path / "ckpt")
    return tmp_path / "ckpt"


def test_round_trip_keeps_weights_and_tokenizer(ckpt, tiny_model, tok):
    model, tok2 = load_checkpoint(ckpt)
    x = torch.randint(5, 300, (2, 11))
    torch.testing.assert_close(model(x), tiny_model(x), atol=0, rtol=0)
    assert tok2.encode("What is 12 * 4?") == tok.encode("What is 12 * 4?")
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]


def test_saving_over_an_existing_checkpoint_replaces_it(ckpt, tiny_model, tok):
    save_checkpoint(tiny_model, tok, ckpt, extra={"note": "second"})
    assert json.loads((ckpt / "config.json").read_text())["meta"] == {"note": "second"}
    assert not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "tokenizer.json"])
def test_missing_file_is_named(ckpt, missing):
    (ckpt / missing).unlink()
    with pytest.raises(UserError, match=f"missing {missing}"):
        load_checkpoint(ckpt)


def test_no_such_directory(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")


def test_corrupt_config(ckpt):
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="config.json is not valid JSON"):
        load_checkpoint(ckpt)


def test_unknown_config_field(ckpt):
    data = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**data, "n_expertz": 8}))
    with pytest.raises(UserError, match="unknown model config field"):
        load_checkpoint(ckpt)


def test_truncated_weights(ckpt):
    blob = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UserError, match="model.safetensors"):
        load_checkpoint(ckpt)


def test_weights_that_do_not_match_the_config(ckpt):
    data = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**data, "dim": 128, "hidden_dim": 256}))
    with pytest.raises(UserError, match="does not match config.json"):
        load_checkpoint(ckpt)


def test_corrupt_tokenizer(ckpt):
    (ckpt / "tokenizer.json").write_text('{"version": "1.0"}')
    with pytest.raises(UserError, match="tokenizer"):
        load_checkpoint(ckpt)


def test_leftovers_of_a_killed_save_do_not_block_the_next(ckpt, tiny_model, tok):
    (ckpt.parent / f".{ckpt.name}.old-99999").mkdir()
    (ckpt.parent / f".{ckpt.name}.old-99999" / "x").write_text("junk")
    (ckpt.parent / f".{ckpt.name}.tmp-12345").mkdir()
    save_checkpoint(tiny_model, tok, ckpt)
    assert not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]
