"""The pages a newcomer reads stay true: README.md, docs/*.md and CHANGELOG.md.

- every ``medsr-*`` command (and ``python -m medsr_se.<module>``, ``torchrun``) shown in a ``bash`` block or in an
  inline code span that starts with a command exists, and every ``--flag`` / ``-x`` given to it is in that command's
  ``--help`` (the argparse parsers run in-process through the ``console_scripts`` entry points of setup.py);
- every fenced block names its language, so a shell block cannot escape the check by being unmarked;
- every ``pip install`` installs from the clone (medsr-se is not on the package index) with extras setup.py has;
- every relative link resolves to a file, and every ``#anchor`` to a heading of that file;
- README.md stays at most 150 lines and its registry table names exactly what ``import medsr_se`` registers.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import io
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

import medsr_se  # noqa: F401  (registers into BasicSR's registries)

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "CHANGELOG.md"]
# pages whose links are checked too (their commands are BENCHMARKS.md's own scripts, not these docs')
LINKED_PAGES = [*PAGES, REPO / "BENCHMARKS.md", REPO / "datasets" / "README.md"]
README_MAX_LINES = 150
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
# flags a command reads before its argparse parser runs (medsr_se.train.run_pipeline); each is run below
EXTRA_FLAGS = {"medsr-train": {"--list-recipes"}, "medsr-test": {"--list-recipes"}}
# BasicSR's own scripts parse their arguments with the same basicsr.utils.options.parse_options as medsr-train / -test
BASICSR_SCRIPTS = {"basicsr/train.py": "medsr-train", "basicsr/test.py": "medsr-test"}
SEPARATORS = {"&&", "||", ";", "|"}
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
FENCE = re.compile(r"^\s*```(.*)$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`([^`]+)`")


# ---------------------------------------------------------------------------------------------------------- commands
@functools.cache
def console_scripts() -> dict[str, str]:
    """{command: 'module:function'} from setup.py's console_scripts (the source, not a possibly stale install)."""
    text = (REPO / "setup.py").read_text()
    return dict(re.findall(r'"(medsr-[\w-]+)=([\w.]+:\w+)"', text))


@functools.cache
def extras() -> frozenset[str]:
    """The extras of setup.py's extras_require (``pip install -e ".[medical]"``)."""
    text = (REPO / "setup.py").read_text()
    block = text.split("extras_require={", 1)[1].split("}", 1)[0]
    return frozenset(re.findall(r'"([\w-]+)":', block))


def install_problems(tokens: list[str], where: str) -> list[str]:
    """``pip install`` lines: medsr-se is not on the package index (install from a clone), and every extra of
    ``.[a,b]`` exists in setup.py."""
    problems = []
    for segment in split_segments(tokens):
        if segment[:2] == ["python", "-m"] or segment[:2] == ["python3", "-m"]:
            segment = segment[2:]
        if segment[:2] != ["pip", "install"]:
            continue
        for argument in segment[2:]:
            if re.match(r"medsr[-_]se\b", argument):
                problems.append(f"{where}: pip install {argument}: medsr-se is not on the package index; install "
                                f"from a clone (pip install -e . / pip install .)")
            match = re.fullmatch(r"\.\[([\w,-]+)\]", argument)
            unknown = sorted(set(match.group(1).split(",")) - extras()) if match else []
            if unknown:
                problems.append(f"{where}: pip install {argument}: setup.py has no extra {', '.join(unknown)}")
    return problems


def module_commands() -> dict[str, str]:
    """{module: command} for ``python -m module`` (``medsr_se.train`` -> ``medsr-train``)."""
    return {target.split(":")[0]: command for command, target in console_scripts().items()}


def help_text(main, argv0: str) -> str:
    """What ``main`` prints for ``--help``; ``main(argv)`` where it takes argv, else through ``sys.argv``."""
    out = io.StringIO()
    takes_argv = bool(inspect.signature(main).parameters)
    saved = sys.argv
    sys.argv = [argv0, "--help"]
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
            main(["--help"]) if takes_argv else main()
    finally:
        sys.argv = saved
    assert exit_info.value.code in (0, None), f"{argv0} --help exited with {exit_info.value.code}"
    return out.getvalue()


@functools.cache
def command_flags(command: str) -> frozenset[str]:
    """Every option string in ``command --help`` (plus EXTRA_FLAGS)."""
    if command == "torchrun":
        from torch.distributed.run import get_args_parser

        text = get_args_parser().format_help()
    else:
        module, function = console_scripts()[command].split(":")
        text = help_text(getattr(importlib.import_module(module), function), command)
    return frozenset(FLAG.findall(text)) | EXTRA_FLAGS.get(command, set())


def split_segments(tokens: list[str]) -> Iterator[list[str]]:
    segment: list[str] = []
    for token in tokens:
        if token in SEPARATORS:
            yield segment
            segment = []
        else:
            segment.append(token)
    yield segment


def invocations(tokens: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(command, its arguments) for each medsr command in a shell line; an unknown ``medsr-*`` / ``medsr_se.*`` is
    yielded as it is, so the check reports it. ``torchrun`` yields its own flags, then the module it runs."""
    scripts, modules = console_scripts(), module_commands()
    for segment in split_segments(tokens):
        while segment and re.fullmatch(r"\w+=\S*", segment[0]):  # VAR=value before the command
            segment = segment[1:]
        if segment[:1] == ["srun"]:  # srun's own flags are not checked (not a Python program)
            segment = segment[next((i for i, t in enumerate(segment) if t.startswith("python")), len(segment)):]
        if not segment:
            continue
        head = segment[0]
        if head.startswith("medsr-") or head in scripts:
            yield head, segment[1:]
        elif head in ("python", "python3") and len(segment) > 2 and segment[1] == "-m":
            if segment[2].startswith("medsr_se"):
                yield modules.get(segment[2], f"python -m {segment[2]}"), segment[3:]
        elif head in ("python", "python3") and len(segment) > 1 and segment[1] in BASICSR_SCRIPTS:
            yield BASICSR_SCRIPTS[segment[1]], segment[2:]
        elif head == "torchrun":
            end = segment.index("-m") if "-m" in segment else len(segment)
            yield "torchrun", segment[1:end]
            if end + 1 < len(segment):
                yield modules.get(segment[end + 1], f"python -m {segment[end + 1]}"), segment[end + 2:]


def command_problems(line: str, where: str) -> list[str]:
    """Unknown commands and flags in one shell line (comments and quoting as bash reads them)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:  # unbalanced quotes: an inline span of prose, not a command line
        tokens = line.split()
    problems = install_problems(tokens, where)
    for command, arguments in invocations(tokens):
        if command != "torchrun" and command not in console_scripts():
            problems.append(f"{where}: {command!r} is not a command of setup.py's console_scripts")
            continue
        known = command_flags(command)
        for argument in arguments:
            if argument == "--":
                break
            if FLAG.fullmatch(argument.split("=", 1)[0]) and argument.split("=", 1)[0] not in known:
                problems.append(f"{where}: {command} has no flag {argument.split('=', 1)[0]} (see {command} --help)")
    return problems


# ------------------------------------------------------------------------------------------------------- markdown
def fenced_blocks(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number of the opening fence, language, body with line continuations joined)."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        start, language, body = index + 1, match.group(1).strip(), []
        index += 1
        while index < len(lines) and not FENCE.match(lines[index]):
            body.append(lines[index])
            index += 1
        index += 1
        yield start, language, "\n".join(body).replace("\\\n", " ")


def prose(text: str) -> str:
    """The text outside fenced blocks (a fenced line becomes empty, so line numbers stay)."""
    kept, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            kept.append("")
        else:
            kept.append("" if inside else line)
    return "\n".join(kept)


def shown_commands(text: str, name: str) -> Iterator[tuple[str, str]]:
    """(where, shell line) for every line of a shell block and every inline code span."""
    for start, language, body in fenced_blocks(text):
        if language in SHELL_LANGUAGES:
            for offset, line in enumerate(body.splitlines(), 1):
                yield f"{name}:{start + offset}", line
    outside = prose(text)
    for match in INLINE_CODE.finditer(outside):
        yield f"{name}:{outside.count(chr(10), 0, match.start()) + 1}", match.group(1).replace("\n", " ")


def docs_command_problems(text: str, name: str) -> list[str]:
    problems = [f"{name}:{start}: a fenced block without a language (```bash, ```text, ```python ...)"
                for start, language, _ in fenced_blocks(text) if not language]
    for where, line in shown_commands(text, name):
        problems += command_problems(line, where)
    return problems


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in prose(path.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            base = slug(match.group(1))
            name, count = base, 0
            while name in found:  # GitHub numbers repeated headings: name, name-1, name-2 ...
                count += 1
                name = f"{base}-{count}"
            found.add(name)
    return found


def link_problems(text: str, page: Path) -> list[str]:
    problems = []
    outside = INLINE_CODE.sub("", prose(text))
    for target in LINK.findall(outside):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.is_file():
            problems.append(f"{page.name}: link {target!r}: {path} is not a file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{page.name}: link {target!r}: {path.name} has no heading #{anchor}")
    return problems


# ------------------------------------------------------------------------------------------------------------ tests
def test_the_pages_exist():
    assert [page for page in PAGES if not page.is_file()] == []
    names = {page.name for page in PAGES}
    assert {"installation.md", "training.md", "inference.md", "design.md"} <= names


def test_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}: the rest is docs/)"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_commands_and_flags_exist(page: Path):
    assert docs_command_problems(page.read_text(), page.name) == []


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_relative_links_resolve(page: Path):
    assert link_problems(page.read_text(), page) == []


def ci_steps() -> list[str]:
    """The commands of .ci/run, spelt as a reader types them (``python -m pip install -q`` -> ``pip install``); the
    pip self-upgrade is left out."""
    steps = []
    for line in (REPO / ".ci" / "run").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "set ", "cd ")) or "--upgrade pip" in line:
            continue
        steps.append(re.sub(r"^python -m pip install( -q)?", "pip install", line))
    return steps


def test_readme_test_command_is_what_ci_runs():
    blocks = [body for _, language, body in fenced_blocks(README.read_text()) if language in SHELL_LANGUAGES]
    lines = [line.split("#", 1)[0].strip() for body in blocks for line in body.splitlines()]
    commands = [line.split(" && ") for line in lines if "pytest" in line]
    assert ci_steps() in commands, (ci_steps(), commands)


def test_every_command_is_shown():
    shown = {command for page in PAGES for where, line in shown_commands(page.read_text(), page.name)
             for command, _ in invocations(line.split())}
    assert sorted(set(console_scripts()) - shown) == []


def test_the_extra_flags_work(monkeypatch, capsys):
    """EXTRA_FLAGS are read before argparse; run them so that the allowance stays true."""
    for command, flags in EXTRA_FLAGS.items():
        module, function = console_scripts()[command].split(":")
        for flag in flags:
            monkeypatch.setattr(sys, "argv", [command, flag])
            with pytest.raises(SystemExit) as exit_info:
                getattr(importlib.import_module(module), function)()
            assert exit_info.value.code == 0
            assert "x4" in capsys.readouterr().out


def test_readme_registry_table_is_what_medsr_se_registers():
    registries = {"ARCH_REGISTRY": ARCH_REGISTRY, "MODEL_REGISTRY": MODEL_REGISTRY, "LOSS_REGISTRY": LOSS_REGISTRY,
                  "DATASET_REGISTRY": DATASET_REGISTRY, "METRIC_REGISTRY": METRIC_REGISTRY}
    table: dict[str, set[str]] = {name: set() for name in registries}
    for line in README.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in registries:
            table[cells[0]] |= set(re.findall(r"`(\w+)`", cells[1]))
    for name, registry in registries.items():
        ours = {key for key, obj in registry if getattr(obj, "__module__", "").startswith("medsr_se")}
        assert table[name] == ours, (f"README's registry table, {name}: missing {sorted(ours - table[name])}, "
                                     f"not registered {sorted(table[name] - ours)}")


# ------------------------------------------------------------------------------------- the checks catch a break
BROKEN_PAGE = """# A page

```bash
medsr-infer -i a.png -o out/ --model net.pth --made-up-flag 3
python -m medsr_se.train -opt x4 --auto_resume --no-such-option
torchrun --standalone --nproc_per_node=2 --not-a-torchrun-flag -m medsr_se.train -opt x4 --launcher pytorch
medsr-nonexistent -i a.png
pip install medsr-se && pip install -e ".[medical,nosuchextra]"
```

Inline, `medsr-selfsr -i scan.nii.gz -o out/ --invented` and [a link](no-such-page.md) and [here](#nowhere).

```
an unmarked block
```
"""


def test_the_checks_catch_a_deliberate_break():
    commands = docs_command_problems(BROKEN_PAGE, "broken.md")
    for expected in ("medsr-infer has no flag --made-up-flag", "medsr-train has no flag --no-such-option",
                     "torchrun has no flag --not-a-torchrun-flag", "'medsr-nonexistent' is not a command",
                     "medsr-selfsr has no flag --invented", "broken.md:13: a fenced block without a language",
                     "pip install medsr-se: medsr-se is not on the package index",
                     "setup.py has no extra nosuchextra"):
        assert any(expected in problem for problem in commands), (expected, commands)
    assert len(commands) == 8, commands  # and nothing else: the real flags of those lines pass
    links = link_problems(BROKEN_PAGE, README)
    assert len(links) == 2 and "no-such-page.md" in links[0] and "#nowhere" in links[1], links
