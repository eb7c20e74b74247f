"""The package layout of issue 16: imports that never run upward, classes that check their own
arguments, the subcommand registry of ``deepff.cli`` and the ``deepff.datasets`` re-export.

Runs in about a second.
"""

from __future__ import annotations

import ast
import math
import sys
import types
from pathlib import Path

import pytest

import deepff
import deepff.data
import deepff.datasets
from deepff import _version, cli
from deepff.cli import parser as _parser  # noqa: F401 - cli.parser below
from deepff.errors import SpecError
from deepff.regularizers import Penalty, elastic_net
from deepff.spec import parse_early_stopping, parse_regularization
from deepff.training import EarlyStopping

SRC = Path(deepff.__file__).resolve().parent


def _package_of(path):
    """The dotted package a module file belongs to, e.g. ('deepff', 'cli')."""
    return ("deepff",) + path.relative_to(SRC).parent.parts


def test_no_module_imports_a_name_from_a_package_above_it():
    """``from . import x`` / ``from .. import x`` may fetch submodules, never a name an ``__init__`` defines
    (io took __version__ from the package root; it now comes from _version)."""
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        package = _package_of(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level and node.module is None:
                folder = SRC.joinpath(*package[1:len(package) - node.level + 1])
                for alias in node.names:
                    if not ((folder / f"{alias.name}.py").exists() or (folder / alias.name / "__init__.py").exists()):
                        upward.append(f"{path.relative_to(SRC)}: from {'.' * node.level} import {alias.name}")
    assert upward == []


def test_the_version_has_one_home():
    assert deepff.__version__ == _version.__version__
    io_source = (SRC / "io.py").read_text(encoding="utf-8")
    assert "from ._version import __version__" in io_source and "from . import __version__" not in io_source


def test_early_stopping_checks_its_own_arguments():
    with pytest.raises(SpecError, match=r"patience must be an integer >= 1, got 0"):
        EarlyStopping(patience=0)
    with pytest.raises(SpecError, match=r"min_delta must be >= 0, got -0\.1"):
        EarlyStopping(min_delta=-0.1)
    with pytest.raises(SpecError, match=r"restore_best must be true or false, got 'yes'"):
        EarlyStopping(restore_best="yes")
    with pytest.raises(SpecError, match=r"monitor is 'val_acc'; valid choices: .*'val_accuracy'"):
        EarlyStopping(monitor="val_acc")
    with pytest.raises(SpecError, match=r"monitor is \['loss'\]"):
        EarlyStopping(monitor=["loss"])
    es = EarlyStopping(monitor="loss", patience=2, min_delta=0, restore_best=False)
    assert (es.monitor, es.patience, es.min_delta, es.restore_best) == ("loss", 2, 0.0, False)
    init = next(n for n in ast.walk(ast.parse((SRC / "callbacks.py").read_text(encoding="utf-8")))
                if isinstance(n, ast.ClassDef) and n.name == "EarlyStopping").body
    imports = [n for f in init if isinstance(f, ast.FunctionDef) and f.name == "__init__"
               for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == []          # no lazy import of the config parser


def test_the_config_parser_reports_the_classes_checks_with_its_section():
    with pytest.raises(SpecError, match=r"^training\.early_stopping: early stopping patience must be an integer"):
        parse_early_stopping({"patience": 1.5})
    with pytest.raises(SpecError, match=r"^training\.early_stopping: unknown key 'patient'"):
        parse_early_stopping({"patient": 3})
    with pytest.raises(SpecError, match=r"^training\.regularization: regularization l2 must be >= 0"):
        parse_regularization({"l2": -1})
    with pytest.raises(SpecError, match=r"^training\.regularization: elastic_net l1_ratio must be in \[0, 1\]"):
        parse_regularization({"elastic_net": 0.1, "l1_ratio": 2})
    assert parse_regularization({"elastic_net": 0.2, "l1_ratio": 0.25}).l1 == pytest.approx(0.05)


@pytest.mark.parametrize("make", [lambda: Penalty(l1=math.inf), lambda: Penalty(l2=math.nan),
                                  lambda: Penalty(l2="0.1"), lambda: elastic_net("0.1"),
                                  lambda: elastic_net(0.1, l1_ratio=None), lambda: elastic_net(-1.0)])
def test_penalties_refuse_what_is_not_a_finite_non_negative_number(make):
    with pytest.raises(SpecError):
        make()


def test_a_subcommand_module_registers_with_one_name(monkeypatch, capsys):
    """What an extra subcommand (export, playground, ...) needs: a module with add_parser and run, and its
    name in cli.parser.SUBCOMMANDS; it gets --debug and deepff's one-line errors without saying so."""
    hello = types.ModuleType("deepff.cli.hello")

    def add_parser(subparsers):
        p = subparsers.add_parser("hello", help="say hello")
        p.add_argument("--name", required=True)

    def run(args):
        if args.name == "bad":
            raise SpecError("no such name")
        print(f"hello {args.name}")
        return 7

    hello.add_parser, hello.run = add_parser, run
    monkeypatch.setitem(sys.modules, "deepff.cli.hello", hello)
    monkeypatch.setattr(cli.parser, "SUBCOMMANDS", [*cli.SUBCOMMANDS, "hello"])
    assert cli.main(["hello", "--name", "you"]) == 7
    assert capsys.readouterr().out == "hello you\n"
    assert cli.main(["hello", "--name", "bad"]) == 2
    assert capsys.readouterr().err == "deepff: error: no such name\n"
    with pytest.raises(SpecError):
        cli.main(["hello", "--name", "bad", "--debug"])
    assert "hello" not in cli.build_parser(["train"])._subparsers._group_actions[0].choices


def test_deepff_datasets_re_exports_the_data_package():
    assert deepff.datasets.__all__ == deepff.data.__all__
    for name in deepff.data.__all__:
        assert getattr(deepff.datasets, name) is getattr(deepff.data, name)
    assert deepff.datasets.load_csv.__module__ == "deepff.data.tables"
    assert deepff.datasets.load_mnist.__module__ == "deepff.data.mnist"
