"""``stip-rt weights`` verbs through main(argv), against the local server zoo."""

from __future__ import annotations

import io
import json

import pytest
import torch
from weights_http import PAYLOAD, SHA

from stip_rt import weights
from stip_rt.cli import main
from stip_rt.cli.weights import download_bar
from stip_rt.nn.rtmdet import build_rtmdet


def test_list_json_and_table(zoo, capsys):
    assert main(["weights", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["good"]["sha256"] == SHA and rows["good"]["cached"] is False and rows["by-hand"]["manual"] is True
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "by-hand" in out and "manual" in out and str(weights.weights_dir()) in out


def test_fetch_path_verify(zoo, capsys):
    assert main(["weights", "path", "good"]) == 2
    assert "weights fetch good" in capsys.readouterr().err
    assert main(["weights", "fetch", "good", "--timeout", "5"]) == 0
    path = weights.weights_dir() / "good.bin"
    captured = capsys.readouterr()
    assert captured.out.strip() == str(path)
    assert captured.err == ""  # stderr is not a terminal here: no progress bar
    assert main(["weights", "path", "good"]) == 0
    assert main(["weights", "verify"]) == 0
    assert "good" in capsys.readouterr().out
    path.write_bytes(PAYLOAD[:-1] + b"x")
    assert main(["weights", "verify", "good"]) == 2
    assert "corrupt" in capsys.readouterr().out


def test_offline_fetch_is_one_line_and_exit_2(zoo, capsys):
    assert main(["weights", "fetch", "offline", "--timeout", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "offline" in err and "/offline.bin" in err and "stip-rt weights import FILE --name offline" in err


def test_import_checks_that_the_file_loads_into_the_architecture(zoo, tmp_path, capsys):
    # "by-hand" is a manual entry whose arch is rtmdet-tiny: import builds it and loads strictly
    good = tmp_path / "rtmdet.pth"
    torch.save({"meta": {}, "state_dict": build_rtmdet("rtmdet-tiny").state_dict()}, good)
    wrong = tmp_path / "rtmdet-s.pth"
    torch.save({"meta": {}, "state_dict": build_rtmdet("rtmdet-s").state_dict()}, wrong)
    assert main(["weights", "import", str(wrong), "--name", "by-hand"]) == 2
    assert "mis-shaped" in capsys.readouterr().err
    assert main(["weights", "import", str(good), "--name", "by-hand"]) == 0
    assert weights.weights_path("by-hand", fetch=False).read_bytes() == good.read_bytes()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_download_bar_draws_on_a_terminal_only():
    term, pipe = _Terminal(), io.StringIO()
    for stream in (term, pipe):
        with download_bar("good", stream) as progress:
            progress(0, 2 * 1024 * 1024)
            progress(1024 * 1024, 2 * 1024 * 1024)
    assert "good" in term.getvalue() and "1.00M" in term.getvalue()
    assert pipe.getvalue() == ""


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_fetch_refuses_a_timeout_that_is_not_positive_and_finite(zoo, capsys, timeout):
    assert main(["weights", "fetch", "good", "--timeout", timeout]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--timeout {timeout}" in err
    assert zoo.state.requests == []


def test_list_says_corrupt_for_a_file_that_changed(zoo, capsys):
    path = weights.fetch("good", timeout=5)
    path.write_bytes(PAYLOAD[:100])
    assert main(["weights", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("good "))
    assert "corrupt" in row and "yes" not in row
    assert main(["weights", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["good"]["cached"] is False and rows["good"]["status"] == "corrupt"
    assert rows["good-prefix"]["status"] == "missing"


def test_path_verify_and_list_in_a_read_only_cache(zoo, capsys, read_only):
    path = weights.fetch("good", timeout=5)
    (path.parent / "good.bin.sha256").unlink()
    read_only(path.parent)
    assert main(["weights", "path", "good"]) == 0
    assert main(["weights", "verify", "good"]) == 0
    assert main(["weights", "list"]) == 0
    assert capsys.readouterr().out.startswith(f"{path}\ngood ")
    assert main(["weights", "fetch", "good-prefix", "--timeout", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"weights cache {path.parent}" in err and "not writable" in err
