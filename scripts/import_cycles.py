#!/usr/bin/env python3
"""Import cycles between the files of a crate: `scripts/import_cycles.py opendata/src [store/src ...]`.

A file A imports B when A names B's module in a path starting with `crate::`, `super::` or `self::` — in a
`use` (groups expanded) or inline — or in a `use` of a child module by its bare name, resolved to the deepest module file the path reaches (a path through a
re-export counts as an import of the file that re-exports). `mod` declarations are not imports. Test
modules (from `#[cfg(test)]` on) are left out. Prints each cycle (a strongly connected set of files) and
exits 1 if there is one.
"""
import os
import re
import sys


def modules(src):
    """file path -> module path (tuple of names)."""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("lib", "main", "mod"):
                parts = parts[:-1]
            out[os.path.join(src, rel)] = tuple(parts)
    return out


def strip(text):
    text = text.split("#[cfg(test)]", 1)[0]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


def expand(tree):
    """`a::{b, c::{d}}` -> ['a::b', 'a::c::d']."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [tree.split(" as ")[0].strip()]
    prefix, inner = tree[:i], tree[i + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for c in inner:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        cur += c
    parts.append(cur)
    return [prefix + p2 for p in parts if p.strip() for p2 in expand(p)]


def paths(text):
    found = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        found += expand(re.sub(r"\s+", " ", m.group(1)))
    found += re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text)
    return [p.replace(" ", "") for p in found]


def resolve(path, here, known):
    segs = path.split("::")
    if segs[0] == "crate":
        mod = ()
    elif segs[0] in ("super", "self"):
        mod = here
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                mod = mod[:-1]
            segs = segs[1:]
        segs = ["crate"] + segs
    elif here + (segs[0],) in known:
        # A `use` of a child module by its bare name (`pub use publisher::Publisher` in lib.rs).
        mod = here
        segs = ["crate"] + segs
    else:
        return None
    for s in segs[1:]:
        if mod + (s,) in known:
            mod = mod + (s,)
        else:
            break
    return mod


def cycles(src):
    files = modules(src)
    by_mod = {m: f for f, m in files.items()}
    edges = {f: set() for f in files}
    for f, here in files.items():
        for p in paths(strip(open(f, encoding="utf-8").read())):
            target = resolve(p, here, by_mod)
            if target is not None and by_mod.get(target) not in (None, f):
                edges[f].add(by_mod[target])
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
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
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(files):
        if v not in index:
            visit(v)
    return files, edges, sccs


def main():
    bad = False
    for src in sys.argv[1:] or ["opendata/src"]:
        files, edges, sccs = cycles(src)
        count = sum(len(e) for e in edges.values())
        print(f"{src}: {len(files)} files, {count} imports between them, {len(sccs)} cycles")
        for comp in sccs:
            bad = True
            print("  cycle: " + " <-> ".join(os.path.relpath(c, src) for c in comp))
            for a in comp:
                for b in sorted(edges[a] & set(comp)):
                    print(f"    {os.path.relpath(a, src)} -> {os.path.relpath(b, src)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
