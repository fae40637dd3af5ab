#!/usr/bin/env python3
"""The code's layers, checked: `make test` runs this.

1. The domain crate's dependency tree holds no AWS SDK, async runtime,
   Lambda runtime or template engine; the application crate's holds no AWS
   SDK or Lambda runtime; no Lambda function links the embedded adapters or
   the emulator helpers (`cargo tree`, normal dependencies, all features).
2. No crate's top-level modules import each other in a cycle: for each crate,
   an edge X -> Y for every `crate::Y` (or `super::Y` in a top-level file)
   written in module X, names re-exported by the crate root resolved to their
   module; any strongly connected set of more than one module fails.

`--self-test` shows both checks catching what they look for.
"""

import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FORBIDDEN = {
    "milepost-domain": re.compile(r"^(aws-|aws_|tokio|lambda_|lambda-|askama)"),
    "milepost-app": re.compile(r"^(aws-|aws_|lambda_|lambda-)"),
}
# What a deployed function links: neither the demo's adapters nor the emulator's helpers.
for function in ("ingest", "sweep", "outreach", "csm-task", "escalate", "actions", "leadership-digest", "ses-events"):
    FORBIDDEN[function] = re.compile(r"^milepost-(embedded|local)\b")


def dependency_problems(tree_of):
    problems = []
    for crate, pattern in FORBIDDEN.items():
        names = sorted({line.split(" ")[0] for line in tree_of(crate).splitlines() if line.strip()})
        bad = [n for n in names if pattern.match(n)]
        if bad:
            problems.append(f"{crate} depends on {', '.join(bad)}")
    return problems


def cargo_tree(crate):
    out = subprocess.run(
        ["cargo", "tree", "-p", crate, "--all-features", "-e", "normal,build", "--prefix", "none", "--format", "{p}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def split_top(text):
    """`a::b, {c, d}, e` -> ['a::b', '{c, d}', 'e'] (commas at brace depth 0)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def first_names(path_text):
    """The first segment of each path in `crate::<path_text>`."""
    path_text = path_text.strip()
    if path_text.startswith("{"):
        names = []
        for part in split_top(path_text[1:-1]):
            names.extend(first_names(part))
        return names
    m = re.match(r"(\w+)", path_text)
    return [m.group(1)] if m else []


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def crate_root(src):
    for name in ("lib.rs", "main.rs"):
        path = os.path.join(src, name)
        if os.path.exists(path):
            return path
    return None


def module_graph(src):
    """{module: set(modules it imports)} for the top-level modules of the crate under `src`."""
    root = crate_root(src)
    if root is None:
        return {}
    root_text = strip_comments(open(root).read())
    modules = re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", root_text, flags=re.M)
    # Names the root re-exports, by the module they come from: `pub use x::{A, B}`.
    exported = {}
    for m in re.finditer(r"pub use (\w+)::([^;]+);", root_text):
        module, rest = m.group(1), m.group(2).strip()
        names = split_top(rest[1:-1]) if rest.startswith("{") else [rest]
        for n in names:
            exported[n.split("::")[-1].split(" as ")[-1].strip()] = module
    graph = {}
    for module in modules:
        files = []
        single = os.path.join(src, module + ".rs")
        folder = os.path.join(src, module)
        if os.path.exists(single):
            files.append((single, True))
        if os.path.isdir(folder):
            for dirpath, _, names in os.walk(folder):
                for n in names:
                    if n.endswith(".rs"):
                        path = os.path.join(dirpath, n)
                        top = os.path.relpath(path, src) == os.path.join(module, "mod.rs")
                        files.append((path, top))
        edges = set()
        for path, top_level in files:
            text = strip_comments(open(path).read())
            refs = re.findall(r"\bcrate::(\{[^;]*?\}|\w+)", text)
            if top_level:
                refs += re.findall(r"\bsuper::(\{[^;]*?\}|\w+)", text)
            for ref in refs:
                for name in first_names(ref):
                    target = name if name in modules else exported.get(name)
                    if target and target != module:
                        edges.add(target)
        graph[module] = edges
    return graph


def cycles(graph):
    """Strongly connected sets of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def crate_sources():
    for base in ("shared", "functions"):
        for name in sorted(os.listdir(os.path.join(ROOT, base))):
            src = os.path.join(ROOT, base, name, "src")
            if os.path.isdir(src):
                yield os.path.relpath(src, ROOT), src
    yield "cli/src", os.path.join(ROOT, "cli", "src")


def cycle_problems(sources):
    problems = []
    for label, src in sources:
        for scc in cycles(module_graph(src)):
            problems.append(f"{label}: modules import each other in a cycle: {' <-> '.join(scc)}")
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        os.makedirs(os.path.join(src, "b"))
        open(os.path.join(src, "lib.rs"), "w").write("pub mod a;\npub mod b;\npub mod c;\npub use c::Thing;\n")
        open(os.path.join(src, "a.rs"), "w").write("use crate::b::X;\n")
        open(os.path.join(src, "b", "mod.rs"), "w").write("mod inner;\n")
        open(os.path.join(src, "b", "inner.rs"), "w").write("use crate::{Thing, a::Y};\n")
        open(os.path.join(src, "c.rs"), "w").write("// use crate::a;\npub struct Thing;\n")
        found = cycle_problems([("self-test", src)])
        assert found == ["self-test: modules import each other in a cycle: a <-> b"], found
        open(os.path.join(src, "c.rs"), "w").write("use super::a::Y;\npub struct Thing;\n")
        open(os.path.join(src, "a.rs"), "w").write("use crate::c::Thing;\n")
        found = cycle_problems([("self-test", src)])
        assert found == ["self-test: modules import each other in a cycle: a <-> c"], found
    trees = {
        "milepost-domain": "serde v1\ntokio v1\n",
        "milepost-app": "aws-sdk-dynamodb v1\ntokio v1\n",
        "sweep": "milepost-app v0.1.0\nmilepost-local v0.1.0 (/x)\n",
    }
    found = dependency_problems(lambda crate: trees.get(crate, "milepost-aws v0.1.0\n"))
    assert found == [
        "milepost-domain depends on tokio",
        "milepost-app depends on aws-sdk-dynamodb",
        "sweep depends on milepost-local",
    ], found
    print("layers self-test: a module cycle and forbidden dependencies are caught")


def main():
    if "--self-test" in sys.argv:
        self_test()
        return 0
    problems = dependency_problems(cargo_tree) + cycle_problems(crate_sources())
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"layers: {', '.join(FORBIDDEN)} free of what they must not depend on; no module cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
