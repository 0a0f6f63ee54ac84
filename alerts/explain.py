"""Why a rule fired or stayed quiet on a board's last snapshot (pure), for `/leaderwatch why`.

`explain` looks at the previous and the last snapshot the way the rule does and says, in one line,
what it saw. It knows nothing of the rule's stored state (confirmations in progress, cooldowns), so
when it finds a change that produced no stored event, `held_back` lists what may have held it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from leaderwatch.alerts.models import BoardState, Event, Rule, RuleError
from leaderwatch.alerts.rules import Context, base_key, confidence_between, method_change
from leaderwatch.alerts.ruleset import format_duration
from leaderwatch.sources.base import Entry, Snapshot
from leaderwatch.sources.identity import Group, canonical_key


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule saw going from the previous snapshot to the last one.

    `changed` says the rule's condition changed in a way it reports (an alert was due unless its
    state held it back); `subjects` names what changed (model keys, `a|b` for a pair of groups,
    `leader`, `method`), to recognise stored events; `reason` is one line a person can read.
    """

    changed: bool
    subjects: frozenset[str]
    reason: str


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def _names(entries: Sequence[Entry], limit: int = 3) -> str:
    shown = [f"{e.name} #{e.rank}" for e in entries[:limit]]
    more = f" and {len(entries) - limit} more" if len(entries) > limit else ""
    return ", ".join(shown) + more


def _quiet(reason: str) -> Finding:
    return Finding(False, frozenset(), reason)


def explain(rule: Rule, prev: Snapshot | None, curr: Snapshot, groups: Mapping[str, Group]) -> Finding:
    """What `rule` sees from `prev` to `curr`, in one line."""
    if prev is None:
        return _quiet("the board's first snapshot: it only sets the baseline")
    changed = method_change(prev, curr)
    if rule.kind == "board_changed":
        if changed is None:
            return _quiet("same method and recording as the previous snapshot, and most models kept "
                          "their places")
        return Finding(True, frozenset({"method"}), f"the board changed ({changed})")
    if changed is not None:
        return _quiet(f"the board changed ({changed}): this snapshot set a new baseline and "
                      "per-model alerts paused")
    seen = frozenset(e.model_key for e in prev.entries)
    ctx = Context(prev, curr, groups, BoardState(seen, 1, frozenset(base_key(e) for e in prev.entries)),
                  curr.as_of)
    try:
        return _EXPLAIN[rule.kind](rule, ctx)
    except RuleError as exc:
        return _quiet(str(exc))


def _lead(ctx: Context, a: str, b: str, previous: bool) -> tuple[str, Entry, Entry] | str:
    best_a, best_b = ctx.best(a, previous), ctx.best(b, previous)
    if best_a is None or best_b is None:
        return f"no {a if best_a is None else b} model on the board"
    if best_a.rank == best_b.rank:
        return f"best {a} {best_a.name} and best {b} {best_b.name} are tied at #{best_a.rank}"
    if best_a.rank < best_b.rank:
        return a, best_a, best_b
    return b, best_b, best_a


def _overtake(rule: Rule, ctx: Context) -> Finding:
    a, b = rule.get("groups")
    now = _lead(ctx, a, b, previous=False)
    if isinstance(now, str):
        return _quiet(f"{now}, nothing to compare")
    lead, leader, other = now
    trail = b if lead == a else a
    text = (f"{lead} leads: best {lead} {leader.name} #{leader.rank} vs best {trail} {other.name} "
            f"#{other.rank}")
    tied = confidence_between(leader, other, ctx.has_ci) == "tied"
    if tied and rule.get("confidence") == "clear":
        text += " (statistically tied: with confidence=clear the rule waits for the intervals to separate)"
    before = _lead(ctx, a, b, previous=True)
    if isinstance(before, str):
        return _quiet(f"{text}; the previous snapshot had {before}")
    if before[0] == lead:
        return _quiet(f"{text}, as in the previous snapshot")
    return Finding(not (tied and rule.get("confidence") == "clear"), frozenset({f"{a}|{b}"}),
                   f"{text}, after {before[0]} led in the previous snapshot")


def _leaders(entries: Sequence[Entry]) -> list[Entry]:
    top = min((e.rank for e in entries), default=None)
    return [e for e in entries if e.rank == top]


def _new_leader(rule: Rule, ctx: Context) -> Finding:
    now, before = _leaders(ctx.curr.entries), _leaders(ctx.prev_entries)
    if not now:
        return _quiet("the board is empty")
    names = ", ".join(e.name for e in now)
    old_keys = {e.model_key for e in before}
    new = [e for e in now if e.model_key not in old_keys]
    if not new:
        return _quiet(f"#1 is {names} ({_num(now[0].score)}), as in the previous snapshot")
    group: str | None = rule.get("group")
    if group and not any(ctx.group(group).contains(e) for e in new):
        return _quiet(f"#1 changed to {names}, which is no {group} model")
    was = ", ".join(e.name for e in before) or "nobody"
    return Finding(True, frozenset({"leader"}), f"#1 changed: {names} ({_num(now[0].score)}) after {was}")


def _top_n(rule: Rule, ctx: Context) -> Finding:
    n, margin, direction = rule.get("top"), rule.get("margin"), rule.get("direction")
    group_name: str | None = rule.get("group")
    group = ctx.group(group_name) if group_name else None

    def inside(entries: Sequence[Entry], limit: int) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        for e in entries:
            if e.rank <= limit and (group is None or group.contains(e)):
                out.setdefault(e.model_key, e)
        return out

    before, now, kept = inside(ctx.prev_entries, n), inside(ctx.curr.entries, n), inside(
        ctx.curr.entries, n + margin)
    entered = [e for k, e in now.items() if k not in before] if direction != "leave" else []
    left: list[Entry] = []
    if direction != "enter":
        for key, e in before.items():
            if key in kept:
                continue
            listed = ctx.curr_by_key.get(key)
            if listed is not None or ctx.absent_value_known(n + margin):
                left.append(listed or e)
    what = f"the {group_name} models in the top {n}" if group_name else f"the top {n}"
    if not entered and not left:
        return _quiet(f"no model entered {what} or fell past #{n + margin}")
    parts = []
    if entered:
        parts.append(f"entered {what}: {_names(entered)}")
    if left:
        gone = [f"{e.name} ({f'now #{e.rank}' if e.model_key in ctx.curr_by_key else 'no longer listed'})"
                for e in left[:3]]
        more = f" and {len(left) - 3} more" if len(left) > 3 else ""
        parts.append(f"left {what}: {', '.join(gone)}{more}")
    return Finding(True, frozenset(e.model_key for e in entered + left), "; ".join(parts))


def _gap_of(rule: Rule, ctx: Context, previous: bool) -> tuple[float, Entry, Entry] | str:
    a, b = rule.get("groups")
    best_a, best_b = ctx.best(a, previous), ctx.best(b, previous)
    if best_a is None or best_b is None:
        return f"no {a if best_a is None else b} model on the board"
    gap = abs(best_a.score - best_b.score)
    if rule.get("unit") == "percent":
        gap = 100 * gap / (max(abs(best_a.score), abs(best_b.score)) or 1.0)
    return gap, best_a, best_b


def _gap(rule: Rule, ctx: Context) -> Finding:
    a, b = rule.get("groups")
    threshold: float = rule.get("threshold")
    unit = "%" if rule.get("unit") == "percent" else " points"
    now = _gap_of(rule, ctx, previous=False)
    if isinstance(now, str):
        return _quiet(f"{now}, no gap to measure")
    gap, best_a, best_b = now
    side = "below" if gap < threshold else "above"
    text = (f"the gap between the best {a} {best_a.name} ({_num(best_a.score)}) and the best {b} "
            f"{best_b.name} ({_num(best_b.score)}) is {gap:.1f}{unit}, {side} the threshold "
            f"{_num(threshold)}{unit}")
    before = _gap_of(rule, ctx, previous=True)
    if isinstance(before, str):
        return _quiet(f"{text}; the previous snapshot had {before}")
    was = "below" if before[0] < threshold else "above"
    if was == side:
        return _quiet(f"{text}, as in the previous snapshot ({before[0]:.1f}{unit})")
    reported = rule.get("direction") in ("both", side)
    note = "" if reported else f" (the rule reports only direction={rule.get('direction')})"
    return Finding(reported, frozenset({f"{a}|{b}"}),
                   f"{text}, after {before[0]:.1f}{unit} in the previous snapshot{note}")


def _score(rule: Rule, ctx: Context) -> Finding:
    threshold: float = rule.get("threshold")
    group_name: str | None = rule.get("group")
    group = ctx.group(group_name) if group_name else None
    higher = ctx.curr.board.higher_is_better
    direction = rule.get("direction")

    def past(score: float) -> bool:
        return score >= threshold if higher else score <= threshold

    word = "at or above" if higher else "at or below"
    wanted: str | None = rule.get("model")
    if wanted:
        key = canonical_key(wanted)
        e = ctx.curr_by_key.get(key) or next((x for x in ctx.curr.entries if x.name == wanted), None)
        if e is None:
            return _quiet(f"{wanted} is not on the board")
        side = f"{word} {_num(threshold)}" if past(e.score) else f"not {word} {_num(threshold)}"
        old = ctx.prev_by_key.get(e.model_key)
        if old is not None and past(old.score) == past(e.score):
            return _quiet(f"{e.name} scores {_num(e.score)}, {side}, as in the previous snapshot")
        crossed = [e]
    else:
        crossed = []
        for key, e in ctx.curr_by_key.items():
            if group is not None and not group.contains(e):
                continue
            old = ctx.prev_by_key.get(key)
            if (past(old.score) if old else False) != past(e.score):
                crossed.append(e)
    crossed = [e for e in crossed if direction == "both" or (direction == "above") == past(e.score)]
    if not crossed:
        count = sum(1 for e in ctx.curr_by_key.values()
                    if past(e.score) and (group is None or group.contains(e)))
        noun = f"{group_name} model" if group_name else "model"
        return _quiet(f"no {noun} crossed {_num(threshold)}; {count} {noun}(s) score {word} it")
    listed = ", ".join(f"{e.name} ({_num(e.score)})" for e in crossed[:3])
    more = f" and {len(crossed) - 3} more" if len(crossed) > 3 else ""
    return Finding(True, frozenset(e.model_key for e in crossed),
                   f"crossed {_num(threshold)}: {listed}{more}")


def _new_model(rule: Rule, ctx: Context) -> Finding:
    top: int | None = rule.get("top")
    group_name: str | None = rule.get("group")
    group = ctx.group(group_name) if group_name else None
    org: str | None = rule.get("organization")
    renamed = set(ctx.renames.values()) | ctx.split_off
    fresh = [e for k, e in ctx.curr_by_key.items() if k not in ctx.prev_by_key and k not in renamed]
    wanted = [e for e in fresh if (top is None or e.rank <= top)
              and (group is None or group.contains(e))
              and (org is None or (e.organization or "").casefold() == org.casefold())]
    where = f"in the top {top}" if top else "on the board"
    if not wanted:
        extra = f" ({len(fresh)} new model(s) outside the rule's filters)" if fresh else ""
        return _quiet(f"no new model {where} since the previous snapshot{extra}")
    return Finding(True, frozenset(e.model_key for e in wanted), f"new {where}: {_names(wanted)}")


def _rank_change(rule: Rule, ctx: Context) -> Finding:
    by: int = rule.get("by")
    top: int | None = rule.get("top")
    moves = [m for m in ctx.moves() if m[0] and (top is None or min(m[1].rank, m[2].rank) <= top)]

    def say(m: tuple[int, Entry, Entry]) -> str:
        moved, before, after = m
        return f"{after.name} {'up' if moved > 0 else 'down'} {abs(moved)} (#{before.rank} -> #{after.rank})"

    big = [m for m in moves if abs(m[0]) >= by]
    within = f" within the top {top}" if top else ""
    if not big:
        biggest = f"; the biggest move: {say(moves[0])}" if moves else ""
        return _quiet(f"no model moved {by} or more places{within}{biggest}")
    more = f" and {len(big) - 3} more" if len(big) > 3 else ""
    return Finding(True, frozenset(m[2].model_key for m in big),
                   f"moved {by}+ places{within}: {', '.join(say(m) for m in big[:3])}{more}")


_EXPLAIN = {
    "overtake": _overtake, "new_leader": _new_leader, "top_n": _top_n, "gap": _gap, "score": _score,
    "new_model": _new_model, "rank_change": _rank_change,
}


def fired(rule: Rule, finding: Finding, events: Sequence[Event]) -> list[Event]:
    """The stored events of the snapshot that this rule found.

    Two rules that find the same outcome share one stored event, named after the first rule that
    found it (`overtake` and `overtake confidence=clear`), so an event of the same kind about a
    subject this rule saw change counts too.
    """
    own = [e for e in events if e.rule == rule.name]
    if own or not finding.changed:
        return own
    return [e for e in events if e.kind == rule.kind and e.subject in finding.subjects]


def held_back(rule: Rule) -> str:
    """What can keep a due alert from firing, given the rule's parameters."""
    reasons = []
    confirm: int = rule.values.get("confirm", 1)
    if confirm > 1:
        reasons.append(f"the change must show in {confirm} snapshots in a row (confirm={confirm})")
    cooldown = rule.values.get("cooldown")
    if cooldown is not None:
        reasons.append(f"the same outcome fired less than {format_duration(cooldown)} before (cooldown)")
    if rule.kind == "new_model":
        reasons.append("the model was on this board before")
    reasons.append("the rule was added after this snapshot arrived")
    return "; or ".join(reasons)
