#!/usr/bin/env python3
"""Counts the public items of the crate (src/) that have a documented example.

An item is a `pub` fn, struct, enum, trait or type, a method of a `pub trait`, or a public
module (its `//!` docs); constants and statics are not counted; `pub(crate)` and the like, `#[doc(hidden)]` and
`#[deprecated]` items and test modules are not counted. It has an example when its doc comment
holds a code block (a "```" fence): rustdoc compiles those as doctests.

Usage: python3 scripts/doc-examples.py [--min-percent N]   (exit 1 below N percent)
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

ITEM = re.compile(
    r"^\s*pub\s+(?:(?:const|async|unsafe|extern\s+\"C\")\s+)*(fn|struct|enum|trait|type|const|static|mod)\s+([A-Za-z_][A-Za-z0-9_]*)"
)
TRAIT_FN = re.compile(r"^\s*(?:async\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)")


def module_of(path: Path) -> str:
    parts = list(path.relative_to("src").with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return "::".join(parts) or "(crate root)"


MOD_DECL = re.compile(r"^\s*(pub\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;")


def declared_modules():
    """Module path -> (public, hidden), from the `mod x;` declarations."""
    found = {"(crate root)": (True, False)}
    for path in Path("src").rglob("*.rs"):
        parent = module_of(path)
        attrs = []
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith("#["):
                attrs.append(stripped)
                continue
            m = MOD_DECL.match(line)
            if m:
                name = m.group(2) if parent == "(crate root)" else f"{parent}::{m.group(2)}"
                hidden = any("doc(hidden)" in a or a.startswith("#[deprecated") for a in attrs)
                found[name] = (bool(m.group(1)), hidden)
            if not stripped.startswith("//"):
                attrs = []
    return found


def scan(path: Path, counts, modules):
    lines = path.read_text().splitlines()
    module = module_of(path)
    public, hidden = modules.get(module, (False, False))
    if hidden:
        return
    # A public module's own `//!` docs are its documentation.
    inner = [l for l in lines if l.lstrip().startswith("//!")]
    if inner and public:
        counts[module].append((f"mod {module}", any("```" in l for l in inner)))
    docs, attrs = [], []
    depth = 0
    skip_depth = None  # inside #[cfg(test)] or a hidden item's body
    trait_depth = None  # inside a pub trait's body
    pending_skip = False
    open_attr = None  # an attribute spanning lines, until its brackets close
    for line in lines:
        stripped = line.strip()
        opens, closes = line.count("{"), line.count("}")
        if skip_depth is not None:
            depth += opens - closes
            if depth <= skip_depth:
                skip_depth = None
            continue
        if open_attr is not None:
            open_attr += " " + stripped
            if open_attr.count("[") <= open_attr.count("]"):
                attrs.append(open_attr)
                open_attr = None
            continue
        if stripped.startswith("///"):
            docs.append(stripped)
        elif stripped.startswith("#["):
            if stripped.count("[") > stripped.count("]"):
                open_attr = stripped
                continue
            attrs.append(stripped)
            if stripped.startswith("#[cfg(test)]"):
                pending_skip = True
        elif stripped == "" or stripped.startswith("//"):
            pass
        else:
            hidden = any("doc(hidden)" in a or a.startswith("#[deprecated") for a in attrs)
            m = ITEM.match(line)
            t = TRAIT_FN.match(line) if trait_depth is not None and depth == trait_depth + 1 else None
            if pending_skip or (hidden and opens > closes):
                if opens > closes:
                    skip_depth = depth
                    depth += opens - closes
                    docs, attrs, pending_skip = [], [], False
                    continue
            elif m and not hidden:
                kind, name = m.groups()
                # Constants and statics are values, documented by their line; a `mod x;`
                # is counted from its file.
                if kind not in ("const", "static") and not (
                    kind == "mod" and stripped.endswith(";")
                ):
                    counts[module].append((f"{kind} {name}", any("```" in d for d in docs)))
                if kind == "trait":
                    trait_depth = depth
            elif t and not hidden:
                counts[module].append((f"fn {t.group(1)} (trait)", any("```" in d for d in docs)))
            docs, attrs, pending_skip = [], [], False
        depth += opens - closes
        if trait_depth is not None and depth <= trait_depth:
            trait_depth = None


def main():
    minimum = None
    if "--min-percent" in sys.argv:
        minimum = float(sys.argv[sys.argv.index("--min-percent") + 1])
    counts = defaultdict(list)
    modules = declared_modules()
    for path in sorted(Path("src").rglob("*.rs")):
        scan(path, counts, modules)
    total = with_example = 0
    print(f"{'module':<28} {'items':>5} {'with example':>12}")
    for module in sorted(counts):
        items = counts[module]
        n, e = len(items), sum(1 for _, ex in items if ex)
        total, with_example = total + n, with_example + e
        print(f"{module:<28} {n:>5} {e:>12}")
    percent = 100.0 * with_example / total if total else 100.0
    print(f"{'total':<28} {total:>5} {with_example:>12}  ({percent:.0f}%)")
    if "--missing" in sys.argv:
        for module in sorted(counts):
            for name, ex in counts[module]:
                if not ex:
                    print(f"  missing: {module}: {name}")
    if minimum is not None and percent < minimum:
        sys.exit(1)


if __name__ == "__main__":
    main()
