"""Every ```python block of the docs pages runs against the real API, and prints what it says.

Each page's blocks execute in order in one namespace (later blocks build on earlier
ones), so a guide cannot drift from the library without this test failing. A
top-level statement whose last line ends in ``# -> text`` (or is followed by a line
``# -> text``) must print exactly ``text`` (or, when ``text`` ends in ``...``,
something starting with what precedes it).
"""

import ast
import contextlib
import io
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted([*DOCS.glob("*.md"), *(DOCS / "guides").glob("*.md")])
BLOCK = re.compile(r"^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)
EXPECTED = re.compile(r"#\s*->\s?(?P<text>.*)$")


def blocks(page: pathlib.Path) -> list[tuple[int, str]]:
    """(line number of the first code line, code) of each ```python block."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start("code")) + 1, m["code"]) for m in BLOCK.finditer(text)]


def run_block(code: str, namespace: dict, where: str, first_line: int) -> int:
    """Execute ``code`` statement by statement; return how many printed outputs it checked."""
    lines = code.splitlines()
    checked = 0
    for statement in ast.parse(code).body:
        # The expected output ends the statement's last line or fills the line after it.
        after = lines[statement.end_lineno] if statement.end_lineno < len(lines) else ""
        expected = EXPECTED.search(lines[statement.end_lineno - 1]) or (
            EXPECTED.match(after.strip()) if after.strip().startswith("#") else None
        )
        line = first_line + statement.lineno - 1
        module = ast.Module(body=[statement], type_ignores=[])
        ast.increment_lineno(module, first_line - 1)
        compiled = compile(module, where, "exec")
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output):
                exec(compiled, namespace)
        except Exception as error:
            raise AssertionError(f"{where} line {line} raises {error!r}") from error
        if expected is None:
            continue
        want, got = expected["text"].strip(), output.getvalue().strip()
        matches = got.startswith(want[:-3]) if want.endswith("...") else got == want
        assert matches, f"{where} line {line} prints {got!r}, but the page says {want!r}"
        checked += 1
    return checked


PAGES_WITH_CODE = [p for p in PAGES if blocks(p)]


def test_the_pages_have_examples_that_check_their_output():
    assert len(PAGES_WITH_CODE) >= 10, [p.name for p in PAGES_WITH_CODE]
    assert any(EXPECTED.search(code) for p in PAGES for _, code in blocks(p))


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: p.stem)
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace = {"__name__": f"docs_{page.stem}"}
    where = str(page.relative_to(DOCS.parent))
    for first_line, code in blocks(page):
        run_block(code, namespace, where, first_line)


def test_a_wrong_expected_output_fails():
    with pytest.raises(AssertionError, match="prints '2', but the page says '3'"):
        run_block("print(1 + 1)  # -> 3\n", {}, "example.md", 1)
    with pytest.raises(AssertionError, match="example.md line 2 raises NameError"):
        run_block("x = 1\nprint(y)\n", {}, "example.md", 1)
    assert run_block("print('abc')  # -> ab...\nprint(1)\n", {}, "example.md", 1) == 1
    with pytest.raises(AssertionError, match="prints '1', but the page says '2'"):
        run_block("print(1)\n# -> 2\n", {}, "example.md", 1)
