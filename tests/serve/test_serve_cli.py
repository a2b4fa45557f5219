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
