"""Configuration commands, for channel managers: subscribe, unsubscribe, settings, set, mute, digest.

`dispatch` runs each of them in one transaction, so a handler that raises `UserError` after a write
changes nothing. Every change is written to the audit table with who, when and from which platform.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from leaderwatch.alerts.durations import DurationError, parse_duration
from leaderwatch.alerts.formatting import Field, Reply, day, moment, plural
from leaderwatch.alerts.kinds import KIND_HELP, KINDS
from leaderwatch.alerts.matching import DIGEST_HOUR, MUTE, board_matches, board_mutes, muted_until
from leaderwatch.alerts.models import Rule, RuleError
from leaderwatch.alerts.ruleset import make_rule, params_of, parse_rule
from leaderwatch.bot.commands.channel import DEFAULT_TOP, MAX_TOP, default_groups
from leaderwatch.bot.commands.messages import close_matches, code
from leaderwatch.bot.commands.names import (
    GLOB,
    board_ids,
    did_you_mean,
    resolve_board,
    resolve_group,
    resolve_model,
    resolve_pattern,
    whole_number,
)
from leaderwatch.bot.commands.registry import CommandContext, Invocation, UserError, command, usage_error
from leaderwatch.storage import outbox
from leaderwatch.storage.db import to_text
from leaderwatch.storage.standings import current_models
from leaderwatch.storage.subscriptions import (
    add_subscription,
    audit_trail,
    channel_settings,
    channel_subscriptions,
    record_audit,
    remove_subscriptions,
    set_channel_setting,
)

MAX_MUTE = timedelta(days=30)


def audit(ctx: CommandContext, inv: Invocation, action: str, detail: str) -> None:
    """Keep who changed what, when, from which platform."""
    record_audit(ctx.db, ctx.clock(), inv.platform, inv.channel_id, inv.user_id, inv.user_name, action,
                 detail)


def raw_params(rule: Rule) -> dict[str, str]:
    """The parameters a rule's name shows (`new_model top=10` -> {top: 10})."""
    return dict(word.partition("=")[::2] for word in rule.name.split()[1:])


def rival_values(ctx: CommandContext, pairs: dict[str, str], pattern: str) -> dict[str, str]:
    """A `rival` rule's values as stored: its models named by their keys (resolved as `model` resolves a
    name: prefixes, aliases, did-you-mean), its rival a group as it is, its boards the pattern subscribed
    to unless given."""
    models = ctx.snapshots.derived(ctx.db, "current_models", lambda: current_models(ctx.db))
    out = dict(pairs)
    if "model" in pairs:
        out["model"] = resolve_model(ctx, pairs["model"], models)
    if "rival" in pairs and pairs["rival"].lower() not in ctx.groups:
        out["rival"] = resolve_model(ctx, pairs["rival"], models)
    out.setdefault("boards", pattern)
    return out


def build_rules(ctx: CommandContext, words: list[str], pattern: str = "*") -> list[Rule]:
    """`[RULE ...] [KEY=VALUE ...]` as rules for the boards of `pattern`; no RULE means the default set."""
    kinds: list[str] = []
    pairs: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep:
            key = key.strip().lower()
            if not key or not value.strip():
                raise usage_error("subscribe", f"`{word}` should be KEY=VALUE, e.g. `top=5`.")
            if key in pairs:
                raise usage_error("subscribe", f"`{key}` is given twice.")
            pairs[key] = value.strip()
        elif word.lower() in KINDS:
            if word.lower() not in kinds:
                kinds.append(word.lower())
        else:
            raise usage_error("subscribe", f"{did_you_mean(word.lower(), KINDS, 'rule')} "
                                           f"Rules: {', '.join(KINDS)}.")
    bases = [(k, {}) for k in kinds] if kinds else [(r.kind, raw_params(r)) for r in ctx.default_rules]
    takes = {kind: {p.name for p in params_of(kind)} for kind, _ in bases}
    for key in pairs:
        if not any(key in names for names in takes.values()):
            listed = "; ".join(f"{kind} takes {', '.join(sorted(names)) or 'none'}"
                               for kind, names in takes.items())
            raise usage_error("subscribe", f"No rule here takes `{key}` ({listed}).")
    rules: list[Rule] = []
    for kind, raw in bases:
        given = {k: v for k, v in pairs.items() if k in takes[kind]}
        params = {**raw, **(rival_values(ctx, given, pattern) if kind == "rival" else given)}
        try:
            rule = make_rule(kind, params, list(ctx.groups))
        except RuleError as exc:
            raise usage_error("subscribe", f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None
        # The name is what is stored and parsed again on every snapshot: it must read back the same.
        try:
            again = parse_rule(rule.name, list(ctx.groups))
        except RuleError:
            again = None
        if again is None or again.name != rule.name:
            raise usage_error("subscribe", f"`{rule.name}` cannot be stored: values cannot contain spaces "
                                           "(give a model's key, e.g. `model=gpt-4o`).")
        if rule.name not in (r.name for r in rules):
            rules.append(rule)
    return rules


SUBSCRIPTION_CAP = ("This channel follows {have} and would follow {total} with {new}; a channel may "
                    "follow at most {cap}. Unsubscribe from what it no longer needs (`/leaderwatch "
                    "settings` lists them, `/leaderwatch unsubscribe BOARD_PATTERN` removes them), or ask "
                    "the operator to raise the limit (`LEADERWATCH_MAX_SUBSCRIPTIONS`, or "
                    "`max_subscriptions` in leaderwatch.toml).")


def check_cap(ctx: CommandContext, inv: Invocation, pattern: str, rules: list[Rule]) -> None:
    """Refuse (UserError) rules that would take the channel past `ctx.max_subscriptions`: each rule a
    channel follows may queue an alert per board at every poll."""
    active = channel_subscriptions(ctx.db, inv.platform, inv.channel_id)
    followed = {(str(r["board_pattern"]), str(r["rule"])) for r in active}
    new = [r for r in rules if (pattern, r.name) not in followed]
    if new and len(active) + len(new) > ctx.max_subscriptions:
        raise UserError(SUBSCRIPTION_CAP.format(
            have=plural(len(active), "rule"), total=len(active) + len(new), new=plural(len(new), "more rule"),
            cap=ctx.max_subscriptions))


@command("subscribe", "subscribe BOARD_PATTERN [RULE ...] [KEY=VALUE ...]", configures=True)
async def subscribe_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Post alerts from the boards matching a pattern to this channel, by the rules given.

    Patterns: a board (`lmarena/text`, or a unique prefix) or a glob (`lmarena/*`, `*`). Rules:
    `/leaderwatch help` lists them; with none, the default rule set. KEY=VALUE pairs go to every
    listed rule that takes them:
    `/leaderwatch subscribe lmarena/* overtake top_n top=5 groups=china,west confidence=clear`.
    `/leaderwatch help RULE` lists a rule's parameters. `/leaderwatch subscribe report weekly` posts
    the race report (`/leaderwatch help report`) every Monday at the channel's `digest_hour`.
    """
    if not args:
        raise usage_error("subscribe", "Which boards? Give a board or a pattern such as `lmarena/*`.")
    if args[0].lower() == REPORT:
        return set_report(ctx, inv, args[1:])
    pattern, matched = resolve_pattern(ctx, args[0])
    rules = build_rules(ctx, args[1:], pattern)
    check_cap(ctx, inv, pattern, rules)
    now = ctx.clock()
    added = [r for r in rules if add_subscription(ctx.db, inv.platform, inv.channel_id, pattern, r.name,
                                                  inv.user_id, now)]
    where = f"`{pattern}`" + (f" ({plural(len(matched), 'board')})" if pattern != matched[0] else "")
    if not added:
        return Reply(text=f"This channel already follows {where} with {code(r.name for r in rules)}. "
                          "Nothing changed.", ephemeral=True)
    audit(ctx, inv, "subscribe", f"{pattern}: {'; '.join(r.name for r in added)}")
    lines = [f"• `{r.name}`: {KIND_HELP[r.kind]}" for r in added]
    kept = [r.name for r in rules if r not in added]
    if kept:
        lines.append(f"Already followed: {code(kept)}.")
    return Reply(title="Subscribed",
                 text=f"This channel now follows {where} with {plural(len(added), 'rule')}:\n"
                      + "\n".join(lines))


@command("unsubscribe", "unsubscribe BOARD_PATTERN|all", configures=True)
async def unsubscribe_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Stop posting alerts from a board pattern (every rule on it), or from everything with `all`."""
    if len(args) != 1:
        raise usage_error("unsubscribe", "Give one board pattern, or `all`.")
    word = args[0].strip().lower()
    if word == REPORT:
        return set_report(ctx, inv, ["off"])
    rows = channel_subscriptions(ctx.db, inv.platform, inv.channel_id, include_disabled=True)
    patterns = sorted({str(r["board_pattern"]) for r in rows})
    if not patterns:
        raise UserError("This channel follows nothing, so there is nothing to unsubscribe from.")
    if word == "all":
        count = remove_subscriptions(ctx.db, inv.platform, inv.channel_id, None)
        audit(ctx, inv, "unsubscribe", f"all: {plural(count, 'rule')}")
        return Reply(title="Unsubscribed",
                     text=f"This channel no longer follows anything ({plural(count, 'rule')} removed).")
    pattern = word
    if pattern not in patterns and not GLOB.search(word):
        try:
            pattern = resolve_board(ctx, word)
        except UserError:
            pass
    if pattern not in patterns:
        raise UserError(f"This channel does not follow `{word}`.{close_matches(word, patterns)} "
                        f"It follows {code(patterns)}.")
    count = remove_subscriptions(ctx.db, inv.platform, inv.channel_id, pattern)
    audit(ctx, inv, "unsubscribe", f"{pattern}: {plural(count, 'rule')}")
    return Reply(title="Unsubscribed",
                 text=f"This channel no longer follows `{pattern}` ({plural(count, 'rule')} removed).")


REPORT = "report"
"""`subscribe report weekly`: the word that names the race report where a board pattern would stand."""


def describe_report(settings: dict[str, str]) -> str:
    """`off`, or `weekly, Mondays at 09:00 UTC`."""
    if settings.get(REPORT) != "weekly":
        return "off"
    return f"weekly, Mondays at {digest_hour(settings):02d}:00 UTC"


def set_report(ctx: CommandContext, inv: Invocation, words: list[str]) -> Reply:
    """`subscribe report weekly|off` (and `unsubscribe report`): the channel's weekly race report."""
    kind = words[0].lower() if len(words) == 1 else ""
    if kind not in ("weekly", "off"):
        raise usage_error("subscribe", "The race report is `weekly` (or `off`): "
                                       "`/leaderwatch subscribe report weekly`.")
    settings = channel_settings(ctx.db, inv.platform, inv.channel_id)
    old = "weekly" if settings.get(REPORT) == "weekly" else "off"
    if kind == old:
        return Reply(text=f"The race report is already {describe_report(settings)} here. Nothing changed.",
                     ephemeral=True)
    set_channel_setting(ctx.db, inv.platform, inv.channel_id, REPORT, "weekly" if kind == "weekly" else None,
                        ctx.clock())
    audit(ctx, inv, "report", f"{kind} (was {old})")
    if kind == "off":
        return Reply(title="Race report off", text="This channel no longer gets the weekly race report.")
    settings[REPORT] = "weekly"
    return Reply(title="Race report on",
                 text=f"This channel gets the race report {describe_report(settings)} "
                      "(`/leaderwatch set digest_hour H` changes the hour; `/leaderwatch report` shows it "
                      "now).")


def digest_hour(settings: dict[str, str]) -> int:
    """The channel's `digest_hour` (the hour of its digest and its weekly report), 0-23 UTC."""
    hour = whole_number(settings.get("digest_hour", ""))
    return DIGEST_HOUR if hour is None or hour > 23 else hour


def describe_digest(settings: dict[str, str]) -> str:
    """`off`, `daily at 09:00 UTC`, `weekly, Mondays at 09:00 UTC`."""
    kind = settings.get("digest")
    hour = digest_hour(settings)
    if kind == "daily":
        return f"daily at {hour:02d}:00 UTC"
    if kind == "weekly":
        return f"weekly, Mondays at {hour:02d}:00 UTC"
    return "off"


def describe_mutes(settings: dict[str, str], now: datetime) -> str:
    """`muted until 2025-02-06 10:00 UTC` (the channel), then each muted board pattern; `not muted`."""
    lines = []
    until = muted_until(settings, now)
    if until is not None:
        lines.append(f"muted until {moment(until)}")
    lines += [f"`{p}` muted until {moment(t)}" for p, t in sorted(board_mutes(settings, now).items())]
    return "\n".join(lines) or "not muted"


@command("settings", "settings", configures=True)
async def settings_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Show everything this channel follows, every threshold, its defaults, mute and digest."""
    if args:
        raise usage_error("settings", "`settings` takes no arguments.")
    now = ctx.clock()
    rows = channel_subscriptions(ctx.db, inv.platform, inv.channel_id, include_disabled=True)
    settings = channel_settings(ctx.db, inv.platform, inv.channel_id)
    active = [r for r in rows if r["disabled_at"] is None]
    ids = board_ids(ctx)
    fields: list[Field] = []
    by_pattern: dict[str, list[str]] = {}
    for r in active:
        by_pattern.setdefault(str(r["board_pattern"]), []).append(str(r["rule"]))
    for pattern, names in sorted(by_pattern.items()):
        boards = sum(1 for b in ids if board_matches(pattern, b, ctx.suites))
        fields.append(Field(f"{pattern} ({plural(boards, 'board')})", "\n".join(f"`{n}`" for n in names),
                            inline=False))
    if not by_pattern:
        fields.append(Field("Subscriptions", "none yet: `/leaderwatch subscribe BOARD_PATTERN [RULE ...]`",
                            inline=False))
    disabled = [r for r in rows if r["disabled_at"] is not None]
    if disabled:
        fields.append(Field("Disabled", "\n".join(
            f"`{r['board_pattern']}` `{r['rule']}` since {day(datetime.fromisoformat(str(r['disabled_at'])))}"
            f": {r['disabled_reason'] or 'no reason recorded'}" for r in disabled), inline=False))
    for key, spec in SETTINGS.items():
        value = settings.get(key)
        shown = value if value else f"{spec.default(ctx)} (default)"
        fields.append(Field(f"{key} ({spec.help})", shown))
    fields.append(Field("Digest", describe_digest(settings)))
    fields.append(Field("Race report", describe_report(settings)))
    fields.append(Field("Mute", describe_mutes(settings, now), inline=False))
    fields.append(Field("Default rules (subscribe with no RULE)", code(r.name for r in ctx.default_rules),
                        inline=False))
    trail = audit_trail(ctx.db, inv.platform, inv.channel_id, limit=5)
    if trail:
        fields.append(Field("Recent changes", "\n".join(
            f"{moment(datetime.fromisoformat(str(a['at'])))} {a['user_name']} ({a['platform']}): "
            f"{a['action']} {a['detail']}" for a in trail), inline=False))
    return Reply(title="Settings of this channel",
                 text=f"Follows {plural(len(by_pattern), 'board pattern')} with "
                      f"{plural(len(active), 'rule')}.",
                 fields=tuple(fields), ephemeral=True)


@dataclass(frozen=True, slots=True)
class Setting:
    """A channel default: what it is for, how to read a value, and its default."""

    help: str
    parse: Callable[[CommandContext, str], str]
    default: Callable[[CommandContext], str]


def _groups(ctx: CommandContext, value: str) -> str:
    names = [resolve_group(ctx.groups, w) for w in re.split(r"[,\s]+", value) if w]
    if len(set(names)) < 2 or len(set(names)) != len(names):
        raise usage_error("set", f"`groups` takes two or more different groups, e.g. `china,west` "
                                 f"(groups: {', '.join(sorted(ctx.groups))}).")
    return ",".join(names)


def _hour(ctx: CommandContext, value: str) -> str:
    hour = whole_number(value)
    if hour is None or not 0 <= hour <= 23:
        raise usage_error("set", f"`digest_hour` is an hour from 0 to 23 (UTC), not `{value}`.")
    return str(hour)


def _top(ctx: CommandContext, value: str) -> str:
    n = whole_number(value)
    if n is None or not 1 <= n <= MAX_TOP:
        raise usage_error("set", f"`top` is a number from 1 to {MAX_TOP}, not `{value}`.")
    return str(n)


def _on_off(ctx: CommandContext, value: str) -> str:
    word = value.strip().lower()
    if word not in ("on", "off"):
        raise usage_error("set", f"`charts` is on or off, not `{value}`.")
    return word


SETTINGS = {
    "groups": Setting("the groups `race` compares", _groups, lambda ctx: ",".join(default_groups(ctx))),
    "digest_hour": Setting("the hour of the digest, UTC", _hour, lambda ctx: str(DIGEST_HOUR)),
    "top": Setting("the N of `top` when none is given", _top, lambda ctx: str(DEFAULT_TOP)),
    "charts": Setting("a chart under overtake and new #1 alerts", _on_off, lambda ctx: "on"),
}


@command("set", "set KEY VALUE", configures=True)
async def set_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Change a channel default: `groups` (race, chart), `digest_hour` (0-23 UTC), `top`, `charts` (on|off).

    `/leaderwatch set groups china,us,europe`; `default` as VALUE goes back to the default.
    """
    if len(args) < 2:
        raise usage_error("set", f"Give a setting ({', '.join(SETTINGS)}) and a value.")
    key = args[0].lower()
    if key not in SETTINGS:
        raise usage_error("set", f"{did_you_mean(key, list(SETTINGS), 'setting')} "
                                 f"Settings: {', '.join(SETTINGS)}.")
    spec = SETTINGS[key]
    text = " ".join(args[1:])
    if len(args) > 2 and key != "groups":
        raise usage_error("set", f"`{key}` takes one value.")
    value = None if text.lower() == "default" else spec.parse(ctx, text)
    old = channel_settings(ctx.db, inv.platform, inv.channel_id).get(key)
    shown = value or f"{spec.default(ctx)} (default)"
    if value == old:
        return Reply(text=f"`{key}` is already {shown}. Nothing changed.", ephemeral=True)
    set_channel_setting(ctx.db, inv.platform, inv.channel_id, key, value, ctx.clock())
    audit(ctx, inv, "set", f"{key}={value or 'default'} (was {old or 'default'})")
    return Reply(title="Setting changed", text=f"`{key}` is now {shown} for this channel.")


def parse_mute(word: str) -> timedelta:
    """`90s`, `30m`, `1.5h`, `2d`, `1w` (the one duration grammar): more than nothing, at most 30 days."""
    try:
        return parse_duration(word, maximum=MAX_MUTE)
    except DurationError as exc:
        raise usage_error("mute", f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None


def is_duration(word: str) -> bool:
    """Whether a word reads as a duration (`7d`), so `mute` can take its two words in either order."""
    try:
        parse_duration(word)
    except DurationError:
        return False
    return True


def mute_words(args: list[str]) -> tuple[str, str | None]:
    """`mute`'s words as (duration, board pattern or None): `7d`, `lmarena/text 7d` or `7d lmarena/text`."""
    if not args:
        raise usage_error("mute", "Give how long, e.g. 2h.")
    if len(args) == 1:
        return args[0], None
    if len(args) == 2:
        if is_duration(args[1]) or not is_duration(args[0]):
            return args[1], args[0]
        return args[0], args[1]
    raise usage_error("mute", "Give how long, e.g. `2h`, and optionally which boards: `lmarena/text 7d`.")


@command("mute", "mute DURATION [BOARD_PATTERN]", configures=True)
async def mute_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Hold this channel's alerts a while, or only some boards' (90s, 30m, 1.5h, 2d, 1w; at most 30d).

    `/leaderwatch mute 2h` mutes the channel; `/leaderwatch mute lmarena/text 7d` (or `mute 7d lmarena/*`,
    or a suite) mutes those boards only. Alerts found meanwhile are kept and posted when the mute
    ends, or at `/leaderwatch unmute` (`unmute lmarena/text` for a board's).
    """
    word, target = mute_words(args)
    now = ctx.clock()
    until = now + parse_mute(word)
    if target is None:
        set_channel_setting(ctx.db, inv.platform, inv.channel_id, MUTE, to_text(until), now)
        audit(ctx, inv, "mute", f"until {to_text(until)}")
        return Reply(title="Muted",
                     text=f"This channel is muted until {moment(until)}. Alerts found meanwhile are kept and "
                          "posted when the mute ends, or at `/leaderwatch unmute`.")
    pattern, matched = resolve_pattern(ctx, target)
    set_channel_setting(ctx.db, inv.platform, inv.channel_id, f"{MUTE}:{pattern}", to_text(until), now)
    audit(ctx, inv, "mute", f"{pattern} until {to_text(until)}")
    where = f"`{pattern}`" + (f" ({plural(len(matched), 'board')})" if pattern != matched[0] else "")
    return Reply(title="Board muted",
                 text=f"{where} is muted in this channel until {moment(until)}. Its alerts found meanwhile "
                      f"are kept and posted when the mute ends, or at `/leaderwatch unmute {pattern}`; "
                      "alerts from other boards arrive as usual.")


@command("unmute", "unmute [BOARD_PATTERN|all]", configures=True)
async def unmute_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """End this channel's mute now, or a muted board pattern's, or every mute (`all`); held alerts follow.

    `/leaderwatch unmute`, `/leaderwatch unmute lmarena/text`, `/leaderwatch unmute all`
    """
    if len(args) > 1:
        raise usage_error("unmute", "Give at most one board pattern, or `all`.")
    now = ctx.clock()
    settings = channel_settings(ctx.db, inv.platform, inv.channel_id)
    boards = board_mutes(settings, now)
    channel = muted_until(settings, now) is not None
    word = args[0].strip().lower() if args else ""
    if word == "all":
        ended = ([MUTE] if channel else []) + [f"{MUTE}:{p}" for p in boards]
        if not ended:
            return Reply(text="Nothing is muted in this channel. Nothing changed.", ephemeral=True)
        what = "every mute of this channel"
    elif word:
        pattern = word if word in boards else _muted_board(ctx, word, boards)
        ended, what = [f"{MUTE}:{pattern}"], f"the mute of `{pattern}`"
    else:
        if not channel:
            others = (f" Muted boards: {code(sorted(boards))}; `/leaderwatch unmute BOARD_PATTERN` or "
                      "`unmute all` ends them." if boards else "")
            return Reply(text=f"This channel is not muted. Nothing changed.{others}", ephemeral=True)
        ended, what = [MUTE], "the channel's mute"
    for key in ended:
        set_channel_setting(ctx.db, inv.platform, inv.channel_id, key, None, now)
        settings.pop(key, None)
    if ended == [MUTE]:
        what = "This channel is no longer muted."
    else:
        what = f"Ended {what}."
    released = outbox.rehold(ctx.db, inv.platform, inv.channel_id, now,
                             lambda board: muted_until(settings, now, board, ctx.suites))
    audit(ctx, inv, "unmute", (f"{word}: " if word else "") + f"{plural(released, 'held alert')} released")
    held = (f"{plural(released, 'held alert')} will be posted now." if released
            else "No alert was waiting for it.")
    return Reply(title="Unmuted", text=f"{what} {held}")


def _muted_board(ctx: CommandContext, word: str, boards: dict[str, datetime]) -> str:
    """The muted pattern `word` names (a board by prefix or name too), or a UserError listing them."""
    try:
        pattern = resolve_pattern(ctx, word)[0]
    except UserError:
        pattern = word
    if pattern in boards:
        return pattern
    listed = f" Muted here: {code(sorted(boards))}." if boards else " No board is muted here."
    raise UserError(f"`{word}` is not muted in this channel.{close_matches(word, list(boards))}{listed}")


@command("digest", "digest off|daily|weekly", configures=True)
async def digest_command(ctx: CommandContext, inv: Invocation, args: list[str]) -> Reply:
    """Collect this channel's alerts into one message a day or a week, or post them as they come (off).

    Digests go out at 09:00 UTC (Mondays for weekly); `/leaderwatch set digest_hour H` changes the hour.
    """
    if len(args) != 1 or args[0].lower() not in ("off", "daily", "weekly"):
        raise usage_error("digest", "Choose off, daily or weekly.")
    kind = args[0].lower()
    settings = channel_settings(ctx.db, inv.platform, inv.channel_id)
    old = settings.get("digest", "off")
    if kind == old:
        return Reply(text=f"The digest is already {kind}. Nothing changed.", ephemeral=True)
    set_channel_setting(ctx.db, inv.platform, inv.channel_id, "digest", None if kind == "off" else kind,
                        ctx.clock())
    audit(ctx, inv, "digest", f"{kind} (was {old})")
    if kind == "off":
        # Alerts already waiting for the digest go out now (or when a mute ends), one by one.
        settings.pop("digest", None)
        now = ctx.clock()
        waiting = outbox.release_digest(ctx.db, inv.platform, inv.channel_id, now,
                                        lambda board: muted_until(settings, now, board, ctx.suites))
        sent = f" The {waiting} alert(s) waiting for the digest follow now." if waiting else ""
        return Reply(title="Digest off", text=f"Alerts are posted to this channel as they happen.{sent}")
    settings["digest"] = kind
    return Reply(title="Digest on",
                 text=f"Alerts for this channel are now collected into one digest, "
                      f"{describe_digest(settings)}. `/leaderwatch set digest_hour H` changes the hour.")
