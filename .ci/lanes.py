#!/usr/bin/env python3
"""Runs the workspace's test binaries in a few parallel lanes.

`cargo test` runs test binaries one after another. Most of ours finish in well under a
second, but the emulator and local-platform end-to-end suites spend most of their time
waiting (on passes, real child processes, moto) and add up to minutes. This runs the
binaries that `cargo test --no-run --message-format=json` built, longest first, in
LANES concurrent lanes (default 3), each with the working directory and environment
cargo would give it, and prints each binary's whole output as one block when it ends, in
the same shape as cargo's ("     Running <src> (<exe>)" then the harness's lines), so the
summary that .ci/test prints counts the same lines.

usage: lanes.py ARTIFACTS.jsonl [-- HARNESS ARGS]
exit: 0 if every binary passed, 1 otherwise (the failed ones are listed at the end).
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import time

# Seconds each slow binary took in the last cold CI run (.ci/run, 2 cores). Only the
# order matters: the slowest start first so that they overlap with everything else.
EXPECTED = {
    "aws_kill9": 145,
    "conformance_local": 92,
    "local_analysis": 41,
    "aws_operator": 34,
    "aws_models": 22,
    "local_up": 16,
    "aws_election": 30,
    "aws_faults": 30,
}


def binaries(path):
    found = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            if message.get("reason") != "compiler-artifact":
                continue
            executable = message.get("executable")
            if not executable or not message.get("profile", {}).get("test"):
                continue
            target = message["target"]
            found.append(
                {
                    "name": target["name"],
                    "kind": target["kind"][0],
                    "src": target["src_path"],
                    "exe": executable,
                    "manifest": message["manifest_path"],
                    "package": message["package_id"],
                }
            )
    return found


def package_name(manifest):
    # Cargo sets CARGO_PKG_NAME for tests at run time; a few crates read it.
    with open(manifest, encoding="utf-8") as toml:
        in_package = False
        for line in toml:
            stripped = line.strip()
            if stripped.startswith("["):
                in_package = stripped == "[package]"
            elif in_package and stripped.startswith("name"):
                return stripped.split("=", 1)[1].strip().strip('"')
    return ""


def run(binary, harness_args):
    directory = os.path.dirname(binary["manifest"])
    env = dict(os.environ)
    env["CARGO_MANIFEST_DIR"] = directory
    env["CARGO_PKG_NAME"] = package_name(binary["manifest"])
    env.setdefault("CARGO", "cargo")
    started = time.monotonic()
    done = subprocess.run(
        [binary["exe"], *harness_args],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    return done.returncode, done.stdout.decode("utf-8", "replace"), time.monotonic() - started


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    harness_args = sys.argv[3:] if len(sys.argv) > 2 and sys.argv[2] == "--" else []
    lanes = int(os.environ.get("LANES", "3"))
    found = binaries(sys.argv[1])
    if not found:
        print("lanes.py: cargo built no test binary; nothing ran", file=sys.stderr)
        return 1
    found.sort(key=lambda b: -EXPECTED.get(b["name"], 0))
    failed = []
    timings = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=lanes) as pool:
        futures = {pool.submit(run, b, harness_args): b for b in found}
        for future in concurrent.futures.as_completed(futures):
            binary = futures[future]
            code, output, seconds = future.result()
            relative = os.path.relpath(binary["src"], os.path.dirname(binary["manifest"]))
            label = "unittests " + relative if binary["kind"] in ("lib", "bin") else relative
            print(f"     Running {label} ({os.path.relpath(binary['exe'])})", flush=True)
            sys.stdout.write(output)
            if code != 0:
                failed.append(f"{label} ({binary['package'].split('#')[-1]}), exit {code}")
            timings.append((seconds, label))
            sys.stdout.flush()
    print()
    print(f"== {len(found)} test binaries in {lanes} lanes; the slowest:")
    for seconds, label in sorted(timings, reverse=True)[:8]:
        print(f"   {seconds:7.1f} s  {label}")
    if failed:
        print("== failed test binaries:")
        for line in failed:
            print("   " + line)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
