#!/usr/bin/env python3
"""Every link between the project's documents leads somewhere: `make test`
runs this. For README.md, ARCHITECTURE.md, docs/*.md and tests/README.md,
each relative link's file exists and each `#anchor` (in the same document
or another) is a heading there, under GitHub's rules for heading anchors.
Web links are not fetched (CI has no network to spare).

`--self-test` shows a dead file, a dead anchor and a good link told apart.
"""

import glob
import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def documents(root):
    paths = ["README.md", "ARCHITECTURE.md", "tests/README.md"] + sorted(
        os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "docs", "*.md")))
    return [p for p in paths if os.path.exists(os.path.join(root, p))]


def without_code(text):
    """The text without fenced blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(text):
    """The anchors GitHub gives the headings of `text` (duplicates numbered)."""
    seen, out = {}, set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S), re.M):
        slug = heading.strip().lower()
        slug = re.sub(r"[^\w\- ]", "", slug).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def problems(root):
    found = []
    texts = {p: open(os.path.join(root, p), encoding="utf-8").read() for p in documents(root)}
    for path, text in texts.items():
        for target in LINK.findall(without_code(text)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            full = os.path.join(root, linked)
            if not os.path.exists(full):
                found.append(f"{path}: link to {target}: {linked} does not exist")
                continue
            if anchor:
                if not linked.endswith(".md"):
                    continue
                heads = anchors(texts.get(linked) or open(full, encoding="utf-8").read())
                if anchor not in heads:
                    found.append(f"{path}: link to {target}: no heading #{anchor} in {linked}")
    return found, sum(len(LINK.findall(without_code(t))) for t in texts.values()), len(texts)


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "docs"))
        open(os.path.join(tmp, "README.md"), "w").write(
            "# Milepost\n## Deploy to AWS\nSee [deploy](#deploy-to-aws), [maps](docs/maps.md#writing-a-map), "
            "[gone](docs/gone.md), [typo](#deploy-to-aws-), [web](https://example.com), `[not](a link)`.\n")
        open(os.path.join(tmp, "docs", "maps.md"), "w").write(
            "# Maps\n## Writing a map\nBack to [the start](../README.md#milepost), [nowhere](../README.md#nowhere).\n")
        found, links, docs = problems(tmp)
        assert found == [
            "README.md: link to docs/gone.md: docs/gone.md does not exist",
            "README.md: link to #deploy-to-aws-: no heading #deploy-to-aws- in README.md",
            "docs/maps.md: link to ../README.md#nowhere: no heading #nowhere in README.md",
        ], found
        assert (links, docs) == (7, 2), (links, docs)
    assert anchors("## Is it working? The control group and `milepost report`\n") == {
        "is-it-working-the-control-group-and-milepost-report"}
    print("doc links self-test: a missing file and missing anchors are caught, good links pass")


def main():
    if "--self-test" in sys.argv:
        self_test()
        return 0
    found, links, docs = problems(ROOT)
    for p in found:
        print(p, file=sys.stderr)
    if found:
        return 1
    print(f"doc links: {links} links in {docs} documents, every file and anchor found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
