"""Import refuses anything that is not a pilotlab evidence record, streams, and is all-or-nothing;
``list`` and ``show`` never echo terminal control characters raw."""
# ruff: noqa: F811  (pytest fixtures imported from registry_support)

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.exceptions import RegistryError
from pilotlab.registry import Registry, importing
from pilotlab.registry.text import printable
from tests.support.registry import count_rows, make_evidence, make_spec, registry_url  # noqa: F401

NOTHING = r"nothing was imported \(a file is imported whole or not at all\)"


def _export(tmp_path: Path, n: int = 3) -> Path:
    with Registry(f"sqlite:///{tmp_path / 'source.db'}", name="North East CA") as source:
        for k in range(n):
            spec = make_spec(f"pilot-{k}")
            source.register(spec)
            source.record_run(spec, make_evidence(spec, -0.1 * k), "a" * 64, {"pilotlab": "t"})
        source.export(tmp_path / "export")
    return tmp_path / "export" / "evidence.jsonl"


def _rewrite(path: Path, line: int, change: Any) -> None:
    """Apply ``change(record)`` to record ``line`` (1-based) and drop its now-stale hash."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[line - 1])
    change(rec)
    lines[line - 1] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _drop_hash(rec: dict[str, Any]) -> None:
    rec["provenance"].pop("evidence_sha256")


def _assert_refused(reg: Registry, path: Path, message: str) -> None:
    before, head = count_rows(reg), reg.head()
    with pytest.raises(RegistryError, match=message):
        reg.import_records(path)
    assert count_rows(reg) == before and reg.head() == head  # nothing written, not even the log


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["results"][0].update(p_value=2.0),
            r"evidence.jsonl:3 \(pilot 'pilot-2'\): not a valid evidence record: field "
            r"results\[0\].p_value: 2.0 is greater than the maximum of 1",
        ),
        (
            lambda r: r.pop("plan"),
            r"evidence.jsonl:3 \(pilot 'pilot-2'\): not a valid evidence record: field \(record\): "
            r"'plan' is a required property",
        ),
        (
            lambda r: r["pilot"].update(id="Pilot 2; DROP TABLE"),
            r"evidence.jsonl:3 .*field pilot.id: 'Pilot 2; DROP TABLE' does not match",
        ),
        (
            lambda r: r.update(schema="pilotlab.evidence/2"),
            r"evidence.jsonl:3: schema 'pilotlab.evidence/2'; this pilotlab imports evidence "
            r"records of schema pilotlab.evidence/1.*upgrade pilotlab",
        ),
        (
            lambda r: r.pop("schema"),
            r"evidence.jsonl:3: no 'schema' field",
        ),
        (
            lambda r: r["provenance"].update(registry_id=12345),
            r"evidence.jsonl:3 .*field provenance.registry_id: 12345 is not of type 'string'",
        ),
        (
            lambda r: r["provenance"].update(run_id=["a", "b"]),
            r"field provenance.run_id: \['a', 'b'\] is not of type 'string', 'null'",
        ),
        (
            lambda r: r["provenance"].update(recorded_at="yesterday"),
            r"field provenance.recorded_at: 'yesterday' does not match",
        ),
        (
            lambda r: r["provenance"].update(registry_name="North\x00East\x1b[2J"),
            r"field provenance.registry_name: 'North\\x00East\\x1b\[2J' does not match",
        ),
        (
            lambda r: r.update(provenance="from a friend"),
            r"field provenance: must be an object, found str",
        ),
    ],
)
def test_an_invalid_record_is_refused_naming_line_and_field(
    registry_url: str, tmp_path: Path, change: Any, message: str
) -> None:
    path = _export(tmp_path)
    _rewrite(path, 3, lambda r: (_drop_hash(r), change(r)))
    with Registry(registry_url) as dept:
        _assert_refused(dept, path, f"{message}.*{NOTHING}")


def test_bytes_size_and_nesting_limits(
    registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _export(tmp_path)
    good = path.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    with Registry(registry_url) as dept:
        bad.write_bytes(good[0] + good[1].replace(b"North East", b"North \xff East"))
        _assert_refused(
            dept, bad, rf"bad.jsonl:2: not UTF-8 text \(byte 0xff at column \d+\).*{NOTHING}"
        )

        bad.write_bytes(good[0] + b"[" * 200_000 + b"]" * 200_000 + b"\n")
        _assert_refused(
            dept, bad, rf"bad.jsonl:2: the record is nested more than 64 levels deep.*{NOTHING}"
        )
        deep: Any = 1
        for _ in range(70):
            deep = {"x": deep}
        _rewrite(path, 2, lambda r: (_drop_hash(r), r["results"][0].update(details=deep)))
        _assert_refused(dept, path, r"evidence.jsonl:2: the record is nested more than 64")

        bad.write_bytes(good[0].replace(b'"estimate":-0.0', b'"estimate":NaN'))
        _assert_refused(
            dept, bad, rf"bad.jsonl:1: not valid JSON \(NaN is not valid JSON.*{NOTHING}"
        )

        monkeypatch.setattr(importing, "MAX_RECORD_BYTES", 1000)
        bad.write_bytes(good[0])
        _assert_refused(
            dept, bad, rf"bad.jsonl:1: the record is longer than 1,000 bytes.*{NOTHING}"
        )
        monkeypatch.setattr(importing, "MAX_FILE_BYTES", 100)
        _assert_refused(
            dept,
            bad,
            rf"bad.jsonl: the file is [\d,]+ bytes; pilotlab imports a file of at most 100 bytes.*{NOTHING}",
        )


def test_one_bad_record_after_good_ones_imports_nothing(registry_url: str, tmp_path: Path) -> None:
    path = _export(tmp_path, n=5)
    _rewrite(path, 5, lambda r: (_drop_hash(r), r["data"].update(rows="many")))
    with Registry(registry_url) as dept:
        _assert_refused(dept, path, rf"evidence.jsonl:5 .*field data.rows: 'many'.*{NOTHING}")
        fixed = tmp_path / "fixed.jsonl"
        fixed.write_text("".join(path.read_text().splitlines(keepends=True)[:4]))
        assert dept.import_records(fixed).imported == 4
        assert dept.verify() == []


def test_cli_import_error_is_one_message(tmp_path: Path) -> None:
    path = _export(tmp_path)
    path.write_bytes(b"\xff\xfe not text\n")
    res = CliRunner().invoke(
        cli, ["import", str(path), "--registry", f"sqlite:///{tmp_path / 'dept.db'}"]
    )
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "evidence.jsonl:1: not UTF-8 text" in res.output and "nothing was imported" in res.output


def test_export_and_import_stream(tmp_path: Path) -> None:
    """Neither side holds the whole file: peak memory stays well below its size."""
    n, padding = 150, "x" * 60_000
    url = f"sqlite:///{tmp_path / 'big.db'}"
    with Registry(url) as source:
        for k in range(n):
            spec = make_spec(f"pilot-{k}")
            source.register(spec)
            record = make_evidence(spec) | {"warnings": [padding]}
            source.record_run(spec, record, None, {"pilotlab": "t"})
        tracemalloc.start()
        try:
            source.export(tmp_path / "out")
            _, export_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    size = (tmp_path / "out" / "evidence.jsonl").stat().st_size
    assert size > n * 60_000
    importing._validators()  # the schema validators, built once per process
    with Registry(f"sqlite:///{tmp_path / 'dept.db'}") as dept:
        tracemalloc.start()
        try:
            summary = dept.import_records(tmp_path / "out")
            _, import_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert summary.imported == n and dept.verify() == []
    assert export_peak < size / 4, (export_peak, size)
    assert import_peak < size / 4, (import_peak, size)


# ---------------------------------------------------------------------- control characters

HOSTILE = "Pilot \x1b[2J\x1b]0;owned\x07 \x9b31m red\u202e txet\r over\tthere\nnext"


def test_printable_escapes_every_control_character() -> None:
    assert printable(HOSTILE) == (
        "Pilot \\x1b[2J\\x1b]0;owned\\x07 \\x9b31m red\\u202e txet\\x0d over\\x09there\\x0anext"
    )
    assert printable("Café – naïve ☕ 東京") == "Café – naïve ☕ 東京"
    assert all(printable(chr(c)).startswith("\\x") for c in [*range(32), *range(0x7F, 0xA0)])


def test_list_and_show_never_echo_control_characters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    spec = make_spec(title=HOSTILE, lead="Lead\x1b[8m hidden", partners=["P\x07artner"])
    with Registry(url) as reg:
        reg.register(spec)
    runner = CliRunner()
    for args in (["list"], ["show", spec.id], ["show", "missing\x1b[2J"]):
        res = runner.invoke(cli, [*args, "--registry", url])
        raw = res.output
        assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in raw), repr(raw)
        assert "\u202e" not in raw
    assert (
        "Pilot \\x1b[2J\\x1b]0;owned\\x07" in runner.invoke(cli, ["list", "--registry", url]).output
    )
    shown = runner.invoke(cli, ["show", spec.id, "--registry", url]).output
    assert "Lead\\x1b[8m hidden" in shown and "P\\x07artner" in shown


def test_registry_migrate_and_long_ids_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    res = CliRunner().invoke(cli, ["registry", "migrate", "--registry", url])
    assert res.exit_code == 0 and "schema up to date; log head 0:" in res.output
    res = CliRunner().invoke(cli, ["registry", "migrate", "--app-role", "svc", "--registry", url])
    assert res.exit_code == 1 and "apply to PostgreSQL registries only" in res.output
    with Registry(url) as reg:
        with pytest.raises(RegistryError, match=r"is 120 characters long.*up to 100"):
            reg.register(make_spec("a" * 120))
        assert reg.head().seq == 0
