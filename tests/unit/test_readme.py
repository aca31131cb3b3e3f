"""The README's structural facts, rebuilt from the code: they may not drift.

Three facts a newcomer relies on: the settings table (against the one
declaration of every setting in ``bridge/config.py``), the module map of
"How it is built" (against the files of ``bridge/``) and the paragraph on
import directions (against the imports the code really makes, read with
``ast``). On failure the message shows the text the README should have.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bridge.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
EVERYONE_MAY_USE = {"logs"}  # left out of the README's import list
BRIDGE = ROOT / "bridge"
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def test_settings_table_matches_the_declarations():
    rows = re.findall(r"^\| ([a-z_ /]+) \| (.+?) \| (.+?) \| .+? \| .+ \|$",
                      section("Configuration"), re.M)
    table = {}
    for names, flags, envs in rows[1:]:  # after the header
        for i, name in enumerate(n.strip() for n in names.split("/")):
            table[name] = (flags.split(" / ")[min(i, flags.count(" / "))],
                           envs.split(" / ")[min(i, envs.count(" / "))])
    declared = {s.name: s for s in SETTINGS}
    assert sorted(table) == sorted(declared), "README settings table vs bridge/config.py"
    for name, (flag, env) in table.items():
        setting = declared[name]
        assert f"`{setting.env}`" in env, (name, env)
        wanted = [f"`{setting.option}`"] + ([f"`--[no-]{setting.option[2:]}`"]
                                            if setting.switch else [])
        assert any(flag.startswith(w) for w in wanted), (name, flag, wanted)


def modules() -> set[str]:
    """Every module of the package as the map names it: ``cli.py``, ``php/parse.py``..."""
    found = set()
    for path in BRIDGE.rglob("*"):
        if path.suffix in (".py", ".c") and "__pycache__" not in path.parts:
            rel = path.relative_to(BRIDGE).as_posix()
            if rel not in ("__init__.py", "__main__.py"):
                found.add(rel)
    return found


def test_module_map_names_every_module():
    block = section("How it is built").split("```")[1]
    named, folder = set(), ""
    for line in block.splitlines():
        match = re.match(r"^( +)(\S+)", line)
        if not match:
            continue
        indent, name = len(match[1]), match[2]
        if name.endswith("/"):
            folder = name if indent == 2 else folder
            continue
        named.add((folder if indent > 2 else "") + name)
    named |= {f"php/{n}" for n in re.findall(r"with (\w+\.py), (\w+\.py)", block)
              for n in n}
    lua = {m for m in modules() if m.startswith("lua/")}
    assert modules() - lua - named == set(), "modules missing from README's map"
    assert named - modules() == set(), "README's map names modules that do not exist"


def import_graph() -> dict[str, set[str]]:
    """Top-level bridge modules -> the top-level bridge modules they import."""
    graph: dict[str, set[str]] = {}
    for path in BRIDGE.glob("*.py"):
        if path.stem in ("__init__", "__main__"):
            continue
        used = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[0] == "bridge" and len(parts) > 1:
                    used.add(parts[1])
                elif node.module == "bridge":
                    used |= {alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                used |= {a.name.split(".")[1] for a in node.names
                         if a.name.startswith("bridge.")}
        used -= {path.stem, "__version__", *EVERYONE_MAY_USE}
        if used:
            graph[path.stem] = used
    return graph


def expected_paragraph(graph: dict[str, set[str]]) -> str:
    return "\n".join(f"- `{m} -> {', '.join(sorted(graph[m]))}`" for m in sorted(graph))


def test_import_paragraph_matches_the_code():
    text = " ".join(section("How it is built").split())
    claimed: dict[str, set[str]] = {}
    for module, targets in re.findall(r"`(\w+) -> ([\w, ]+)`", text):
        claimed.setdefault(module, set()).update(t.strip() for t in targets.split(","))
    graph = import_graph()
    assert claimed == graph, "README's import paragraph should read:\n" + \
        expected_paragraph(graph)


def test_imports_flow_one_way():
    graph = import_graph()
    seen, stack = set(), []

    def visit(module):
        if module in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack + [module]))
        if module in seen:
            return
        stack.append(module)
        for target in graph.get(module, ()):
            visit(target)
        stack.pop()
        seen.add(module)

    for module in graph:
        visit(module)
    importers = {target: {m for m, ts in graph.items() if target in ts} for target in graph}
    assert not importers.get("cli") and importers.get("daemon", set()) <= {"cli"}


def test_eventlet_stays_in_the_runtime_layer():
    users = {path.stem for path in BRIDGE.rglob("*.py")
             if re.search(r"^\s*(import|from) eventlet", path.read_text(), re.M)}
    assert users <= {"cli", "runtime", "patches"}


def test_the_decoder_imports_nothing_else_of_bridge():
    for path in (BRIDGE / "php").glob("*.py"):
        imported = re.findall(r"^\s*(?:from|import) (bridge\.?\w*)", path.read_text(), re.M)
        assert all(name.startswith("bridge.php") for name in imported), (path.name, imported)
