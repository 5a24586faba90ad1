"""Audit the pinned dependencies (requirements.lock) for known vulnerabilities with pip-audit.

Fails on any known vulnerability not listed, with its reason, in ``scripts/pip_audit_ignore.txt``. pip-audit
skips (and passes) a package its vulnerability service cannot answer for; this prints how many were really
audited, and ``--strict`` makes a package that could not be audited a failure too.

    python scripts/audit_deps.py [--strict] [--lock requirements.lock]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORE_FILE = Path(__file__).with_name("pip_audit_ignore.txt")
PIP_AUDIT_FOUND_VULNERABILITIES = 1


def ignored_ids(path: Path = IGNORE_FILE) -> dict[str, str]:
    """``ID  # reason`` per line; an entry without a reason is refused, so every exception is explained."""
    ignored: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        vuln_id, _, reason = line.partition("#")
        if not reason.strip():
            raise SystemExit(f"{path}:{number}: {vuln_id.strip()} is ignored without a reason")
        ignored[vuln_id.strip()] = reason.strip()
    return ignored


def run_pip_audit(lock: Path, ignored: dict[str, str], timeout: float) -> tuple[int, dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "audit.json"
        command = [
            str(Path(sys.executable).parent / "pip-audit"),
            "--requirement",
            str(lock),
            # The lock pins every package: audit exactly those, without resolving or installing anything.
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--format",
            "json",
            "--output",
            str(report),
        ]
        for vuln_id in ignored:
            command += ["--ignore-vuln", vuln_id]
        # The argv is fixed: this venv's pip-audit on our own lock file.
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
        if completed.returncode not in (0, PIP_AUDIT_FOUND_VULNERABILITIES) or not report.is_file():
            sys.stderr.write(completed.stderr)
            raise SystemExit(f"pip-audit failed (exit {completed.returncode})")
        return completed.returncode, json.loads(report.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--strict", action="store_true", help="fail when a package could not be audited")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds pip-audit may take")
    args = parser.parse_args(argv)

    ignored = ignored_ids()
    _, report = run_pip_audit(args.lock, ignored, args.timeout)
    dependencies: list[dict[str, object]] = report["dependencies"]  # type: ignore[assignment]
    skipped = [d for d in dependencies if "skip_reason" in d]
    audited = [d for d in dependencies if "skip_reason" not in d]
    found = [(d["name"], d["version"], v) for d in audited for v in d.get("vulns", [])]  # type: ignore[attr-defined]

    for name, version, vuln in found:
        fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed release"
        print(f"VULNERABLE {name}=={version}: {vuln['id']} (fixed in: {fixes})")
    for vuln_id, reason in ignored.items():
        print(f"ignored {vuln_id}: {reason}")
    print(
        f"pip-audit: {len(dependencies)} pinned packages, {len(audited)} audited, {len(skipped)} could not be "
        f"audited, {len(found)} known vulnerabilities ({len(ignored)} ignored with a reason)"
    )
    if skipped:
        reasons = sorted({str(d["skip_reason"]).split(":")[0] for d in skipped})
        print(f"WARNING: not audited: {len(skipped)} packages ({'; '.join(reasons)})")
    if found:
        return 1
    if skipped and args.strict:
        print("--strict: a package that could not be audited fails the audit")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
