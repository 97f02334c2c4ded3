#!/usr/bin/env python3
"""Where `make test` spent its time (tests/run.sh).

`report-times.py stamp LOG` copies standard input to standard output and to
LOG with each line's time (seconds since start) in front. `report-times.py
report PHASES TIMES LOG...` prints each phase, each test binary (from
cargo's "Running" lines in each LOG: a binary lasts until the next one
starts), and each end-to-end test grouped by module (TIMES: what
`record_time` in tests/e2e/support/mod.rs appends)."""
import re
import sys
import time
from collections import defaultdict


def stamp(log_path):
    start = time.monotonic()
    with open(log_path, "w") as log:
        for line in sys.stdin:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(f"{time.monotonic() - start:.1f}\t{line}")
    with open(log_path, "a") as log:
        log.write(f"{time.monotonic() - start:.1f}\t<end>\n")


def phases(path):
    with open(path) as f:
        return [(n, int(s)) for n, s in (l.rstrip("\n").split("\t") for l in f)]


def binaries(path):
    """(binary, seconds, failed) per test binary, in the order cargo ran them."""
    running = re.compile(r"^\s+(Running|Doc-tests)\s+(.*)$")
    rows, current, since, failed = [], None, 0.0, False
    with open(path, errors="replace") as f:
        for raw in f:
            at, _, line = raw.partition("\t")
            at = float(at)
            m = running.match(line)
            if (m or line.startswith("<end>")) and current:
                rows.append((current, at - since, failed))
                current = None
            if m:
                what = m.group(2).strip()
                if m.group(1) == "Doc-tests":
                    current = f"doc-tests of {what}"
                else:
                    # "tests/e2e/main.rs (target/debug/deps/e2e-0123)" -> source and crate
                    source, _, artifact = what.partition(" (")
                    crate = re.sub(r"-[0-9a-f]+\)?$", "", artifact.rsplit("/", 1)[-1])
                    current = f"{source} ({crate})"
                since, failed = at, False
            elif line.startswith("test result: FAILED") or "error: test failed" in line:
                failed = True
    return rows


def e2e_tests(path):
    longest = {}
    try:
        with open(path) as f:
            for line in f:
                name, secs = line.rstrip("\n").split("\t")
                longest[name] = max(longest.get(name, 0.0), float(secs))
    except FileNotFoundError:
        pass
    return longest


def minutes(secs):
    return f"{int(secs) // 60}m{int(secs) % 60:02d}s"


def report(phases_file, times_file, *log_files):
    print("\n== where the time went ==")
    for name, secs in phases(phases_file):
        print(f"  {minutes(secs):>7}  {name}")
    for log_file in log_files:
        print(f"\n  test binaries of {log_file} (cargo runs them one after another):")
        for name, secs, failed in binaries(log_file):
            print(f"  {minutes(secs):>7}  {name}{'  [FAILED]' if failed else ''}")
    tests = e2e_tests(times_file)
    if tests:
        modules = defaultdict(list)
        for name, secs in tests.items():
            modules[name.split("::")[0]].append(secs)
        print("\n  end-to-end tests (side by side), by module: longest test (number of tests)")
        for module, times in sorted(modules.items(), key=lambda kv: -max(kv[1])):
            print(f"  {minutes(max(times)):>7}  {module} ({len(times)})")
        print("\n  the ten longest end-to-end tests:")
        for name, secs in sorted(tests.items(), key=lambda kv: -kv[1])[:10]:
            print(f"  {minutes(secs):>7}  {name}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["stamp"]:
        stamp(sys.argv[2])
    else:
        report(*sys.argv[2:])
