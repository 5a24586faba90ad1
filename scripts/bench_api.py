"""Benchmark the prediction API over real HTTP: ``make bench-api``.

Starts ``building-energy serve`` on a free loopback port, sends real buildings of the City's data as
single predictions and as batches, at concurrency 1 and 16 (httpx async client), and prints latency
percentiles, throughput and errors beside the in-process one-row ``pipeline.predict``, with the ratios
issue 4 sets as targets. Bounded in requests and in time; stops the server itself. Exit code 1 when any
request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from building_energy.api.schemas import city_payload
from building_energy.config import get_config
from building_energy.models.artifacts import MODEL_FILE
from building_energy.models.loading import load_model
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    deadline = time.monotonic() + startup_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(process)
    raise RuntimeError(f"the server was not ready after {startup_seconds:.0f} s; see {log_path}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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


async def run_http(
    port: int, singles: list[dict[str, Any]], batches: list[dict[str, Any]], concurrencies: Sequence[int], budget: float
) -> list[Scenario]:
    deadline = time.monotonic() + budget
    limits = httpx.Limits(max_connections=max(concurrencies), max_keepalive_connections=max(concurrencies))
    results = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits) as client:
        for body in singles[:20]:  # warm-up: connections, first-call caches
            await client.post("/predict", json=body)
        for concurrency in concurrencies:
            single = Scenario(f"single, concurrency {concurrency}", concurrency, 1)
            results.append(await run_scenario(client, single, "/predict", singles, deadline))
            rows = len(batches[0]["buildings"])
            batch = Scenario(f"batch of {rows}, concurrency {concurrency}", concurrency, rows)
            results.append(await run_scenario(client, batch, "/predict/batch", batches, deadline))
    return results


def in_process_p50(model_path: Path, rows: pd.DataFrame, repeats: int) -> tuple[float, float]:
    """Median milliseconds of ``pipeline.predict`` and of ``predict_frame`` on one row, real rows in turn."""
    loaded = load_model(model_path)
    one_row = [rows.iloc[[i % len(rows)]] for i in range(repeats)]
    for frame in one_row[:10]:
        loaded.model.predict(frame)
    timings: dict[str, list[float]] = {"predict": [], "predict_frame": []}
    for frame in one_row:
        started = time.perf_counter()
        loaded.model.predict(frame)
        timings["predict"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        predict_frame(loaded, frame)
        timings["predict_frame"].append((time.perf_counter() - started) * 1000)
    return statistics.median(timings["predict"]), statistics.median(timings["predict_frame"])


def report(scenarios: list[Scenario], predict_p50: float, frame_p50: float) -> int:
    print()
    header = ("requests", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s", "rows/s")
    print(f"{'scenario':<28}" + "".join(f"{h:>9}" if h != "errors" else f"{h:>7}" for h in header))
    for s in scenarios:
        print(
            f"{s.name:<28}{s.requests:>9}{len(s.errors):>7}{s.percentile(50):>9.1f}{s.percentile(95):>9.1f}"
            f"{s.percentile(99):>9.1f}{s.requests_per_second:>9.1f}{s.rows_per_second:>9.1f}"
        )
    print(f"\nin process, one row: pipeline.predict p50 {predict_p50:.1f} ms, predict_frame p50 {frame_p50:.1f} ms")
    by_name = {s.name: s for s in scenarios}
    single_1 = by_name.get("single, concurrency 1")
    if single_1 is not None and single_1.latencies_ms:
        ratio = single_1.percentile(50) / predict_p50
        verdict = "met" if ratio <= TARGET_HTTP_OVER_INPROCESS else "MISSED"
        print(
            f"HTTP single p50 / in-process pipeline.predict p50 = {ratio:.2f} "
            f"(target <= {TARGET_HTTP_OVER_INPROCESS}: {verdict}); "
            f"/ in-process predict_frame p50 = {single_1.percentile(50) / frame_p50:.2f}"
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
        predict_p50, frame_p50 = in_process_p50(model, rows.reset_index(drop=True), args.in_process_repeats)
        port = free_port()
        log_path = workdir / "server.log"
        process = start_server(model, port, log_path, args.startup_seconds)
        print(f"server on http://127.0.0.1:{port} (pid {process.pid})")
        try:
            scenarios = asyncio.run(run_http(port, singles, batches, args.concurrency, args.budget_seconds))
        finally:
            stop_server(process)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        return report(scenarios, predict_p50, frame_p50)


if __name__ == "__main__":
    sys.exit(main())
