"""`ponder serve` as a user meets it: bad settings and a busy port are one line and exit 2."""

import socket

from ponder.cli import main


def test_a_busy_port_is_refused_before_the_model_loads(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--db", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "in use" in err


def test_invalid_settings_name_the_field(tmp_path, capsys):
    assert main(["serve", "--efforts", "low,bogus", "--db", str(tmp_path / "s.db")]) == 2
    assert "efforts" in capsys.readouterr().err
    assert main(["serve", "--default-effort", "high", "--efforts", "low", "--db", str(tmp_path / "s.db")]) == 2
    assert "default_effort" in capsys.readouterr().err


def test_a_config_file_and_flags(tmp_path, capsys):
    config = tmp_path / "serve.toml"
    config.write_text('port = "eighty"\n')
    assert main(["serve", "--config", str(config)]) == 2
    assert "port" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err


def test_ponder_ask_through_a_running_server(server, capsys):
    import json

    url, _ = server
    spec = f"openai:ponder-default@{url}/v1"
    assert main(["ask", "What is 347 * 29?", "--model", spec, "--effort", "high", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["answer"] == "10063" and out["usage"]["reasoning_tokens"] > 0


def test_an_unreachable_server_names_the_url(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: nothing listens there
    assert main(["ask", "Hi", "--model", f"openai:m@http://127.0.0.1:{port}/v1"]) == 2
    assert f"http://127.0.0.1:{port}/v1" in capsys.readouterr().err
