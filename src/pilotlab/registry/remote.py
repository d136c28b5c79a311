"""A registry behind a pilotlab evidence service (``pilotlab serve``), used over HTTP.

``PILOTLAB_REGISTRY_URL=https://evidence.example.gov.uk`` (or ``--registry https://...``) with an
API token in ``$PILOTLAB_TOKEN`` makes the registry commands and ``pilotlab run`` talk to the
service: :class:`RemoteRegistry` offers the methods of :class:`~pilotlab.registry.Registry` they
use, with the same results (both satisfy
:class:`~pilotlab.registry.interface.RegistryInterface`, which mypy checks), and the service's refusals become :class:`RegistryError` with the
service's message. The token is sent only over HTTPS (plain HTTP only to this machine).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from pilotlab.exceptions import RegistryError
from pilotlab.registry.export import write_export
from pilotlab.registry.records import (
    AllocationRecord,
    CycleStep,
    Deviation,
    ExportSummary,
    ImportSummary,
    PilotHistory,
    PilotSummary,
    PlanMatch,
    PlanVersion,
    RunRecord,
    StatusChange,
)
from pilotlab.results.summary import PlanDifference
from pilotlab.spec import PilotSpec, plan_sha256

__all__ = ["ENV_TOKEN", "RemoteRegistry", "is_service_url"]

ENV_TOKEN = "PILOTLAB_TOKEN"
_LOCAL = {"127.0.0.1", "localhost", "::1"}
_TIMEOUT = httpx.Timeout(30.0, read=300.0)


def is_service_url(url: str | None) -> bool:
    """Whether ``url`` names an evidence service (``http(s)://``) rather than a database."""
    return bool(url) and str(url).lower().startswith(("https://", "http://"))


def _time(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RemoteRegistry:
    """The registry of an evidence service.

    Parameters
    ----------
    url
        The service's address, ``https://...`` (``http://`` only for 127.0.0.1 or localhost).
    token
        An API token (default: ``$PILOTLAB_TOKEN``); without one, only public pilots are seen.
    """

    def __init__(self, url: str, token: str | None = None, *, client: httpx.Client | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryError(f"registry URL {url!r} is not an http(s) address of a service")
        if parts.scheme == "http" and parts.hostname not in _LOCAL:
            raise RegistryError(
                f"registry URL {url!r} uses plain http: the API token would cross the network "
                "unencrypted; use the service's https:// address"
            )
        self.url = url.rstrip("/")
        self.display_url = self.url
        self.name = self.url
        token = token if token is not None else os.environ.get(ENV_TOKEN)
        headers = {"accept": "application/json", "user-agent": "pilotlab"}
        if token:
            headers["authorization"] = f"Bearer {token.strip()}"
        self._client = client or httpx.Client(base_url=self.url, headers=headers, timeout=_TIMEOUT)
        if client is not None:
            self._client.headers.update(headers)

    def __repr__(self) -> str:
        return f"RemoteRegistry({self.url!r})"

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection to the service."""
        self._client.close()

    # ------------------------------------------------------------------ plumbing

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, f"/api{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"cannot reach the evidence service at {self.url} ({type(exc).__name__}: "
                f"{str(exc) or 'no answer'}); check the URL ($PILOTLAB_REGISTRY_URL or "
                "--registry) and that the service is running"
            ) from None
        if response.status_code >= 400:
            try:
                message = str(response.json()["error"])
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status_code}"
            hint = ""
            if response.status_code == 401:
                hint = f" (set ${ENV_TOKEN} to an API token from your account page)"
            raise RegistryError(f"the evidence service at {self.url} refused: {message}{hint}")
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise RegistryError(
                f"the evidence service at {self.url} did not answer JSON; is this the address "
                "of a pilotlab service?"
            ) from None

    @staticmethod
    def _pilot(spec: PilotSpec) -> dict[str, Any]:
        source = getattr(spec, "source_path", None) or "pilot.yaml"
        return {
            "pilot": spec.model_dump(mode="json", exclude_unset=True),
            "source": Path(str(source)).name if source else "pilot.yaml",
            "plan_sha256": plan_sha256(spec),
        }

    # ------------------------------------------------------------------ the Registry methods

    def register(self, spec: PilotSpec, *, data_seen: bool = False) -> PlanVersion:
        """Register a pilot (for the token's organisation)."""
        out = self._call("POST", "/pilots", json={**self._pilot(spec), "data_seen": data_seen})
        return _version(out)

    def amend(self, spec: PilotSpec, reason: str, data_seen: bool = False) -> PlanVersion:
        """A new plan version, if the plan changed."""
        body = {**self._pilot(spec), "reason": reason, "data_seen": data_seen}
        return _version(self._call("POST", f"/pilots/{quote(spec.id, safe='')}/amend", json=body))

    def set_status(self, pilot_id: str, status: str) -> StatusChange:
        """Change a pilot's status."""
        out = self._call(
            "POST", f"/pilots/{quote(pilot_id, safe='')}/status", json={"status": status}
        )
        return StatusChange(**out)

    def list_pilots(self, metric: str = "") -> list[PilotSummary]:
        """The pilots the token may see (with ``metric``: those with an outcome naming it)."""
        params = {"metric": metric} if metric else None
        return [
            PilotSummary(**{k: v for k, v in p.items() if k != "access"})
            for p in self._call("GET", "/pilots", params=params)
        ]

    def show(self, pilot_id: str) -> PilotHistory:
        """One pilot's registration, versions, runs and status changes."""
        out = self._call("GET", f"/pilots/{quote(pilot_id, safe='')}")
        return PilotHistory(
            record=out["record"],
            versions=tuple(_version(v) for v in out["versions"]),
            runs=tuple(RunRecord(**r) for r in out["runs"]),
            status_changes=tuple(StatusChange(**s) for s in out["status_changes"]),
        )

    def plan_status(self, spec: PilotSpec) -> PlanMatch:
        """How the pilot file's plan compares with the registered versions."""
        out = self._call("POST", "/plan-status", json=self._pilot(spec))
        out["deviations"] = tuple(
            Deviation(d["version"], d["at"], tuple(d["items"]), d["reason"], d["data_seen"])
            for d in out["deviations"]
        )
        out["unregistered_changes"] = tuple(out["unregistered_changes"])
        out["unregistered_deviations"] = tuple(
            PlanDifference(**d) for d in out["unregistered_deviations"]
        )
        return PlanMatch(**out)

    def record_run(
        self,
        spec: PilotSpec,
        evidence: Mapping[str, Any],
        data_sha256: str | None,
        software: Mapping[str, Any],
        *,
        started_at: datetime | str | None = None,
        finished_at: datetime | str | None = None,
        outputs: str | os.PathLike[str] | None = None,
    ) -> RunRecord:
        """Record a run; with ``outputs`` (the run's output folder) its report.html and tables
        are uploaded with the evidence record, all recorded in one transaction."""
        meta = {
            "data_sha256": data_sha256,
            "software": dict(software),
            "started_at": _time(started_at),
            "finished_at": _time(finished_at),
        }
        files: list[tuple[str, tuple[str, bytes, str]]] = [
            ("evidence", ("evidence.json", json.dumps(dict(evidence)).encode(), "application/json"))
        ]
        if outputs is not None:
            out = Path(outputs)
            if (out / "report.html").is_file():
                files.append(
                    ("report", ("report.html", (out / "report.html").read_bytes(), "text/html"))
                )
            for table in (
                sorted((out / "tables").glob("*.csv")) if (out / "tables").is_dir() else []
            ):
                files.append(("table", (table.name, table.read_bytes(), "text/csv")))
        data = {"pilot": json.dumps(self._pilot(spec)), "meta": json.dumps(meta)}
        result = self._call(
            "POST", f"/pilots/{quote(spec.id, safe='')}/runs", data=data, files=files
        )
        result.pop("files", None)
        return RunRecord(**result)

    def portfolio_records(self) -> list[dict[str, Any]]:
        """Latest evidence record of every pilot the token may see."""
        records: list[dict[str, Any]] = self._call("GET", "/records")
        return records

    def export(self, path_dir: str | Path) -> ExportSummary:
        """Write evidence.jsonl and evidence.csv of the pilots the token may see."""
        out = self._call("GET", "/export")
        lines = [line for line in str(out["jsonl"]).splitlines() if line]
        csv_text = str(out["csv"])
        jsonl_path, csv_path = _write_texts(Path(path_dir), lines, csv_text)
        return ExportSummary(str(jsonl_path), str(csv_path), int(out["records"]), int(out["rows"]))

    def import_records(
        self, path: str | Path, *, visibility: str = "organisation", shared_with: Sequence[str] = ()
    ) -> ImportSummary:
        """Upload an export of another registry to the service, visible as ``visibility`` says
        (``organisation``, ``shared`` with the organisations ``shared_with``, or ``public``)."""
        src = Path(path)
        if src.is_dir():
            src = src / "evidence.jsonl"
        if not src.is_file():
            raise RegistryError(
                f"{src}: no such file; give the evidence.jsonl written by `pilotlab export` "
                "(or its folder), or an evidence.json written by `pilotlab run`"
            )
        with src.open("rb") as fh:
            out = self._call(
                "POST",
                "/import",
                files={"file": (src.name, fh, "application/json")},
                data={"visibility": visibility, "shared_with": list(shared_with)},
            )
        return ImportSummary(
            str(src), out["read"], out["imported"], out["duplicates"], tuple(out["sources"])
        )

    def pilots_with_metric(self, metric: str) -> list[PilotSummary]:
        """The visible pilots with an outcome naming ``metric`` (``<framework>/<code>``, or a bare
        code), matched by the service's registry as :meth:`Registry.pilots_with_metric` does."""
        return self.list_pilots(metric)

    def allocations(self, pilot_id: str) -> tuple[AllocationRecord, ...]:
        """Every registered allocation of a pilot, oldest first (empty if it has none)."""
        out = self._call("GET", f"/pilots/{quote(pilot_id, safe='')}/allocations")
        return tuple(_allocation(a) for a in out)

    def cycle_chain(self, pilot_id: str) -> tuple[CycleStep, ...]:
        """The earlier cycles of a pilot's learning chain that the token may see, oldest first."""
        out = self._call("GET", f"/pilots/{quote(pilot_id, safe='')}/cycle-chain")
        return tuple(
            CycleStep(s["pilot_id"], s["title"], s["status"], s["change"], s.get("evidence"))
            for s in out
        )

    def record_allocation(
        self,
        spec: PilotSpec,
        document: Mapping[str, Any],
        *,
        allocation_sha256: str,
        scheme: str,
        seed: int,
        n_units: int,
        data_sha256: str | None = None,
        reason: str | None = None,
    ) -> tuple[AllocationRecord, PlanVersion | None]:
        """Record a randomised pilot's allocation (registering the pilot with it if needed);
        a second allocation needs a ``reason``, as in :meth:`Registry.record_allocation`."""
        body = {
            **self._pilot(spec),
            "allocation": dict(document),
            "allocation_sha256": allocation_sha256,
            "scheme": scheme,
            "seed": int(seed),
            "n_units": int(n_units),
            "data_sha256": data_sha256,
            "reason": reason,
        }
        out = self._call("POST", f"/pilots/{quote(spec.id, safe='')}/allocations", json=body)
        plan = out.get("registered")
        return _allocation(out["allocation"]), (_version(plan) if plan else None)

    def head(self) -> str:
        """The chain head, ``SEQ:SHA256``."""
        return str(self._call("GET", "/head")["head"])


def _version(out: Mapping[str, Any]) -> PlanVersion:
    return PlanVersion(**{**out, "changes": tuple(out.get("changes", ()))})


def _allocation(out: Mapping[str, Any]) -> AllocationRecord:
    fields = AllocationRecord.__dataclass_fields__
    return AllocationRecord(**{k: v for k, v in out.items() if k in fields})


def _write_texts(folder: Path, lines: list[str], csv_text: str) -> tuple[Path, Path]:
    """Write the two export files whole or not at all (the database export's own writer)."""
    import csv
    import io

    reader = csv.DictReader(io.StringIO(csv_text))
    rows = list(reader)
    items: list[tuple[str | None, list[dict[str, Any]]]] = [(line, []) for line in lines]
    if rows:
        items.append((None, list(rows)))
    jsonl_path, csv_path, _, _ = write_export(folder, iter(items))
    return jsonl_path, csv_path
