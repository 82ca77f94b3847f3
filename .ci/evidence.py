#!/usr/bin/env python3
"""Every run a document cites must be in the repository.

  .ci/evidence.py check     every `evidence/<run-id>` cited in docs/ (and README.md) exists and holds
                            run.json and report.md; each evidence folder stays under 512 KiB; and no
                            line cites an uncommitted run folder unless it is marked historical

Uncommitted run folders. `boxoffice-load` writes `results/<YYYYMMDD-HHMMSS>-<label>/`, which is
git-ignored, so a reader cannot check a figure taken from one. The check fails on every line of
docs/**/*.md and README.md that names such a folder, written `results/20261121-222403-queue-burst`
or bare `20261121-222403-queue-burst`, unless the same line carries the marker

    (historical, uncommitted)

which says in the text itself that the figure was measured on an earlier build and cannot be
checked. Keep such lines few (at most MAX_HISTORICAL in all; the runs of 2026-11-21/22 are listed
once, in docs/evidence.md, "Historical runs"); redo the run with evidence instead of raising it.
Paths like `/tmp/compose-drill-20261202-010654` (inside a command) are not citations.

An evidence folder is small: report.md, summary.json, compare.md where relevant, and run.json
(git commit, build profile, tool versions, CPU model and cores, caps and CPU placement, the command
line, start and end times). No raw k6 output.
"""
import json, os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CITE = re.compile(r"evidence/([0-9]{8}[A-Za-z0-9_.-]*)")
# results/<date>-<time>…, or a bare <date>-<time>-label not inside a longer path or word
LEGACY = re.compile(r"(?:results/|(?<![\w/.-]))[0-9]{8}-[0-9]{6}(?![0-9])")
HISTORICAL = "(historical, uncommitted)"
MAX_HISTORICAL = 12
LIMIT = 512 * 1024


def documents():
    yield os.path.join(ROOT, "README.md")
    for base, _, files in os.walk(os.path.join(ROOT, "docs")):
        for f in files:
            if f.endswith(".md"):
                yield os.path.join(base, f)


def check():
    errors, historical, cited = [], [], set()
    for path in documents():
        rel = os.path.relpath(path, ROOT)
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            for run in CITE.findall(line):
                run = run.rstrip(".")
                cited.add(run)
                folder = os.path.join(ROOT, "evidence", run)
                if not os.path.isdir(folder):
                    errors.append(f"{rel}:{n}: cites evidence/{run}, which is not in the repository")
                    continue
                for need in ("run.json", "report.md"):
                    if not os.path.isfile(os.path.join(folder, need)):
                        errors.append(f"{rel}:{n}: evidence/{run} has no {need}")
            if LEGACY.search(line):
                if HISTORICAL in line:
                    historical.append(f"{rel}:{n}")
                else:
                    errors.append(f"{rel}:{n}: cites an uncommitted run folder ({LEGACY.search(line).group(0)}…); "
                                  f"point it at evidence/<run-id>, or mark the line {HISTORICAL!r}")
    if len(historical) > MAX_HISTORICAL:
        errors.append(f"{len(historical)} lines cite uncommitted runs as historical (at most {MAX_HISTORICAL}): "
                      + ", ".join(historical))
    for run in sorted(os.listdir(os.path.join(ROOT, "evidence"))) if os.path.isdir(os.path.join(ROOT, "evidence")) else []:
        folder = os.path.join(ROOT, "evidence", run)
        if not os.path.isdir(folder):
            continue
        size = sum(os.path.getsize(os.path.join(b, f)) for b, _, fs in os.walk(folder) for f in fs)
        if size > LIMIT:
            errors.append(f"evidence/{run} is {size // 1024} KiB; keep evidence under {LIMIT // 1024} KiB (no raw output)")
        try:
            meta = json.load(open(os.path.join(folder, "run.json")))
            for key in ("commit", "command"):
                if key not in meta:
                    errors.append(f"evidence/{run}/run.json has no {key!r}")
        except (OSError, ValueError) as e:
            errors.append(f"evidence/{run}/run.json: {e}")
    for e in errors:
        print(f"evidence: {e}", file=sys.stderr)
    print(f"evidence: {len(cited)} runs cited, all present" if not errors else f"evidence: {len(errors)} problems")
    if historical:
        print(f"evidence: {len(historical)} lines cite uncommitted runs, marked {HISTORICAL} (at most {MAX_HISTORICAL})")
    return not errors


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        raise SystemExit(0 if check() else 1)
    print(__doc__, file=sys.stderr)
    raise SystemExit(2)
