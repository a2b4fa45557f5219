"""`ponder` subcommands. Thin: parse flags, call the library, print. User errors exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ponder.errors import UserError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_ask(args: argparse.Namespace) -> int:
    from ponder.engine.base import SamplingParams
    from ponder.engine.spec import load_engine
    from ponder.model.chat import Message
    from ponder.think.budget import budget_for
    from ponder.think.strategy import make_strategy, parse_param_pairs

    # Check the strategy before loading the model, so a typo fails at once.
    strategy = make_strategy(args.strategy, parse_param_pairs(args.param))
    budget = args.budget if args.budget is not None else budget_for(args.effort)
    params = SamplingParams(
        max_completion_tokens=args.max_completion_tokens, reasoning_budget=budget,
        temperature=args.temperature, seed=args.seed,
    )
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt  # `ponder ask -`: a long prompt, or a pipe
    if not prompt.strip():
        raise UserError("the prompt is empty; pass the question as an argument, or '-' to read it from stdin")
    engine = load_engine(args.model)
    messages = ([Message("developer", args.developer)] if args.developer else []) + [Message("user", prompt)]
    result = strategy.run(engine, [messages], params)[0]
    chosen = result.chosen
    if args.json:
        out = {"answer": result.answer}
        if args.show_reasoning:
            out["reasoning"] = chosen.reasoning
        out["usage"] = result.usage()  # totals over every sample drawn: what a server would bill
        out["finish_reason"] = chosen.finish_reason
        out["strategy"] = strategy.name
        out["samples"] = len(result.samples)
        out["meta"] = result.meta  # e.g. vote counts, samples an adaptive strategy used
        print(json.dumps(out))
        return 0
    if args.show_reasoning:
        print(f"Thinking ({chosen.reasoning_tokens} tokens):\n{chosen.reasoning.strip()}\n")
    print(result.answer if result.answer else "(no answer: the completion ran out of tokens while thinking)")
    answer_tokens = result.completion_tokens - result.reasoning_tokens
    drawn = "" if len(result.samples) == 1 else f"{strategy.name}, {len(result.samples)} samples: "
    print(f"[{drawn}{result.reasoning_tokens} reasoning + {answer_tokens} answer tokens, "
          f"finish: {chosen.finish_reason}]", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ponder.config import build_config, config_overrides, stray_flags
    from ponder.rl.sft import train_sft
    from ponder.rl.sft_config import SFTConfig

    if args.stage is None:
        from ponder.rl.pipeline import run_pipeline_stage

        return run_pipeline_stage(args)
    if args.stage == "rl":
        from ponder.rl.rl_cli import run_rl_stage

        return run_rl_stage(args)
    if args.rl_recipe is not None:
        raise UserError(f"--rl-recipe does not apply to --stage {args.stage}; it names the RL stage's recipe")
    if args.stage == "prm":
        from ponder.prm.train import run_prm_stage

        return run_prm_stage(args)
    from ponder.prm.config import PRMConfig
    from ponder.rl.rl_config import RLConfig

    stray = stray_flags(args, SFTConfig, (RLConfig, PRMConfig))
    if stray:  # they would be ignored: say so rather than train something other than what was asked
        raise UserError(f"{', '.join(stray)} do(es) not apply to --stage sft")
    cfg = build_config(SFTConfig, Path(args.recipe) if args.recipe else None, config_overrides(args, SFTConfig))
    final = train_sft(cfg, resume=args.resume, progress=not args.no_progress)
    print(f"trained model: {final}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ponder.engine.spec import resolve_checkpoint
    from ponder.model.export_hf import export_hf

    out = export_hf(resolve_checkpoint(args.checkpoint), Path(args.out))
    print(f"wrote a transformers Llama model to {out} (load with AutoModelForCausalLM / AutoTokenizer)")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from ponder.tasks import TASKS, get_task

    if args.name is None:
        for name, task in sorted(TASKS.items()):
            print(f"{name:14s} difficulties 1..{task.max_difficulty}")
        print("gsm8k          GSM8K-format JSONL file (ponder tasks gsm8k --path FILE)")
        return 0
    task = get_task(args.name, path=args.path)
    problem = task.sample(args.seed, args.difficulty)
    print(f"prompt:    {problem.prompt}\nreference:\n{problem.reference}\nanswer:    {problem.answer}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ponder.config import build_config, config_overrides
    from ponder.serve.run import serve
    from ponder.serve.settings import ServeConfig

    cfg = build_config(ServeConfig, Path(args.config) if args.config else None, config_overrides(args, ServeConfig))
    serve(cfg)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ponder import __version__
    from ponder.config import add_config_flags
    from ponder.engine.spec import VALID_SPECS
    from ponder.evals.card_cli import register as register_card
    from ponder.evals.cli import register as register_eval
    from ponder.prm.config import add_prm_arguments
    from ponder.rl.rl_cli import add_rl_arguments
    from ponder.rl.sft_config import SFTConfig
    from ponder.serve.accounts_cli import register as register_accounts
    from ponder.serve.settings import ServeConfig
    from ponder.think.bench_cli import register as register_bench
    from ponder.think.budget import DEFAULT_EFFORT, EFFORT_BUDGETS
    from ponder.think.strategy import DEFAULT_STRATEGY, STRATEGIES

    parser = argparse.ArgumentParser(prog="ponder", description="Models that think before they answer.")
    parser.add_argument("--version", action="version", version=f"ponder {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ask = sub.add_parser("ask", help="ask a model a question; it thinks, then answers")
    ask.add_argument("prompt", help="the question; '-' reads it from standard input")
    ask.add_argument("--model", default="default", metavar="SPEC", help=f"the model: {VALID_SPECS}")
    ask.add_argument("--effort", default=DEFAULT_EFFORT, choices=list(EFFORT_BUDGETS), help="how hard to think")
    ask.add_argument("--budget", type=positive_int, default=None, metavar="N",
                     help="reasoning budget in tokens (overrides --effort)")
    ask.add_argument("--max-completion-tokens", type=positive_int, default=512, metavar="N",
                     help="reasoning plus answer tokens (default 512)")
    ask.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    ask.add_argument("--seed", type=int, default=None, help="sampling seed")
    ask.add_argument("--developer", default=None, metavar="TEXT", help="a developer message before the prompt")
    ask.add_argument("--show-reasoning", action="store_true", help="also print the hidden reasoning")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--strategy", default=DEFAULT_STRATEGY, metavar="NAME",
                     help=f"test-time strategy: {', '.join(STRATEGIES)} (default {DEFAULT_STRATEGY})")
    ask.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="a strategy parameter, repeatable (e.g. --strategy self_consistency --param k=16)")
    ask.set_defaults(func=cmd_ask)

    train = sub.add_parser("train", help="train a model: the supervised warm start, then RL",
                           description="Train a model. With no --stage: the supervised warm start, then RL "
                           "from it (OUT_DIR/NAME/sft, then OUT_DIR/NAME/rl). Every recipe field can be set "
                           "by a flag; flags win.")
    train.add_argument("--stage", choices=["sft", "rl", "prm"], default=None,
                       help="run one stage only. sft: supervised warm start; rl: RL on verifiable rewards from "
                       "a warm-started policy; prm: process reward model (Math-Shepherd labels). "
                       "Default: sft, then rl")
    train.add_argument("--recipe", default=None, metavar="FILE",
                       help="TOML recipe of the stage that runs; with both stages, the SFT stage's (see recipes/)")
    train.add_argument("--rl-recipe", default=None, metavar="FILE",
                       help="with both stages (no --stage): the RL stage's TOML recipe (default: recipes/rl.toml's "
                       "values)")
    train.add_argument("--resume", action="store_true", help="continue the run from its newest checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_flags(train, SFTConfig)
    add_prm_arguments(train)
    add_rl_arguments(train)
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="export a checkpoint for other libraries")
    export.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory or 'default'")
    export.add_argument("--format", choices=["hf"], required=True, help="hf: a transformers Llama directory")
    export.add_argument("out", metavar="OUT", help="output directory")
    export.set_defaults(func=cmd_export)

    serve = sub.add_parser("serve", help="serve a model behind an OpenAI-compatible API",
                           description="Serve /v1/chat/completions, /v1/responses and /v1/models. "
                           "Every config field can be set by a flag; flags win over --config.")
    serve.add_argument("--config", default=None, metavar="FILE", help="TOML file of the settings below")
    add_config_flags(serve, ServeConfig)
    serve.set_defaults(func=cmd_serve)
    register_accounts(sub)
    register_bench(sub)
    register_eval(sub)
    register_card(sub)

    tasks = sub.add_parser("tasks", help="list task families or show a sample problem")
    tasks.add_argument("name", nargs="?", default=None, help="a task family to sample from")
    tasks.add_argument("--difficulty", type=int, default=1)
    tasks.add_argument("--seed", type=int, default=0)
    tasks.add_argument("--path", default=None, help="data file (gsm8k)")
    tasks.set_defaults(func=cmd_tasks)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"ponder {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
