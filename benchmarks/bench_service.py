"""The evidence service under 50 concurrent clients: portfolio reads, pilot-page reads, run uploads.

    python benchmarks/bench_service.py [--clients 50] [--requests 20] [--pilots 50]
                                       [--postgres postgresql+psycopg://...]

Starts a real ``pilotlab serve`` on 127.0.0.1 (a fresh SQLite registry, and a fresh schema of the
PostgreSQL database given with --postgres or $PILOTLAB_TEST_POSTGRES_URL), registers N pilots
with one run each, then for each workload runs C client threads that each send R requests
back to back, and reports throughput (requests per second over the whole workload) and the
p50 and p99 latency of single requests. Every response must succeed. Clients and server share
this machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from pilotlab.spec import parse_pilot, plan_sha256

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "benchmark password 1234"


def pilot(i: int) -> dict[str, Any]:
    return {
        "id": f"pilot-{i:04d}",
        "title": f"Pilot {i}",
        "status": "live",
        "lead": "A local authority",
        "policy_area": ["employment", "health", "education"][i % 3],
        "data": {"path": "data/panel.csv", "unit": "area_code", "time": "period"},
        "treatment": {"units": ["E06000047", "E08000021"], "start": "2024Q2"},
        "outcomes": [{"column": "claimant_rate", "primary": True, "better": "lower", "mde": 0.5}],
        "design": {"estimator": "did"},
    }


def evidence(raw: dict[str, Any]) -> bytes:
    spec = parse_pilot(raw)
    record = {
        "schema": "pilotlab.evidence/1",
        "generated_at": "2026-11-25T10:00:00Z",
        "software": {"pilotlab": "0.1.0", "python": "3.11"},
        "pilot": {"id": spec.id, "title": spec.title, "status": spec.status},
        "plan": {"sha256": plan_sha256(spec), "registered": True, "version": 1,
                 "registered_at": "2026-11-25T09:00:00.000000Z", "matches_registered": True,
                 "deviations": []},
        "data": {"path": "data/panel.csv", "sha256": "d" * 64, "rows": 400, "units": 40,
                 "treated_units": 2, "periods": 10, "first_period": "2022Q1",
                 "last_period": "2024Q2", "excluded_units": []},
        "results": [{"outcome": "claimant_rate", "label": "claimant_rate", "primary": True,
                     "estimator": "did", "estimand": "ATT", "inference": "cluster",
                     "estimate": -0.4, "std_error": 0.1, "ci_lower": -0.6, "ci_upper": -0.2,
                     "p_value": 0.01, "p_value_adjusted": 0.01, "alpha": 0.05,
                     "baseline_mean": 3.0, "relative_effect": -0.13, "mde": 0.5, "n_obs": 400,
                     "n_units": 40, "n_treated_units": 2, "n_clusters": 40, "event_study": [],
                     "pre_trend": None, "robustness": [], "warnings": []}],
        "evidence_strength": {"rubric": "bench", "level": 3, "criteria": []},
    }  # fmt: skip
    return json.dumps(record).encode()


REPORT = b"<!doctype html><html lang='en'><title>report</title>" + b"<p>text</p>" * 20_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(url: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTLAB_")}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env |= {"PILOTLAB_ADMIN_EMAIL": "bench@example.gov.uk", "PILOTLAB_ADMIN_PASSWORD": PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pilotlab", "serve", "--registry", url, "--port", str(port)],
        env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the service did not start")


def token(base: str) -> str:
    with httpx.Client(base_url=base) as c:
        c.post("/sign-in", data={"email": "bench@example.gov.uk", "password": PASSWORD})
        page = c.get("/account").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        got = c.post("/api/tokens", json={"label": "bench"}, headers={"x-csrf-token": csrf})
        return str(got.json()["token"])


def workload(
    clients: int,
    requests: int,
    make: Callable[[httpx.Client, int, int], httpx.Response],
    base: str,
    tok: str,
) -> dict[str, float]:
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def run(k: int) -> None:
        with httpx.Client(
            base_url=base, headers={"authorization": f"Bearer {tok}"}, timeout=120
        ) as c:
            mine = []
            barrier.wait()
            for j in range(requests):
                t0 = time.perf_counter()
                r = make(c, k, j)
                mine.append(time.perf_counter() - t0)
                if r.status_code >= 400:
                    failures.append(f"{r.status_code} {r.text[:100]}")
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    latencies.sort()
    return {
        "throughput": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "n": len(latencies),
    }


def bench(url: str, label: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start(url, Path(tmp))
        try:
            tok = token(base)
            raws = [pilot(i) for i in range(args.pilots)]
            with httpx.Client(
                base_url=base, headers={"authorization": f"Bearer {tok}"}, timeout=60
            ) as c:
                for raw in raws:
                    c.post(
                        "/api/pilots", json={"pilot": raw, "visibility": "public"}
                    ).raise_for_status()
                    upload(c, raw).raise_for_status()
            results = {
                "portfolio page": workload(args.clients, args.requests, lambda c, k, j: c.get("/"), base, tok),
                "pilot page": workload(
                    args.clients, args.requests,
                    lambda c, k, j: c.get(f"/pilots/{raws[(k + j) % len(raws)]['id']}"), base, tok,
                ),
                "run upload (200 kB report)": workload(
                    args.clients, args.requests,
                    lambda c, k, j: upload(c, raws[k % len(raws)]), base, tok,
                ),
            }  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    for name, r in results.items():
        print(
            f"{label:<10} {name:<28} {r['throughput']:8.1f} req/s   p50 {r['p50_ms']:7.1f} ms   "
            f"p99 {r['p99_ms']:7.1f} ms   ({int(r['n'])} requests, {args.clients} clients)"
        )


def upload(c: httpx.Client, raw: dict[str, Any]) -> httpx.Response:
    return c.post(
        f"/api/pilots/{raw['id']}/runs",
        data={"pilot": json.dumps({"pilot": raw})},
        files=[
            ("evidence", ("evidence.json", evidence(raw), "application/json")),
            ("report", ("report.html", REPORT, "text/html")),
            ("table", ("results.csv", b"outcome,estimate\nclaimant_rate,-0.4\n", "text/csv")),
        ],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20, help="requests per client per workload")
    ap.add_argument("--pilots", type=int, default=50)
    ap.add_argument("--postgres", default=os.environ.get("PILOTLAB_TEST_POSTGRES_URL"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{Path(tmp) / 'registry.db'}", "SQLite", args)
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        try:
            bench(f"{args.postgres}?options=-csearch_path%3D{schema}", "PostgreSQL", args)
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    else:
        print("PostgreSQL: skipped (give --postgres URL or source .ci/postgres.sh)")


if __name__ == "__main__":
    main()
