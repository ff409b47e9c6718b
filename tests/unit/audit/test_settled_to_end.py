"""When a log counts as settled to its end: the position settlement saves names this file at its end."""

import os
from pathlib import Path

from tollgate.audit.ingest import settled_to_end


def test_settled_only_at_the_end_of_this_very_file(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    assert settled_to_end(None, log)  # no log yet: nothing to settle
    log.write_text("")
    assert settled_to_end(None, log)
    log.write_text('{"a":1}\n{"b":2}\n')
    st = os.stat(log)
    here = f"{st.st_dev}:{st.st_ino}"
    assert settled_to_end(f"{here}@{st.st_size}", log)
    assert not settled_to_end(f"{here}@8", log)  # a line left
    assert not settled_to_end(None, log)
    assert not settled_to_end(f"0:1@{st.st_size}", log)  # the end of another (a rotated) file
    assert not settled_to_end(f"{here}@", log)
