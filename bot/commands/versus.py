"""`versus`, for anyone: a model against a rival model, group or organization on every board listing both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leaderwatch.alerts.formatting import Reply, day, num, plural
from leaderwatch.alerts.matching import board_matches
from leaderwatch.bot.commands.messages import NO_BOARDS, close_matches
from leaderwatch.bot.commands.names import resolve_model, resolve_pattern, split_at
from leaderwatch.bot.commands.registry import CommandContext, Invocation, UserError, command, usage_error
from leaderwatch.sources.base import Entry, Snapshot
from leaderwatch.sources.identity import Group
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.standings import Standing, current_models, organizations, standings


@dataclass(frozen=True, slots=True)
class Rival:
    """What a model is measured against: another model (by key), or a group or organization (its best
    model on each board, the model itself left out)."""

    label: str
    key: str | None = None
    group: Group | None = None


def resolve_rival(ctx: CommandContext, name: str, models: dict[str, str]) -> Rival:
    """A group (exact name), an organization (any known spelling), else a model as `model` resolves it."""
    wanted = name.strip()
    if wanted.lower() in ctx.groups:
        return Rival(f"group {wanted.lower()}", group=ctx.groups[wanted.lower()])
    known = organizations(ctx.db)
    org = next((o for o in known if o.casefold() == wanted.casefold()), None)
    if org is not None or ctx.identity.is_known_organization(wanted):
        main = ctx.identity.canonical_organization(org or wanted)
        spellings = frozenset(ctx.identity.spellings_of(main))
        return Rival(main, group=Group(main, organizations=spellings))
    try:
        key = resolve_model(ctx, wanted, models)
    except UserError as exc:
        groups = close_matches(wanted.lower(), sorted(ctx.groups))
        raise UserError(f"{exc} It is no group either{groups or '.'}" if groups else str(exc)) from None
    return Rival(models[key], key=key)


@dataclass(frozen=True, slots=True)
class Bout:
    """One board listing both: the model's and the rival's best entries, as of the board's table."""

    board_id: str
    as_of: datetime
    higher_is_better: bool
    metric: str
    model: Entry
    rival: Entry

    @property
    def ahead(self) -> int:
        """1 when the model ranks above the rival, -1 below, 0 when tied."""
        return (self.model.rank < self.rival.rank) - (self.model.rank > self.rival.rank)

    @property
    def gap(self) -> float:
        """How far the model's score is ahead of the rival's (negative: behind), in the board's unit."""
        diff = self.model.score - self.rival.score
        return diff if self.higher_is_better else -diff


def bouts(ctx: CommandContext, key: str, rival: Rival, pattern: str | None,
          at: datetime | None) -> list[Bout]:
    """Every board (matching `pattern`) whose table as of `at` lists both the model and the rival."""
    mine = {s.board_id: s for s in standings(ctx.db, key, at)
            if pattern is None or board_matches(pattern, s.board_id, ctx.suites)}
    found: list[Bout] = []
    if rival.key is not None:
        theirs: dict[str, Standing] = {s.board_id: s for s in standings(ctx.db, rival.key, at)}
        for board_id, s in sorted(mine.items()):
            other = theirs.get(board_id)
            board = ctx.boards.get(board_id) or store.board(ctx.db, board_id)
            if other is not None and board is not None:
                found.append(Bout(board_id, s.as_of, board.higher_is_better, board.metric, s.entry,
                                  other.entry))
        return found
    assert rival.group is not None
    for board_id, s in sorted(mine.items()):
        snap = ctx.snapshots.at(ctx.db, board_id, at)
        best = best_other(snap, rival.group, key) if snap is not None else None
        if snap is not None and best is not None:
            found.append(Bout(board_id, snap.as_of, snap.board.higher_is_better, snap.board.metric,
                              s.entry, best))
    return found


def best_other(snap: Snapshot, group: Group, key: str) -> Entry | None:
    """The group's best-ranked entry other than the model's own."""
    return next((e for e in snap.entries if e.model_key != key and group.contains(e)), None)


@command("versus", "versus MODEL_A MODEL_B [BOARD_PATTERN] [at DATE]")
async def versus_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """A model against a rival on every board that lists both: who is ahead, ranks, scores, the gap.

    The rival may be a model, a group or an organization (its best model on each board):
    `/leaderwatch versus qwen2-vl-72b gpt-4o-20240513`, `/leaderwatch versus deepseek-r1 west lmarena/*`,
    `/leaderwatch versus glm-4.5 OpenAI at 2025-08-04`. Quote names with spaces.
    """
    args, at = split_at("versus", args)
    if not 2 <= len(args) <= 3:
        raise usage_error("versus", "Give two models (the second may be a group or an organization), and "
                                    "optionally a board pattern.")
    models = ctx.snapshots.derived(ctx.db, "current_models", lambda: current_models(ctx.db))
    if not models:
        raise UserError(NO_BOARDS)
    key = resolve_model(ctx, args[0], models)
    rival = resolve_rival(ctx, args[1], models)
    if rival.key == key:
        raise usage_error("versus", f"Give two different models, not `{models[key]}` twice.")
    pattern = resolve_pattern(ctx, args[2])[0] if len(args) == 3 else None
    found = bouts(ctx, key, rival, pattern, at)
    name = models[key]
    where = f" matching `{pattern}`" if pattern else ""
    when = f"as of {day(at)}" if at else "as of each board's last table"
    if not found:
        return Reply(text=f"No board{where} lists both {name} and {rival.label} ({when}).")
    name = found[0].model.name
    ahead = sum(1 for b in found if b.ahead > 0)
    tied = sum(1 for b in found if b.ahead == 0)
    rows: list[tuple[str, ...]] = [("board", "table of", "ahead", name, rival.label, "gap")]
    for b in found:
        leader = b.model.name if b.ahead > 0 else (b.rival.name if b.ahead < 0 else "tied")
        rows.append((b.board_id, day(b.as_of), leader, f"#{b.model.rank} ({num(b.model.score)})",
                     f"#{b.rival.rank} {b.rival.name} ({num(b.rival.score)})" if rival.group
                     else f"#{b.rival.rank} ({num(b.rival.score)})", num(b.gap)))
    tie_note = f", tied on {tied}" if tied else ""
    return Reply(title=f"{name} vs {rival.label}",
                 text=f"{name} is ahead on {ahead} of {plural(len(found), 'board')}{where}{tie_note}, "
                      f"{when}. Gap: the model's score minus the rival's, in each board's unit (positive: "
                      "ahead).",
                 table=tuple(rows))
