"""`mmpkg repo ...`: what each repository command prints (text, or JSON with --json)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from mmpkg.cli.output import quiet
from mmpkg.errors import RepoError
from mmpkg.repo import commands
from mmpkg.repo.clients import ClientFormat
from mmpkg.repo.keys import KeyInfo
from mmpkg.repo.packages import Entry
from mmpkg.repo.remote.publishing import Plan


def run_add(args: argparse.Namespace) -> None:
    result = commands.add(
        args.repo,
        args.packages,
        channel=args.channel,
        keep=args.keep,
        key=args.sign_key,
        dry_run=args.dry_run,
    )
    # A dry run's preview is what it was run to show: printed whatever -q says.
    if quiet(args) and not args.dry_run:
        return
    # A new file retention drops at once was never in the channel: not "pruned" from it.
    changes = {"added": result.added, "pruned": result.withdrawn, "not added": result.dropped}
    facts: dict[str, object] = {"keep": result.keep}
    _entries(args.channel, changes, args.json, verb="added", dry_run=args.dry_run, facts=facts)
    if result.dropped and not args.json:
        print(
            f"{'would not be' if args.dry_run else 'not'} added: older than the newest {result.keep} "
            f"versions channel {args.channel} keeps, and no stop of upstream's upgrade path "
            "(--keep N keeps more)"
        )


def run_promote(args: argparse.Namespace) -> None:
    result = commands.promote(
        args.repo,
        args.version,
        source=args.source,
        target=args.target,
        after=args.after,
        keep=args.keep,
        key=args.sign_key,
        phased=args.phased,
        dry_run=args.dry_run,
    )
    if quiet(args) and not args.dry_run:
        return
    changes = {"promoted": result.added, "pruned": result.withdrawn}
    facts: dict[str, object] = {"from": args.source, "keep": result.keep}
    _entries(args.target, changes, args.json, verb="promoted", dry_run=args.dry_run, facts=facts)


def run_phase(args: argparse.Namespace) -> None:
    commands.phase(args.repo, args.percentage, channel=args.channel, key=args.sign_key)
    if not quiet(args):
        share = "every apt server" if args.percentage == 100 else f"{args.percentage}% of apt servers"
        print(f"{args.channel}: its newest versions are offered to {share}")


def run_remove(args: argparse.Namespace) -> None:
    gone = commands.remove(args.repo, args.name, args.version, channel=args.channel, key=args.sign_key)
    if quiet(args):
        return
    _entries(args.channel, {"removed": gone}, args.json, verb="removed")


def run_list(args: argparse.Namespace) -> None:
    _listing(commands.listing(args.repo, channel=args.channel), args.json)


def run_check(args: argparse.Namespace) -> None:
    problems = commands.check(args.repo, deep=args.deep, endpoint_url=args.endpoint_url)
    if args.json:
        print(json.dumps({"problems": problems}, indent=2))
    else:
        for problem in problems:
            print(problem)
    if problems:
        raise RepoError(f"{len(problems)} problem(s) found; see above")


def run_publish(args: argparse.Namespace) -> None:
    done = commands.publish(
        args.repo,
        args.dest,
        keep=args.keep_generations,
        jobs=args.jobs,
        endpoint_url=args.endpoint_url,
        dry_run=args.dry_run,
    )
    if quiet(args) and not args.dry_run:
        return
    print_publish(done, dest=args.dest, as_json=args.json, dry_run=args.dry_run)


def print_publish(done: Plan, *, dest: str, as_json: bool, dry_run: bool, summary_only: bool = False) -> None:
    """What a publish sent (or, dry, would send) and deleted: `repo publish` and `sync --publish`."""
    if as_json:
        print(json.dumps(publish_facts(done, dest=dest, dry_run=dry_run), indent=2))
        return
    verb = "would send" if dry_run else "sent"
    for kind, step in [] if summary_only else done.steps:
        for f in step:
            print(f"{verb} {f.key} ({kind.value}, {f.size} bytes)")
    for key in [] if summary_only else done.delete:
        print(f"{'would delete' if dry_run else 'deleted'} {key}")
    print(
        f"{dest}: {verb} {len(done.uploads)} object(s), {done.bytes} bytes; {done.unchanged} unchanged; "
        f"{'would delete' if dry_run else 'deleted'} {len(done.delete)}; {done.waiting} kept for clients of "
        f"earlier indices (publish {done.number})"
    )


def publish_facts(done: Plan, *, dest: str, dry_run: bool) -> dict[str, object]:
    return {
        "dest": dest,
        "publish": done.number,
        "sent": [
            {"key": f.key, "kind": f.kind.value, "size": f.size, "sha256": f.sha256} for f in done.uploads
        ],
        "bytes": done.bytes,
        "deleted": done.delete,
        "waiting": done.waiting,
        "unchanged": done.unchanged,
        "dry_run": dry_run,
    }


def run_config(args: argparse.Namespace) -> None:
    """Each channel's retention; with --keep, after storing it (a change: quiet with -q)."""
    found = commands.config(args.repo, channel=args.channel, keep=args.keep)
    if args.keep is not None and quiet(args):
        return
    if args.json:
        print(json.dumps({c: asdict(conf) for c, conf in found.items()}, indent=2))
        return
    for channel, conf in found.items():
        print(f"{channel:8} keep {conf.keep} ({'stored' if conf.stored else 'default'})")


def run_export_key(args: argparse.Namespace) -> None:
    print(commands.export_key(args.repo), end="")


def run_keys(args: argparse.Namespace) -> None:
    _keys(commands.keys(args.repo), args.json)


def run_add_key(args: argparse.Namespace) -> None:
    new: str | Path = Path(args.key) if Path(args.key).is_file() else args.key
    found = commands.add_key(args.repo, new, key=args.sign_key)
    if not quiet(args):
        _keys(found, args.json)


def run_retire_key(args: argparse.Namespace) -> None:
    found = commands.retire_key(args.repo, args.key, key=args.sign_key)
    if not quiet(args):
        _keys(found, args.json)


def run_client_config(args: argparse.Namespace) -> None:
    fmt = ClientFormat(args.format)
    if args.commands:
        command = commands.setup_command(args.url, channel=args.channel, fmt=fmt, unattended=args.unattended)
        if args.json:
            print(json.dumps([command], indent=2))  # a list of commands, as before: it holds the one
        else:
            print(command, end="")
        return
    snippets = commands.client_config(args.url, channel=args.channel, fmt=fmt, unattended=args.unattended)
    if args.json:
        print(json.dumps([asdict(s) for s in snippets], indent=2))
    else:
        print("\n".join(f"# {s.path}\n{s.text}" for s in snippets), end="")


def _keys(found: list[KeyInfo], as_json: bool) -> None:
    """The key set after the command: one line per key, the signing one marked."""
    if as_json:
        rows = [
            asdict(k) | {"created": k.created.isoformat(), "expires": k.expires and k.expires.isoformat()}
            for k in found
        ]
        print(json.dumps(rows, indent=2))
        return
    for k in found:
        expires = f"expires {k.expires.date()}" if k.expires else "never expires"
        mark = "  (signs)" if k.signing else ""
        print(f"{k.fingerprint}  {k.uid}  created {k.created.date()}, {expires}{mark}")


def entry_facts(e: Entry) -> dict[str, str]:
    return {"name": e.name, "version": e.version, "arch": e.arch, "format": e.format, "path": str(e.path)}


# What a dry run says of each file, in place of the verb of the change it previews.
WOULD = {
    "added": "would add",
    "pruned": "would prune",
    "not added": "would not add",
    "promoted": "would promote",
}


def _entries(
    channel: str,
    changes: dict[str, list[Entry]],
    as_json: bool,
    *,
    verb: str,
    dry_run: bool = False,
    facts: dict[str, object] | None = None,
) -> None:
    """One line per file that changed ("added pool/stable/...deb", "pruned ..."), or would
    ("would prune ..."), or JSON of the same with the other `facts`."""
    if as_json:
        report: dict[str, object] = {"channel": channel}
        report |= {k.replace(" ", "_"): [entry_facts(e) for e in v] for k, v in changes.items()}
        report |= (facts or {}) | ({"dry_run": True} if dry_run else {})
        print(json.dumps(report, indent=2))
        return
    for key, entries in changes.items():
        for e in entries:
            print(f"{WOULD[key] if dry_run else key} {e.path}")
    if not changes[verb] and not changes.get("not added"):
        would = "would be " if dry_run else ""
        print(f"nothing {would}{verb}: channel {channel} already had every package")


def _listing(channels: dict[str, list[Entry]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({c: [entry_facts(e) for e in es] for c, es in channels.items()}, indent=2))
        return
    for channel, entries in channels.items():
        for e in entries:
            print(f"{channel:8} {e.name:28} {e.format:3} {e.arch:7} {e.version:14} {e.path}")
