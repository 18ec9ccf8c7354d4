#!/usr/bin/env python3
"""The crate's import graph, file by file, and its cycles.

Every `crate::`, `super::` and `self::` path in a file of src/ is an edge from that file to the
file that defines what the path names (a `pub use` re-export is followed to the file it comes
from; declaring a submodule with `mod x;` is containment, not an edge). Prints the number of
files, edges and the strongly connected components of more than one file (import cycles), and
exits 1 when there is one. Run: python3 tools/modgraph.py [--edges]
"""

import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def load():
    files = {}
    for root, _, names in os.walk(SRC):
        for n in names:
            if n.endswith(".rs") and n != "main.rs":
                p = os.path.join(root, n)
                files[module_of(p)] = strip(open(p, encoding="utf-8").read())
    return files


def strip(text):
    """Comments, strings and `#[cfg(test)]` modules out: only code that ships counts."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    cut = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: cut.start()] if cut else text


USE = re.compile(r"\buse\s+([^;]+);")
PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")


def expand(tree):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^(.*?)::\{(.*)\}$", tree)
    if not m:
        return [re.sub(r"as\w+$", "", tree)]
    head, body = m.groups()
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    if cur:
        parts.append(cur)
    out = []
    for p in parts:
        out += [head if p == "self" else head + "::" + q for q in expand(p)]
    return out


def absolute(mod, path, is_mod_file):
    segs = path.split("::")
    if segs[0] == "crate":
        return segs[1:]
    # `self` is the module the file is; each `super` is one level up from it.
    base = list(mod)
    if segs[0] == "self":
        return base + segs[1:]
    while segs and segs[0] == "super":
        base = base[:-1]
        segs = segs[1:]
    return base + segs


def reexports(files, mod_files):
    """name -> absolute path it re-exports, per module."""
    out = {}
    for mod, text in files.items():
        for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
            for p in expand(m.group(1)):
                target = absolute(mod, p, mod in mod_files) if p.split("::")[0] in ("crate", "super", "self") else list(mod) + p.split("::")
                out.setdefault(mod, {})[target[-1]] = target
    return out


def resolve(segs, files, reexp, depth=0):
    """The file defining what `segs` names."""
    for n in range(len(segs), -1, -1):
        mod = tuple(segs[:n])
        if mod in files:
            rest = segs[n:]
            if rest and depth < 8 and rest[0] in reexp.get(mod, {}):
                target = reexp[mod][rest[0]] + rest[1:]
                if tuple(target[: len(mod)]) != mod or len(target) > len(mod) + len(rest):
                    return resolve(target, files, reexp, depth + 1)
            return mod
    return None


def graph():
    files = load()
    mod_files = {m for m in files if any(os.path.exists(os.path.join(SRC, *m, f)) for f in ("mod.rs",))} | {()}
    reexp = reexports(files, mod_files)
    edges = {m: set() for m in files}
    for mod, text in files.items():
        paths = []
        for m in USE.finditer(text):
            paths += [p for p in expand(m.group(1)) if p.split("::")[0] in ("crate", "super", "self")]
        paths += [m.group(1) + m.group(2) for m in PATH.finditer(text)]
        for p in paths:
            target = resolve(absolute(mod, p, mod in mod_files), files, reexp)
            if target is not None and target != mod and not (target == () and mod != ()):
                edges[mod].add(target)
    return edges


def sccs(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def name(m):
    return "::".join(m) or "crate"


def main():
    edges = graph()
    cycles = sccs(edges)
    if "--edges" in sys.argv:
        for m in sorted(edges):
            print(f"{name(m)} -> {', '.join(sorted(name(t) for t in edges[m]))}")
    print(f"{len(edges)} files, {sum(len(t) for t in edges.values())} import edges, {len(cycles)} cycles")
    for c in cycles:
        print(f"cycle of {len(c)} files: {', '.join(sorted(name(m) for m in c))}")
    sys.exit(1 if cycles else 0)


if __name__ == "__main__":
    main()
