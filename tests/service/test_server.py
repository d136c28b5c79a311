"""A real ``pilotlab serve`` process on 127.0.0.1 (SQLite and PostgreSQL), used by the command line
as users use it; concurrent clients; a client killed mid-upload."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from pilotlab.registry.remote import RemoteRegistry
from tests.support.cli import Done, run_in_process
from tests.support.registry import make_evidence, make_spec, registry_url  # noqa: F401

pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTLAB_")}
    if "PILOTLAB_ARGON2_PROFILE" in os.environ:  # cheap hashes in tests (see conftest)
        env["PILOTLAB_ARGON2_PROFILE"] = os.environ["PILOTLAB_ARGON2_PROFILE"]
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class Server:
    def __init__(self, url: str, tmp: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "serve.log"
        self._log = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pilotlab", "serve", "--registry", url, "--port", str(self.port)],
            env=_env(**env), stdout=subprocess.DEVNULL, stderr=self._log, cwd=tmp,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
            if self.proc.poll() is not None:
                break
        self.stop()
        raise AssertionError(f"the server did not start: {self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self._log.close()


def _session(base: str, email: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=base, timeout=30)
    c.post("/sign-in", data={"email": email, "password": PASSWORD})
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/account").text).group(1)
    c.headers["x-csrf-token"] = csrf
    return c, csrf


@pytest.fixture
def server(registry_url: str, tmp_path: Path) -> Iterator[tuple[Server, dict[str, str]]]:  # noqa: F811
    srv = Server(
        registry_url, tmp_path,
        {"PILOTLAB_ADMIN_EMAIL": "admin@example.gov.uk", "PILOTLAB_ADMIN_PASSWORD": PASSWORD},
    )  # fmt: skip
    try:
        admin, _ = _session(srv.base, "admin@example.gov.uk")
        assert (
            admin.post("/api/organisations", json={"slug": "place-a", "name": "A"}).status_code
            == 201
        )
        made = admin.post(
            "/api/people",
            json={
                "email": "ed@example.gov.uk",
                "name": "Ed",
                "role": "editor",
                "organisation": "place-a",
                "password": PASSWORD,
            },
        )
        assert made.status_code == 201, made.text
        editor, _ = _session(srv.base, "ed@example.gov.uk")
        token = editor.post("/api/tokens", json={"label": "cli"}).json()["token"]
        admin_token = admin.post("/api/tokens", json={"label": "tests"}).json()["token"]
        admin.close()
        editor.close()
        yield srv, {"editor": token, "admin": admin_token}
    finally:
        srv.stop()
    log = srv.log.read_text()
    assert "Traceback" not in log
    assert PASSWORD not in log and token not in log  # nothing secret in the server's output


def _cli(
    args: list[str], base: str, token: str, cwd: Path, *, process: bool = False
) -> subprocess.CompletedProcess[str] | Done:
    """``pilotlab ARGS`` against the service: in this process (the server is still a process of
    its own), or with ``process`` as a process of its own too, as a user's terminal starts it."""
    env = {"PILOTLAB_REGISTRY_URL": base, "PILOTLAB_TOKEN": token}
    if not process:
        return run_in_process(args, env, cwd)
    return subprocess.run(
        [sys.executable, "-m", "pilotlab", *args], capture_output=True, text=True, cwd=cwd,
        env=_env(**env), timeout=120,
    )  # fmt: skip


def test_the_cli_against_a_running_service(server, tmp_path: Path) -> None:
    srv, tokens = server
    spec = make_spec()
    pilot = tmp_path / "pilot.yaml"
    pilot.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True)))
    done = _cli(["register", str(pilot)], srv.base, tokens["editor"], tmp_path, process=True)
    assert done.returncode == 0, done.stderr
    assert "Registered ne-employment-support: analysis plan version 1" in done.stdout
    again = _cli(["register", str(pilot)], srv.base, tokens["editor"], tmp_path, process=True)
    assert (
        again.returncode == 1
        and "already registered" in again.stderr
        and "Traceback" not in again.stderr
    )
    changed = dict(yaml.safe_load(pilot.read_text()), design={"estimator": "twfe", "alpha": 0.05})
    pilot.write_text(yaml.safe_dump(changed))
    amended = _cli(
        ["amend", str(pilot), "--reason", "two-way fixed effects"],
        srv.base,
        tokens["editor"],
        tmp_path,
    )
    assert amended.returncode == 0 and "analysis plan version 2" in amended.stdout, amended.stderr
    status = _cli(["status", spec.id, "completed"], srv.base, tokens["editor"], tmp_path)
    assert "live -> completed" in status.stdout, status.stderr
    listed = _cli(["list"], srv.base, tokens["editor"], tmp_path)
    assert spec.id in listed.stdout and "completed" in listed.stdout
    shown = _cli(["show", spec.id], srv.base, tokens["editor"], tmp_path)
    assert "two-way fixed effects" in shown.stdout
    exported = _cli(["export", "-o", str(tmp_path / "exp")], srv.base, tokens["editor"], tmp_path)
    assert exported.returncode == 0 and (tmp_path / "exp" / "evidence.csv").is_file()
    anonymous = _cli(["show", spec.id], srv.base, "", tmp_path)
    assert anonymous.returncode == 1 and "or you may not see it" in anonymous.stderr
    bad = _cli(["list"], srv.base, "plt_000000000000_" + "x" * 43, tmp_path)
    assert bad.returncode == 1 and "PILOTLAB_TOKEN" in bad.stderr
    plain = _cli(["list"], "http://evidence.example.gov.uk", tokens["editor"], tmp_path)
    assert plain.returncode == 1 and "unencrypted" in plain.stderr


def test_eight_clients_times_fifty_writes_lose_and_duplicate_nothing(server) -> None:
    srv, tokens = server
    specs = [make_spec(f"pilot-{k}") for k in range(8)]
    with RemoteRegistry(srv.base, tokens["editor"]) as r:
        for s in specs:
            r.register(s)
    run_ids: list[list[str]] = [[] for _ in specs]
    errors: list[str] = []

    def client(k: int) -> None:
        try:
            with RemoteRegistry(srv.base, tokens["editor"]) as r:
                for _ in range(50):
                    run_ids[k].append(
                        r.record_run(specs[k], make_evidence(specs[k]), None, {}).run_id
                    )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with RemoteRegistry(srv.base, tokens["admin"]) as r:
        for k, s in enumerate(specs):
            runs = [x.run_id for x in r.show(s.id).runs]
            assert sorted(runs) == sorted(run_ids[k]) and len(set(runs)) == 50
    audit = httpx.get(
        f"{srv.base}/api/audit?limit=1000", headers={"authorization": f"Bearer {tokens['admin']}"}
    ).json()
    assert sum(1 for e in audit if e["action"] == "run") == 400
    assert len({e["detail"]["run_id"] for e in audit if e["action"] == "run"}) == 400


def test_a_client_killed_mid_upload_leaves_no_half_recorded_run(server) -> None:
    srv, tokens = server
    spec = make_spec()
    with RemoteRegistry(srv.base, tokens["editor"]) as r:
        r.register(spec)
    boundary = "b0undary"
    pilot = json.dumps({"pilot": spec.model_dump(mode="json", exclude_unset=True)})
    head = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="pilot"\r\n\r\n{pilot}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="evidence"; filename="evidence.json"\r\n'
            "Content-Type: application/json\r\n\r\n"
        ).encode()
        + json.dumps(make_evidence(spec)).encode()
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="report"; filename="report.html"\r\n\r\n<!doctype html>'
        ).encode()
    )
    total = len(head) + 5_000_000
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(
            (
                f"POST /api/pilots/{spec.id}/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {tokens['editor']}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {total}\r\n\r\n"
            ).encode()
            + head
            + b" " * 1_000_000
        )
        time.sleep(0.5)
    # killed: the connection closed four fifths short
    time.sleep(1.0)
    with RemoteRegistry(srv.base, tokens["editor"]) as r:
        assert r.show(spec.id).runs == ()
        r.record_run(spec, make_evidence(spec), None, {})  # and the service still works
        assert len(r.show(spec.id).runs) == 1


def test_randomise_and_run_a_randomised_pilot_through_a_running_service(
    server, tmp_path: Path
) -> None:
    from tests.support import write_pilot
    from tests.support.trial import trial_frame, trial_pilot

    srv, tokens = server
    raw = trial_pilot(scheme="stratified", strata=["region"], treated=6)
    pilot = write_pilot(tmp_path / "p", raw, trial_frame())
    token = tokens["editor"]
    alloc = ["randomise", str(pilot), "-o", str(tmp_path / "alloc")]
    done = _cli(alloc, srv.base, token, tmp_path, process=True)
    assert done.returncode == 0, done.stderr
    assert "Registered test-pilot (analysis plan version 1)" in done.stdout
    again = _cli(["randomise", str(pilot), "-o", str(tmp_path / "a2")], srv.base, token, tmp_path)
    assert again.returncode == 1 and "already has an allocation" in again.stderr
    assert "Traceback" not in again.stderr and not (tmp_path / "a2").exists()
    run = ["run", str(pilot), "-o", str(tmp_path / "run"), "-q"]
    ran = _cli(run, srv.base, token, tmp_path, process=True)
    assert ran.returncode == 0, ran.stderr
    record = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert record["trial"]["registration"]["matches"] is True
    assert record["trial"]["registration"]["version"] == 1
    # the same pilot against a database gives the same check
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    local = ["randomise", str(pilot), "-o", str(tmp_path / "alloc-db"), "--registry", url]
    assert _cli(local, srv.base, token, tmp_path).returncode == 0
    by_db = ["run", str(pilot), "-o", str(tmp_path / "run-db"), "--registry", url, "-q"]
    assert _cli(by_db, srv.base, token, tmp_path).returncode == 0
    db_record = json.loads((tmp_path / "run-db" / "evidence.json").read_text())
    drop = ("recorded_at",)
    assert {k: v for k, v in record["trial"]["registration"].items() if k not in drop} == {
        k: v for k, v in db_record["trial"]["registration"].items() if k not in drop
    }
    write_pilot(pilot.parent, dict(raw, assignment={**raw["assignment"], "seed": 99}), None)
    moved = _cli(["run", str(pilot), "-o", str(tmp_path / "run2"), "-q"], srv.base, token, tmp_path)
    assert moved.returncode == 1 and "the seed is 99, registered 7" in moved.stderr
    assert "Traceback" not in moved.stderr and not (tmp_path / "run2").exists()
