"""The package's layers (issue 39; docs/development.md draws the map): no module imports one that
imports it back, the model family is built by one registry, the format readers sit side by side
under the one module that picks among them, and every model setting belongs to one component.
The import graph is read from the source with ``ast``: every import counts, those inside
functions too, since a circle there is still two modules that cannot be read or replaced alone."""

import ast
from dataclasses import fields
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "lamae"


def _modules() -> dict[str, Path]:
    out = {}
    for f in SRC.rglob("*.py"):
        parts = f.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the lamae modules it imports (a name imported from a package counts as the
    package unless it is a module of it)."""
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, f in mods.items():
        package = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                base = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
                target = ".".join(x for x in (base, node.module) if x)
                found = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                targets = found or [target]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for t in targets:
                while t and t not in mods:  # lamae.models.lamae.Lamae -> lamae.models.lamae
                    t = t.rpartition(".")[0]
                if t and t != m:
                    graph[m].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_lamae_imports_one_that_imports_it_back():
    found = cycles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(g) for g in found)


def test_the_model_family_is_built_by_one_registry():
    graph = import_graph()
    # the members' own modules know their models and the shared input and settings, not the registry
    members = ("lamae.models.lamae", "lamae.models.cpc", "lamae.models.s4lead")
    for member in members:
        assert "lamae.models.family" not in graph[member]
        assert {"lamae.models.config", "lamae.models.inputs"} & graph[member]
    assert "lamae.models.lamae" not in graph["lamae.models.cpc"] and "lamae.models.cpc" not in graph["lamae.models.lamae"]
    for a in members:  # each member's module knows only its own models
        assert not (set(members) - {a}) & graph[a], (a, graph[a])
    assert not {*members, "lamae.models.family"} & graph["lamae.models.config"]
    from lamae.models.cpc import Cpc, S4Mae
    from lamae.models.family import FAMILY, make_model, model_config
    from lamae.models.lamae import Lamae
    from lamae.models.s4lead import S4Lamae

    kinds = {type(make_model(model_config(name, "tiny"))) for name in FAMILY}
    assert kinds == {Lamae, Cpc, S4Mae, S4Lamae}


def test_the_format_readers_sit_side_by_side_under_the_one_that_picks():
    graph = import_graph()
    formats = {"lamae.data.sources", "lamae.data.hospital", "lamae.data.ecgfiles", "lamae.data.wfdb_io"}
    for reader in formats:
        assert not (graph[reader] & (formats - {"lamae.data.wfdb_io"} | {"lamae.data.readers"})), (reader, graph[reader])
    assert formats - {"lamae.data.wfdb_io"} <= graph["lamae.data.readers"]
    # --format's names are the registry's, and every command takes them from there
    from lamae.data.readers import READERS

    assert {"auto", "wfdb", "mimic", "edf", "dicom", "muse"} <= set(READERS)


def test_the_reconstruction_metrics_have_one_home():
    graph = import_graph()
    assert "lamae.eval.metrics" in graph["lamae.api"] and "lamae.eval.metrics" in graph["lamae.eval.reconstruction"]
    assert "lamae.api" not in graph["lamae.eval.reconstruction"]
    import lamae.api
    import lamae.eval.metrics

    assert lamae.api.lead_error is lamae.eval.metrics.lead_error


def test_every_model_setting_belongs_to_one_component():
    from lamae.models.config import SETTING_GROUPS, LamaeConfig
    from lamae.models.family import FAMILY, model_config

    grouped = [name for names, _ in SETTING_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(f.name for f in fields(LamaeConfig)), "each setting in exactly one group"
    # what a member reads: CPC has no decoder or routers, LAMAE no state-space layers
    cpc = model_config("CPC", "tiny").settings_in_use()
    lamae = model_config("LAMAE", "tiny").settings_in_use()
    assert "decoder" not in cpc and not any(g.startswith("cross-lead") for g in cpc)
    assert "cross-lead path: lead field" in lamae and "encoder: state space" not in lamae
    # no group whose condition no member meets: every setting is used by some member
    used_somewhere = {k for name in FAMILY for values in model_config(name, "tiny").settings_in_use().values()
                      for k in values}
    assert used_somewhere == set(grouped), sorted(set(grouped) - used_somewhere)
