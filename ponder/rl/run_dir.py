"""A training run on disk: its config, per-step metrics (JSONL) and resumable checkpoints.

    runs/NAME/config.json       the run's config (a resume reads it back)
    runs/NAME/metrics.jsonl     one JSON object per step
    runs/NAME/checkpoints/step_000100/   model files + trainer_state.pt
    runs/NAME/final/            the finished model (a plain checkpoint directory)

Checkpoints are written atomically, so after a SIGKILL the newest complete one is resumed from;
metrics written after that checkpoint are dropped so the resumed run does not log a step twice.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from ponder.engine.spec import resolve_checkpoint
from ponder.errors import UserError
from ponder.model.checkpoint import load_checkpoint, save_checkpoint


def replace_text(path: Path, text: str) -> None:
    """Write a file so a kill mid-write leaves the old version, never half of the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _records(path: Path) -> list[tuple[str, dict]]:
    """(line, record) of a JSONL file, skipping a torn last line left by a crash."""
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append((line, json.loads(line)))
        except json.JSONDecodeError:
            continue
    return out


# Fields that do not change the training trajectory (or only lengthen it) may differ on resume.
# `parallel` among them: DDP and FSDP take the same steps, and both save optimizer state by
# parameter name, so a run that outgrows one device resumes sharded.
RESUME_MAY_CHANGE = frozenset({"steps", "eval_every", "eval_problems", "checkpoint_every", "keep_checkpoints",
                               "threads", "test_time_problems", "tensorboard", "device", "rollout_batch",
                               "update_chunk", "eval_families", "parallel"})


def _on_cpu(value):
    """A (nested) state with every tensor moved to the CPU, so a checkpoint loads without a GPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v) for v in value)
    return value


class RunDir:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.checkpoints = self.root / "checkpoints"
        self.metrics_path = self.root / "metrics.jsonl"
        self.config_path = self.root / "config.json"
        self.final = self.root / "final"

    def latest_checkpoint(self) -> Path | None:
        found = sorted(p for p in self.checkpoints.glob("step_*") if (p / "trainer_state.pt").is_file())
        return found[-1] if found else None

    def start(self, config: dict, resume: bool, defaults: dict | None = None) -> Path | None:
        """Create the run or find where to resume; refuse to overwrite a run's saved work.
        `defaults`: the config's default values, standing in for fields a run saved before they
        existed (it ran with their defaults)."""
        if any((self.root / stage).is_dir() for stage in ("sft", "rl")):
            raise UserError(f"{self.root} holds a two-stage run (sft/, then rl/); continue it with `ponder train "
                            f"--out-dir {self.root.parent} --name {self.root.name} --resume` (no --stage), "
                            "or give this stage another --name")
        latest = self.latest_checkpoint()
        if not resume and (latest is not None or self.metrics_path.exists()):
            raise UserError(
                f"run directory {self.root} already holds a run; pass --resume to continue it "
                "or --name to start a new one"
            )
        if resume and latest is not None:
            changed = self.changed_settings(config, defaults=defaults)
            if changed:
                raise UserError(
                    f"--resume continues {self.root} with its saved config; these flags differ from it: "
                    f"{', '.join(changed)} (on resume only {', '.join(sorted(RESUME_MAY_CHANGE))} may change)"
                )
            step = int(torch.load(latest / "trainer_state.pt", map_location="cpu", weights_only=False)["step"])
            if config["steps"] < step:
                raise UserError(f"--steps {config['steps']} is below the checkpoint's step {step}; "
                                f"pass --steps {step} or more to resume {self.root}")
            replace_text(self.config_path, json.dumps(config, indent=2))
            self._truncate_metrics(step)
            return latest
        if config.get("init_from"):  # before the directory exists: a bad path leaves nothing to block a retry
            resolve_checkpoint(config["init_from"])
        self.root.mkdir(parents=True, exist_ok=True)
        replace_text(self.config_path, json.dumps(config, indent=2))
        replace_text(self.metrics_path, "")
        return None

    def changed_settings(self, config: dict, may_change: frozenset[str] = RESUME_MAY_CHANGE,
                         defaults: dict | None = None) -> list[str]:
        """Settings in `config` that differ from the run's saved config, apart from `may_change`;
        a field the saved config lacks counts as its default (`defaults`), if one is given."""
        saved = {**(defaults or {}), **json.loads(self.config_path.read_text())}
        return sorted(k for k in config if k not in may_change and saved.get(k) != config[k])

    def _truncate_metrics(self, step: int) -> None:
        if not self.metrics_path.exists():
            return
        kept = [line for line, record in _records(self.metrics_path) if record.get("step", 0) <= step]
        replace_text(self.metrics_path, "".join(line + "\n" for line in kept))

    def log(self, record: dict) -> None:
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def save(self, step: int, model, tok, optimizer_state: dict, keep: int, extra_state: dict | None = None) -> Path:
        path = self.checkpoints / f"step_{step:06d}"
        state = {"step": step, "optimizer": _on_cpu(optimizer_state), "torch_rng": torch.get_rng_state(),
                 **(extra_state or {})}
        save_checkpoint(model, tok, path, extra={"trained_steps": step}, state=state)
        for old in sorted(self.checkpoints.glob("step_*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    @staticmethod
    def load(path: Path):
        """(model, tokenizer, trainer state) of a checkpoint written by `save`."""
        model, tok = load_checkpoint(path)
        # Saved on the CPU, and read there whatever the device: a GPU run resumes on a CPU too
        # (the optimizer moves its state to its parameters' device when it loads it).
        state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=False)
        return model, tok, state
