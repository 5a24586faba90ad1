"""Load test of the prediction API: ``make bench-load``.

Starts ``building-energy serve --workers 2`` on a free loopback port and sends 20,000 requests at concurrency
32: single buildings, batches of 100 and malformed requests (bad JSON, missing or invalid fields, an unknown
field, JSON nested too deep, an oversized batch, a body over the size cap), in a seeded order. Prints
throughput, latency p50/p99 per kind, status counts by kind (2xx, the 4xx expected for malformed requests,
unexpected 4xx, 5xx, connection errors, timeouts) and the workers' resident memory (sum over the uvicorn
worker processes, from /proc) after warm-up and at the end. Bounded in requests and in seconds; loopback
only; stops the server itself. Exit code 1 on any 5xx, connection error, timeout or unexpected status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from building_energy.api.schemas import city_payload
from building_energy.config import get_config
from building_energy.loopback import ServerNotReadyError, answers, free_port, stop_process, wait_until_ready
from building_energy.models.artifacts import MODEL_FILE
from building_energy.preprocessing.preprocessor import preprocess_data

SEED = 7
HOST = "127.0.0.1"
# Share of each kind of request in the mix.
MIX = {"single": 0.7, "batch": 0.1, "malformed": 0.2}
TARGET_RSS_GROWTH = 0.10


@dataclass(frozen=True)
class PlannedRequest:
    kind: str  # single, batch or malformed:<what>
    path: str
    body: bytes
    expect_ok: bool


@dataclass
class Results:
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)


def malformed_requests(example: dict[str, Any], max_batch: int, max_body: int, max_depth: int) -> list[PlannedRequest]:
    """One of each way a client gets a request wrong; every one must get a 4xx, never a 5xx."""
    nested = "[" * (max_depth + 1) + "]" * (max_depth + 1)
    cases = {
        "syntax": ("/predict", b'{"PrimaryPropertyType": "Hotel", '),
        "missing_fields": ("/predict", json.dumps({"Neighborhood": "DOWNTOWN"}).encode()),
        "negative_area": ("/predict", json.dumps({**example, "PropertyGFATotal": -5}).encode()),
        "unknown_field": ("/predict", json.dumps({**example, "SiteEnergyUse(kBtu)": 1e6}).encode()),
        "too_deep": ("/predict", nested.encode()),
        "empty_batch": ("/predict/batch", b'{"buildings": []}'),
        "oversized_batch": (
            "/predict/batch",
            json.dumps({"buildings": [{"PrimaryPropertyType": "Hotel"}] * (max_batch + 1)}).encode(),
        ),
        "body_too_large": ("/predict", b'{"ListOfAllPropertyUseTypes": "' + b"x" * max_body + b'"}'),
    }
    return [PlannedRequest(f"malformed:{name}", path, body, False) for name, (path, body) in cases.items()]


def plan(n_requests: int, payloads: list[dict[str, Any]], batch_size: int, rng: random.Random) -> list[PlannedRequest]:
    config = get_config().api
    malformed = malformed_requests(payloads[0], config.max_batch, config.max_body_bytes, config.max_json_depth)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=n_requests)
    planned = []
    for index, kind in enumerate(kinds):
        if kind == "single":
            planned.append(
                PlannedRequest("single", "/predict", json.dumps(payloads[index % len(payloads)]).encode(), True)
            )
        elif kind == "batch":
            start = rng.randrange(len(payloads) - batch_size)
            body = json.dumps({"buildings": payloads[start : start + batch_size]}).encode()
            planned.append(PlannedRequest("batch", "/predict/batch", body, True))
        else:
            planned.append(malformed[index % len(malformed)])
    return planned


def worker_pids(server_pid: int) -> list[int]:
    """The uvicorn worker processes: children of the server started by multiprocessing's spawn."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == server_pid and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:  # a worker that died: the run reports it
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def start_server(
    model: Path, port: int, workers: int, log_path: Path, startup_seconds: float
) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "building-energy"), "serve", "--host", HOST, "--port", str(port)]
    command += ["--model", str(model), "--workers", str(workers)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 (our own CLI)
    try:
        wait_until_ready(
            process,
            lambda: answers(f"http://{HOST}:{port}/health") and len(worker_pids(process.pid)) == workers,
            startup_seconds,
            details=lambda: f"see {log_path}",
        )
    except ServerNotReadyError as error:
        stop_server(process)
        raise SystemExit(str(error)) from error
    return process


def stop_server(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, signal.SIGTERM, timeout=60)


def outcome(request: PlannedRequest, status: int) -> str:
    if 200 <= status < 300:
        return "2xx" if request.expect_ok else "2xx on a malformed request"
    if 400 <= status < 500:
        return "4xx expected (malformed)" if not request.expect_ok else "4xx on a valid request"
    if status >= 500:
        return "5xx"
    return f"status {status}"


async def send_all(
    base_url: str, requests: list[PlannedRequest], concurrency: int, deadline: float, timeout: float
) -> tuple[Results, int]:
    """Send ``requests`` with ``concurrency`` clients until done or ``deadline``; return results and count sent."""
    results = Results()
    queue = iter(enumerate(requests))
    sent = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:

        async def client_loop() -> None:
            nonlocal sent
            for _, request in queue:
                if time.monotonic() > deadline:
                    return
                sent += 1
                started = time.perf_counter()
                try:
                    response = await client.post(
                        request.path, content=request.body, headers={"content-type": "application/json"}
                    )
                except httpx.TimeoutException:
                    results.outcomes["timeout"] += 1
                    results.unexpected.append(f"{request.kind}: timeout")
                    continue
                except httpx.TransportError as error:
                    results.outcomes["connection error"] += 1
                    results.unexpected.append(f"{request.kind}: {type(error).__name__}: {error}")
                    continue
                results.latencies_ms[request.kind.split(":")[0]].append((time.perf_counter() - started) * 1000)
                kind = outcome(request, response.status_code)
                results.outcomes[kind] += 1
                if kind not in ("2xx", "4xx expected (malformed)"):
                    results.unexpected.append(f"{request.kind}: {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return results, sent


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else float("nan")


def report(
    results: Results, sent: int, planned: int, seconds: float, rss_start: int, rss_end: int, workers: int
) -> int:
    print(f"\n{sent} of {planned} requests in {seconds:.1f} s: {sent / seconds:.1f} requests/s")
    everything = [v for values in results.latencies_ms.values() for v in values]
    print(f"{'kind':<12}{'n':>8}{'p50 ms':>10}{'p99 ms':>10}")
    for kind, values in [("all", everything), *sorted(results.latencies_ms.items())]:
        print(f"{kind:<12}{len(values):>8}{percentile(values, 50):>10.1f}{percentile(values, 99):>10.1f}")
    print("\noutcomes:")
    for name in ("2xx", "4xx expected (malformed)", "4xx on a valid request", "2xx on a malformed request", "5xx"):
        print(f"  {name:<28}{results.outcomes.get(name, 0):>8}")
    for name in ("connection error", "timeout"):
        print(f"  {name:<28}{results.outcomes.get(name, 0):>8}")
    for name, count in sorted(results.outcomes.items()):
        if name.startswith("status"):
            print(f"  {name:<28}{count:>8}")
    growth = (rss_end - rss_start) / rss_start
    print(
        f"\nserver RSS ({workers} workers): {rss_start / 2**20:.1f} MiB after warm-up, {rss_end / 2**20:.1f} MiB at "
        f"the end: {growth:+.1%} (target < {TARGET_RSS_GROWTH:.0%})"
    )
    for line in results.unexpected[:10]:
        print(f"UNEXPECTED {line}")
    failed = bool(results.unexpected) or sent < planned
    if sent < planned:
        print(f"stopped by the time bound after {sent} requests")
    return 1 if failed else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    config = get_config()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=config.paths.artifacts / MODEL_FILE)
    parser.add_argument("--data", type=Path, default=config.paths.data)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=300, help="requests sent (and not counted) before measuring")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="stop sending after this long")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a request may take")
    parser.add_argument("--startup-seconds", type=float, default=300.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.model.is_file():
        raise SystemExit(f"no model at {args.model}: run `make train` (or pass --model)")
    rng = random.Random(SEED)  # noqa: S311 (a reproducible request mix, not a secret)
    buildings = preprocess_data(args.data)
    payloads = [city_payload(row) for _, row in buildings.iterrows()]
    rng.shuffle(payloads)
    warmup = plan(args.warmup, payloads, args.batch_size, rng)
    measured = plan(args.requests, payloads, args.batch_size, rng)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as workdir:
        log_path = Path(workdir) / "server.log"
        server = start_server(args.model, port, args.workers, log_path, args.startup_seconds)
        try:
            pids = worker_pids(server.pid)
            base_url = f"http://{HOST}:{port}"
            print(f"server pid {server.pid}, workers {pids}, {base_url}; warm-up: {args.warmup} requests")
            asyncio.run(send_all(base_url, warmup, args.concurrency, time.monotonic() + args.max_seconds, args.timeout))
            rss_start = rss_bytes(pids)
            print(f"measuring: {args.requests} requests at concurrency {args.concurrency}, mix {MIX}")
            started = time.monotonic()
            results, sent = asyncio.run(
                send_all(base_url, measured, args.concurrency, started + args.max_seconds, args.timeout)
            )
            seconds = time.monotonic() - started
            if worker_pids(server.pid) != pids:
                results.unexpected.append(
                    f"worker processes changed during the run: {pids} -> {worker_pids(server.pid)}"
                )
            rss_end = rss_bytes(pids)
        finally:
            stop_server(server)
        return report(results, sent, len(measured), seconds, rss_start, rss_end, args.workers)


if __name__ == "__main__":
    sys.exit(main())
