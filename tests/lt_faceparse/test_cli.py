import os

import pytest

from lt_faceparse.cli import build_parser, main

COMMANDS = {"synth", "check-dataset", "freq", "score", "convert-official", "parse", "export-onnx", "convert-zll",
            "train", "eval", "leaderboard", "compare", "report", "speed", "sweep", "benchmark", "zoo"}


def test_every_subcommand_is_registered():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert COMMANDS <= set(sub.choices)


def _choices(parser) -> set[str]:
    return set(next(a for a in parser._actions if a.dest == "command").choices)


def test_a_command_builds_only_its_groups_parsers():
    import importlib

    from lt_faceparse.cli import _GROUPS

    everything = _choices(build_parser())
    seen = set()
    for name in _GROUPS:
        group = importlib.import_module(f"lt_faceparse.cli.{name}")
        for command in group.COMMANDS:  # COMMANDS is exactly what the group registers
            assert _choices(build_parser(command)) == set(group.COMMANDS)
        seen |= set(group.COMMANDS)
    assert seen == everything and len(everything) == sum(
        len(importlib.import_module(f"lt_faceparse.cli.{n}").COMMANDS) for n in _GROUPS)
    assert _choices(build_parser("no-such-command")) == everything  # argparse's error lists them all
    assert build_parser("freq").parse_args(["freq", "--dataset", "lapa", "--root", "r", "--split", "all",
                                            "--out", "o"]).func.__name__ == "_freq"


def test_user_errors_exit_2_with_a_message_naming_the_input(tmp_path, capsys):
    rc = main(["freq", "--dataset", "celebamask-hq", "--root", str(tmp_path / "nowhere"), "--split", "test",
               "--out", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("lt-faceparse freq: error: ") and "nowhere" in err


def test_unknown_subcommand_is_an_argparse_error():
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_command_asks_for_huge_pages_before_anything_runs(monkeypatch):
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"


def test_the_program_exits_with_the_commands_code_and_frozen_objects(monkeypatch):
    import gc

    import lt_faceparse.cli as cli

    monkeypatch.setattr(cli, "main", lambda: 3)
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.run()
        assert exit_.value.code == 3
        assert gc.get_freeze_count() > 0  # the interpreter's last collections have nothing to visit
    finally:
        gc.unfreeze()
