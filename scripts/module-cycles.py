#!/usr/bin/env python3
"""Import circles between the modules of each crate (issue 15: "modules without circles").

A module is a source file (`src/a/b.rs` or `src/a/b/mod.rs` is `a::b`). Module M depends on
module N when M's file names `crate::…` (in a `use` or a path) and N is the longest module
path that name starts with; a name of M's own submodule (`self::x`, `super::x`) is resolved
the same way. Tests (`#[cfg(test)]` modules in the same file) count as their file. Prints each
circle (strongly connected set of two or more modules) and exits 1 if there is any, 0 if none.

  scripts/module-cycles.py [CRATE_DIR...]     (default: every crate of the workspace)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def crate_dirs():
    return sorted(path.parent.parent for path in ROOT.glob("*/*/src/lib.rs")) + sorted(
        path.parent.parent for path in ROOT.glob("*/src/lib.rs"))


def module_of(source_dir, path):
    parts = list(path.relative_to(source_dir).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"], ["main"]):
        return ""
    return "::".join(parts)


PATH = re.compile(r"\b(crate|self|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|self|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\}", re.S)


def references(text):
    """Every `crate::…`/`self::…`/`super::…` path in `text`, groups in `use` expanded."""
    for root, prefix, group in USE_GROUP.findall(text):
        for item in group.split(","):
            item = item.strip().split(" as ")[0].strip()
            first = re.match(r"[A-Za-z_][A-Za-z0-9_]*", item)
            if first:
                yield root, prefix + "::" + first.group(0)
    for root, rest in PATH.findall(text):
        yield root, rest


def dependencies(module, text, modules):
    own = module.split("::") if module else []
    for root, rest in references(text):
        names = rest.strip(":").split("::")
        if root == "crate":
            base = []
        elif root == "self":
            base = own
        else:
            base = own[:-1]
        full = base + names
        for length in range(len(full), 0, -1):
            candidate = "::".join(full[:length])
            if candidate in modules:
                if candidate != module and not candidate.startswith(module + "::" if module else "\0"):
                    yield candidate
                break


def circles(graph):
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def connect(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def main():
    dirs = [pathlib.Path(arg).resolve() for arg in sys.argv[1:]] or crate_dirs()
    total = 0
    for crate in dirs:
        source_dir = crate / "src"
        files = {module_of(source_dir, path): path for path in source_dir.rglob("*.rs")}
        modules = set(files)
        graph = {module: set(dependencies(module, path.read_text(), modules))
                 for module, path in files.items()}
        for circle in circles(graph):
            total += 1
            print(f"{crate.relative_to(ROOT)}: {len(circle)} modules in a circle: {', '.join(circle)}")
    print(f"{total} circles")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
