"""`ponder serve`: load the model, open the accounts database, run uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import socket

from ponder.errors import UserError
from ponder.serve.settings import ServeConfig


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host, port))
        except OSError as error:
            raise UserError(f"cannot listen on {host}:{port}: {error.strerror or error}; "
                            "check --host, or pick another --port if this one is in use") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


SMALL_MODEL_PARAMS = 20_000_000


def set_threads(threads: int, engine) -> None:
    """On CPU, a tiny model's matmuls are too small to split across threads: on the 2-core
    machine here, 1 thread decodes 1.5x faster than 2 at batch 32 and 2.5x at batch 1."""
    import torch

    if threads == 0:
        model = getattr(engine, "model", None)
        small = model is not None and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
        threads = 1 if small else 0
    if threads:
        torch.set_num_threads(threads)


def build_app(cfg: ServeConfig, engine=None):
    """The app and its services; `engine` overrides cfg.model (tests pass a tiny one)."""
    from ponder.engine.spec import load_engine
    from ponder.serve.app import create_app
    from ponder.serve.backend import Backend
    from ponder.serve.services import Services

    engine = engine if engine is not None else load_engine(cfg.model)
    set_threads(cfg.threads, engine)
    backend = Backend(engine, cfg.max_batch)
    services = Services(cfg, backend, loopback=is_loopback(cfg.host))
    return create_app(services), services


def uvicorn_config(app, cfg: ServeConfig, **overrides):
    """uvicorn's settings for a ponder server: h11 with a deadline for each request's head, and
    a cap on open connections and requests (beyond it uvicorn answers 503), so half-open
    connections cannot pile up."""
    import uvicorn

    from ponder.serve.errors import ErrorShield
    from ponder.serve.header_deadline import with_header_timeout

    settings = dict(host=cfg.host, port=cfg.port, http=with_header_timeout(cfg.header_timeout),
                    limit_concurrency=cfg.max_connections, timeout_keep_alive=5, log_level="info", access_log=True)
    return uvicorn.Config(ErrorShield(app), **{**settings, **overrides})


def serve(cfg: ServeConfig) -> None:
    try:
        import uvicorn
    except ImportError:
        raise UserError("ponder serve needs the server extra: pip install 'ponder[serve]'") from None
    check_port_free(cfg.host, cfg.port)  # before loading a model, not after
    from ponder.serve.thinking import make_policy, parse_effort_strategies

    # The same checks Services makes, here so a bad setting stops before the gate hashes the model.
    parse_effort_strategies(cfg.effort_strategies)
    make_policy(cfg.api_strategies, cfg.api_scorers, cfg.max_samples)
    # The deploy rule of the system cards: a model whose stored card fails the gate is refused.
    from ponder.evals.gate import gate_model

    gate = gate_model(cfg.model, cfg.allow_undeployable, mode=cfg.gate)
    if gate.refusal is not None:
        raise UserError(gate.refusal)
    app, services = build_app(cfg)
    if (changed := gate.changed()) is not None:  # the bytes loaded must be the bytes the gate hashed
        services.close()
        raise UserError(changed)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keys = "required" if not services.keys_optional or services.keys.any_created() else "optional (loopback, no keys yet)"
    print(f"ponder serve: model '{services.model_name}' on http://{cfg.host}:{cfg.port}/v1 ; API keys {keys}", flush=True)
    try:
        uvicorn.Server(uvicorn_config(app, cfg)).run()
    finally:
        services.close()
