"""Which tensor an integer input of a captured problem indexes, read from the exported graph.

``get_inputs`` must draw indices over everything they may index: the example inputs of a
capture often use a few small ids (tokens 0..5 of a 32,000-row embedding), and a range taken from
those lets a kernel that is right only for small ids (one that confuses the table's rows with
the batch) pass every check, then read the wrong rows in the user's model.
"""

from __future__ import annotations


def tables(graph, env: dict) -> dict[str, tuple[str, int]]:
    """Problem input name of an integer input used as indices -> (the input it indexes, the
    dimension indexed); only where both are inputs of the problem."""
    found: dict[str, tuple[str, int]] = {}

    def note(index, table, dim) -> None:
        if not (_input(index, env) and _input(table, env) and isinstance(dim, int)):
            return
        rank = len(getattr(table.meta.get("val"), "shape", ()))
        if rank and -rank <= dim < rank:
            found.setdefault(env[index], (env[table], dim % rank))

    for node in graph.nodes:
        name = getattr(node.target, "_opname", None)
        args = node.args
        if name == "embedding" and len(args) >= 2:
            note(args[1], args[0], 0)
        elif name in ("index_select", "gather") and len(args) >= 3:
            note(args[2], args[0], args[1])
        elif name == "index" and len(args) >= 2 and isinstance(args[1], list | tuple):
            for position, index in enumerate(args[1]):
                note(index, args[0], position)
    return found


def _input(node, env: dict) -> bool:
    return getattr(node, "op", None) == "placeholder" and node in env
