"""The one warning channel: every warning has a stable code, travels as a Notice, and readers
decide by the code, never by the English text."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from pilotlab.exceptions import (
    NOTICE_CODES,
    DesignWarning,
    FewClustersWarning,
    MissingDataWarning,
    Notice,
    PilotlabWarning,
    collect,
    emit,
    notice,
    warn,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "pilotlab"
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def test_every_code_is_kebab_case_with_a_category_and_a_meaning() -> None:
    for code, entry in NOTICE_CODES.items():
        assert KEBAB.match(code), code
        assert entry.code == code
        assert issubclass(entry.category, PilotlabWarning)
        assert entry.meaning.endswith("."), code


def _codes_used_in_src() -> set[str]:
    """Every code literal passed to warn / notice / the CS stage helper / the CLI / a data check."""
    call = re.compile(r"\b(?:warn|notice|_warn)\(\s*\"([a-z0-9-]+)\"")
    code_attr = re.compile(r"(?:note_code = |warning=)\"([a-z0-9-]+)\"")
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(call.findall(text)) | set(code_attr.findall(text))
    return found


def test_the_table_and_the_code_base_agree() -> None:
    used = _codes_used_in_src()
    assert used, "the scan found no warning codes at all"
    assert used <= set(NOTICE_CODES), used - set(NOTICE_CODES)
    assert set(NOTICE_CODES) - used == {"uncoded"}  # no stale code in the table


def test_no_warning_is_raised_outside_the_channel() -> None:
    """warnings.warn with a pilotlab category would raise an uncoded warning: use warn()."""
    bare = re.compile(r"warnings\.warn\([^)]*(?:Warning|PilotlabWarning)\b")
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.name != "exceptions.py" and bare.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_warn_raises_the_codes_category_with_the_code_attached() -> None:
    with pytest.warns(FewClustersWarning, match="only 4 clusters") as rec:
        n = warn("few-clusters", "only 4 clusters")
    assert rec[0].message.code == "few-clusters"  # type: ignore[union-attr]
    assert n == Notice("few-clusters", "only 4 clusters", technical=True)
    with pytest.warns(MissingDataWarning):
        warn("missing-outcome", "3 values missing")


def test_notice_takes_its_placement_from_the_table() -> None:
    assert notice("unbalanced-panel", "x").technical is False
    assert notice("staggered-twfe", "x").technical is True
    assert notice("a-third-party-code", "x").technical is True  # unknown: annex, to be safe
    assert str(notice("iid-errors", "plain words")) == "plain words"


def _step(k: int) -> int:
    warn("unbalanced-panel", "The panel is unbalanced.")
    warn("unbalanced-panel", "The panel is unbalanced.")  # the same notice: kept once
    warn("period-gaps", "Some months have no data.")
    warnings.warn("legacy text", DesignWarning, stacklevel=2)  # raised without a code
    return k + 1


def test_collect_returns_the_result_and_each_notice_once_in_order() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may escape collect
        out, notices = collect(_step, 1)
    assert out == 2
    assert [n.code for n in notices] == ["unbalanced-panel", "period-gaps", "uncoded"]
    assert notices[2] == Notice("uncoded", "legacy text", technical=True)


def test_collect_passes_other_warnings_on_unchanged() -> None:
    def step() -> str:
        warnings.warn("numpy said something", RuntimeWarning, stacklevel=1)
        warn("iid-errors", "independent errors assumed")
        return "done"

    with pytest.warns(RuntimeWarning, match="numpy said something"):
        out, notices = collect(step)
    assert out == "done" and [n.code for n in notices] == ["iid-errors"]


def test_emit_re_raises_a_collected_notice_from_the_callers_line() -> None:
    with pytest.warns(DesignWarning) as rec:
        emit(notice("period-gaps", "gaps"), stacklevel=1)
    assert rec[0].filename == __file__
    assert rec[0].message.notice == notice("period-gaps", "gaps")  # type: ignore[union-attr]


def test_evidence_form_round_trips_and_reads_records_without_codes() -> None:
    n = notice("few-clusters", "only 4 clusters")
    assert n.to_dict() == {"code": "few-clusters", "message": "only 4 clusters"}
    assert Notice.from_record(n.to_dict()) == n
    assert Notice.from_record("written before codes") == notice("uncoded", "written before codes")


def test_the_codes_table_is_documented() -> None:
    doc = (SRC.parents[1] / "docs" / "warnings.md").read_text(encoding="utf-8")
    for code, entry in NOTICE_CODES.items():
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{code}` |")), None)
        assert row is not None, f"{code} is missing from docs/warnings.md"
        assert entry.category.__name__ in row
        assert ("annex" if entry.technical else "main page") in row, code
