"""Several feeds and venues in one session: ``[[feeds]]`` / ``[[venues]]`` and the routing of
instruments to them (issue 16.1).

After :func:`normalize` (run by ``livestack.node.config.validate``) a config always has both lists
filled, whichever form the file used:

- the shorthand ``[feed]`` / ``[venue]`` (every config from before [[feeds]] existed) becomes one
  feed / one venue named ``"default"``; every instrument is on it;
- ``[[feeds]]`` / ``[[venues]]``: each entry has a ``name``; each ``[[instruments]]`` entry names
  its ``feed`` and its ``venue`` (with one feed or one venue, naming it may be left out). ``[feed]``
  / ``[venue]`` then mirror the first entry, for readers that know only one.

The routing tables the processes use (:func:`feed_index`, :func:`venue_index`) come from here
and nowhere else: the supervisor gives each feed and venue process its own instruments, and the
harness sends each ORDER_CMD to the orders ring of its instrument's venue.
"""

from __future__ import annotations

from livestack.node import schema as S

PAIRS = (("feed", "feeds", S.FEED_KINDS), ("venue", "venues", S.VENUE_KINDS))


def kind_tables(cfg: dict):
    """``(toml path, table, kind registry)`` of every feed and venue table of a (raw or merged)
    config that parsed as a table: ``feed``, ``feeds[0]``, ..., ``venue``, ``venues[0]``, ..."""
    for one, many, registry in PAIRS:
        tab = cfg.get(one)
        listed = cfg.get(many)
        listed = listed if isinstance(listed, list) else []
        if isinstance(tab, dict) and not _mirrors(tab, listed):
            yield one, tab, registry
        for i, t in enumerate(listed):
            if isinstance(t, dict):
                yield f"{many}[{i}]", t, registry


def _mirrors(tab: dict, listed: list) -> bool:
    """``tab`` is the copy of the first named entry a validated config carries (checked there)."""
    return bool(listed) and isinstance(listed[0], dict) and listed[0].get("name") != S.DEFAULT_NAME and \
        _same(tab, listed[0])


def _same(a: dict, b: dict) -> bool:
    return a.get("kind", "sim") == b.get("kind", "sim") and (a.get("options") or {}) == (b.get("options") or {})


def normalize(raw: dict, cfg: dict, errors: list[str]) -> None:
    """Fill ``cfg["feeds"]`` / ``cfg["venues"]`` (see the module docstring) and resolve each
    instrument's feed name; problems appended to ``errors``. Idempotent: a validated config
    validates again to itself."""
    for one, many, _ in PAIRS:
        listed = raw.get(many) or []
        if listed and one in raw:
            if len(listed) == 1 and listed[0].get("name") == S.DEFAULT_NAME:
                listed = []  # a validated shorthand config again: [feed] is the source
            elif not _same(raw[one], listed[0]):
                errors.append(f"give [{one}] or [[{many}]], not both (with several, each [[{many}]] entry "
                              f"has a name and each [[instruments]] entry names its {one})")
                continue
        if not listed:
            cfg[many] = [{"name": S.DEFAULT_NAME, "kind": cfg[one]["kind"], "options": cfg[one]["options"]}]
        else:
            cfg[one] = {"kind": cfg[many][0]["kind"], "options": cfg[many][0]["options"]}
    if errors:
        return
    feeds = [f["name"] for f in cfg["feeds"]]
    venues = [v["name"] for v in cfg["venues"]]
    for i, inst in enumerate(cfg["instruments"]):
        if not inst["feed"] and len(feeds) == 1:
            inst["feed"] = feeds[0]
        elif inst["feed"] not in feeds:
            errors.append(_unnamed(i, "feed", inst["feed"], feeds))
        if len(venues) > 1 and inst["venue"] not in venues:
            errors.append(_unnamed(i, "venue", inst["venue"], venues))
    if errors:
        return
    for many, names in (("feeds", feeds), ("venues", venues)):
        for j, name in enumerate(names):
            used = [inst for inst in cfg["instruments"]
                    if (inst["feed"] if many == "feeds" else _venue_name(inst, venues)) == name]
            if not used:
                errors.append(f"'{many}[{j}]' ({name!r}): no [[instruments]] entry names it "
                              f"(set {many[:-1]} = {name!r} on the instruments it carries)")


def _unnamed(i: int, what: str, got: str, names: list[str]) -> str:
    have = f"{got!r} is not one of them" if got else "none given"
    return (f"'instruments[{i}].{what}': name one of the [[{what}s]] ({', '.join(map(repr, names))}); {have}"
            f"{' (' + S.did_you_mean(got, names).rstrip('; ') + ')' if got and S.did_you_mean(got, names) else ''}")


def _venue_name(inst: dict, venues: list[str]) -> str:
    return inst["venue"] if inst["venue"] in venues else venues[0]


def feed_index(cfg: dict, inst) -> int:
    """Index in ``cfg["feeds"]`` of the feed that carries ``inst`` (an Instrument or its dict)."""
    name = inst["feed"] if isinstance(inst, dict) else inst.feed
    names = [f["name"] for f in cfg["feeds"]]
    return names.index(name) if name in names else 0


def venue_index(cfg: dict, inst) -> int:
    """Index in ``cfg["venues"]`` of the venue ``inst``'s orders go to: the venue it names, or the
    only one (the shorthand's instruments carry a free label in ``venue``)."""
    name = inst["venue"] if isinstance(inst, dict) else inst.venue
    names = [v["name"] for v in cfg["venues"]]
    return names.index(name) if name in names else 0


def process_name(what: str, name: str) -> str:
    """The supervisor's name for a feed's or venue's process: ``feed`` / ``venue`` for the
    shorthand's one (as before [[feeds]] existed), ``feed.<name>`` / ``venue.<name>`` otherwise."""
    return what if name == S.DEFAULT_NAME else f"{what}.{name}"


def of_feed(cfg: dict, instruments: list, i: int) -> list:
    """The instruments feed ``i`` carries."""
    return [inst for inst in instruments if feed_index(cfg, inst) == i]


def of_venue(cfg: dict, instruments: list, i: int) -> list:
    """The instruments venue ``i`` trades."""
    return [inst for inst in instruments if venue_index(cfg, inst) == i]


def ring_suffix(entry: dict) -> str:
    """The name in a feed's or venue's ring names (``md.<it>``, ``orders.<it>``): its name, or its
    kind for the shorthand's "default" (``md.sim``, as before [[feeds]] existed)."""
    return entry["kind"] if entry["name"] == S.DEFAULT_NAME else entry["name"]


def summary(cfg: dict) -> dict:
    """Names, kinds, ring names and instrument ids of every feed and venue (session file
    attributes, ctl status, the stacks registry)."""
    insts = cfg["instruments"]
    return {
        "feeds": [{"name": f["name"], "kind": f["kind"], "ring": ring_suffix(f),
                   "instruments": [x["id"] for x in insts if feed_index(cfg, x) == i]}
                  for i, f in enumerate(cfg["feeds"])],
        "venues": [{"name": v["name"], "kind": v["kind"], "ring": ring_suffix(v),
                    "instruments": [x["id"] for x in insts if venue_index(cfg, x) == i]}
                   for i, v in enumerate(cfg["venues"])],
    }
