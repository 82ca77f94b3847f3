#!/usr/bin/env python3
"""Every run a document cites must be in the repository.

  .ci/evidence.py check     every `evidence/<run-id>` cited in docs/ (and README.md) exists and holds
                            run.json and report.md; each evidence folder stays under 512 KiB; and a
                            count of citations of uncommitted `results/…` folders, which a reader
                            cannot check (a warning until the documents that cite them are redone)

An evidence folder is small: report.md, summary.json, compare.md where relevant, and run.json
(git commit, build profile, tool versions, CPU model and cores, caps and CPU placement, the command
line, start and end times). No raw k6 output.
"""
import json, os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CITE = re.compile(r"evidence/([0-9]{8}[A-Za-z0-9_.-]*)")
LEGACY = re.compile(r"results/[0-9]{8}-[0-9]{6}")
LIMIT = 512 * 1024


def documents():
    yield os.path.join(ROOT, "README.md")
    for base, _, files in os.walk(os.path.join(ROOT, "docs")):
        for f in files:
            if f.endswith(".md"):
                yield os.path.join(base, f)


def check():
    errors, legacy, cited = [], 0, set()
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
            legacy += len(LEGACY.findall(line))
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
    if legacy:
        print(f"evidence: warning: {legacy} citations of results/… folders that are not committed (to be redone)")
    return not errors


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        raise SystemExit(0 if check() else 1)
    print(__doc__, file=sys.stderr)
    raise SystemExit(2)
