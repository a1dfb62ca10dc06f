"""The README's headline numbers are the documentation's: every value in the README's table of
headline results appears, with the same digits, on the docs page that its row links to."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HEADING = "## Headline results"
#: Columns that hold no measured value: the row's label, its command and its link.
NON_VALUE_COLUMNS = (0, "reproduce", "explained in")
#: A number as the docs write it: 88.6, 0.809, 1,500 (not a digit inside a word or a longer number).
NUMBER = re.compile(r"(?<![\w.])(?<!\d,)\d{1,3}(?:,\d{3})*(?:\.\d+)?(?![\w])(?![.,]\d)")
LINK = re.compile(r"\]\((docs/[^)#\s]+\.md)(?:#[^)\s]*)?\)")


def _cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def headline_table(text):
    """(header cells, rows of cells) of the first table after the headline heading."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == HEADING)
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append(line)
        elif table or line.startswith("#"):
            break  # the table ended, or the section did without one
    assert len(table) >= 3, f"no table under {HEADING!r} in the README"
    header, rows = _cells(table[0]), [_cells(line) for line in table[2:]]
    return header, rows


def row_claims(header, row):
    """(docs page the row links to, its label, the numbers in its value columns)."""
    skip = {0} | {header.index(name) for name in NON_VALUE_COLUMNS if isinstance(name, str)}
    links = [match.group(1) for cell in row for match in LINK.finditer(cell)]
    assert len(set(links)) == 1, f"row {row[0]!r} should link exactly one docs page, found {links}"
    values = " ".join(cell for i, cell in enumerate(row) if i not in skip)
    return links[0], row[0], NUMBER.findall(values)


def appears(number, text):
    """Whether ``number`` occurs in ``text`` as a whole number (88.6 is not in 188.6 or 88.65)."""
    pattern = r"(?<![\d.])(?<!\d,)" + re.escape(number) + r"(?!\d)(?![.,]\d)"
    return re.search(pattern, text) is not None


def missing_numbers(readme_text, root=ROOT):
    """[(page, row label, number)] for every README table value absent from its row's page."""
    header, rows = headline_table(readme_text)
    missing = []
    for row in rows:
        page, label, numbers = row_claims(header, row)
        page_text = (root / page).read_text(encoding="utf-8")
        missing += [(page, label, number) for number in numbers if not appears(number, page_text)]
    return missing


def test_the_headline_table_has_rows_that_link_a_docs_page_and_state_numbers():
    header, rows = headline_table(README.read_text(encoding="utf-8"))
    assert "reproduce" in header and "explained in" in header, header
    assert len(rows) >= 4
    total = 0
    for row in rows:
        page, label, numbers = row_claims(header, row)
        assert (ROOT / page).is_file(), f"row {label!r} links {page}, which does not exist"
        assert numbers, f"row {label!r} states no number"
        assert re.search(r"\(\d+\)", row[header.index("reproduce")]), f"row {label!r} names no command"
        total += len(numbers)
    assert total >= 15, total


def test_every_headline_number_appears_on_the_page_its_row_links_to():
    assert missing_numbers(README.read_text(encoding="utf-8")) == []


def test_a_changed_readme_number_is_caught():
    text = README.read_text(encoding="utf-8")
    header, rows = headline_table(text)
    changed = caught = 0
    for row in rows:
        page, label, numbers = row_claims(header, row)
        page_text = (ROOT / page).read_text(encoding="utf-8")
        line = next(line for line in text.splitlines() if line.startswith("|") and _cells(line) == row)
        for number in numbers:
            wrong = number[:-1] + str((int(number[-1]) + 1) % 10)  # 88.6 -> 88.7
            if appears(wrong, page_text):
                continue  # the page happens to hold the changed value too: nothing to tell apart
            bad_line = re.sub(r"(?<![\d.])" + re.escape(number) + r"(?![\d])", wrong, line, count=1)
            changed += 1
            caught += (page, label, wrong) in missing_numbers(text.replace(line, bad_line, 1))
    assert changed >= 15, changed
    assert caught == changed, f"{changed - caught} of {changed} changed numbers went unnoticed"
