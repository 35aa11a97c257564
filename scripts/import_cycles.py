#!/usr/bin/env python3
"""Report import cycles between the files of Rust crates:  python3 scripts/import_cycles.py store opendata

Per crate directory, a graph of its files (`src/**/*.rs`): A -> B when A names, in a `use` or inline in its
code, a path inside the crate (`crate::…`, `super::…`, `self::…`, or one starting with a child module's name)
that resolves to B. Declaring `mod child;` is not an edge, nor is a `pub use` re-export that the file does not
itself use: declaring is not using. Test code is left out (`tests.rs`, `*_tests.rs`, `#[cfg(test)]` items and
the modules they declare).

A path resolves to the file of its longest module prefix; when the next segment names an item, to the file that
defines the item, following `use`s and re-exports from file to file (`crate::Result` -> error.rs, not lib.rs).
An item not found that way (a glob import, a macro-made item) resolves to the module prefix's file.

Prints every strongly connected component of more than one file, with the edges inside it, and exits 1 if there
is one. A directory without `src/` is skipped with a note.
"""
import re
import sys
from pathlib import Path

NOISE = re.compile(r'//[^\n]*|/\*.*?\*/|\bb?r(#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?\'(?:\\.|[^\\\'])\'', re.S)
CFG_TEST = re.compile(r'#\[cfg\(test\)\]')
TEST_DECL = re.compile(r'#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;')
INLINE_MOD = re.compile(r'\bmod\s+(\w+)\s*\{')
USE = re.compile(r'(\bpub\b(?:\s*\([^)]*\))?\s*)?\buse\s+([^;]*);')
INLINE_PATH = re.compile(r'(?<![\w:$])((?:\$?crate|self|super|[a-z_]\w*)(?:\s*::\s*\w+)+)')
DEF = re.compile(r'\b(?:fn|struct|enum|trait|type|const|static|union|mod|macro_rules!)\s+(\w+)')


def matching_brace(text, i):
    """Index just past the `}` closing the `{` at `text[i]`."""
    depth = 0
    for j in range(i, len(text)):
        depth += {'{': 1, '}': -1}.get(text[j], 0)
        if depth == 0:
            return j + 1
    return len(text)


def strip_test_items(text):
    """Text without `#[cfg(test)]` items (up to their `;`, or through their `{…}` block)."""
    while m := CFG_TEST.search(text):
        semi, brace = text.find(';', m.end()), text.find('{', m.end())
        end = matching_brace(text, brace) if -1 < brace and not -1 < semi < brace else semi % len(text) + 1
        text = text[:m.start()] + text[end:]
    return text


def use_leaves(body):
    """`a::{b, c::d as e, f::*}` -> [(['a','b'], 'b'), (['a','c','d'], 'e'), (['a','f'], '*')]."""
    toks, leaves = re.findall(r'::|[{},*]|\$?\w+', body), []

    def tree(i, prefix):
        path, alias = list(prefix), None
        while i < len(toks) and toks[i] not in (',', '}'):
            t = toks[i]
            if t == '{':
                i += 1
                while i < len(toks) and toks[i] != '}':
                    i = tree(i, path)
                    i += i < len(toks) and toks[i] == ','
                return i + 1
            if t in ('*', 'as'):  # a glob, or the name the leaf is bound to
                alias, i = (t, i + 1) if t == '*' else (toks[i + 1], i + 2)
                break
            if t != '::':
                path.append(t)
            i += 1
        path = path[:-1] if path[-1:] == ['self'] else path
        if path:
            leaves.append((path, alias or path[-1]))
        return i

    tree(0, [])
    return leaves


class Crate:
    def __init__(self, root):
        self.src = root / 'src'
        self.files = {}  # module path (tuple) -> file
        for f in sorted(self.src.rglob('*.rs')):
            parts = f.relative_to(self.src).with_suffix('').parts
            parts = parts[:-1] if parts[-1] == 'mod' or parts in (('lib',), ('main',)) else parts
            if parts[:1] != ('bin',):
                self.files.setdefault(parts, f)
        texts = {f: NOISE.sub(' ', f.read_text()) for f in self.files.values()}
        tests = {mp + (name,) for mp, f in self.files.items() for name in TEST_DECL.findall(texts[f])}
        self.files = {mp: f for mp, f in self.files.items()
                      if not any(mp[:k] in tests for k in range(1, len(mp) + 1))
                      and not any(p == 'tests' or p.endswith('_tests') for p in mp)}
        self.defs, self.uses, self.refs = {}, {}, {}  # per file: names defined, name -> path, paths used
        for mp, f in self.files.items():
            self.defs[f], self.uses[f], self.refs[f] = set(), {}, []
            self.scan(f, mp, strip_test_items(texts[f]))

    def scan(self, f, mp, text):
        """Collect definitions, use bindings and referenced paths of `text`, the body of module `mp`."""
        while m := INLINE_MOD.search(text):  # an inline module: its own `super`/`self`
            end = matching_brace(text, m.end() - 1)
            self.defs[f].add(m.group(1))
            self.scan(f, mp + (m.group(1),), text[m.end():end - 1])
            text = text[:m.start()] + text[end:]
        self.defs[f].update(DEF.findall(text))
        code = re.sub(r'\bmod\s+\w+\s*;', ' ', USE.sub(' ', text))  # declarations are not uses
        for m in USE.finditer(text):
            if not re.fullmatch(r'[\w\s:{},*$]*', m.group(2)):
                continue  # not a use declaration (e.g. `+ use<'a>` bounds)
            for path, name in use_leaves(m.group(2)):
                absolute = self.absolute(path, mp)
                if absolute is None:
                    continue
                # a re-export is the module's interface, like `mod child;`: an edge only when this file uses it
                if not m.group(1) or name.isidentifier() and re.search(rf'\b{name}\b', code):
                    self.refs[f].append(('::'.join(path), absolute))
                if name not in ('*', '_'):
                    self.uses[f][name] = absolute
        for m in INLINE_PATH.finditer(code):
            path = re.split(r'\s*::\s*', m.group(1))
            absolute = self.absolute(path, mp)
            if absolute is not None:
                self.refs[f].append(('::'.join(path), absolute))

    def absolute(self, path, mp):
        """`path` as segments from the crate root, or None when it leads outside the crate."""
        head, rest = path[0], path[1:]
        if head in ('crate', '$crate', 'self'):
            return (mp if head == 'self' else ()) + tuple(rest)
        if head == 'super':
            base = mp
            while path and path[0] == 'super':
                base, path = base[:-1], path[1:]
            return base + tuple(path)
        if mp + (head,) in self.files:  # a child module, named relative to this one
            return mp + tuple(path)
        return None

    def target(self, absolute, seen=0):
        """The file a crate-absolute path resolves to (following re-exports for the item it names)."""
        k = max(k for k in range(len(absolute) + 1) if absolute[:k] in self.files)
        f, rest = self.files[absolute[:k]], absolute[k:]
        if not rest or rest[0] in self.defs[f] or seen > 8:
            return f
        via = self.uses[f].get(rest[0])
        return self.target(via + rest[1:], seen + 1) if via is not None else f

    def graph(self):
        """file -> {file it uses: the first path that uses it}."""
        edges = {}
        for f, text, to in ((f, t, self.target(a)) for f, refs in self.refs.items() for t, a in refs):
            if to != f:
                edges.setdefault(f, {}).setdefault(to, text)
        return edges


def components(nodes, edges):
    """Strongly connected components (Tarjan), each a list of nodes."""
    index, low, stack, out = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
            if w in stack:
                low[v] = min(low[v], low[w])
        if low[v] == index[v]:
            out.append(stack[stack.index(v):])
            del stack[stack.index(v):]

    sys.setrecursionlimit(10_000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def main(dirs):
    found = 0
    for d in dirs:
        root = Path(d)
        if not (root / 'src').is_dir():
            print(f'{d}: no such crate directory, skipped')
            continue
        crate = Crate(root)
        edges, rel = crate.graph(), lambda f: f.relative_to(root.parent)  # noqa: E731
        cycles = sorted(sorted(c) for c in components(sorted(crate.files.values()), edges) if len(c) > 1)
        for comp in cycles:
            print(f'import cycle in {d}: ' + ', '.join(str(rel(f)) for f in comp))
            for a, b in ((a, b) for a in comp for b in sorted(edges.get(a, {})) if b in comp):
                print(f'    {rel(a)} -> {rel(b)}  ({edges[a][b]})')
        found += len(cycles)
        if not cycles:
            print(f'{d}: no import cycles between its {len(crate.files)} files')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]) if len(sys.argv) > 1 else __doc__)
