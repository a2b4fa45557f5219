"""`ponder serve` settings: one frozen dataclass, filled from `--config FILE` (TOML) and flags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ponder.config import field
from ponder.engine.spec import VALID_SPECS
from ponder.think.budget import EFFORT_BUDGETS

# OpenAI's effort words. `none` answers without reasoning; `xhigh` is refused unless configured,
# because the bundled model's `high` already never cuts a trace short.
ALL_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
EFFORT_TO_BUDGET: dict[str, int | None] = {"none": 0, **EFFORT_BUDGETS, "xhigh": None}


@dataclass(frozen=True)
class ServeConfig:
    # What is served
    model: str = field("default", f"the model: {VALID_SPECS}")
    allow_undeployable: bool = field(False, "serve a model whose stored system card fails the deploy gate "
                                            "(ponder card --gate)")
    gate: Literal["warn", "strict"] = field(
        "warn", "deploy gate: warn = refuse a model whose system card fails, warn when it has none; strict = serve "
                "only a model with a passing card for exactly these weights under the serving policy "
                "($PONDER_GATE_POLICY, default ponder/evals/policy.toml)")
    served_model_name: str = field("", "the model id clients send; empty = ponder-<model>")
    max_batch: int = field(64, "most requests decoded together (continuous batching)")
    threads: int = field(0, "torch CPU threads for the engine; 0 = auto: 1 for models under 20M parameters "
                            "(their ops are too small to split), else torch's default")
    # Where
    host: str = field("127.0.0.1", "interface to listen on")
    port: int = field(8000, "TCP port")
    db: str = field("", "SQLite file for keys, limits, usage and stored responses; empty = ~/.ponder/serve.db")
    prices: str = field("", "TOML price table (per million tokens); empty = everything costs 0")
    # Reasoning
    efforts: tuple[str, ...] = field(("none", "minimal", "low", "medium", "high"), "reasoning_effort values accepted")
    default_effort: str = field("medium", "reasoning_effort when a request names none")
    effort_strategies: tuple[str, ...] = field(
        ("xhigh=self_consistency:k=8",),
        "test-time strategy per effort, EFFORT=STRATEGY[:KEY=VALUE,...]; efforts not listed take one sample")
    allow_reasoning: bool = field(False, "let requests ask for the raw reasoning (include_reasoning); off = never shown")
    # What a request may ask for: clients choose strategies and scorers only by name, from these lists
    api_strategies: tuple[str, ...] = field(
        ("single", "self_consistency", "best_of_n", "weighted_best_of_n", "budget_forcing", "adaptive", "beam"),
        "test-time strategies a request may name (the ponder field `strategy`)")
    api_scorers: tuple[str, ...] = field(
        ("confidence", "countdown"),
        "best-of-n scorers a request may name: built-in names, or NAME=module:function to offer the operator's "
        "own function under NAME (a request never names a module)")
    max_samples: int = field(16, "most engine samples one request may draw: n times its strategy's samples "
                                 "(self_consistency k, best_of_n n, adaptive max_k, beam beams*expansions*max_steps+beams)")
    max_tokens: Literal["alias", "reject"] = field(
        "alias", "max_tokens on chat completions: a deprecated alias of max_completion_tokens, or a 400")
    # Access
    require_key: bool = field(False, "require an API key even when none exist (always required once keys exist)")
    max_body_bytes: int = field(1_000_000, "largest request body accepted")
    header_timeout: float = field(10.0, "seconds a client has to send a request's headers, and between two "
                                        "reads of its body, before the connection is closed")
    max_connections: int = field(1000, "most open connections and requests at once; beyond it, 503")

    def __post_init__(self) -> None:
        unknown = [e for e in self.efforts if e not in ALL_EFFORTS]
        if unknown or not self.efforts:
            raise ValueError(f"efforts {unknown or '()'} invalid; choose from {', '.join(ALL_EFFORTS)}")
        if self.default_effort not in self.efforts:
            raise ValueError(f"default_effort {self.default_effort!r} is not among efforts {self.efforts}")
        if self.threads < 0:
            raise ValueError("threads must be >= 0 (0 = auto)")
        for name in ("port", "max_batch", "max_body_bytes", "max_samples", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.header_timeout > 0:
            raise ValueError("header_timeout must be above 0 seconds")

    def budget(self, effort: str) -> int | None:
        return EFFORT_TO_BUDGET[effort]
