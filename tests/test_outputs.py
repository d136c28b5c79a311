"""Outputs that never destroy a user's files, never half-written, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.exceptions import PilotlabError
from pilotlab.outputs import MANIFEST, STAGING_PREFIX, csv_cell, output_folder
from pilotlab.simulate import make_pilot_panel
from tests.support import pilot_dict, write_pilot

FORMULA = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, list[str], str]:
    sim = make_pilot_panel(16, 8, 4, 4, effect=-0.5, seed=2)
    return sim.data.drop(columns="true_effect"), list(sim.treated_units), sim.start


def _pilot(folder: Path, panel, **changes) -> Path:
    data, treated, start = panel
    spec = pilot_dict(
        data={"path": "data.csv", "unit": "area_code", "time": "period"},
        treatment={"units": treated, "start": start},
        outcomes=[{"column": "outcome", "primary": True}],
        design={"estimator": "twfe", "inference": {"method": "cluster"}},
    )
    spec.update(changes)
    return write_pilot(folder, spec, data)


def _run(pilot: Path, out: Path, *extra: str):
    return CliRunner().invoke(cli, ["run", str(pilot), "-o", str(out), *extra])


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


# --------------------------------------------------------------- only pilotlab's own files


def test_run_into_a_folder_holding_a_users_file_refuses_and_keeps_it(tmp_path, panel) -> None:
    pilot = _pilot(tmp_path / "p", panel)
    work = tmp_path / "work"
    (work / "tables").mkdir(parents=True)
    (work / "tables" / "budget.csv").write_text("my numbers\n")  # was deleted by -o before
    (work / "notes.txt").write_text("mine\n")
    before = _tree(work)
    res = _run(pilot, work)
    assert res.exit_code == 1, res.output
    assert res.output.startswith("Error: ") and "Traceback" not in res.output
    assert "did not write" in res.output and "choose another -o/--output folder" in res.output
    assert "notes.txt" in res.output or "tables/budget.csv" in res.output
    assert _tree(work) == before
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


def test_run_dot_in_a_users_folder_refuses(tmp_path, panel, monkeypatch) -> None:
    _pilot(tmp_path / "p", panel)
    monkeypatch.chdir(tmp_path / "p")
    res = CliRunner().invoke(cli, ["run", "pilot.yaml", "-o", "."])
    assert res.exit_code == 1
    assert "holds 'data.csv', which pilotlab did not write" in res.output
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["data.csv", "pilot.yaml"]


def test_rerun_replaces_exactly_its_own_files(tmp_path, panel) -> None:
    pilot = _pilot(tmp_path / "p", panel)
    out = tmp_path / "out"
    assert _run(pilot, out).exit_code == 0
    manifest = json.loads((out / MANIFEST).read_text())
    listed = set(manifest["files"])
    on_disk = {k for k in _tree(out) if k != MANIFEST}
    assert listed == on_disk and {"report.html", "evidence.json", "results.csv"} <= listed
    assert any(k.startswith("tables/") for k in listed)
    # a table the next run no longer writes is removed; the new ones are written
    (out / "tables" / "old-table.csv").write_text("x\n")
    manifest["files"]["tables/old-table.csv"] = __import__("hashlib").sha256(b"x\n").hexdigest()
    (out / MANIFEST).write_text(json.dumps(manifest))
    pilot2 = _pilot(tmp_path / "p", panel, title="A new title")
    res = _run(pilot2, out)
    assert res.exit_code == 0, res.output
    assert not (out / "tables" / "old-table.csv").exists()
    assert "A new title" in (out / "report.html").read_text()
    after = json.loads((out / MANIFEST).read_text())
    assert "previous" not in after and set(after["files"]) == listed
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


def test_rerun_refuses_when_the_user_edited_an_output(tmp_path, panel) -> None:
    pilot = _pilot(tmp_path / "p", panel)
    out = tmp_path / "out"
    assert _run(pilot, out).exit_code == 0
    with (out / "results.csv").open("a") as fh:
        fh.write("my note\n")
    edited = (out / "results.csv").read_bytes()
    res = _run(pilot, out)
    assert res.exit_code == 1
    assert "results.csv' was changed after pilotlab wrote it" in res.output
    assert "choose another -o/--output folder" in res.output
    assert (out / "results.csv").read_bytes() == edited


def test_a_nested_pilotlab_folder_is_not_a_users_file(tmp_path, panel) -> None:
    """The default power folder sits inside the run folder: either order works."""
    pilot = _pilot(tmp_path / "p", panel)
    out = tmp_path / "out"
    with output_folder(out / "power") as tmp:
        (tmp / "power.json").write_text("{}")
    assert _run(pilot, out).exit_code == 0
    assert _run(pilot, out).exit_code == 0
    assert (out / "power" / "power.json").read_text() == "{}"


def test_a_manifest_cannot_point_outside_its_folder(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text(
        json.dumps({"schema": "pilotlab.output/1", "files": {"../victim.txt": "0" * 64}})
    )
    with pytest.raises(PilotlabError, match="not a manifest pilotlab wrote"), output_folder(out):
        pass


def test_an_empty_folder_is_used_and_os_litter_left_alone(tmp_path, panel) -> None:
    pilot = _pilot(tmp_path / "p", panel)
    out = tmp_path / "out"
    out.mkdir()
    assert _run(pilot, out).exit_code == 0
    (out / ".DS_Store").write_bytes(b"finder")
    assert _run(pilot, out).exit_code == 0
    assert (out / ".DS_Store").read_bytes() == b"finder"


# ------------------------------------------------------------- folders that cannot be written


def test_output_folder_under_a_file_is_a_clear_error(tmp_path, panel) -> None:
    pilot = _pilot(tmp_path / "p", panel)
    (tmp_path / "afile").write_text("x")
    res = _run(pilot, tmp_path / "afile" / "out")
    assert res.exit_code == 1 and res.output.startswith("Error: ")
    assert "Traceback" not in res.output
    assert "afile/out" in res.output and "is a file, not a folder" in res.output
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("where", ["/proc/pilotlab-test/out", "/sys/pilotlab-test"])
def test_unwritable_output_folder_is_a_clear_error(tmp_path, panel, where) -> None:
    """A place nobody (not even root) can create a folder in."""
    pilot = _pilot(tmp_path / "p", panel)
    res = _run(pilot, Path(where))
    assert res.exit_code == 1, res.output
    assert res.output.startswith("Error: ") and "Traceback" not in res.output
    assert where in res.output and "choose a folder you can write to" in res.output
    assert not Path(where).exists()


def test_an_unwritable_folder_for_a_normal_user(tmp_path, panel) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions; covered by the /proc and /sys cases")
    pilot = _pilot(tmp_path / "p", panel)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        res = _run(pilot, locked / "out")
        assert res.exit_code == 1 and "cannot write the output folder" in res.output
    finally:
        locked.chmod(0o700)


def test_failure_while_writing_leaves_nothing_behind(tmp_path, panel, monkeypatch) -> None:
    pilot = _pilot(tmp_path / "p", panel)

    def broken(*args, **kwargs):
        raise PilotlabError("template_dir: broken on purpose")

    monkeypatch.setattr("pilotlab.report.render_report", broken)
    res = _run(pilot, tmp_path / "new" / "deep" / "out")
    assert res.exit_code == 1 and "broken on purpose" in res.output
    assert not (tmp_path / "new").exists()  # not even the parent folders it made


# ------------------------------------------------------------------ stale staging folders


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(tmp_path, panel) -> None:
    pilot = _pilot(tmp_path / "p", panel)
    stale = tmp_path / f"{STAGING_PREFIX}{_dead_pid()}-abc123"
    (stale / "tables").mkdir(parents=True)
    (stale / "report.html").write_text("half")
    live = tmp_path / f"{STAGING_PREFIX}{os.getppid()}-def456"  # a running process: kept
    live.mkdir()
    user = tmp_path / ".pilotlab-notes"  # not a staging folder name: kept
    user.mkdir()
    assert _run(pilot, tmp_path / "out").exit_code == 0
    assert not stale.exists()
    assert live.exists() and user.exists()


def test_killed_run_leaves_no_staging_folder(tmp_path, panel) -> None:
    """A run killed while writing: the next run in the same place cleans up after it."""
    pilot = _pilot(tmp_path / "p", panel)
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "import pilotlab.cli as c\n"
        "import pilotlab.engine.run as r\n"
        "real = r.write_outputs\n"
        "def killed(evaluation, out, *a, **k):\n"
        "    real(evaluation, out, *a, **k)\n"
        "    os._exit(9)\n"
        "r.write_outputs = killed\n"
        "c.main()\n"
    )
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", script, "run", str(pilot), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 9, proc.stderr
    assert list(tmp_path.glob(f"{STAGING_PREFIX}*")) and not out.exists()
    assert _run(pilot, out).exit_code == 0
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


# ---------------------------------------------------------- the registry after the outputs


def _registered(tmp_path, panel, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    pilot = _pilot(tmp_path / "p", panel)
    assert CliRunner().invoke(cli, ["register", str(pilot)]).exit_code == 0
    return pilot


def test_run_is_recorded_only_once_its_outputs_are_in_place(tmp_path, panel, monkeypatch) -> None:
    from pilotlab.registry import Registry

    pilot = _registered(tmp_path, panel, monkeypatch)
    out = tmp_path / "out"
    seen: list[set[str]] = []
    real = Registry.record_run

    def spy(self, *args, **kwargs):
        seen.append({p.name for p in out.iterdir()} if out.exists() else set())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Registry, "record_run", spy)
    res = _run(pilot, out)
    assert res.exit_code == 0, res.output
    assert len(seen) == 1 and {"report.html", "evidence.json", "results.csv"} <= seen[0]


def test_a_failed_recording_says_the_outputs_are_written(tmp_path, panel, monkeypatch) -> None:
    from pilotlab.exceptions import RegistryError
    from pilotlab.registry import Registry

    pilot = _registered(tmp_path, panel, monkeypatch)

    def fail(self, *args, **kwargs):
        raise RegistryError("database is locked")

    monkeypatch.setattr(Registry, "record_run", fail)
    out = tmp_path / "out"
    res = _run(pilot, out)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "the outputs were written to" in res.output
    assert "could not be recorded in the registry (database is locked)" in res.output
    assert (out / "report.html").exists()
    monkeypatch.undo()
    with Registry(f"sqlite:///{tmp_path / '.pilotlab' / 'registry.db'}") as reg:
        assert reg.portfolio_records() == []  # nothing recorded
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    again = _run(pilot, out)  # the same command records it once the registry works
    assert again.exit_code == 0 and "Run recorded in the registry" in again.output


# ------------------------------------------------------------------------- CSV formulas


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+44 20 7946 0000", "'+44 20 7946 0000"),
        ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-0.06 to -0.02", "'-0.06 to -0.02"),
        ("-e5", "'-e5"),
        ("-", "'-"),
        ("-0.42", "-0.42"),
        ("-4.1%", "-4.1%"),
        ("-1,234.5", "-1,234.5"),
        ("+3", "+3"),
        ("-1e-05", "-1e-05"),
        ("Claimant rate", "Claimant rate"),
        ("a=b", "a=b"),
        ("", ""),
        (-0.42, -0.42),
        (3, 3),
        (None, None),
        (True, True),
    ],
)
def test_csv_cell(cell, expected) -> None:
    assert csv_cell(cell) == expected


def _cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [c for row in csv.reader(fh) for c in row]


def _no_formula(cells: list[str]) -> None:
    for c in cells:
        if c[:1] in ("=", "+", "-", "@", "\t", "\r"):
            assert csv_cell(c) == c, f"{c!r} would run as a formula"


def test_every_csv_of_a_run_neutralises_formulas(tmp_path) -> None:
    sim = make_pilot_panel(16, 8, 4, 4, effect=-0.5, seed=2)
    data = sim.data.drop(columns="true_effect")
    rename = {u: f"=U{i}" for i, u in enumerate(sorted(data["area_code"].unique()))}
    data["area_code"] = data["area_code"].map(rename)
    data = data.rename(columns={"outcome": "-outcome"})
    spec = pilot_dict(
        title="@evil title",
        treatment={"units": [rename[u] for u in sim.treated_units], "start": sim.start},
        outcomes=[{"column": "-outcome", "label": FORMULA, "primary": True}],
        design={"estimator": "synthetic_control", "inference": {"method": "placebo"}},
    )
    pilot = write_pilot(tmp_path / "p", spec, data)
    out = tmp_path / "out"
    res = _run(pilot, out)
    assert res.exit_code == 0, res.output
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert results.loc[0, "label"] == "'" + FORMULA
    assert results.loc[0, "outcome"] == "'-outcome"
    assert pd.api.types.is_float_dtype(results["estimate"])  # numbers stay numbers
    assert results.loc[0, "estimate"] < 0
    _no_formula(_cells(out / "results.csv"))
    tables = sorted((out / "tables").glob("*.csv"))
    assert tables
    all_cells = [c for t in tables for c in _cells(t)]
    _no_formula(all_cells)
    assert "'" + FORMULA in all_cells or "'" + FORMULA + " (primary)" in all_cells
    assert any(c.startswith("'=U") for c in all_cells)  # unit ids in the weights table
    assert any(c.startswith("-") and csv_cell(c) == c for c in all_cells)  # negative numbers


def test_registry_export_and_portfolio_csv_neutralise_formulas(
    tmp_path, panel, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    pilot = _pilot(
        tmp_path / "p",
        panel,
        title=FORMULA,
        lead="+lead@council",
        outcomes=[{"column": "outcome", "label": "-label", "primary": True}],
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["register", str(pilot)]).exit_code == 0
    assert _run(pilot, tmp_path / "out").exit_code == 0
    res = runner.invoke(cli, ["export", "-o", str(tmp_path / "export")])
    assert res.exit_code == 0, res.output
    with (tmp_path / "export" / "evidence.csv").open(newline="", encoding="utf-8") as fh:
        [row] = list(csv.DictReader(fh))
    assert row["title"] == "'" + FORMULA and row["lead"] == "'+lead@council"
    assert row["label"] == "'-label"
    assert float(row["estimate"]) < 0 and not row["estimate"].startswith("'")
    _no_formula(_cells(tmp_path / "export" / "evidence.csv"))

    res = runner.invoke(cli, ["portfolio", "-o", "portfolio.html"])
    assert res.exit_code == 0, res.output
    cells = [c for t in (tmp_path / "tables").glob("*.csv") for c in _cells(t)]
    assert cells and "'" + FORMULA in cells
    _no_formula(cells)


# --------------------------------------------------------------------------- portfolio page


def test_portfolio_never_overwrites_a_users_file(tmp_path, panel, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    pilot = _pilot(tmp_path / "p", panel)
    assert _run(pilot, tmp_path / "out").exit_code == 0
    runner = CliRunner()
    res = runner.invoke(cli, ["portfolio", "out", "-o", "portfolio.html"])
    assert res.exit_code == 0, res.output
    # its own page and tables are replaced on the next run; the folder's other files are kept
    (tmp_path / "mine.txt").write_text("mine")
    assert runner.invoke(cli, ["portfolio", "out", "-o", "portfolio.html"]).exit_code == 0
    assert (tmp_path / "mine.txt").read_text() == "mine"
    (tmp_path / "index.html").write_text("<p>my page</p>")
    res = runner.invoke(cli, ["portfolio", "out", "-o", "index.html"])
    assert res.exit_code == 1 and "index.html' already exists" in res.output
    assert (tmp_path / "index.html").read_text() == "<p>my page</p>"
    (tmp_path / "sub" / "tables").mkdir(parents=True)
    (tmp_path / "sub" / "tables" / "portfolio.csv").write_text("my csv")
    res = runner.invoke(cli, ["portfolio", "out", "-o", "sub/p.html"])
    assert res.exit_code == 1 and "portfolio.csv' already exists" in res.output
    assert not (tmp_path / "sub" / "p.html").exists()


# ----------------------------------------------------------------------------- power page


POWER_PILOT = """\
id: demo-plan
title: Demo pilot
status: planned
data: {path: panel.csv, unit: area_code, time: period}
treatment: {}
outcomes:
  - {column: outcome, label: Claimant rate, mde: 0.8}
design:
  estimator: twfe
  power: {treated: 6, post_periods: 3, simulations: 20}
"""


def test_power_page_carries_the_same_content_security_policy(tmp_path) -> None:
    from pilotlab.report._templates import template_dir
    from tests.support.power import history

    history(30, 12, seed=4).to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "pilot.yaml").write_text(POWER_PILOT, encoding="utf-8")
    out = tmp_path / "power"
    res = CliRunner().invoke(cli, ["power", str(tmp_path / "pilot.yaml"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    base = (template_dir() / "_base.html.j2").read_text(encoding="utf-8")
    [csp] = [line for line in base.splitlines() if "Content-Security-Policy" in line]
    head = (out / "power.html").read_text(encoding="utf-8").split("</head>")[0]
    assert csp in head.splitlines()
    assert "default-src 'none'" in csp
    assert json.loads((out / MANIFEST).read_text())["files"].keys() == {"power.json", "power.html"}


def test_a_move_interrupted_half_way_leaves_a_folder_the_next_run_accepts(
    tmp_path, monkeypatch
) -> None:
    out = tmp_path / "out"
    with output_folder(out) as tmp:
        (tmp / "a.txt").write_text("1")
        (tmp / "b.txt").write_text("1")
    real = os.replace
    moved: list[str] = []

    def dies_after_one(src, dst):
        if Path(dst).name in ("a.txt", "b.txt"):
            if moved:
                raise OSError(5, "Input/output error")
            moved.append(str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", dies_after_one)
    failing = pytest.raises(PilotlabError, match="cannot write the output folder")
    with failing, output_folder(out) as tmp:
        (tmp / "a.txt").write_text("2")
        (tmp / "b.txt").write_text("2")
    monkeypatch.setattr(os, "replace", real)
    assert {(out / n).read_text() for n in ("a.txt", "b.txt")} == {"1", "2"}  # half moved
    with output_folder(out) as tmp:  # not refused as "changed by the user"
        (tmp / "a.txt").write_text("3")
        (tmp / "b.txt").write_text("3")
    assert (out / "a.txt").read_text() == (out / "b.txt").read_text() == "3"
    assert "previous" not in json.loads((out / MANIFEST).read_text())


def test_power_into_a_folder_holding_a_users_file_refuses(tmp_path, monkeypatch) -> None:
    import pilotlab.engine
    from tests.support.power import history

    def no_simulations(*args: object, **kwargs: object) -> None:
        raise AssertionError("the folder must be refused before any simulation")

    monkeypatch.setattr(pilotlab.engine, "run_power", no_simulations)

    history(30, 12, seed=4).to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "pilot.yaml").write_text(POWER_PILOT, encoding="utf-8")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "power.html").write_text("my own page")
    res = CliRunner().invoke(cli, ["power", str(tmp_path / "pilot.yaml"), "-o", str(out)])
    assert res.exit_code == 1 and "holds 'power.html', which pilotlab did not write" in res.output
    assert (out / "power.html").read_text() == "my own page"
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


def test_a_folder_from_before_manifests_is_refused_with_a_hint(tmp_path, panel) -> None:
    pilot = _pilot(tmp_path / "p", panel)
    out = tmp_path / "out"
    assert _run(pilot, out).exit_code == 0
    (out / MANIFEST).unlink()  # as an earlier pilotlab left it
    res = _run(pilot, out)
    assert res.exit_code == 1 and "holds 'evidence.json'" in res.output
    assert "an earlier pilotlab wrote" in res.output and "delete the folder" in res.output
