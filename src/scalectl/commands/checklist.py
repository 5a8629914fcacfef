"""`scalectl checklist pre | deploy | post | FILE`: deployment checklists that verify
themselves, ask a person the rest, and resume where they stopped."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

import typer

from scalectl.commands.common import DefaultHelpGroup, output_of
from scalectl.errors import CheckFailed, InputError
from scalectl.output import Output

if TYPE_CHECKING:
    from scalectl.checklist import Ask, Checklist
    from scalectl.checklist.model import AnswerSpec, ChecklistResult, ItemResult


class _ChecklistGroup(DefaultHelpGroup):
    """`scalectl checklist pre` is `scalectl checklist run pre`."""

    default = "run"


app = typer.Typer(
    cls=_ChecklistGroup,
    help="Deployment checklists (pre, deploy, post, or your own) that verify themselves.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("run")
def run_command(
    ctx: typer.Context,
    checklist: str = typer.Argument(
        ..., metavar="NAME|FILE", help="pre, deploy, post, or a checklist YAML file."
    ),
    plan: Path | None = typer.Option(
        None,
        "--plan",
        help="Capacity plan (default: the running stack's; without either, items that "
        "need a plan fail).",
    ),
    state_dir: Path = typer.Option(
        Path(".scalectl/stack"), "--state-dir", help="The local stack to verify against."
    ),
    report_dir: Path = typer.Option(
        Path("loadtest-report"), "--report-dir", help="Where the latest loadtest report is."
    ),
    answers: Path | None = typer.Option(
        None, "--answers", help="YAML answers for the manual items: id: {answer: yes, by, note}."
    ),
    who: str | None = typer.Option(
        None, "--who", help="Who answers the manual items (default: $USER)."
    ),
    no_input: bool = typer.Option(
        False, "--no-input", help="Never prompt, even at a terminal (unanswered items fail)."
    ),
    recheck: bool = typer.Option(
        False, "--recheck", help="Check every item again, even ones that passed recently."
    ),
    reset: bool = typer.Option(False, "--reset", help="Discard saved progress and start over."),
    progress_dir: Path = typer.Option(
        Path(".scalectl/checklists"), "--progress-dir", help="Where progress is saved."
    ),
    markdown: Path | None = typer.Option(
        None, "--markdown", help="Also write the result as Markdown (for a pull request)."
    ),
    target: str | None = typer.Option(
        None,
        "--target",
        metavar="URL",
        help="Check the deployment at this public URL instead of the local stack (needs "
        "--plan); items that need the local stack are skipped.",
    ),
    prometheus: str | None = typer.Option(
        None,
        "--prometheus",
        metavar="URL",
        help="The deployment's Prometheus: monitoring and SLO items read its HTTP API.",
    ),
    token_env: str | None = typer.Option(
        None,
        "--token-env",
        metavar="NAME",
        help="Send 'Authorization: Bearer $NAME' to --target (never printed).",
    ),
    prometheus_token_env: str | None = typer.Option(
        None,
        "--prometheus-token-env",
        metavar="NAME",
        help="Send 'Authorization: Bearer $NAME' to --prometheus (never printed).",
    ),
    health_config: Path | None = typer.Option(
        None,
        "--health-config",
        help="With --target: the health item probes this `scalectl health` config's endpoints.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON result on stdout."),
) -> None:
    """Verify every item that can be verified, ask about the rest, and show the evidence.

    Exit 0 when every required item passes, 1 otherwise (a skipped item has not passed),
    2 on bad input. With --target and --prometheus the live items check a deployment
    elsewhere (docs/checklist.md, "Against a real deployment").

    Example: scalectl checklist pre --plan examples/reference-app.yaml --answers answers.yaml
    """
    from scalectl.checklist import run_checklist
    from scalectl.checklist.export import to_json, to_markdown
    from scalectl.checklist.progress import progress_file
    from scalectl.checklist.verifiers import Context
    from scalectl.files import write_file

    output = output_of(ctx, json_out)
    from scalectl.checklist.remote import remote_from_flags

    remote, remote_problems = remote_from_flags(
        target=target,
        prometheus=prometheus,
        token_env=token_env,
        prometheus_token_env=prometheus_token_env,
        health_config=health_config,
        environ=output.environ,
    )
    if target is not None and plan is None:
        remote_problems.append(
            "--target: give --plan PLAN too (the deployment is checked against it)"
        )
    loaded, given = _inputs(checklist, answers, plan, progress_dir, markdown, remote_problems)
    person = who or output.environ.get("USER") or output.environ.get("LOGNAME") or "unknown"
    stdin = sys.stdin
    interactive = (
        not no_input
        and output.environ.get("CI", "").lower() != "true"
        and _isatty(stdin)
        and _isatty(output.stderr if output.json_mode else output.stdout)
    )
    context = Context(
        plan=plan,
        state_dir=state_dir,
        report_dir=report_dir,
        environ=output.environ,
        progress=output.info,
        remote=remote,
    )
    result = run_checklist(
        loaded,
        context,
        progress=progress_file(progress_dir, loaded.name),
        answers=given,
        ask=_prompter(output, stdin, person) if interactive else None,
        who=person,
        recheck=recheck,
        reset=reset,
        on_item=lambda item: _progress_line(output, item),
    )
    if markdown is not None:
        write_file(markdown, to_markdown(result).encode())
    if output.json_mode:
        output.emit_json(to_json(result))
    else:
        _print(output, result)
        if markdown is not None:
            output.info(f"wrote {markdown}")
    if not result.ok:
        ids = ", ".join(i.id for i in result.required_failures)
        count = len(result.required_failures)
        raise CheckFailed(
            f"checklist {result.name} is incomplete: {count} required "
            f"item{'s' if count != 1 else ''} not passed ({ids})"
        )


def _inputs(
    checklist: str,
    answers: Path | None,
    plan: Path | None,
    progress_dir: Path,
    markdown: Path | None,
    remote_problems: list[str],
) -> tuple[Checklist, dict[str, AnswerSpec] | None]:
    """Everything the run reads or writes, checked before any item runs; every problem
    reported at once (exit 2), nothing verified, nothing written."""
    from scalectl.checklist import load_answers, load_checklist
    from scalectl.checklist.outputs import directory_problem, file_problem

    errors: list[InputError] = []
    loaded = None
    try:
        loaded = load_checklist(checklist)
    except InputError as exc:
        errors.append(exc)
    given = None
    if answers is not None and loaded is not None:
        try:
            given = load_answers(answers, loaded)
        except InputError as exc:
            errors.append(exc)
    if plan is not None:
        from scalectl.plan.load import load_plan

        try:
            load_plan(plan)
        except InputError as exc:
            errors.append(InputError(f"--plan {exc.message}", lines=exc.lines))
    problems = [directory_problem("--progress-dir", progress_dir)]
    if markdown is not None:
        problems.append(file_problem("--markdown", markdown))
    errors += [InputError(p) for p in [*problems, *remote_problems] if p]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        lines = [line for e in errors for line in (e.message, *e.lines)]
        raise InputError(f"{len(errors)} problems in the input", lines=lines)
    assert loaded is not None
    return loaded, given


def _isatty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _progress_line(output: Output, item: ItemResult) -> None:
    from scalectl.checklist.export import status_word

    output.info(f"{item.id}: {status_word(item)}")


def _prompter(output: Output, stdin: IO[str], who: str) -> Ask:
    """Plain prompts (no rich): they must work in any terminal and under a pseudo-terminal."""
    from scalectl.checklist.model import Answer, ItemSpec
    from scalectl.checklist.run import iso

    stream = output.stderr if output.json_mode else output.stdout

    def say(text: str) -> None:
        stream.write(text)
        stream.flush()

    def ask(spec: ItemSpec, previous: Answer | None) -> Answer | None:
        say(f"\n? {spec.title} [{spec.id}]\n  {spec.ask}\n")
        if previous is not None:
            word = "yes" if previous.answer else "no"
            say(f"  (answered {word} by {previous.by} at {iso(previous.at)})\n")
        for _ in range(5):  # bounded: a stuck terminal cannot loop forever
            say("  answer [y]es / [n]o / [s]kip: ")
            line = stdin.readline()
            if not line:
                return None  # end of input: skipped
            word = line.strip().lower()
            if word in ("y", "yes", "n", "no"):
                say("  note (optional, Enter for none): ")
                note = stdin.readline().strip() or None
                return Answer(word.startswith("y"), who, time.time(), note, "prompt")
            if word in ("s", "skip"):
                return None
            say("  please answer y, n or s\n")
        return None

    return ask


def _print(output: Output, result: ChecklistResult) -> None:
    from rich.table import Table
    from rich.text import Text

    from scalectl.checklist.export import status_word

    table = Table(title=f"{result.title} ({result.name})", title_justify="left", show_lines=True)
    table.add_column("item")
    table.add_column("status")
    table.add_column("evidence")
    for item in result.items:
        style = "green" if item.status == "pass" else ("red" if item.required else "yellow")
        # Text, not markup: evidence quotes tool output, which may hold [brackets].
        table.add_row(
            Text(f"{item.title}\n{item.id}"),
            Text(status_word(item), style=style),
            Text("\n".join(item.evidence)),
        )
    output.console.print(table)
    good = sum(i.status == "pass" for i in result.items)
    verdict = "complete" if result.ok else "incomplete"
    skips = sum(i.status == "skipped" for i in result.items)
    note = f" ({skips} skipped)" if skips else ""
    output.info(
        f"checklist {result.name}: {verdict}, {good} of {len(result.items)} items pass{note}"
    )
    output.info(
        f"progress saved in {result.progress_file}: a rerun resumes "
        "(--recheck checks everything again, --reset starts over)"
    )


@app.command("list")
def list_command(
    ctx: typer.Context,
    checklists: list[str] = typer.Argument(
        None, metavar="[NAME|FILE]...", help="Checklists to show (default: the shipped ones)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON result on stdout."),
) -> None:
    """Show the items of the shipped checklists (or validate and show your own files).

    Example: scalectl checklist list my-checklist.yaml
    """
    from rich.table import Table

    from scalectl.checklist import SHIPPED, load_checklist
    from scalectl.checklist.verifiers import REGISTRY

    output = output_of(ctx, json_out)
    loaded = [load_checklist(name) for name in (checklists or SHIPPED)]
    if output.json_mode:
        output.emit_json(
            {
                "checklists": [
                    {
                        "name": c.name,
                        "title": c.spec.title,
                        "source": c.source,
                        "items": [
                            {
                                "id": i.spec.id,
                                "title": i.spec.title,
                                "kind": i.spec.kind,
                                "required": i.spec.required,
                            }
                            for i in c.items
                        ],
                    }
                    for c in loaded
                ],
                "kinds": {kind: v.about for kind, v in REGISTRY.items()},
            }
        )
        return
    for c in loaded:
        table = Table(title=f"{c.spec.title} ({c.name}; {c.source})", title_justify="left")
        table.add_column("id")
        table.add_column("item")
        table.add_column("checked by")
        for i in c.items:
            how = "a person" if i.spec.manual else f"verify: {i.spec.kind}"
            optional = "" if i.spec.required else " (optional)"
            table.add_row(i.spec.id, i.spec.title + optional, how)
        output.console.print(table)
