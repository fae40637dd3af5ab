#!/usr/bin/env python3
"""Every build `make test` runs compiles each dependency once.

`cargo test --workspace` resolves one set of features per crate. The builds
after it -- `sam build` (cargo lambda, one function at a time), `make local`
(the CLI and the functions, then `cargo lambda watch`, a function at a time),
and make lint's second clippy (the CLI without AWS, as `make demo` builds it)
-- select fewer packages, and cargo resolves features for what they select:
a crate that ends up with fewer features there is compiled again, and with
it every crate above it (the AWS SDK, minutes on CI's two cores). This check
holds each of those selections to the workspace's features, crate by crate.

A feature only a test enables (a dev-dependency's) is enabled for the
functions too in shared/aws/Cargo.toml's "one build" section, which is what
to edit when this fails. Usage: tests/one_build.py [--self-test]"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def resolved(args):
    """{crate@version: features} as cargo resolves them for `args`."""
    out = subprocess.run(
        ["cargo", "tree", "--prefix", "none", "-f", "{p}|{f}", *args],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return parse(out)


def parse(text):
    crates = {}
    for line in text.splitlines():
        if "|" not in line:
            continue
        package, features = line.rsplit("|", 1)
        words = package.replace(" (*)", "").replace(" (proc-macro)", "").split()
        name = "@".join(words[:2])
        crates[name] = frozenset(f for f in features.replace(" (*)", "").split(",") if f)
    return crates


def differences(workspace, selection):
    """Crates the selection builds with other features than the workspace does."""
    return {
        name: (sorted(workspace[name] - features), sorted(features - workspace[name]))
        for name, features in selection.items()
        if name in workspace and workspace[name] != features
    }


def workspace_packages():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout)
    return meta["packages"]


def selections():
    """What each later build selects, as `cargo tree` arguments."""
    packages = workspace_packages()
    functions = [p["name"] for p in packages if p["manifest_path"].startswith(os.path.join(ROOT, "functions") + os.sep)]
    chosen = {f"the {name} function (sam build, cargo lambda watch)": ["-p", name, "-e", "normal,build"] for name in functions}
    local = ["milepost-cli", "ingest", "outreach", "csm-task", "escalate", "actions"]
    chosen["make local's build"] = [a for name in local for a in ("-p", name)] + ["-e", "normal,build"]
    chosen["make lint's check of the CLI without AWS (make demo's build)"] = ["-p", "milepost-cli", "--no-default-features"]
    # An example is built with its package's dev-dependencies.
    chosen["make local's tracking server (an example of ingest)"] = ["-p", "ingest"]
    return chosen


def self_test():
    tree = "serde v1.0.1|default,std\nhyper v1.2.0|client (*)\nquote v1.0.0 (proc-macro)|\nmilepost-domain v0.1.0 (/x/shared/domain)|\n"
    parsed = parse(tree)
    assert parsed == {
        "serde@v1.0.1": {"default", "std"},
        "hyper@v1.2.0": {"client"},
        "quote@v1.0.0": frozenset(),
        "milepost-domain@v0.1.0": frozenset(),
    }, parsed
    workspace = {"a@1": frozenset({"x", "y"}), "b@1": frozenset(), "c@1": frozenset({"z"})}
    assert differences(workspace, {"a@1": frozenset({"x"}), "b@1": frozenset(), "d@1": frozenset()}) == {
        "a@1": (["y"], [])
    }
    assert differences(workspace, {"c@1": frozenset({"z"})}) == {}
    print("one_build self-test: ok")


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    workspace = resolved(["--workspace"])
    failed = False
    for what, args in selections().items():
        for name, (missing, extra) in sorted(differences(workspace, resolved(args)).items()):
            if name.startswith("milepost-cli@") and "--no-default-features" in args:
                continue  # the selection's point: the CLI itself without its AWS feature
            failed = True
            detail = ", ".join(
                part for part in (
                    missing and f"without {', '.join(missing)}",
                    extra and f"with {', '.join(extra)}",
                ) if part
            )
            print(f"FAIL: {what} compiles {name} {detail} (cargo test --workspace does not)")
    if failed:
        print("Enable the features above in shared/aws/Cargo.toml's \"one build\" section "
              "(cli/Cargo.toml's for the CLI without AWS).", file=sys.stderr)
        sys.exit(1)
    print(f"one build: {len(selections())} later builds resolve every crate's features as cargo test does")


if __name__ == "__main__":
    main()
