"""The ``building-energy`` command: each subcommand is a plain function of the package."""

from __future__ import annotations

import argparse
import json
import logging
import reprlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from building_energy.config import ConfigError, get_config
from building_energy.logs import configure_logging
from building_energy.models.learners import LEARNERS

logger = logging.getLogger("building_energy")


def _train(args: argparse.Namespace) -> int:
    from building_energy.models.evaluate import format_metrics
    from building_energy.models.train import train_model
    from building_energy.tracking.record import record_training

    result = train_model(
        data_path=args.data,
        output_dir=args.output,
        profile=args.profile,
        use_energy_star=False if args.no_energy_star else None,
        target=args.target,
    )
    print(format_metrics(result.metrics))
    print(f"model written to {result.model_path} in {result.metadata['training_seconds']} s")
    # Comparison report, plots, MLflow run, registry: each step only warns when it fails.
    for line in record_training(result).summary():
        print(line)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from building_energy.data.schema import DataValidationError
    from building_energy.models.loading import load_model
    from building_energy.models.predict import ERROR_COLUMN, AbsentColumnsError, predict_csv

    model = load_model(args.model)
    try:
        predictions = predict_csv(
            model, args.input, args.output, explain_top=args.explain, allow_absent_columns=args.allow_absent_columns
        )
    except AbsentColumnsError as error:
        raise DataValidationError(f"{error} (--allow-absent-columns)") from error
    failed = int((predictions[ERROR_COLUMN] != "").sum())
    print(f"{len(predictions) - failed} of {len(predictions)} rows scored, {failed} with errors -> {args.output}")
    # A script must see a file of which nothing could be scored, e.g. an export missing every floor area.
    return 1 if failed == len(predictions) else 0


def _evaluate(args: argparse.Namespace) -> int:
    from building_energy.models.evaluate import evaluate_saved_model

    metrics = evaluate_saved_model(args.model, args.data)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def _fetch_data(args: argparse.Namespace) -> int:
    from building_energy.data.io import fetch_data

    config = get_config()
    path = fetch_data(
        destination=args.destination or config.paths.data,
        shared_dir=args.shared or config.paths.shared_data_dir,
        url=config.paths.data_url,
        expected_sha256=config.paths.expected_sha256,
    )
    print(f"data ready: {path}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from building_energy.dashboard.launch import run_dashboard

    return run_dashboard(model_source=args.model, address=args.address, port=args.port)


def _serve(args: argparse.Namespace) -> int:
    from building_energy.api.server import serve

    serve(host=args.host, port=args.port, model_source=args.model, workers=args.workers)
    return 0


def _bench(args: argparse.Namespace) -> int:
    import pandas as pd

    from building_energy.files import check_writable, write_bytes_atomically
    from building_energy.models.bench import format_benchmark, paired_difference, run_benchmark

    if args.output is not None:
        # Checked before the benchmark runs (minutes to hours), not when its results are to be written.
        if args.output.is_dir():
            raise ValueError(f"{args.output}: is a directory; give the per-fold CSV's file name")
        check_writable(args.output)
        args.output.parent.mkdir(parents=True, exist_ok=True)
    seeds = tuple(args.seeds)
    common = {"data_path": args.data, "profile": args.profile, "seeds": seeds, "n_folds": args.folds}
    with_score = run_benchmark(**common, use_energy_star=not args.no_energy_star, target=args.target)
    print(format_benchmark(with_score))
    results = [with_score]
    if args.compare_energy_star:
        without = run_benchmark(**common, use_energy_star=False, target=args.target)
        print(format_benchmark(without))
        results.append(without)
        for metric in ("mape", "r2_log"):
            diff = paired_difference(without, with_score, metric)
            print(
                f"without - with ENERGY STAR, {metric}: {diff['mean']:+.3f} "
                f"(95% CI {diff['low']:+.3f} to {diff['high']:+.3f}, corrected resampled t, "
                f"{int(diff['n'])} paired folds)"
            )
    if args.output:
        folds = pd.concat([result.folds.assign(run=result.label) for result in results], ignore_index=True)
        # Atomic: a crash or a full disk never leaves a truncated file over the last benchmark's.
        write_bytes_atomically(args.output, folds.to_csv(index=False).encode())
        print(f"per-fold results written to {args.output}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from building_energy.models.compare_pipelines import REPORT_JSON, compare_pipelines, format_report

    report = compare_pipelines(args.model, data_path=args.data, output_dir=args.output)
    print(format_report(report))
    print(f"report written to {Path(report['output_dir']) / REPORT_JSON} (and .joblib)")
    return 0 if report["within_tolerance"] and report["reproducibility"]["identical_predictions"] else 1


def _promote(args: argparse.Namespace) -> int:
    from building_energy.tracking.registry import promote_version
    from building_energy.tracking.store import TrackingError

    tracking = get_config().tracking
    try:
        previous = promote_version(args.version, target=args.target)
    except TrackingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    name = tracking.model_name(args.target)
    print(f"{name}@{tracking.champion_alias} is version {args.version} (was {previous or 'none'})")
    return 0


def _ui(args: argparse.Namespace) -> int:
    from building_energy.tracking.store import TrackingError
    from building_energy.tracking.ui import ServerExitedError, run_ui

    try:
        return run_ui(host=args.host, port=args.port)
    except ServerExitedError as error:  # not the user's input: a failure, not exit 2
        print(f"error: {error}", file=sys.stderr)
        return 1
    except TrackingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _tune(args: argparse.Namespace) -> int:
    from building_energy.models.tuning import (
        STACK,
        check_config_destination,
        format_profile,
        interrupt_on_sigterm,
        tune_in_workers,
        write_config_with_profile,
    )

    if args.write_config is not None:
        # Checked before the study runs (minutes to hours), not when its result is to be written.
        if args.learner != STACK:
            raise ValueError("--write-config needs --learner stack: only the stack's study gives a whole profile")
        check_config_destination(args.write_config)
    interrupt_on_sigterm()  # a stopped trial is recorded as interrupted (and run again), not left running
    config = get_config()
    learners = list(LEARNERS) if args.learner == "all" else [args.learner]
    for learner in learners:
        options = {"profile": args.profile} if learner == STACK else {}
        default_trials = config.tuning.stack_trials if learner == STACK else config.tuning.trials
        result = tune_in_workers(
            learner,
            n_trials=args.trials if args.trials is not None else default_trials,
            workers=args.workers,
            first_worker=args.worker_id,
            storage=args.storage,
            study_name=args.study if len(learners) == 1 else None,
            data_path=args.data,
            use_energy_star=not args.no_energy_star,
            target=args.target,
            **options,
        )
        print(
            f"{learner}: study {result.study_name}, {result.n_complete} complete + {result.n_pruned} pruned trials, "
            f"best {result.objective} {result.best_value:.4f} with {result.best_params}"
        )
        if result.best_profile is not None:
            print("as a profile (floats to 3 significant digits), for profiles: in the config:\n")
            print(format_profile(result.best_profile, args.profile))
            if args.write_config is not None:
                written = write_config_with_profile(result.best_profile, args.profile, args.write_config, config)
                print(
                    f"configuration with it written to {written}; train with it: BE_CONFIG={written} "
                    f"building-energy train --profile {args.profile}"
                )
    return 0


def _add_common_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None, help="City CSV (default: config paths.data)")


def _add_tracking_commands(sub: argparse._SubParsersAction) -> None:
    config = get_config()
    compare = sub.add_parser("compare", help="notebook prototype vs package model on the same split, reproducibility")
    compare.add_argument("--model", default=str(config.paths.artifacts / "model.joblib"), help="path or models:/ URI")
    _add_common_data(compare)
    compare.add_argument(
        "--output", type=Path, default=None, help="where the report goes (default: the model file's folder)"
    )
    compare.set_defaults(handler=_compare)

    promote = sub.add_parser("promote", help=f"make a registered version @{config.tracking.champion_alias} (rollback)")
    promote.add_argument("--version", type=int, required=True)
    promote.add_argument("--target", choices=["energy", "ghg"], default="energy", help="whose registered model")
    promote.set_defaults(handler=_promote)

    ui = sub.add_parser("ui", help="the MLflow UI on the project's tracking store")
    ui.add_argument("--host", default=None, help=f"default {config.tracking.ui_host}")
    ui.add_argument("--port", type=_port, default=None, help=f"default {config.tracking.ui_port}")
    ui.set_defaults(handler=_ui)


def build_parser() -> argparse.ArgumentParser:
    config = get_config()
    parser = argparse.ArgumentParser(prog="building-energy", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser("fetch-data", help="copy (checksum verified) or download the City's CSV")
    fetch.add_argument("--destination", type=Path, default=None)
    fetch.add_argument("--shared", type=Path, default=None, help="folder holding the archived copy")
    fetch.set_defaults(handler=_fetch_data)

    train = sub.add_parser("train", help="train, evaluate and save the stacked model")
    _add_common_data(train)
    train.add_argument(
        "--output", type=Path, default=None, help=f"artifacts directory (default {config.paths.artifacts}, or its ghg/)"
    )
    train.add_argument("--profile", choices=sorted(config.profiles), default="full")
    train.add_argument("--no-energy-star", action="store_true", help="train without the ENERGY STAR score")
    train.add_argument("--target", choices=["energy", "ghg"], default=None)
    train.set_defaults(handler=_train)

    predict = sub.add_parser("predict", help="score a CSV of buildings")
    predict.add_argument("--model", required=True, help="model.joblib path or models:/building-energy@champion")
    predict.add_argument("--input", type=Path, required=True)
    predict.add_argument("--output", type=Path, required=True)
    predict.add_argument(
        "--explain", type=_count, default=0, metavar="K", help="add the K top drivers per row (SHAP); 0: none"
    )
    predict.add_argument(
        "--allow-absent-columns",
        action="store_true",
        help="score a file that has no column for some field the model reads (each counts as unknown in every row)",
    )
    predict.set_defaults(handler=_predict)

    evaluate = sub.add_parser("evaluate", help="metrics of a saved model on its test split")
    evaluate.add_argument("--model", default=str(config.paths.artifacts / "model.joblib"))
    _add_common_data(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    bench = sub.add_parser("bench", help="repeated k-fold CV of the training procedure on trusted rows")
    _add_common_data(bench)
    bench.add_argument("--profile", choices=sorted(config.profiles), default="full")
    bench.add_argument("--seeds", type=_seed, nargs="+", default=[42, 43, 44])
    bench.add_argument("--folds", type=_at_least(2), default=config.cv_folds)
    score_arms = bench.add_mutually_exclusive_group()
    score_arms.add_argument("--no-energy-star", action="store_true")
    score_arms.add_argument(
        "--compare-energy-star", action="store_true", help="run with and without the score, paired on the same folds"
    )
    bench.add_argument("--target", choices=["energy", "ghg"], default="energy")
    bench.add_argument("--output", type=Path, default=None, help="also write every fold's figures to this CSV")
    bench.set_defaults(handler=_bench)

    tune = sub.add_parser(
        "tune", help="Optuna search of a learner's or the whole stack's hyperparameters (resumable, multi-worker)"
    )
    _add_common_data(tune)
    tune.add_argument(
        "--learner",
        choices=[*LEARNERS, "all", "stack"],
        default="all",
        help="one learner, each learner in turn (all), or the whole stack scored like the benchmark (stack)",
    )
    tune.add_argument(
        "--trials",
        type=_at_least(1),
        default=None,
        help=f"finished trials wanted (default {config.tuning.trials}, stack {config.tuning.stack_trials})",
    )
    tune.add_argument(
        "--profile", choices=sorted(config.profiles), default="full", help="stack only: the profile it starts from"
    )
    tune.add_argument("--target", choices=["energy", "ghg"], default="energy")
    tune.add_argument("--workers", type=_at_least(1), default=1, help="local worker processes sharing the study")
    tune.add_argument(
        "--worker-id",
        type=_at_least(0),
        default=0,
        help="number of the first worker: give each tune command started by hand on one study its own "
        "(with --workers W, the next one's is at least this one's + W), or they propose the same trials",
    )
    tune.add_argument("--storage", default=None, help="journal file path or RDB URL (default: config tuning.storage)")
    tune.add_argument("--study", default=None, help="study name (default: learner-target-es)")
    tune.add_argument("--no-energy-star", action="store_true")
    tune.add_argument(
        "--write-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --learner stack: write the configuration in force, its --profile replaced by the best trial, "
        "to FILE (for BE_CONFIG)",
    )
    tune.set_defaults(handler=_tune)

    dashboard = sub.add_parser("dashboard", help="serve the Streamlit dashboard (predict, batch, model, data)")
    dashboard.add_argument("--model", default=None, help="model path or models:/ URI (default: config dashboard)")
    dashboard.add_argument("--address", default=None, help=f"default {config.dashboard.address}")
    dashboard.add_argument("--port", type=_port, default=None, help=f"default {config.dashboard.port}")
    dashboard.set_defaults(handler=_dashboard)
    serve = sub.add_parser("serve", help="serve the prediction API (FastAPI under uvicorn)")
    serve.add_argument("--host", default=None, help=f"default {config.api.host}")
    serve.add_argument("--port", type=_port, default=None, help=f"default {config.api.port}")
    serve.add_argument("--model", default=None, help="model path or models:/ URI (default: config api)")
    serve.add_argument("--workers", type=_at_least(1), default=1, help="uvicorn worker processes, each with the model")
    serve.set_defaults(handler=_serve)
    _add_tracking_commands(sub)
    return parser


Handler = Callable[[argparse.Namespace], int]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _count(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    return parse


def _port(text: str) -> int:
    # The OS would take 99999 modulo 65536 and listen on another port than the one logged.
    value = _count(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {value}")
    return value


def _seed(text: str) -> int:
    # NumPy takes a seed up to 2**32 - 1, and says so only after the data has loaded, naming no option.
    value = _count(text)
    if value > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"must be a seed from 0 to {2**32 - 1}, got {value}")
    return value


def describe_config_error(error: ValidationError) -> str:
    """One line per setting that failed (at most five): its dotted key, the reason and the value given."""
    problems = [
        f"{'.'.join(map(str, problem['loc'])) or '<file>'}: {problem['msg']}"
        + ("" if problem["type"] == "missing" else f" (got {reprlib.repr(problem['input'])})")
        for problem in error.errors()
    ]
    more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
    return "; ".join(problems[:5]) + more


def main(argv: Sequence[str] | None = None) -> int:
    # The parser's defaults come from the configuration: a bad setting (BE_CONFIG, BE_<FIELD>) is the user's
    # to fix, even for --help.
    try:
        parser = build_parser()
    except ValidationError as error:
        print(f"error: configuration: {describe_config_error(error)}", file=sys.stderr)
        return 2
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ConfigError as error:
        print(f"error: configuration: {error}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    return _run(args.handler, args)


def _run(handler: Handler, args: argparse.Namespace) -> int:
    """The command's exit code; the user's errors as one line each (the traceback is for --verbose)."""
    from building_energy.data.schema import DataValidationError
    from building_energy.models.artifacts import ModelLoadError, TrainingInProgressError

    try:
        return handler(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (DataValidationError, ModelLoadError, TrainingInProgressError, ValueError) as error:
        # Printed once, below; the traceback is for --verbose.
        logger.debug("%s", error, exc_info=True)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # A missing input, an output folder that cannot be written (permissions, a file where a folder should
        # be, a full disk) is the user's to fix like bad data: one line naming the path, not a traceback.
        paths = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
        message = f"{paths}: {error.strerror}" if paths and error.strerror else str(error)
        logger.debug("%s", message, exc_info=True)
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
