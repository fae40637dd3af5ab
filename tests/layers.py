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

3. ARCHITECTURE.md stays true: every path, crate and `Type::function` (or
   `module::item`) it names in backticks exists, and every crate depends
   (normal and build dependencies) only on the workspace crates its table
   "Allowed dependencies" lists.

`--self-test` shows each check catching what it looks for.
"""

import json

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
for function in ("ingest", "sweep", "outreach", "csm-task", "escalate", "actions", "leadership-digest", "ses-events", "console", "integrations"):
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


ARCHITECTURE = os.path.join(ROOT, "ARCHITECTURE.md")
# A span naming a file or folder: a word with a slash or a file extension.
PATH_SPAN = re.compile(r"^[\w.-]+(/[\w.-]*)*$")
EXTENSIONS = ("rs", "md", "yaml", "yml", "json", "py", "toml", "sh", "mjs", "pem", "txt", "html")
ITEM_SPAN = re.compile(r"^(?:[A-Za-z_]\w*::)+[A-Za-z_]\w*(?:\(\))?$")
CRATE_SPAN = re.compile(r"^milepost-[a-z-]+$")
# A code name alone: snake_case with an underscore, or CamelCase.
CODE_NAME = re.compile(r"^(?:[a-z]\w*_\w+|[A-Z][a-z0-9]+[A-Z]\w*)$")
DEFINES = r"\b(?:fn|struct|enum|trait|type|const|static|mod)\s+{}\b"


def backtick_spans(text):
    """The inline code spans of a markdown text, fenced blocks left out."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.findall(r"`([^`\n]+)`", text.replace("`\n", "` ").replace("\n", " "))


class Tree:
    """The repository's tracked files and Rust sources, for the document check."""

    def __init__(self, root, files):
        self.root = root
        self.files = files
        self.dirs = {os.path.dirname(f) for f in files}
        for d in list(self.dirs):
            while d:
                d = os.path.dirname(d)
                self.dirs.add(d)
        self.sources = {f: open(os.path.join(root, f), encoding="utf-8", errors="replace").read()
                        for f in files if f.endswith(".rs")}
        # Every text a code name may live in: sources, templates, maps, the state machine, scripts.
        self.texts = "\n".join(
            open(os.path.join(root, f), encoding="utf-8", errors="replace").read()
            for f in files if f.endswith((".rs", ".yaml", ".json", ".html", ".txt", ".toml", ".py", ".sh", ".mjs")))

    def has_word(self, word):
        return re.search(rf"\b{re.escape(word)}\b", self.texts) is not None

    def has_path(self, span):
        span = span.rstrip("/")
        for p in self.files | self.dirs:
            if p == span or p.endswith("/" + span):
                return True
        return False

    def defined(self, name):
        pattern = re.compile(DEFINES.format(re.escape(name)))
        return any(pattern.search(t) for t in self.sources.values())

    def files_defining(self, type_name):
        pattern = re.compile(r"\b(?:struct|enum|trait|type)\s+{}\b".format(re.escape(type_name)))
        return [f for f, t in self.sources.items() if pattern.search(t)]

    def has_item(self, span):
        parts = span.removesuffix("()").split("::")
        name, owners = parts[-1], parts[:-1]
        owner = owners[-1]
        if owner[0].isupper():
            defining = self.files_defining(owner)
            if not defining:
                return False
            return self.defined(name) or any(re.search(rf"\b{re.escape(name)}\b", self.sources[f]) for f in defining)
        for module in owners:
            if module in ("crate", "super", "self", "std") or module.startswith("milepost_"):
                continue
            if not (self.has_path(module + ".rs") or self.has_path(module) or self.defined(module)):
                return False
        return self.defined(name) or self.has_path(name + ".rs") or self.has_path(name)


def tracked_files(root):
    out = subprocess.run(["git", "ls-files"], cwd=root, check=True, capture_output=True, text=True).stdout
    return set(out.split())


def allowed_dependencies(text):
    """{crate: set(workspace crates it may depend on)} from the "Allowed dependencies" table."""
    section = text.split("## Allowed dependencies", 1)
    if len(section) < 2:
        return None
    allowed = {}
    for row in re.findall(r"^\|(.+)\|\s*$", section[1].split("\n## ", 1)[0], flags=re.M):
        cells = [c.strip() for c in row.split("|")]
        if len(cells) < 2 or set(cells[0]) <= set("-: "):
            continue
        crates = re.findall(r"`([^`]+)`", cells[0])
        if not crates:
            continue
        allowed[crates[0]] = set(re.findall(r"`([^`]+)`", cells[1]))
    return allowed


def document_problems(text, tree, packages):
    """What ARCHITECTURE.md names that does not exist, and crate edges it does not allow.
    `packages`: {name: (manifest folder relative to the root, set of workspace crates it depends on)}."""
    problems = []
    # Names of a tag (the `milepost-send` tag) look like crates but are not.
    crates_named = set(backtick_spans(re.sub(r"`[^`]+` tag", "tag", text)))
    for span in sorted(set(backtick_spans(text))):
        if CRATE_SPAN.match(span) and span in crates_named:
            if span not in packages:
                problems.append(f"ARCHITECTURE.md names crate `{span}`, which is not in the workspace")
        elif ITEM_SPAN.match(span):
            if not tree.has_item(span):
                problems.append(f"ARCHITECTURE.md names `{span}`, which the code does not define")
        elif CRATE_SPAN.match(span):
            continue
        elif CODE_NAME.match(span):
            if not tree.has_word(span):
                problems.append(f"ARCHITECTURE.md names `{span}`, which appears nowhere in the code")
        elif PATH_SPAN.match(span) and not span.startswith((".", "target/")) and (
                "/" in span.rstrip("/") or span.endswith("/") or span.rsplit(".", 1)[-1] in EXTENSIONS and "." in span):
            if not tree.has_path(span):
                problems.append(f"ARCHITECTURE.md names path `{span}`, which does not exist")
    allowed = allowed_dependencies(text)
    if allowed is None:
        return problems + ["ARCHITECTURE.md has no \"## Allowed dependencies\" table"]
    for name, (folder, deps) in sorted(packages.items()):
        rule = allowed.get(name)
        if rule is None and folder.startswith("functions/"):
            rule = allowed.get("functions/*")
        if rule is None:
            problems.append(f"ARCHITECTURE.md's allowed dependencies do not list crate `{name}`")
            continue
        for dep in sorted(deps - rule):
            problems.append(f"{name} depends on {dep}, which ARCHITECTURE.md's allowed dependencies do not allow")
    return problems


def workspace_packages(root):
    meta = json.loads(subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"], cwd=root,
                                     check=True, capture_output=True, text=True).stdout)
    names = {p["name"] for p in meta["packages"]}
    packages = {}
    for p in meta["packages"]:
        folder = os.path.relpath(os.path.dirname(p["manifest_path"]), root)
        deps = {d["name"] for d in p["dependencies"] if d["name"] in names and d["kind"] in (None, "build")}
        packages[p["name"]] = (folder, deps)
    return packages


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
    # The document check: a renamed path, a removed function and a forbidden crate edge.
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "shared", "app", "src"))
        open(os.path.join(tmp, "shared", "app", "src", "sweep.rs"), "w").write(
            "pub struct Sweeper;\nimpl Sweeper { pub fn sweep(&self) {} }\npub fn claim() {}\n")
        tree = Tree(tmp, {"shared/app/src/sweep.rs"})
        doc = ("`shared/app/src/sweep.rs` has `Sweeper::sweep` and `sending::claim`, in `milepost-app`; "
               "`sweep.rs` again, `ingest/wire/`, `Sweeper::run`, `Gone::sweep`, `milepost-gone`, "
               "`claim`, `OldSweeper`, `old_claim`.\n"
               "## Allowed dependencies\n| crate | may depend on |\n|---|---|\n"
               "| `milepost-domain` | |\n| `milepost-app` | `milepost-domain` |\n| `functions/*` | `milepost-app` |\n")
        packages = {"milepost-domain": ("shared/domain", set()), "milepost-app": ("shared/app", {"milepost-domain"}),
                    "sweep": ("functions/sweep", {"milepost-app", "milepost-embedded"})}
        found = document_problems(doc, tree, packages)
        assert found == [
            "ARCHITECTURE.md names `Gone::sweep`, which the code does not define",
            "ARCHITECTURE.md names `OldSweeper`, which appears nowhere in the code",
            "ARCHITECTURE.md names `Sweeper::run`, which the code does not define",
            "ARCHITECTURE.md names path `ingest/wire/`, which does not exist",
            "ARCHITECTURE.md names crate `milepost-gone`, which is not in the workspace",
            "ARCHITECTURE.md names `old_claim`, which appears nowhere in the code",
            "ARCHITECTURE.md names `sending::claim`, which the code does not define",
            "sweep depends on milepost-embedded, which ARCHITECTURE.md's allowed dependencies do not allow",
        ], found
    print("layers self-test: a module cycle, forbidden dependencies, a stale name in ARCHITECTURE.md "
          "and a crate edge it does not allow are caught")


def main():
    if "--self-test" in sys.argv:
        self_test()
        return 0
    problems = dependency_problems(cargo_tree) + cycle_problems(crate_sources())
    problems += document_problems(open(ARCHITECTURE, encoding="utf-8").read(), Tree(ROOT, tracked_files(ROOT)),
                                  workspace_packages(ROOT))
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"layers: {', '.join(FORBIDDEN)} free of what they must not depend on; no module cycles; "
          "ARCHITECTURE.md's names exist and its allowed dependencies hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
