"""Benchmark the prediction API over real HTTP: ``make bench-api``.

Starts ``building-energy serve`` on a free loopback port, sends real buildings of the City's data as
single predictions and as batches, at concurrency 1 and 16 (httpx async client), and prints latency
percentiles, throughput and errors beside the in-process one-row ``pipeline.predict``, with the ratios
issue 4 sets as targets. The HTTP-over-in-process ratio is also measured paired: each row predicted in
process and then over HTTP, back to back, so a slow spell of the machine weighs on both sides alike.
Bounded in requests and in time; stops the server itself. Exit code 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from building_energy.api.schemas import city_payload
from building_energy.config import get_config
from building_energy.loopback import ServerNotReadyError, answers, free_port, stop_process, wait_until_ready
from building_energy.models.artifacts import MODEL_FILE
from building_energy.models.loading import LoadedModel, load_model
from building_energy.models.predict import predict_frame
from building_energy.preprocessing.preprocessor import preprocess_data

SEED = 0
TARGET_HTTP_OVER_INPROCESS = 1.5
TARGET_BATCH_OVER_SINGLE = 20.0


@dataclass
class Scenario:
    name: str
    concurrency: int
    rows_per_request: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    # From the server: its own latency per request (access log) and its CPU seconds over the scenario.
    server_latencies_ms: list[float] = field(default_factory=list)
    server_cpu_seconds: float = float("nan")

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + len(self.errors)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies_ms) / self.wall_seconds if self.wall_seconds else float("nan")

    @property
    def rows_per_second(self) -> float:
        return self.requests_per_second * self.rows_per_request

    @property
    def server_cpu_ms_per_request(self) -> float:
        return self.server_cpu_seconds * 1000 / self.requests if self.requests else float("nan")

    def server_percentile(self, q: float) -> float:
        return float(np.percentile(self.server_latencies_ms, q)) if self.server_latencies_ms else float("nan")


def ensure_model(model: Path, data: Path, workdir: Path) -> Path:
    """``model`` if it exists, else a `fast` model trained into ``workdir`` (said on the output)."""
    if model.is_file():
        return model
    from building_energy.models.train import train_model

    print(f"no model at {model}: training a `fast` one into {workdir} (a few minutes on a busy machine)")
    started = time.perf_counter()
    result = train_model(data_path=data, output_dir=workdir / "artifacts", profile="fast")
    print(f"trained {result.model_path} in {time.perf_counter() - started:.0f} s")
    return result.model_path


def start_server(model: Path, port: int, log_path: Path, startup_seconds: float) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "building_energy.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, "--model", str(model)], stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        wait_until_ready(
            process,
            lambda: answers(f"http://127.0.0.1:{port}/health"),
            startup_seconds,
            details=lambda: f"see {log_path}",
        )
    except ServerNotReadyError:
        stop_process(process)
        raise
    return process


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``), ``nan`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def access_log_latencies(log_path: Path, start_line: int, path: str) -> tuple[list[float], int]:
    """``latency_ms`` of the successful requests to ``path`` logged after line ``start_line``; the new end."""
    lines = log_path.read_text(errors="replace").splitlines()
    found = []
    for line in lines[start_line:]:
        if "building_energy.api.access" not in line:
            continue
        entry = json.loads(line.split(": ", 1)[1])
        if entry["path"] == path and entry["status"] == 200:
            found.append(float(entry["latency_ms"]))
    return found, len(lines)


async def run_scenario(
    client: httpx.AsyncClient, scenario: Scenario, path: str, bodies: Sequence[Any], deadline: float
) -> Scenario:
    """Send every body once, ``scenario.concurrency`` in flight at a time; stop early at ``deadline``."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker() -> None:
        while not queue.empty() and time.monotonic() < deadline:
            body = queue.get_nowait()
            started = time.perf_counter()
            try:
                response = await client.post(path, json=body)
            except httpx.HTTPError as error:
                scenario.errors.append(repr(error))
                continue
            elapsed = (time.perf_counter() - started) * 1000
            failed = response.status_code != 200 or (path.endswith("batch") and response.json()["n_failed"])
            if failed:
                scenario.errors.append(f"{response.status_code}: {response.text[:200]}")
            else:
                scenario.latencies_ms.append(elapsed)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(scenario.concurrency)))
    scenario.wall_seconds = time.perf_counter() - started
    if not queue.empty():
        scenario.errors.append(f"time budget exhausted with {queue.qsize()} requests unsent")
    return scenario


async def run_paired(
    client: httpx.AsyncClient, in_process: Sequence[Callable[[], Any]], bodies: Sequence[Any], deadline: float
) -> list[tuple[float, float]]:
    """(in-process ms, HTTP ms) for one row after another, back to back: the machine's speed swings (CPU time
    of identical code varies up to 2x between runs here) hit both sides of each pair alike."""
    pairs = []
    for predict, body in zip(in_process, bodies, strict=False):
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        predict()
        local = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        response = await client.post("/predict", json=body)
        if response.status_code == 200:
            pairs.append((local, (time.perf_counter() - started) * 1000))
    return pairs


async def run_http(
    server: tuple[int, int, Path],
    singles: list[dict[str, Any]],
    batches: list[dict[str, Any]],
    concurrencies: Sequence[int],
    budget: float,
    paired_calls: Sequence[Callable[[], Any]],
) -> tuple[list[Scenario], list[tuple[float, float]]]:
    port, pid, log_path = server
    deadline = time.monotonic() + budget
    limits = httpx.Limits(max_connections=max(concurrencies), max_keepalive_connections=max(concurrencies))
    results = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits) as client:
        for body in singles[:20]:  # warm-up: connections, first-call caches
            await client.post("/predict", json=body)
        paired = await run_paired(client, paired_calls, singles, deadline)
        await asyncio.sleep(0.5)  # let the warm-up's log lines land
        _, log_line = access_log_latencies(log_path, 0, "")
        rows = len(batches[0]["buildings"])
        for concurrency in concurrencies:
            for scenario, path, bodies in (
                (Scenario(f"single, concurrency {concurrency}", concurrency, 1), "/predict", singles),
                (Scenario(f"batch of {rows}, concurrency {concurrency}", concurrency, rows), "/predict/batch", batches),
            ):
                cpu_before = cpu_seconds(pid)
                results.append(await run_scenario(client, scenario, path, bodies, deadline))
                scenario.server_cpu_seconds = cpu_seconds(pid) - cpu_before
                await asyncio.sleep(0.5)
                scenario.server_latencies_ms, log_line = access_log_latencies(log_path, log_line, path)
    return results, paired


def in_process_p50(loaded: LoadedModel, rows: pd.DataFrame, repeats: int) -> dict[str, float]:
    """Median wall and CPU milliseconds of ``pipeline.predict`` and ``predict_frame`` on one row, real rows in turn."""
    one_row = [rows.iloc[[i % len(rows)]] for i in range(repeats)]
    for frame in one_row[:10]:
        loaded.model.predict(frame)
    calls = {"predict": loaded.model.predict, "predict_frame": lambda frame: predict_frame(loaded, frame)}
    timings: dict[str, list[float]] = {f"{name} {clock}": [] for name in calls for clock in ("wall", "cpu")}
    for frame in one_row:
        for name, call in calls.items():
            wall, cpu = time.perf_counter(), time.thread_time()
            call(frame)
            timings[f"{name} cpu"].append((time.thread_time() - cpu) * 1000)
            timings[f"{name} wall"].append((time.perf_counter() - wall) * 1000)
    return {key: statistics.median(values) for key, values in timings.items()}


def report(scenarios: list[Scenario], in_process: dict[str, float], paired: list[tuple[float, float]]) -> int:
    print()
    columns = ("requests", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s", "rows/s", "srv p50", "srv cpu")
    print(f"{'scenario':<29}" + "".join(f"{c:>10}" for c in columns))
    for s in scenarios:
        values: tuple[int | float, ...] = (s.requests, len(s.errors), s.percentile(50), s.percentile(95))
        values += (s.percentile(99), s.requests_per_second, s.rows_per_second)
        values += (s.server_percentile(50), s.server_cpu_ms_per_request)
        print(f"{s.name:<29}" + "".join(f"{v:>10}" if isinstance(v, int) else f"{v:>10.1f}" for v in values))
    print("(p50..p99: client-side wall ms; srv p50: the server's own latency from its access log; srv cpu: ms")
    print(" of server CPU per request. Client and server share the machine's cores.)")
    predict_wall, frame_wall = in_process["predict wall"], in_process["predict_frame wall"]
    print(
        f"\nin process, one row: pipeline.predict p50 {predict_wall:.1f} ms wall / {in_process['predict cpu']:.1f} ms"
        f" CPU; predict_frame p50 {frame_wall:.1f} ms wall / {in_process['predict_frame cpu']:.1f} ms CPU"
    )
    by_name = {s.name: s for s in scenarios}
    single_1 = by_name.get("single, concurrency 1")
    if single_1 is not None and single_1.latencies_ms:
        ratio = single_1.percentile(50) / predict_wall
        verdict = "met" if ratio <= TARGET_HTTP_OVER_INPROCESS else "MISSED"
        print(
            f"HTTP single p50 / in-process pipeline.predict p50 = {ratio:.2f} "
            f"(target <= {TARGET_HTTP_OVER_INPROCESS}: {verdict}); / predict_frame p50 = "
            f"{single_1.percentile(50) / frame_wall:.2f}; server-side p50 / pipeline.predict p50 = "
            f"{single_1.server_percentile(50) / predict_wall:.2f}; server CPU per request / pipeline.predict CPU = "
            f"{single_1.server_cpu_ms_per_request / in_process['predict cpu']:.2f}"
        )
    if paired:
        local, http = np.array(paired).T
        ratio = float(np.median(http) / np.median(local))
        verdict = "met" if ratio <= TARGET_HTTP_OVER_INPROCESS else "MISSED"
        print(
            f"paired, {len(paired)} rows (in-process pipeline.predict, then the same row over HTTP, back to back): "
            f"p50 {np.median(local):.1f} ms in process, {np.median(http):.1f} ms over HTTP; ratio of p50s = "
            f"{ratio:.2f} (target <= {TARGET_HTTP_OVER_INPROCESS}: {verdict}); median per-row ratio = "
            f"{float(np.median(http / local)):.2f}"
        )
    for concurrency in sorted({s.concurrency for s in scenarios}):
        single = by_name.get(f"single, concurrency {concurrency}")
        batch = next((s for s in scenarios if s.concurrency == concurrency and s.rows_per_request > 1), None)
        if single and batch and single.latencies_ms and batch.latencies_ms:
            ratio = batch.rows_per_second / single.rows_per_second
            verdict = "met" if ratio >= TARGET_BATCH_OVER_SINGLE else "MISSED"
            print(
                f"concurrency {concurrency}: batch rows/s / single rows/s = {ratio:.1f} "
                f"(target >= {TARGET_BATCH_OVER_SINGLE:.0f}: {verdict})"
            )
    errors = [e for s in scenarios for e in s.errors]
    print(f"errors: {len(errors)}")
    for error in errors[:5]:
        print(f"  {error}")
    return 1 if errors else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    config = get_config()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=config.paths.artifacts / MODEL_FILE)
    parser.add_argument("--data", type=Path, default=config.paths.data)
    parser.add_argument("--requests", type=int, default=1000, help="single predictions per concurrency")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batches", type=int, default=20, help="batch requests per concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--in-process-repeats", type=int, default=200)
    parser.add_argument("--paired", type=int, default=200, help="rows timed in process and over HTTP back to back")
    parser.add_argument("--budget-seconds", type=float, default=900, help="HTTP time budget; unsent requests fail")
    parser.add_argument("--startup-seconds", type=float, default=180)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    buildings = preprocess_data(args.data)
    rows = buildings.sample(args.requests, replace=len(buildings) < args.requests, random_state=SEED)
    singles = [city_payload(row) for _, row in rows.iterrows()]
    batch_rows = buildings.sample(args.batch_size, random_state=SEED + 1)
    batches = [{"buildings": [city_payload(row) for _, row in batch_rows.iterrows()]}] * args.batches
    with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
        workdir = Path(folder)
        model = ensure_model(Path(args.model), Path(args.data), workdir)
        print(f"model {model}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
        loaded = load_model(model)
        in_process = in_process_p50(loaded, rows.reset_index(drop=True), args.in_process_repeats)
        frames = [rows.iloc[[i]] for i in range(min(args.paired, len(rows)))]
        paired_calls = [functools.partial(loaded.model.predict, frame) for frame in frames]
        port = free_port()
        log_path = workdir / "server.log"
        process = start_server(model, port, log_path, args.startup_seconds)
        print(f"server on http://127.0.0.1:{port} (pid {process.pid})")
        try:
            server = (port, process.pid, log_path)
            scenarios, paired = asyncio.run(
                run_http(server, singles, batches, args.concurrency, args.budget_seconds, paired_calls)
            )
        finally:
            stop_process(process)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        return report(scenarios, in_process, paired)


if __name__ == "__main__":
    sys.exit(main())
