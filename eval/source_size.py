"""Size of the library: lines of code and of docstrings in ``svac/``, and the public names it offers.

Lines are counted per ``.py`` file with Python's own parser: a line is a docstring line when it
belongs to a module, class or function docstring (or the string right after an assignment,
which documents it), a comment line when it holds only a comment, blank when empty, and code
otherwise. The public surface is what ``import svac`` exports, and the module-level names without
a leading underscore over all of ``svac``'s modules (classes, functions and constants).

Run::

    python eval/source_size.py            # totals of this checkout
    python eval/source_size.py --modules  # and the public names per module
    python eval/source_size.py --package /path/to/other/checkout/svac
"""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from pathlib import Path

#: The library folder, beside this script's folder.
PACKAGE = Path(__file__).resolve().parents[1] / "svac"


def _docstring_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) or not body:
            continue
        strings = [body[0]] if _is_string(body[0]) else []
        strings += [cur for prev, cur in zip(body, body[1:]) if _is_string(cur) and isinstance(prev, (ast.Assign,
                                                                                                      ast.AnnAssign))]
        for node_ in strings:
            lines.update(range(node_.lineno, node_.end_lineno + 1))
    return lines


def _is_string(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _public_names(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_")]


def measure(package: Path = PACKAGE) -> tuple[dict[str, int], dict[str, list[str]]]:
    """``(line counts by kind, public names by module)`` of the ``.py`` files under ``package``."""
    counts = {"files": 0, "code": 0, "docstrings": 0, "comments": 0, "blank": 0}
    public: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        docs = _docstring_lines(tree)
        comments = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                    if tok.type == tokenize.COMMENT and tok.line.strip().startswith("#")}
        counts["files"] += 1
        for number, line in enumerate(source.splitlines(), start=1):
            kind = ("docstrings" if number in docs else "blank" if not line.strip()
                    else "comments" if number in comments else "code")
            counts[kind] += 1
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        public[module] = _public_names(tree)
    return counts, public


def main() -> None:
    """Print the counts (and, with ``--modules``, the public names of each module)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="list the public names of every module")
    parser.add_argument("--package", type=Path, default=PACKAGE, help="the svac folder to measure (default: this one)")
    args = parser.parse_args()
    counts, public = measure(args.package)
    total = sum(v for k, v in counts.items() if k != "files")
    print(f"{args.package}: {counts['files']} files, {total} lines: code {counts['code']}, "
          f"docstrings {counts['docstrings']}, comments {counts['comments']}, blank {counts['blank']}")
    print(f"import svac exports {len(public.get('svac', []))} names; public module-level names over "
          f"{len(public)} modules: {sum(map(len, public.values()))}")
    if args.modules:
        for module, names in sorted(public.items()):
            print(f"  {module}: {', '.join(names)}")


if __name__ == "__main__":
    main()
