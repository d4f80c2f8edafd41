"""The house as documented is the house in the tree: docs/LAYOUT.md and DESIGN.md name what exists
and every product module, the README's short Layout every package; imports point one way, from the
command down to trainables; the README's exit-code table is tuner.exit_codes.ExitCode; the README
stays a front door (at most 250 lines) whose links lead somewhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DESIGN = REPO.parent / "shared" / "docs" / "DESIGN.md"
PRODUCT = ("trainables", "tuner")
TOOLING = ("benchmarks", "tools")
# tuner's rooms from the bottom up: a module imports only from its own room and the rooms before it
# (and the base modules, tuner/*.py but the commands launch.py, stop.py and status.py, which import nothing of tuner).
ROOMS = ("spec", "tracking", "trial", "sweep", "report", "reproduce", "launch", "stop", "status")


def named_paths(block: str) -> set[str]:
    """The folders (a first word ending in /) and the *.py files a layout block names, as paths: a
    line's files belong to its own folder, else to the folder of the nearest less indented line."""
    found: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        here = stack[-1][1] if stack else ""
        first = line.split()[0]
        if first.endswith("/") and re.fullmatch(r"[\w.]+/", first):
            here += first
            stack.append((indent, here))
            found.add(here)
        found.update(here + name for name in re.findall(r"\b\w+\.py\b", line))
    return found


def code_block_after(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("```", 2)[1]


def modules(*packages: str) -> set[str]:
    """Every package folder and module of these packages, as paths ('tuner/sweep/', 'tuner/sweep/finish.py')."""
    out: set[str] = set()
    for package in packages:
        for path in (REPO / package).rglob("*.py"):
            rel = path.relative_to(REPO).as_posix()
            if path.name in ("__init__.py", "__main__.py"):
                out.add(rel.rsplit("/", 1)[0] + "/")
            else:
                out.add(rel)
    return out


def test_the_layout_doc_names_every_module_and_only_what_exists() -> None:
    named = named_paths(code_block_after((REPO / "docs" / "LAYOUT.md").read_text(), "## Layout"))
    missing_in_tree = sorted(p for p in named if not (REPO / p).exists())
    assert not missing_in_tree, f"docs/LAYOUT.md names what the tree lacks: {missing_in_tree}"
    unnamed = sorted(modules(*PRODUCT, *TOOLING) - named)
    assert not unnamed, f"docs/LAYOUT.md does not name: {unnamed}"


def test_the_readme_layout_names_every_package_and_only_what_exists() -> None:
    named = named_paths(code_block_after((REPO / "README.md").read_text(), "## Layout"))
    assert sorted(p for p in named if not (REPO / p).exists()) == []
    packages = {p for p in modules(*PRODUCT, *TOOLING) if p.endswith("/")}
    assert sorted(packages - named) == [], "the README's short Layout leaves out a package"


def test_the_readme_is_a_front_door_whose_links_lead_somewhere() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250, "the README grew past 250 lines: move the detail to a page under docs/"
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "tools" / "lease" / "README.md"]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.relative_to(REPO)} links to {target}, which is not there"


def test_design_md_house_matches_the_tree() -> None:
    if not DESIGN.is_file():
        pytest.skip(f"no {DESIGN} (../shared beside the checkout)")
    named = {p for p in named_paths(code_block_after(DESIGN.read_text(), "## The house")) if p.endswith(("/", ".py"))}
    assert {"tuner/launch.py", "tuner/spec/", "tuner/sweep/", "tuner/trial/", "tuner/tracking/", "tuner/report/",
            "tuner/reproduce/", "benchmarks/", "tools/", "trainables/"} <= named
    assert sorted(p for p in named if not (REPO / p).exists()) == []


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at the top or inside a function ('from tuner import x' gives tuner.x)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names if node.module in PRODUCT + TOOLING]
    return found


def _room(module: str) -> int:
    """A tuner module's place in ROOMS (-1: a base module, importing nothing of tuner)."""
    parts = module.split(".")
    return ROOMS.index(parts[1]) if len(parts) > 1 and parts[1] in ROOMS else -1


def test_imports_point_one_way_from_the_command_down_to_trainables() -> None:
    wrong = []
    for package in PRODUCT + TOOLING:
        for path in sorted((REPO / package).rglob("*.py")):
            me = ".".join(path.relative_to(REPO).with_suffix("").parts)
            for imported in _imports(path):
                top = imported.split(".")[0]
                if package in PRODUCT and top in TOOLING:
                    wrong.append(f"{me} imports the project's tooling: {imported}")
                elif package == "trainables" and top in ("tuner", "ray", "optuna", "mlflow"):
                    wrong.append(f"{me} (trainables) imports {imported}")
                elif package == "tuner" and top == "tuner":
                    if _room(me) == -1 and me != "tuner.__init__":
                        wrong.append(f"{me} is a base module but imports {imported}")
                    elif _room(imported) > _room(me):
                        wrong.append(f"{me} imports {imported}, a room above it")
    assert not wrong, "\n".join(wrong)


def test_tuner_keeps_few_modules_at_its_top_and_every_package_says_what_it_holds() -> None:
    top = sorted(p.name for p in (REPO / "tuner").glob("*.py"))
    assert len(top) <= 8, top
    for package in PRODUCT + TOOLING:
        for init in (REPO / package).rglob("__init__.py"):
            doc = ast.get_docstring(ast.parse(init.read_text()))
            assert doc and len(doc) > 40, f"{init.relative_to(REPO)} has no docstring saying what the package holds"


def test_the_readme_exit_code_table_is_the_enum() -> None:
    from tuner.exit_codes import ExitCode

    text = (REPO / "README.md").read_text()
    after = text.split("**Exit codes**", 1)[1]
    table = after[after.index("| exit |"):].split("\n\n", 1)[0]
    rows = {int(m[1]): m[2] for m in re.finditer(r"^\s*\| (\d+) \| (\w+) \|", table, flags=re.M)}
    assert rows == {code.value: code.name for code in ExitCode}


def test_no_import_circles() -> None:
    """No module reaches itself through imports, at the top or inside a function (one hidden in a
    function is still a circle: members.py <-> member_graphs.py, experiment.py <-> trials_table.py were)."""
    graph: dict[str, set[str]] = {}
    for package in PRODUCT:
        for path in (REPO / package).rglob("*.py"):
            me = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            graph[me] = set()
            for imported in _imports(path):
                while imported and imported.split(".")[0] in PRODUCT:
                    parts = imported.split(".")
                    if (REPO / Path(*parts)).with_suffix(".py").is_file() or (REPO / Path(*parts) / "__init__.py").is_file():
                        break
                    imported = ".".join(parts[:-1])  # a name imported from a module: the module
                # Its own package: Python runs a package's __init__ before any of its modules, whatever imports them.
                if imported and imported != me and imported.split(".")[0] in PRODUCT and not me.startswith(imported + "."):
                    graph[me].add(imported)
    circles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in graph.get(node, ()):
            if nxt == path[0]:
                circles.append(" -> ".join([*path, nxt]))
            elif nxt not in path and nxt > path[0]:  # each circle once, from its smallest module
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not circles, "\n".join(circles)
