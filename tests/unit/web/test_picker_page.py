"""What the picker page is built on: Python's per-use-case answers combine into the answer for any set."""

from __future__ import annotations

import itertools
import json
import re

from tollgate.vendors.stripe import picker
from tollgate.web import picker_page

CATALOG = picker.load_catalog()
DATA = picker_page.page_data(CATALOG)


def merged(names: list[str]) -> list[picker.Permission]:
    """What the page's script does: per resource, the highest level any ticked use case needs."""
    levels: dict[str, str] = {}
    for n in names:
        for p in DATA["useCases"][n]["permissions"]:
            if levels.get(p["resource"]) != "write":
                levels[p["resource"]] = p["level"]
    return [picker.Permission(resource=r, level=picker.Level(lv)) for r, lv in sorted(levels.items())]


def test_merging_each_use_cases_permissions_equals_the_minimum_for_their_union() -> None:
    names = list(CATALOG.use_cases)
    sets = [list(p) for p in itertools.combinations(names, 2)] + [names]
    for chosen in sets:
        union = picker.union_allow([CATALOG.use_cases[n] for n in chosen])
        assert merged(chosen) == picker.minimum_permissions(CATALOG, union), chosen


def test_the_page_embeds_every_use_case_resource_and_dangerous_pair_of_the_data_file() -> None:
    assert list(DATA["useCases"]) == list(CATALOG.use_cases)
    assert set(DATA["resources"]) == set(CATALOG.resources)
    assert len(DATA["dangerous"]) == len(CATALOG.dangerous)
    page = picker_page.render(CATALOG)
    embedded = re.search(r'<script type="application/json" id="picker-data">(.*?)</script>', page, re.S)
    assert embedded and json.loads(embedded.group(1)) == DATA


def test_text_from_the_data_file_cannot_end_the_script_element_early() -> None:
    evil = CATALOG.model_copy(
        update={
            "use_cases": {
                "x": CATALOG.use_cases["support-refunds"].model_copy(
                    update={"description": "</script><script>alert(1)</script>"}
                )
            }
        }
    )
    page = picker_page.render(evil)
    assert page.count("</script>") == 2  # the data element's and the code element's own
    embedded = re.search(r'id="picker-data">(.*?)</script>', page, re.S)
    assert embedded and json.loads(embedded.group(1))["useCases"]["x"]["description"].startswith("</script>")


def test_the_page_loads_nothing_from_anywhere() -> None:
    page = picker_page.render(CATALOG)
    assert "default-src 'none'" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
