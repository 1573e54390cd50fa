"""The crlm-bench command line: help, exit codes, and an end-to-end profile on Fashion-MNIST."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import crlm_bench
from crlm_bench import cli
from crlm_bench.experiment.cell import Cell
from crlm_bench.vision import datasets

COMMANDS = [
    "demo",
    "train",
    "profile",
    "show",
    "report",
    "grid",
    "claims",
    "sensitivity",
    "compare",
    "history",
    "store",
    "fetch",
]


def crlm(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crlm_bench", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
        **kwargs,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    assert "usage: crlm-bench " + command in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,words",
    [
        (["profile", "not-a-cell"], "cannot parse cell id"),
        (["profile", "synthetic-vgg7-baseline-s0-e1"], "Did you mean"),
        (["train", "synthetic-vgg6_narrow-baseline-s0-e1", "--override", "lr"], "expected NAME=VALUE"),
        (["profile", "synthetic-vgg6_narrow-untrained-s0-e0", "--toggles", "11"], "toggles"),
        (["store", "explode"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, "--store", str(tmp_path)] if argv[0] != "store" else argv)
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_show_of_a_missing_profile_fails_with_the_command_to_run(tmp_path, caplog):
    assert cli.main(["show", "synthetic-vgg6_narrow-untrained-s0-e0", "--store", str(tmp_path)]) == 1
    assert "crlm-bench profile synthetic-vgg6_narrow-untrained-s0-e0" in caplog.text


def test_missing_data_fails_with_exit_1_and_says_how_to_fetch(tmp_path, monkeypatch):
    result = crlm(
        "train",
        "cifar10-vgg6_narrow-baseline-s0-e1",
        "--store",
        str(tmp_path / "s"),
        "--data-dir",
        str(tmp_path / "empty"),
    )
    assert result.returncode == 1
    assert "cifar10" in result.stderr and "--download" in result.stderr


def _have_fashion_mnist() -> bool:
    try:
        datasets.load("fashion-mnist", "test")
    except datasets.DatasetUnavailableError:
        return False
    return True


@pytest.mark.skipif(
    not _have_fashion_mnist(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)
def test_profiles_of_an_untrained_and_a_trained_model_on_fashion_mnist(tmp_path):
    store = str(tmp_path / "store")
    common = [
        "--store",
        store,
        "--points",
        "20",
        "--toggles",
        "4",
        "--id-runs",
        "2",
        "--id-samples",
        "300",
        "--override",
        "train_subset=6000",
        "--override",
        "batch_size=64",
    ]
    cells = ["fashion-mnist-vgg6_narrow-untrained-s0-e0", "fashion-mnist-vgg6_narrow-baseline-s0-e1"]
    result = crlm("profile", *cells, *common)
    assert result.returncode == 0, result.stderr
    for c in cells:
        assert f"{c}: profile" in result.stdout
    shown = [crlm("show", c, *common) for c in cells]
    assert all(s.returncode == 0 for s in shown), [s.stderr for s in shown]
    untrained_acc = float(shown[0].stdout.split("test accuracy ")[1].split()[0])
    trained_acc = float(shown[1].stdout.split("test accuracy ")[1].split()[0])
    assert untrained_acc < 0.3 < 0.6 < trained_acc
    for s in shown:
        assert "features.pool5" in s.stdout and "linear" in s.stdout
    listing = crlm("store", "ls", "--store", store)
    assert listing.stdout.count("complete") == 4  # two trainings, two profiles
    assert crlm("store", "verify", "--store", store).returncode == 0


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"crlm-bench {crlm_bench.__version__}"


@pytest.mark.parametrize("command", ["train", "profile", "show"])
def test_the_cell_format_is_in_the_help_of_commands_that_take_cells(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert "DATASET-MODEL-RECIPE-sSEED-eEPOCH" in out and "e50of200" in out


def test_each_example_of_the_cell_format_says_what_its_id_means():
    """An example's gloss "(epoch A of a B-epoch run)" is what :meth:`Cell.parse` reads from it."""
    text = " ".join(cli.CELL_HELP.split())
    examples = re.findall(r"(\S+-e\d+(?:of\d+)?) \(epoch (\d+) of an? (\d+)-epoch run", text)
    assert len(examples) == 2, text
    for cell_id, at, epochs in examples:
        cell = Cell.parse(cell_id)
        assert (cell.at, cell.training.epochs) == (int(at), int(epochs)), cell_id


def test_memory_bound_is_an_option_of_profiling_only(capsys):
    for command, present in (("profile", True), ("train", False)):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert ("--memory-mb" in capsys.readouterr().out) is present


def test_claims_lists_every_claim_with_where_it_is_defined(capsys):
    from crlm_bench.replication.claims import ALL_CLAIMS

    assert cli.main(["claims"]) == 0
    out = capsys.readouterr().out
    for claim in ALL_CLAIMS:
        assert claim.name in out and claim.where in out


def test_fetch_checks_a_data_set_and_says_what_to_type_when_it_is_missing(tmp_path, caplog):
    caplog.set_level("INFO")
    assert cli.main(["fetch", "synthetic"]) == 0
    assert "synthetic train: 1024 images" in caplog.text
    caplog.clear()
    assert cli.main(["fetch", "cifar10", "--data-dir", str(tmp_path)]) == 1
    assert f"crlm-bench fetch cifar10 --download --data-dir {tmp_path}" in caplog.text
    assert not any(tmp_path.iterdir())  # nothing fetched without --download


def test_output_cut_short_by_its_reader_is_not_a_failure(tmp_path, monkeypatch, caplog):
    """`crlm-bench grid --json | head`: the reader closes the pipe; exit 0, no traceback, and the
    flush at exit goes nowhere instead of raising again."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    out = os.fdopen(write, "w")
    monkeypatch.setattr(sys, "stdout", out)
    assert cli.main(["grid", "--budget", "paper", "--json", "--store", str(tmp_path)]) == 0
    out.write("more")
    out.flush()  # would raise BrokenPipeError had the descriptor not been pointed at /dev/null
    monkeypatch.undo()
    out.close()
    assert "BrokenPipeError" not in caplog.text


@pytest.mark.parametrize(
    "argv,words",
    [
        (["train", "synthetic-vgg6_narrow-baseline-s0-e1", "--override", "train_subset=-5"], "train_subset"),
        (["profile", "synthetic-vgg6_narrow-baseline-s0-e1", "--override", "batch_size=true"], "batch_size"),
        (["train", "synthetic-vgg6_narrow-untrained-s0-e0", "--device", "tpu"], "unknown device 'tpu'"),
        (["profile", "synthetic-vgg6_narrow-untrained-s0-e0", "--device", "cuda:7"], "cuda:7"),
    ],
)
def test_bad_settings_are_refused_before_the_store_is_touched(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    store = tmp_path / "store"
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, "--store", str(store)])
    assert info.value.code == 2
    assert words in capsys.readouterr().err
    assert not store.exists()  # no work directory, no `working` row in store ls


def test_store_ls_verify_is_gone_and_says_what_to_type(tmp_path, capsys):
    for argv in (["store", "ls", "--verify"], ["store", "verify", "--verify"]):
        with pytest.raises(SystemExit) as info:
            cli.main([*argv, "--store", str(tmp_path)])
        assert info.value.code == 2
        assert "type crlm-bench store verify" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["store", "--help"])
    assert "--verify" not in capsys.readouterr().out


def test_demo_shows_each_step_and_the_time_on_stderr_and_only_the_table_on_stdout(capsys, monkeypatch):
    from crlm_bench import demo
    from crlm_bench.geometry import manifolds

    tiny = [
        demo.DemoCase("tiny sphere", manifolds.sphere(400, 2, 1.0, ambient=4, seed=0), 5),
        demo.DemoCase("tiny flat", manifolds.flat(300, 2, ambient=4, seed=0), 5),
    ]
    monkeypatch.setattr(demo, "cases", lambda seed=0: tiny)
    assert cli.main(["demo"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert all(re.match(r"demo \[ *\d+\.\d s\] ", line) for line in lines), lines
    steps = [line.split("] ", 1)[1] for line in lines]
    assert steps[0] == "sampling the synthetic manifolds" and steps[-1] == "done"
    for i, case in enumerate(tiny, 1):
        mine = [s for s in steps if s.startswith(f"{i}/2 {case.label}: ")]
        assert [s.split(": ", 1)[1].split(" ")[0] for s in mine] == ["kNN,", "‖II‖,", "principal", "TwoNN"]
    assert "demo [" not in out
    assert out.startswith("| manifold") and "tiny sphere" in out and "tiny flat" in out
