"""One log line format with process name and session; JSON lines; a file per session."""

import json
import logging

from livestack import logs


def test_text_and_json_lines_name_the_process_and_the_session(tmp_path, capsys):
    f = tmp_path / "s.log"
    try:
        logs.setup("harness", "abc123", "INFO", False, str(f))
        logging.getLogger("livestack.harness").warning("ring %s full", "md")
        logging.getLogger("livestack.x").debug("not shown")
        err = capsys.readouterr().err
        assert " WARNING harness[" in err and "] abc123 livestack.harness: ring md full" in err
        assert "not shown" not in err and "ring md full" in f.read_text()
        logs.setup("writer", "abc123", "WARNING", True, str(f))
        logging.getLogger("livestack.records").info("only in the file")
        assert capsys.readouterr().err == ""
        last = json.loads(f.read_text().splitlines()[-1])
        assert (last["process"], last["session"], last["level"], last["msg"]) == ("writer", "abc123", "INFO",
                                                                                 "only in the file")
    finally:
        logs.reset()
